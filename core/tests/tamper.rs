//! The tamper suite: an encrypted journal holding events and snapshots, with its stored bytes
//! changed at every record position. Every change ends in its own typed error — or, where no
//! record can reveal it, in the behaviour `persevere_core::seal` documents — and never in a
//! wrong state, a panic or an empty store.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use borsh::{BorshDeserialize, BorshSerialize};
use persevere_core::memory::{MemoryStore, Records, StreamData};
use persevere_core::record::{self, RecordError, RecordKind, FLAG_SEALED, HEADER_LEN};
use persevere_core::seal::{
    self, ChaChaRandom, HeadCommitment, Key, KeyId, KeyRing, SealError, ZeroizeOnDrop, CHAIN_LEN,
    KEY_ID_LEN, NONCE_LEN, TAG_LEN,
};
use persevere_core::testkit::{Fault, Harness, HarnessError};
use persevere_core::SharedBytes;
use persevere_core::{
    Command, Completion, Entity, Journal, JournalConfig, JournalEvent, RecoveryError, Strategy,
};

const STORE: &str = "store-a";
const STREAM: &str = "accounts/1";
const EVENTS: u64 = 10;
const SNAPSHOT_EVERY: u64 = 3;
const SEED: u64 = 0x5eed_0001;

#[derive(Debug, Default, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
struct Ledger {
    entries: Vec<u64>,
}

impl Entity for Ledger {
    type Event = u64;
    type Error = String;
    fn apply(&mut self, event: &u64) -> Result<(), String> {
        self.entries.push(*event);
        Ok(())
    }
}

fn value(seq: u64) -> u64 {
    1000 + seq * 7
}

/// The state after the first `n` events.
fn truth(n: u64) -> Ledger {
    Ledger {
        entries: (1..=n).map(value).collect(),
    }
}

fn key(byte: u8) -> Key {
    Key::from_bytes([byte; 32])
}

/// Key 1 only.
fn old_ring() -> Arc<KeyRing> {
    Arc::new(KeyRing::new(KeyId(1), key(0x11)))
}

/// Keys 1 and 2, 2 primary (after rotation).
fn ring() -> Arc<KeyRing> {
    let mut ring = KeyRing::new(KeyId(1), key(0x11));
    ring.insert(KeyId(2), key(0x22)).unwrap();
    ring.set_primary(KeyId(2)).unwrap();
    Arc::new(ring)
}

fn config(store: &str, stream: &str) -> JournalConfig {
    JournalConfig::new(stream)
        .with_store_id(store)
        .snapshot_every(Some(SNAPSHOT_EVERY))
}

/// Events 1..=10 and snapshots at 3, 6 and 9 in `stream` of `store`; events 1..=5 and the
/// snapshot at 3 sealed with key 1, the rest with key 2 (a rotation half-way).
fn fixture_in(store: &str, stream: &str, config: JournalConfig) -> (MemoryStore, HeadCommitment) {
    let _ = (store, stream);
    let mut h = Harness::<Ledger>::encrypted(config, Ledger::default, old_ring(), SEED);
    for seq in 1..=5 {
        assert_eq!(h.persist(value(seq)).unwrap(), (seq, seq));
    }
    h.set_keys(Some(ring()));
    h.restart().unwrap();
    for seq in 6..=EVENTS {
        assert_eq!(h.persist(value(seq)).unwrap(), (seq, seq));
    }
    assert_eq!(h.state(), &truth(EVENTS));
    let head = h.journal().and_then(|j| j.head_commitment()).unwrap();
    (h.store().clone(), head)
}

fn fixture() -> (MemoryStore, HeadCommitment) {
    fixture_in(STORE, STREAM, config(STORE, STREAM))
}

fn stream(store: &MemoryStore) -> &StreamData {
    store.stream(STREAM).expect("the fixture's stream")
}

fn stream_mut(store: &mut MemoryStore) -> &mut StreamData {
    store.stream_mut(STREAM)
}

fn records(data: &mut StreamData, kind: RecordKind) -> &mut Records {
    match kind {
        RecordKind::Event => &mut data.events,
        _ => &mut data.snapshots,
    }
}

/// Opens an encrypted journal with `keys` over `store` and recovers.
struct Opened {
    result: Result<Ledger, RecoveryError>,
    events: Vec<JournalEvent>,
    phase: persevere_core::Phase,
}

fn open_with(store: &MemoryStore, keys: Option<Arc<KeyRing>>, config: JournalConfig) -> Opened {
    let mut h = Harness::<Ledger>::encrypted(config, Ledger::default, ring(), SEED ^ 0xff);
    *h.store_mut() = store.clone();
    h.set_keys(keys);
    let skip = h.events().len();
    let result = match h.restart() {
        Ok(state) => Ok(state.clone()),
        Err(HarnessError::Recovery(error)) => Err(error),
        Err(other) => panic!("recovery ended in {other:?}, not a recovery outcome"),
    };
    let phase = h.journal().expect("not crashed").phase();
    Opened {
        result,
        events: h.events()[skip..].to_vec(),
        phase,
    }
}

fn open(store: &MemoryStore) -> Opened {
    open_with(store, Some(ring()), config(STORE, STREAM))
}

/// The store with every snapshot that would spare recovery from reading the record (`kind`,
/// `seq`) removed, so that recovery reads it.
fn on_read_path(store: &MemoryStore, kind: RecordKind, seq: u64) -> MemoryStore {
    let mut store = store.clone();
    let data = stream_mut(&mut store);
    let keep_below = match kind {
        RecordKind::Event => seq,
        _ => seq + 1,
    };
    data.snapshots.retain(|&s, _| s < keep_below);
    store
}

/// Re-computes the CRC, as someone changing a record on purpose would.
fn recrc(bytes: &mut Vec<u8>) {
    let body = bytes.len() - 4;
    bytes.truncate(body);
    let crc = crc32fast::hash(bytes);
    bytes.extend_from_slice(&crc.to_le_bytes());
}

/// [`recrc`] on a stored record.
fn recrc_shared(bytes: &mut SharedBytes) {
    let mut vec = bytes.to_vec();
    recrc(&mut vec);
    *bytes = vec.into();
}

/// Rewrites a record's header seq (and CRC), so only the associated data can tell.
fn refile(bytes: &[u8], seq: u64) -> Vec<u8> {
    let mut bytes = bytes.to_vec();
    bytes[8..16].copy_from_slice(&seq.to_le_bytes());
    recrc(&mut bytes);
    bytes
}

fn all_positions() -> Vec<(RecordKind, u64)> {
    let mut positions: Vec<_> = (1..=EVENTS).map(|s| (RecordKind::Event, s)).collect();
    positions
        .extend((1..=EVENTS / SNAPSHOT_EVERY).map(|i| (RecordKind::Snapshot, i * SNAPSHOT_EVERY)));
    positions
}

fn key_of(store: &MemoryStore, kind: RecordKind, seq: u64) -> KeyId {
    let mut store = store.clone();
    let bytes = records(stream_mut(&mut store), kind)[&seq].to_vec();
    seal::key_id_of(&bytes).expect("sealed")
}

/// What recovery must end in after a change to the record (`kind`, `seq`).
#[derive(Debug)]
enum Expect {
    /// This exact error.
    Error(RecoveryError),
    /// A `Mismatch` error at this position (its detail text is free).
    Mismatch,
    /// (Snapshots) the damaged snapshot is skipped and recovery falls back to an older one or
    /// to a full replay: the state is the true one.
    Fallback,
}

/// Checks `opened` against `expect` for a change to (`kind`, `seq`); `what` names the change.
fn check(opened: &Opened, expect: &Expect, kind: RecordKind, seq: u64, what: &str) {
    let context = format!("{what} on {kind:?} {seq} (seed {SEED:#x})");
    match (expect, &opened.result) {
        (Expect::Error(expected), Err(error)) => {
            assert_eq!(error, expected, "{context}");
        }
        (
            Expect::Mismatch,
            Err(RecoveryError::Mismatch {
                kind: k, seq: s, ..
            }),
        ) => {
            assert_eq!((*k, *s), (kind, seq), "{context}");
        }
        (Expect::Fallback, Ok(state)) => {
            assert_eq!(state, &truth(EVENTS), "{context}: wrong state");
            assert!(
                opened.events.iter().any(
                    |e| matches!(e, JournalEvent::SnapshotSkipped { seq: s, .. } if *s == seq)
                ),
                "{context}: the damaged snapshot was not reported skipped: {:?}",
                opened.events
            );
        }
        (expect, got) => panic!("{context}: expected {expect:?}, got {got:?}"),
    }
    if opened.result.is_err() {
        assert_eq!(opened.phase, persevere_core::Phase::Stopped, "{context}");
    }
}

/// Header errors (`Corrupt`, `Mismatch`) make a snapshot fall back; sealing errors never do.
fn for_kind(kind: RecordKind, expect: Expect) -> Expect {
    match (kind, &expect) {
        (RecordKind::Snapshot, Expect::Mismatch)
        | (RecordKind::Snapshot, Expect::Error(RecoveryError::Corrupt { .. })) => Expect::Fallback,
        _ => expect,
    }
}

/// The field a byte of a sealed record belongs to.
fn field(kind: RecordKind, len: usize, at: usize) -> &'static str {
    let payload = HEADER_LEN;
    let nonce = payload + KEY_ID_LEN;
    let after_nonce = nonce + NONCE_LEN;
    let ciphertext = after_nonce
        + if kind == RecordKind::Snapshot {
            CHAIN_LEN
        } else {
            0
        };
    match at {
        0 => "format",
        1 => "kind",
        2 => "codec",
        3 => "flags",
        4..=7 => "type version",
        8..=15 => "seq",
        16..=19 => "length",
        _ if at < nonce => "key id",
        _ if at < after_nonce => "nonce",
        _ if at < ciphertext => "chain",
        _ if at < len - 4 - TAG_LEN => "ciphertext",
        _ if at < len - 4 => "tag",
        _ => "crc",
    }
}

fn expect_after_flip(
    kind: RecordKind,
    seq: u64,
    original_key: KeyId,
    bytes: &[u8],
    at: usize,
) -> Expect {
    let corrupt = |source| Expect::Error(RecoveryError::Corrupt { kind, seq, source });
    let open = |source| Expect::Error(RecoveryError::Open { kind, seq, source });
    let expect = match field(kind, bytes.len(), at) {
        "format" => corrupt(RecordError::Format(bytes[0])),
        "kind" => corrupt(RecordError::Kind(bytes[1])),
        "codec" | "seq" => Expect::Mismatch,
        "flags" if bytes[3] == 0 => open(SealError::NotSealed),
        "flags" => corrupt(RecordError::Flags(bytes[3])),
        "length" => {
            let mut len = [0; 4];
            len.copy_from_slice(&bytes[16..20]);
            corrupt(RecordError::Length {
                declared: u64::from(u32::from_le_bytes(len)),
                actual: bytes.len() - HEADER_LEN - 4,
            })
        }
        "key id" => open(SealError::KeyNotFound {
            key_id: seal::key_id_of(bytes).expect("still sealed"),
        }),
        "type version" | "nonce" | "chain" | "ciphertext" | "tag" => {
            open(SealError::Authentication {
                key_id: original_key,
            })
        }
        other => unreachable!("field {other}"),
    };
    for_kind(kind, expect)
}

#[test]
fn tamper_fixture_recovers_untouched() {
    let (store, head) = fixture();
    let opened = open(&store);
    assert_eq!(opened.result, Ok(truth(EVENTS)));
    assert_eq!(head.seq, EVENTS);
    // Both keys are in use: the rotation left old records readable.
    assert_eq!(key_of(&store, RecordKind::Event, 1), KeyId(1));
    assert_eq!(key_of(&store, RecordKind::Event, EVENTS), KeyId(2));
    // Every record is sealed.
    let data = stream(&store);
    for bytes in data.events.values().chain(data.snapshots.values()) {
        assert_eq!(bytes[3], FLAG_SEALED);
    }
    // Every position is read on its read path.
    for (kind, seq) in all_positions() {
        let opened = open(&on_read_path(&store, kind, seq));
        assert_eq!(opened.result, Ok(truth(EVENTS)), "{kind:?} {seq}");
    }
}

/// Every bit of every field of every record, with the CRC re-computed (a deliberate change).
#[test]
fn tamper_every_bit_of_every_field_at_every_position() {
    let (base, _) = fixture();
    for (kind, seq) in all_positions() {
        let store = on_read_path(&base, kind, seq);
        let original_key = key_of(&store, kind, seq);
        let original = records(stream_mut(&mut store.clone()), kind)[&seq].to_vec();
        let mut fields_seen = std::collections::BTreeSet::new();
        for at in 0..original.len() - 4 {
            fields_seen.insert(field(kind, original.len(), at));
            for bit in 0..8 {
                let mut bytes = original.clone();
                bytes[at] ^= 1 << bit;
                recrc(&mut bytes);
                let expect = expect_after_flip(kind, seq, original_key, &bytes, at);
                let mut tampered = store.clone();
                records(stream_mut(&mut tampered), kind).insert(seq, bytes.into());
                let what = format!(
                    "bit {bit} of byte {at} ({})",
                    field(kind, original.len(), at)
                );
                check(&open(&tampered), &expect, kind, seq, &what);
            }
        }
        let expected_fields = if kind == RecordKind::Snapshot { 12 } else { 11 };
        assert_eq!(fields_seen.len(), expected_fields, "{fields_seen:?}");
    }
}

/// Every bit of every record, CRC left alone (accidental damage): a checksum or length error.
#[test]
fn tamper_every_bit_without_crc_fix_is_a_checksum_error() {
    let (base, _) = fixture();
    for (kind, seq) in all_positions() {
        let store = on_read_path(&base, kind, seq);
        let original = records(stream_mut(&mut store.clone()), kind)[&seq].to_vec();
        for at in 0..original.len() {
            for bit in 0..8 {
                let mut bytes = original.clone();
                bytes[at] ^= 1 << bit;
                let mut tampered = store.clone();
                records(stream_mut(&mut tampered), kind).insert(seq, bytes.clone().into());
                let opened = open(&tampered);
                let what = format!("raw bit {bit} of byte {at}");
                let source = record::decode(&bytes).expect_err("damage is seen");
                assert!(
                    matches!(
                        source,
                        RecordError::Checksum { .. } | RecordError::Length { .. }
                    ),
                    "{what}: {source:?}"
                );
                let expect = for_kind(
                    kind,
                    Expect::Error(RecoveryError::Corrupt { kind, seq, source }),
                );
                check(&opened, &expect, kind, seq, &what);
            }
        }
    }
}

/// Records nobody reads (events and snapshots below the snapshot recovery starts from) are not
/// checked by recovery; changing them does not change the recovered state.
#[test]
fn tamper_below_the_newest_snapshot_is_not_read() {
    let (base, _) = fixture();
    for (kind, seq) in all_positions() {
        let newest = *stream(&base).snapshots.keys().next_back().unwrap();
        if seq > newest || (kind == RecordKind::Snapshot && seq == newest) {
            continue;
        }
        let mut tampered = base.clone();
        let bytes = records(stream_mut(&mut tampered), kind)
            .get_mut(&seq)
            .unwrap();
        let last = bytes.len() - 6;
        bytes.make_mut()[last] ^= 1;
        recrc_shared(bytes);
        assert_eq!(open(&tampered).result, Ok(truth(EVENTS)), "{kind:?} {seq}");
    }
}

/// The same journal, same keys, another stream or another store: the records do not open.
#[test]
fn tamper_swap_in_from_another_stream_and_another_store() {
    let (base, _) = fixture();
    let (other_stream, _) = fixture_in(STORE, "accounts/2", config(STORE, "accounts/2"));
    let (other_store, _) = fixture_in("store-b", STREAM, config("store-b", STREAM));
    let mut from_stream = other_stream.stream("accounts/2").unwrap().clone();
    let mut from_store = stream(&other_store).clone();
    for (kind, seq) in all_positions() {
        for (source, name) in [
            (&mut from_stream, "another stream"),
            (&mut from_store, "another store"),
        ] {
            let foreign = records(source, kind)[&seq].to_vec();
            // Same plaintext, same position, same key: only the binding differs.
            let mut tampered = on_read_path(&base, kind, seq);
            records(stream_mut(&mut tampered), kind).insert(seq, foreign.clone().into());
            let expect = Expect::Error(RecoveryError::Open {
                kind,
                seq,
                source: SealError::Authentication {
                    key_id: seal::key_id_of(&foreign).unwrap(),
                },
            });
            check(&open(&tampered), &expect, kind, seq, name);
        }
    }
}

/// A record copied to another position of the same stream: caught by the header seq, and by
/// the associated data when the header is rewritten to match.
#[test]
fn tamper_swap_in_from_another_position() {
    let (base, _) = fixture();
    for (kind, seq) in all_positions() {
        for (other_kind, other_seq) in all_positions() {
            if other_kind != kind || other_seq == seq {
                continue;
            }
            let store = on_read_path(&base, kind, seq);
            let foreign = records(stream_mut(&mut base.clone()), kind)[&other_seq].to_vec();
            let mut tampered = store.clone();
            records(stream_mut(&mut tampered), kind).insert(seq, foreign.clone().into());
            let what = format!("record from {other_seq}");
            check(
                &open(&tampered),
                &for_kind(kind, Expect::Mismatch),
                kind,
                seq,
                &what,
            );

            let mut tampered = store.clone();
            records(stream_mut(&mut tampered), kind).insert(seq, refile(&foreign, seq).into());
            let expect = Expect::Error(RecoveryError::Open {
                kind,
                seq,
                source: SealError::Authentication {
                    key_id: seal::key_id_of(&foreign).unwrap(),
                },
            });
            check(
                &open(&tampered),
                &expect,
                kind,
                seq,
                &format!("{what}, refiled"),
            );
        }
    }
}

/// Two neighbouring events swapped; an event duplicated over the next one and appended past the
/// head.
#[test]
fn tamper_reorder_and_duplicate_events() {
    let (base, _) = fixture();
    let auth = |seq, store: &MemoryStore| {
        Expect::Error(RecoveryError::Open {
            kind: RecordKind::Event,
            seq,
            source: SealError::Authentication {
                key_id: key_of(store, RecordKind::Event, seq - 1),
            },
        })
    };
    for seq in 1..EVENTS {
        let store = on_read_path(&base, RecordKind::Event, seq);
        let events = &stream(&store).events;
        let (a, b) = (events[&seq].clone(), events[&(seq + 1)].clone());

        // Reorder, headers as found: the first out-of-place record is caught by its seq.
        let mut tampered = store.clone();
        let data = stream_mut(&mut tampered);
        data.events.insert(seq, b.clone());
        data.events.insert(seq + 1, a.clone());
        check(
            &open(&tampered),
            &Expect::Mismatch,
            RecordKind::Event,
            seq,
            "reorder",
        );

        // Reorder with headers rewritten: the associated data (seq, chain) catches it.
        let mut tampered = store.clone();
        let data = stream_mut(&mut tampered);
        data.events.insert(seq, refile(&b, seq).into());
        data.events.insert(seq + 1, refile(&a, seq + 1).into());
        let expect = Expect::Error(RecoveryError::Open {
            kind: RecordKind::Event,
            seq,
            source: SealError::Authentication {
                key_id: seal::key_id_of(&b).unwrap(),
            },
        });
        check(
            &open(&tampered),
            &expect,
            RecordKind::Event,
            seq,
            "reorder, refiled",
        );

        // Duplicate over the next event, refiled: the chain no longer matches.
        let mut tampered = store.clone();
        stream_mut(&mut tampered)
            .events
            .insert(seq + 1, refile(&a, seq + 1).into());
        check(
            &open(&tampered),
            &auth(seq + 1, &store),
            RecordKind::Event,
            seq + 1,
            "duplicate",
        );
    }
    // The last event duplicated past the head, head moved along.
    let mut tampered = base.clone();
    let data = stream_mut(&mut tampered);
    let last = data.events[&EVENTS].clone();
    data.events
        .insert(EVENTS + 1, refile(&last, EVENTS + 1).into());
    data.head = EVENTS + 1;
    check(
        &open(&tampered),
        &auth(EVENTS + 1, &base),
        RecordKind::Event,
        EVENTS + 1,
        "duplicate past the head",
    );
}

/// The key id changed to another key of the ring (authentication fails) or to an unknown one.
#[test]
fn tamper_change_the_key_id() {
    let (base, _) = fixture();
    for (kind, seq) in all_positions() {
        let store = on_read_path(&base, kind, seq);
        let original = key_of(&store, kind, seq);
        let other = if original == KeyId(1) {
            KeyId(2)
        } else {
            KeyId(1)
        };
        for new in [other, KeyId(77)] {
            let mut tampered = store.clone();
            let bytes = records(stream_mut(&mut tampered), kind)
                .get_mut(&seq)
                .unwrap();
            bytes.make_mut()[HEADER_LEN..HEADER_LEN + KEY_ID_LEN]
                .copy_from_slice(&new.0.to_le_bytes());
            recrc_shared(bytes);
            let source = if new == other {
                SealError::Authentication { key_id: new }
            } else {
                SealError::KeyNotFound { key_id: new }
            };
            let expect = Expect::Error(RecoveryError::Open { kind, seq, source });
            check(
                &open(&tampered),
                &expect,
                kind,
                seq,
                &format!("key id {new}"),
            );
        }
    }
}

/// A wrong key, a ring missing a key, no key at all, and a plaintext store: typed errors, never
/// an empty store.
#[test]
fn tamper_open_with_wrong_or_missing_keys() {
    let (base, _) = fixture();
    let newest = *stream(&base).snapshots.keys().next_back().unwrap();
    let snapshot_error = |source| RecoveryError::Open {
        kind: RecordKind::Snapshot,
        seq: newest,
        source,
    };
    let cfg = || config(STORE, STREAM);

    // Same ids, other key material.
    let mut wrong = KeyRing::new(KeyId(1), key(0x33));
    wrong.insert(KeyId(2), key(0x44)).unwrap();
    let opened = open_with(&base, Some(Arc::new(wrong)), cfg());
    assert_eq!(
        opened.result,
        Err(snapshot_error(SealError::Authentication {
            key_id: KeyId(2)
        }))
    );
    assert_eq!(opened.phase, persevere_core::Phase::Stopped);

    // Without snapshots, the first event fails.
    let mut no_snapshots = base.clone();
    stream_mut(&mut no_snapshots).snapshots.clear();
    let wrong = Arc::new(KeyRing::new(KeyId(1), key(0x33)));
    assert_eq!(
        open_with(&no_snapshots, Some(wrong), cfg()).result,
        Err(RecoveryError::Open {
            kind: RecordKind::Event,
            seq: 1,
            source: SealError::Authentication { key_id: KeyId(1) }
        })
    );

    // The ring lost the rotated-to key: `KeyNotFound`, not "corrupt".
    assert_eq!(
        open_with(&base, Some(old_ring()), cfg()).result,
        Err(snapshot_error(SealError::KeyNotFound { key_id: KeyId(2) }))
    );
    // The ring lost the old key: found when the old records are read.
    let only_new = Arc::new(KeyRing::new(KeyId(2), key(0x22)));
    assert_eq!(
        open_with(&no_snapshots, Some(only_new), cfg()).result,
        Err(RecoveryError::Open {
            kind: RecordKind::Event,
            seq: 1,
            source: SealError::KeyNotFound { key_id: KeyId(1) }
        })
    );

    // A journal without keys over an encrypted store.
    assert_eq!(
        open_with(&base, None, cfg()).result,
        Err(snapshot_error(SealError::NoKeys))
    );

    // An encrypted journal over plaintext records (a downgrade).
    let mut plain = Harness::<Ledger>::new(cfg(), Ledger::default);
    for seq in 1..=4 {
        plain.persist(value(seq)).unwrap();
    }
    assert_eq!(
        open(plain.store()).result,
        Err(RecoveryError::Open {
            kind: RecordKind::Snapshot,
            seq: 3,
            source: SealError::NotSealed
        })
    );
    // And one plaintext event slipped into an encrypted log.
    let mut mixed = base.clone();
    let plain_event = stream(plain.store()).events[&4].clone();
    stream_mut(&mut mixed)
        .events
        .insert(EVENTS + 1, refile(&plain_event, EVENTS + 1).into());
    stream_mut(&mut mixed).head = EVENTS + 1;
    assert_eq!(
        open(&mixed).result,
        Err(RecoveryError::Open {
            kind: RecordKind::Event,
            seq: EVENTS + 1,
            source: SealError::NotSealed
        })
    );
}

/// The tail truncated below a snapshot (with or without the head the storage reports).
#[test]
fn tamper_truncate_the_tail_below_a_snapshot() {
    let (base, head) = fixture();
    let newest = *stream(&base).snapshots.keys().next_back().unwrap();
    for keep in 0..newest {
        // Events after `keep` gone, the storage's head lowered to match.
        let mut tampered = base.clone();
        let data = stream_mut(&mut tampered);
        data.events.retain(|&s, _| s <= keep);
        data.head = keep;
        assert_eq!(
            open(&tampered).result,
            Err(RecoveryError::SnapshotBeyondHead {
                snapshot: newest,
                head: keep
            }),
            "kept {keep}"
        );
    }
    for keep in newest..EVENTS {
        // Events after the snapshot gone, head as it was.
        let mut tampered = base.clone();
        stream_mut(&mut tampered).events.retain(|&s, _| s <= keep);
        assert_eq!(
            open(&tampered).result,
            Err(RecoveryError::MissingTail {
                last: keep,
                head: EVENTS
            }),
            "kept {keep}"
        );
        // Head lowered too: every remaining record is genuine, so by design the store alone
        // cannot tell (documented); the head commitment kept elsewhere does.
        stream_mut(&mut tampered).head = keep;
        assert_eq!(open(&tampered).result, Ok(truth(keep)), "kept {keep}");
        let opened = open_expecting(&tampered, head);
        assert_eq!(
            opened.result,
            Err(RecoveryError::HeadMismatch {
                expected_seq: EVENTS,
                found_seq: keep,
                chain_matches: false
            })
        );
    }
}

fn open_expecting(store: &MemoryStore, head: HeadCommitment) -> Opened {
    let mut h = Harness::<Ledger>::encrypted(config(STORE, STREAM), Ledger::default, ring(), 3);
    *h.store_mut() = store.clone();
    h.set_expected_head(Some(head));
    let result = match h.restart() {
        Ok(state) => Ok(state.clone()),
        Err(HarnessError::Recovery(error)) => Err(error),
        Err(other) => panic!("{other:?}"),
    };
    Opened {
        result,
        events: h.events().to_vec(),
        phase: h.journal().unwrap().phase(),
    }
}

/// The newest snapshot replaced by an older one, as found and refiled; and removed, with and
/// without the events it covers.
#[test]
fn tamper_roll_a_snapshot_back_to_an_older_one() {
    let (base, _) = fixture();
    let snapshots: Vec<u64> = stream(&base).snapshots.keys().copied().collect();
    for (i, &newer) in snapshots.iter().enumerate() {
        for &older in &snapshots[..i] {
            let store = on_read_path(&base, RecordKind::Snapshot, newer);
            let old = stream(&store).snapshots[&older].clone();
            // As found: the header says `older`, the storage filed it as `newer`.
            let mut tampered = store.clone();
            stream_mut(&mut tampered)
                .snapshots
                .insert(newer, old.clone());
            check(
                &open(&tampered),
                &Expect::Fallback,
                RecordKind::Snapshot,
                newer,
                "older snapshot",
            );
            // Refiled: the associated data binds the seq.
            let mut tampered = store.clone();
            stream_mut(&mut tampered)
                .snapshots
                .insert(newer, refile(&old, newer).into());
            let expect = Expect::Error(RecoveryError::Open {
                kind: RecordKind::Snapshot,
                seq: newer,
                source: SealError::Authentication {
                    key_id: seal::key_id_of(&old).unwrap(),
                },
            });
            check(
                &open(&tampered),
                &expect,
                RecordKind::Snapshot,
                newer,
                "refiled",
            );
        }
    }
    // The newest snapshot removed while the events it covers remain: recovery replays from an
    // older one and reaches the same, true state (documented).
    let mut tampered = base.clone();
    let newest = *snapshots.last().unwrap();
    stream_mut(&mut tampered).snapshots.remove(&newest);
    assert_eq!(open(&tampered).result, Ok(truth(EVENTS)));
    // The same after compaction: the events after the older snapshot are gone: a gap.
    let mut compacted = tampered.clone();
    stream_mut(&mut compacted).events.retain(|&s, _| s > newest);
    let older = snapshots[snapshots.len() - 2];
    assert_eq!(
        open(&compacted).result,
        Err(RecoveryError::Gap {
            expected: older + 1,
            found: newest + 1
        })
    );
    // Compacted, and the newest snapshot replaced by an older one as found: it is skipped, and
    // the state cannot be rebuilt without it.
    let mut compacted = base.clone();
    let data = stream_mut(&mut compacted);
    data.events.retain(|&s, _| s > newest);
    let old = data.snapshots[&older].clone();
    data.snapshots.insert(newest, old);
    assert!(matches!(
        open(&compacted).result,
        Err(RecoveryError::SnapshotUnrecoverable { seq, .. }) if seq == newest
    ));
}

/// The whole stream rolled back to an older copy, or forked: undetectable from the records
/// (documented); the head commitment catches both.
#[test]
fn tamper_whole_store_rollback_needs_the_head_commitment() {
    let mut h = Harness::<Ledger>::encrypted(config(STORE, STREAM), Ledger::default, ring(), SEED);
    for seq in 1..=6 {
        h.persist(value(seq)).unwrap();
    }
    let old_copy = h.store().clone();
    let old_head = h.journal().and_then(|j| j.head_commitment()).unwrap();
    for seq in 7..=EVENTS {
        h.persist(value(seq)).unwrap();
    }
    let head = h.journal().and_then(|j| j.head_commitment()).unwrap();
    assert_ne!(old_head, head);
    assert_eq!(HeadCommitment::from_bytes(&head.to_bytes()), head);

    // Every record of the old copy is genuine: recovery yields the old state.
    assert_eq!(open(&old_copy).result, Ok(truth(6)));
    assert_eq!(
        open_expecting(&old_copy, head).result,
        Err(RecoveryError::HeadMismatch {
            expected_seq: EVENTS,
            found_seq: 6,
            chain_matches: false
        })
    );
    assert_eq!(open_expecting(h.store(), head).result, Ok(truth(EVENTS)));

    // A fork: the same number of events, other content.
    let mut fork = Harness::<Ledger>::encrypted(config(STORE, STREAM), Ledger::default, ring(), 9);
    *fork.store_mut() = old_copy;
    fork.restart().unwrap();
    for seq in 7..=EVENTS {
        fork.persist(value(seq) + 1).unwrap();
    }
    assert_eq!(
        open_expecting(fork.store(), head).result,
        Err(RecoveryError::HeadMismatch {
            expected_seq: EVENTS,
            found_seq: EVENTS,
            chain_matches: false
        })
    );
}

/// The same tampering with the Light strategy (event and snapshot in one append).
#[test]
fn tamper_light_strategy_snapshot_and_tail() {
    let cfg = || {
        JournalConfig::new(STREAM)
            .with_store_id(STORE)
            .strategy(Strategy::Light)
            .compact_on_snapshot(true)
            .keep_snapshots(1)
    };
    let mut h = Harness::<Ledger>::encrypted(cfg(), Ledger::default, ring(), SEED);
    for seq in 1..=5 {
        h.persist(value(seq)).unwrap();
    }
    let store = h.store().clone();
    assert_eq!(open_with(&store, Some(ring()), cfg()).result, Ok(truth(5)));
    // Every bit of the only snapshot, CRC fixed: never a wrong or empty state.
    let original = stream(&store).snapshots[&5].to_vec();
    for at in 0..original.len() - 4 {
        let mut bytes = original.clone();
        bytes[at] ^= 0x10;
        recrc(&mut bytes);
        let mut tampered = store.clone();
        stream_mut(&mut tampered).snapshots.insert(5, bytes.into());
        let result = open_with(&tampered, Some(ring()), cfg()).result;
        assert!(result.is_err(), "byte {at}: recovered {result:?}");
    }
    // The snapshot removed: the events are compacted, so it is an error, not an empty store.
    let mut tampered = store.clone();
    stream_mut(&mut tampered).snapshots.clear();
    assert!(open_with(&tampered, Some(ring()), cfg()).result.is_err());
}

/// Every type that holds key material wipes it on drop.
#[test]
fn tamper_key_holders_zeroize_on_drop() {
    fn wipes_on_drop<T: ZeroizeOnDrop>() {}
    wipes_on_drop::<Key>();
    wipes_on_drop::<KeyRing>();
    wipes_on_drop::<ChaChaRandom>();
    // And never print their bytes.
    assert_eq!(format!("{:?}", key(0xab)), "Key(<redacted>)");
    assert!(!format!("{:?}", ring()).contains("17"));
    assert_eq!(
        format!("{:?}", ChaChaRandom::from_u64(1)),
        "ChaChaRandom(<redacted>)"
    );
}

/// No two records written in a long run share a nonce: every append and snapshot command of many
/// journals (reopened after failures and restarts) is collected.
#[test]
fn tamper_no_nonce_is_ever_reused() {
    let seed = SEED;
    let mut store = MemoryStore::new();
    let mut nonces: HashMap<[u8; NONCE_LEN], (u64, u64)> = HashMap::new();
    let mut written = 0u64;
    let mut state = Ledger::default();
    let keys = ring();
    let config = config(STORE, STREAM)
        .compact_on_snapshot(true)
        .keep_snapshots(2);
    let mut next_value = 0u64;
    for generation in 0..20u64 {
        let mut random_seed = [0u8; 32];
        random_seed[..8].copy_from_slice(&seed.to_le_bytes());
        random_seed[8..16].copy_from_slice(&generation.to_le_bytes());
        let mut journal = Journal::<Ledger>::new(config.clone(), Ledger::default)
            .with_encryption(Arc::clone(&keys), ChaChaRandom::from_seed(random_seed));
        let mut drive = |journal: &mut Journal<Ledger>, state: &mut Ledger, fail_write: bool| {
            let mut failed = false;
            loop {
                while journal.poll_event().is_some() {}
                let Some(command) = journal.poll_command() else {
                    if let Some(deadline) = journal.poll_timeout() {
                        journal.handle_timeout(deadline);
                        continue;
                    }
                    return;
                };
                let records: Vec<Vec<u8>> = match &command {
                    Command::Append {
                        events, snapshot, ..
                    } => events
                        .iter()
                        .chain(snapshot)
                        .map(|r| r.bytes.to_vec())
                        .collect(),
                    Command::SaveSnapshot { snapshot, .. } => vec![snapshot.bytes.to_vec()],
                    _ => Vec::new(),
                };
                for bytes in &records {
                    written += 1;
                    let nonce = seal::nonce_of(bytes).expect("every record is sealed");
                    if let Some(first) = nonces.insert(nonce, (generation, written)) {
                        panic!("nonce reused: record {written} of generation {generation} and {first:?} (seed {seed:#x})");
                    }
                }
                let (id, result) = if fail_write && !failed && command.is_write() {
                    // Written but reported failed: the journal re-reads, and retries write anew.
                    failed = true;
                    let _ = store.execute(STREAM, command.clone());
                    (
                        command.id(),
                        Err(persevere_core::StorageError::Failed("injected".into())),
                    )
                } else {
                    store.execute(STREAM, command)
                };
                journal
                    .handle_completion(Duration::ZERO, id, result, state)
                    .expect("well driven");
            }
        };
        drive(&mut journal, &mut state, false);
        assert_eq!(
            state.entries.len() as u64,
            next_value,
            "generation {generation}"
        );
        for i in 0..60u64 {
            next_value += 1;
            if i % 5 == 0 {
                journal
                    .handle_persist_all([next_value, next_value + 1], &mut state)
                    .unwrap();
                next_value += 1;
            } else {
                journal.handle_persist(next_value, &mut state).unwrap();
            }
            drive(&mut journal, &mut state, i % 17 == 3);
            if i % 13 == 0 {
                journal.handle_snapshot_request(&mut state).unwrap();
                drive(&mut journal, &mut state, false);
            }
        }
    }
    assert!(written > 1500, "only {written} records");
    assert_eq!(nonces.len() as u64, written);
    // And the log written that way recovers.
    let mut h = Harness::<Ledger>::encrypted(config, Ledger::default, keys, seed);
    *h.store_mut() = store;
    assert_eq!(h.restart().unwrap().entries.len() as u64, next_value);
}

/// The testkit's harness with faults runs encrypted too: a failed append that landed is found
/// by re-reading the sealed log, and never applied twice.
#[test]
fn tamper_harness_faults_with_encryption() {
    let mut h = Harness::<Ledger>::encrypted(config(STORE, STREAM), Ledger::default, ring(), SEED);
    h.persist(value(1)).unwrap();
    h.fault_next_write(Fault::FailAfterWrite);
    assert_eq!(h.persist(value(2)).unwrap(), (2, 2));
    h.fault_next_write(Fault::FailBeforeWrite);
    assert!(h.persist(value(3)).is_err());
    assert_eq!(h.persist(value(3)).unwrap(), (3, 3));
    h.fault_next_write(Fault::CrashAfter);
    assert!(matches!(h.persist(value(4)), Err(HarnessError::Crashed)));
    assert_eq!(h.restart().unwrap(), &truth(4));
    let seeded = Harness::<Ledger>::encrypted(config(STORE, STREAM), Ledger::default, ring(), 1);
    let mut seeded = seeded;
    seeded.seed_events((1..=4).map(value)).unwrap();
    assert_eq!(seeded.restart().unwrap(), &truth(4));
    // The Completion type is unchanged for drivers.
    let _ = Completion::Done;
}

/// Random sealed payloads behind a valid header and CRC, at an event and a snapshot position:
/// always an open error (never a panic, never a state).
#[test]
fn tamper_random_sealed_payloads_are_open_errors() {
    use persevere_core::seal::Randomness;
    let (base, _) = fixture();
    let mut random = ChaChaRandom::from_u64(SEED);
    for (kind, seq) in [(RecordKind::Event, EVENTS), (RecordKind::Snapshot, 9)] {
        let store = on_read_path(&base, kind, seq);
        let original = records(stream_mut(&mut store.clone()), kind)[&seq].to_vec();
        for round in 0..300 {
            let mut len = [0u8; 1];
            random.fill_bytes(&mut len);
            let mut payload = vec![0u8; usize::from(len[0]) % 96];
            random.fill_bytes(&mut payload);
            if round % 2 == 0 && payload.len() >= KEY_ID_LEN {
                // Name a key the ring holds, so the tag is what fails.
                payload[..KEY_ID_LEN].copy_from_slice(&2u32.to_le_bytes());
            }
            let mut bytes = original[..HEADER_LEN].to_vec();
            bytes[16..20].copy_from_slice(&(payload.len() as u32).to_le_bytes());
            bytes.extend_from_slice(&payload);
            bytes.extend_from_slice(&[0; 4]);
            recrc(&mut bytes);
            let mut tampered = store.clone();
            records(stream_mut(&mut tampered), kind).insert(seq, bytes.into());
            let opened = open(&tampered);
            assert!(
                matches!(
                    &opened.result,
                    Err(RecoveryError::Open { kind: k, seq: s, source: SealError::Malformed { .. }
                        | SealError::KeyNotFound { .. }
                        | SealError::Authentication { .. } }) if *k == kind && *s == seq
                ),
                "round {round} (seed {SEED:#x}): {:?}",
                opened.result
            );
        }
    }
}
