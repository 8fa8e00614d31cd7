//! Data written by ave-actors-store itself: read from its tables through the same `DbManager`,
//! and migrated into the actor's persevere stream the first time the actor starts.
//!
//! ave-actors-store keeps an actor's store `name` in three tables of its manager, under the
//! prefix given to `start_store` (or the last segment of the actor's path):
//! `{name}_events` (borsh events under zero-padded numbers from 0), `{name}_states` (the borsh
//! pair of the state and the number of events it covers) and `{name}_metadata`; with a key,
//! every value is `nonce (24 bytes) || XChaCha20-Poly1305 ciphertext`.

use borsh::BorshDeserialize;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

use crate::database::journal::{key, parse_key, Batch};
use crate::database::{Collection, DbManager, State, StoreError, EVENTS, SNAPSHOTS};
use crate::error::AdapterError;
use crate::key::SealingKeys;
use crate::store::persistent_actor::PersistentActor;

/// The bytes of ave's nonce.
const NONCE: usize = 24;

/// What ave-actors-store holds for one store: its snapshot (state and the number of events it
/// covers) and its events still in the log, by number.
pub(crate) struct Legacy<A: PersistentActor> {
    pub(crate) tables: String,
    pub(crate) snapshot: Option<(A, u64)>,
    pub(crate) events: Vec<(u64, A::Event)>,
}

impl<A: PersistentActor> std::fmt::Debug for Legacy<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Legacy")
            .field("tables", &self.tables)
            .field("snapshot", &self.snapshot.as_ref().map(|(_, n)| n))
            .field("events", &self.events.len())
            .finish()
    }
}

/// Reads store `name` of ave-actors-store under `prefix` from `manager`: `None` when it holds
/// nothing. Values that cannot be read (wrong key, damage) are an error naming the table.
pub(crate) fn read<A, C, S>(
    manager: &impl DbManager<C, S>,
    name: &str,
    prefix: &str,
    key: Option<&ave_actors_actor::EncryptedKey>,
) -> Result<Option<Legacy<A>>, AdapterError>
where
    A: PersistentActor,
    C: Collection,
    S: State,
{
    let tables =
        format!("{name}_events / {name}_states of ave-actors-store under prefix {prefix:?}");
    let fail = |what: String| AdapterError::Migrate {
        tables: tables.clone(),
        reason: what,
    };
    let key = key
        .map(|key| {
            key.key()
                .map_err(|e| fail(format!("the key cannot be read: {e}")))
        })
        .transpose()?;
    let open = |bytes: Vec<u8>, what: &str| -> Result<Vec<u8>, AdapterError> {
        let Some(key) = &key else {
            return Ok(bytes);
        };
        if bytes.len() < NONCE + 16 {
            return Err(fail(format!("{what} is too short to be encrypted")));
        }
        let (nonce, sealed) = bytes.split_at(NONCE);
        XChaCha20Poly1305::new(key.as_ref().into())
            .decrypt(XNonce::from_slice(nonce), sealed)
            .map_err(|_| fail(format!("{what} does not open with this key")))
    };
    // A manager that refuses to create ave's tables for this name (ave-actors-sqlite accepts
    // only SQL identifiers, and `my-actor_events` is none) never held them: nothing to read.
    let refused = |e: &StoreError| matches!(e, StoreError::CreateStore { .. });
    let events_table = match manager.create_collection(&format!("{name}_events"), prefix) {
        Ok(table) => table,
        Err(e) if refused(&e) => {
            tracing::debug!(%tables, error = %e, "no ave-actors-store tables to migrate");
            return Ok(None);
        }
        Err(e) => return Err(fail(e.to_string())),
    };
    let states_table = manager
        .create_state(&format!("{name}_states"), prefix)
        .map_err(|e| fail(e.to_string()))?;

    let snapshot = match states_table.get() {
        Ok(bytes) => {
            let bytes = open(bytes, "the snapshot")?;
            let pair = <(A, u64)>::try_from_slice(&bytes)
                .map_err(|e| fail(format!("the snapshot does not decode: {e}")))?;
            Some(pair)
        }
        Err(StoreError::EntryNotFound { .. }) => None,
        Err(e) => return Err(fail(e.to_string())),
    };
    let mut events = Vec::new();
    for item in events_table.iter(false).map_err(|e| fail(e.to_string()))? {
        let (number, bytes) = item.map_err(|e| fail(e.to_string()))?;
        let number: u64 = number
            .parse()
            .map_err(|_| fail(format!("event key {number:?} is not a number")))?;
        let bytes = open(bytes, &format!("event {number}"))?;
        let event = A::Event::try_from_slice(&bytes)
            .map_err(|e| fail(format!("event {number} does not decode: {e}")))?;
        events.push((number, event));
    }
    if snapshot.is_none() && events.is_empty() {
        return Ok(None);
    }
    Ok(Some(Legacy {
        tables,
        snapshot,
        events,
    }))
}

/// How the migration writes ave's data into the actor's stream.
pub(crate) enum Plan<A: PersistentActor> {
    /// Every event from number 0 is there: they become seqs 1.. (the log kept whole).
    Replay(Vec<A::Event>),
    /// Events were compacted away: the snapshot (covering that many events) is written at the
    /// seq of the last event it covers, and the events after it follow.
    Snapshot(A, u64, Vec<A::Event>),
}

impl<A: PersistentActor> Legacy<A> {
    /// The plan that recovers exactly the state ave-actors-store would: its snapshot plus the
    /// events after it; or, when every event from 0 is still there and replaying them gives
    /// that same state (compared by its borsh encoding), the whole log.
    pub(crate) fn plan(self, base: &A) -> Result<Plan<A>, AdapterError> {
        let fail = |reason: String| AdapterError::Migrate {
            tables: self.tables.clone(),
            reason,
        };
        let contiguous_from = |start: u64| {
            self.events
                .iter()
                .zip(start..)
                .all(|((number, _), expected)| *number == expected)
        };
        let whole = self.events.first().is_some_and(|(n, _)| *n == 0) && contiguous_from(0);
        match &self.snapshot {
            None if whole => Ok(Plan::Replay(self.events.into_iter().map(|(_, e)| e).collect())),
            None => Err(fail(format!(
                "no snapshot and the events do not start at 0 or have gaps (first {:?}): refusing to guess a state",
                self.events.first().map(|(n, _)| n)
            ))),
            Some((snapshot, covered)) => {
                let covered = *covered;
                let after: Vec<_> = self
                    .events
                    .iter()
                    .filter(|(n, _)| *n >= covered)
                    .collect();
                let tail_ok = after
                    .iter()
                    .zip(covered..)
                    .all(|((number, _), expected)| *number == expected);
                if !tail_ok {
                    return Err(fail(format!(
                        "the events after the snapshot (which covers {covered}) have a gap"
                    )));
                }
                if whole {
                    let mut replayed = base.clone();
                    let mut matches = true;
                    for (_, event) in self.events.iter().filter(|(n, _)| *n < covered) {
                        if replayed.apply(event).is_err() {
                            matches = false;
                            break;
                        }
                    }
                    let encode = |a: &A| borsh::to_vec(a).ok();
                    if matches && encode(&replayed).is_some() && encode(&replayed) == encode(snapshot)
                    {
                        return Ok(Plan::Replay(
                            self.events.into_iter().map(|(_, e)| e).collect(),
                        ));
                    }
                }
                let tail = after.into_iter().map(|(_, e)| e.clone()).collect();
                Ok(Plan::Snapshot(snapshot.clone(), covered, tail))
            }
        }
    }
}

/// Whether ave-actors-store's tables must be read for `stream`: only while the stream holds
/// no event of its own (empty, or ending with an entry without events: a migration's
/// snapshot, or everything compacted), so a migrated actor's starts do not read them again.
pub(crate) fn needs_reading<M, C, S>(manager: &M, stream: &str) -> Result<bool, AdapterError>
where
    M: DbManager<C, S>,
    C: Collection,
    S: State,
{
    let fail = |reason: String| AdapterError::Migrate {
        tables: format!("the stream {stream:?}"),
        reason,
    };
    let events = manager
        .create_collection(EVENTS, stream)
        .map_err(|e| fail(e.to_string()))?;
    Ok(match events.last().map_err(|e| fail(e.to_string()))? {
        None => true,
        Some((_, bytes)) => bytes == Batch::default().encode(),
    })
}

/// Prepares the actor's stream (on `manager`, through a [`DbStore`](crate::database::DbStore))
/// for the migration of `plan`, and returns the events to persist once it is open (none when
/// the migration is complete or the stream is already the actor's own).
///
/// The stream's head says how far a migration got: 0, nothing written; for a snapshot plan,
/// the snapshot's seq, the snapshot written but not the events after it (one append, so all or
/// none); the plan's last seq, done. Any other head is an actor that went on after it.
///
/// A snapshot plan writes the snapshot record at the seq of the last event it covers and an
/// empty append entry there (the snapshot first: it stays invisible until the entry lands), so
/// the stream is what compaction would have left of the same log.
pub(crate) fn prepare<A, M, C, S>(
    manager: &M,
    stream: &str,
    store_id: &str,
    keys: Option<&SealingKeys>,
    plan: Plan<A>,
) -> Result<Vec<A::Event>, AdapterError>
where
    A: PersistentActor,
    M: DbManager<C, S>,
    C: Collection,
    S: State,
{
    let fail = |reason: String| AdapterError::Migrate {
        tables: format!("ave-actors-store's tables of {stream:?}"),
        reason,
    };
    let mut events_table = manager
        .create_collection(EVENTS, stream)
        .map_err(|e| fail(e.to_string()))?;
    let head = match events_table.last().map_err(|e| fail(e.to_string()))? {
        Some((k, _)) => parse_key(&k).map_err(|e| fail(e.to_string()))?,
        None => 0,
    };
    match plan {
        Plan::Replay(events) => Ok(if head == 0 { events } else { Vec::new() }),
        Plan::Snapshot(state, covered, tail) => {
            let done = covered + tail.len() as u64;
            if head == done || (head != 0 && head != covered) {
                return Ok(Vec::new());
            }
            if head == 0 {
                let payload = borsh::to_vec(&state)
                    .map_err(|e| fail(format!("the snapshot does not encode: {e}")))?;
                let codec = <persevere_core::Borsh as persevere_core::Codec<A>>::ID;
                let header = persevere_core::record::RecordHeader {
                    kind: persevere_core::record::RecordKind::Snapshot,
                    codec,
                    type_version: A::SNAPSHOT_VERSION,
                    seq: covered,
                };
                let record = match keys {
                    None => persevere_core::record::encode(header, &payload),
                    Some(keys) => {
                        let mut random =
                            persevere_driver::os_random().map_err(|e| fail(e.to_string()))?;
                        let at = persevere_core::seal::Binding {
                            store: store_id,
                            stream,
                            kind: header.kind,
                            codec,
                            seq: covered,
                        };
                        persevere_core::seal::seal_payload(
                            keys.ring(),
                            &mut random,
                            &at,
                            A::SNAPSHOT_VERSION,
                            &[0; persevere_core::seal::CHAIN_LEN],
                            &payload,
                        )
                        .map_err(|e| fail(format!("sealing the snapshot: {e}")))?
                    }
                };
                let mut snapshots = manager
                    .create_collection(SNAPSHOTS, stream)
                    .map_err(|e| fail(e.to_string()))?;
                snapshots
                    .put(&key(covered), &record)
                    .map_err(|e| fail(e.to_string()))?;
                events_table
                    .put(&key(covered), &Batch::default().encode())
                    .map_err(|e| fail(e.to_string()))?;
            }
            Ok(tail)
        }
    }
}
