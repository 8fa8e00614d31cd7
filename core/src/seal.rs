//! Encryption at rest: every record sealed with XChaCha20-Poly1305 and bound to its store,
//! stream, position and key.
//!
//! A journal given a [`KeyRing`] and a [`Randomness`] source (see
//! [`Journal::with_encryption`](crate::Journal::with_encryption)) seals every record it writes —
//! events and snapshots — and refuses to read any record that is not sealed.
//!
//! # Sealed record layout
//!
//! A sealed record is a normal [`crate::record`] envelope whose flags byte is
//! [`FLAG_SEALED`] and whose payload is:
//!
//! | size | field |
//! |---|---|
//! | 4 | key id (little-endian `u32`) |
//! | 24 | nonce: 192 random bits, fresh for every record |
//! | 16 | chain value (snapshots only, see below) |
//! | `n` | ciphertext of the codec's payload |
//! | 16 | Poly1305 tag |
//!
//! The header (format version, kind, codec, flags, type version, seq, length) stays in clear,
//! and the CRC-32 still covers the whole record, so accidental damage is told apart from
//! tampering: damage is [`RecordError::Checksum`](crate::record::RecordError::Checksum), a change
//! made by someone who recomputed the CRC is [`SealError::Authentication`].
//!
//! # Associated data
//!
//! The reader builds the associated data from what it *expects* — never from the record's own
//! header — so a record copied from elsewhere fails authentication:
//!
//! | field | from |
//! |---|---|
//! | format version, flags | the reader's format version; the sealed flag |
//! | kind | the kind the reader asked for (event or snapshot) |
//! | codec | the journal's codec |
//! | seq | the seq the storage filed the record under |
//! | store id | [`JournalConfig::store_id`](crate::JournalConfig::store_id) |
//! | stream id | [`JournalConfig::stream`](crate::JournalConfig::stream) |
//! | chain | for an event, the tag of the event before it (zero before the first); for a snapshot, the chain value it stores |
//! | key id, type version | the record (authenticated: changing either fails) |
//!
//! # The chain and the head commitment
//!
//! Each event's associated data holds the tag of the event before it, so the tag of the last
//! event commits to the whole log up to it; a snapshot stores (authenticated) the tag of the
//! event it covers, so replay after a snapshot continues the chain even when the events before
//! it were compacted. [`Journal::head_commitment`](crate::Journal::head_commitment) exposes the
//! last seq and that tag as a [`HeadCommitment`].
//!
//! # What per-record AEAD detects, and what it cannot
//!
//! Detected (a typed error, never a wrong state):
//! - any change to a sealed record's bytes (CRC, or authentication if the CRC was recomputed);
//! - a record moved to another position, another stream or another store, or filed as the
//!   other kind; a duplicated or reordered event (its position or chain does not match);
//! - a record sealed with a key the ring lacks ([`SealError::KeyNotFound`]), opened with a
//!   wrong key or with a changed key id ([`SealError::Authentication`]);
//! - a plaintext record slipped into an encrypted journal ([`SealError::NotSealed`]);
//! - events missing at the tail, while the storage still reports the old head
//!   ([`RecoveryError::MissingTail`](crate::RecoveryError::MissingTail)), or below a snapshot,
//!   whose seq is authenticated
//!   ([`RecoveryError::SnapshotBeyondHead`](crate::RecoveryError::SnapshotBeyondHead)).
//!
//! Not detectable from the store alone:
//! - **rollback of the whole stream (or store) to an older copy**, or truncation of the tail
//!   together with the head the storage reports: every remaining record is genuine, so
//!   recovery yields the older state. Keep a [`HeadCommitment`] elsewhere (after each
//!   [`JournalEvent::Persisted`](crate::JournalEvent::Persisted)) and give it to
//!   [`Journal::expect_head`](crate::Journal::expect_head) on open: a mismatch is
//!   [`RecoveryError::HeadMismatch`](crate::RecoveryError::HeadMismatch);
//! - a fork: a record that was once validly sealed at a position and later replaced there (say,
//!   after the log was truncated and written again) still opens at that position, with
//!   everything sealed after it in its own branch; only the head commitment tells the branches
//!   apart;
//! - removal of the newest snapshot (when the events it covers are still present): recovery
//!   falls back to an older snapshot and replays, which yields the same, correct state;
//! - the length of payloads and the headers' type versions and seqs, which are in clear;
//! - records recovery does not read: events and snapshots below the snapshot it starts from are
//!   only checked when something reads them (a fallback, a full replay).
//!
//! A snapshot whose *envelope* is damaged or misfiled (checksum, length, format, kind, codec or
//! seq not as expected) is skipped as any unreadable snapshot is
//! ([`JournalEvent::SnapshotSkipped`](crate::JournalEvent::SnapshotSkipped)): recovery falls
//! back to an older snapshot or a full replay and reaches the true state, or fails with
//! [`RecoveryError::SnapshotUnrecoverable`](crate::RecoveryError::SnapshotUnrecoverable) if the
//! events it covers were compacted. A snapshot that does not *open* (every
//! [`SealError`]) stops recovery at once: that is a wrong key or a deliberate change, never
//! damage (damage fails the CRC first).
//!
//! # Keys and nonces
//!
//! Nonces come only from the journal's [`Randomness`] input and are never derived from the seq
//! (a rewritten position would reuse one). With 192-bit random nonces, a key can seal far more
//! records than any store holds before a collision becomes plausible. Each key's cipher is set
//! up once, when it enters the [`KeyRing`]; [`Key`], [`KeyRing`] and [`ChaChaRandom`] wipe their
//! secrets on drop ([`ZeroizeOnDrop`]) and never print them.
//!
//! # Cost, and the fast Poly1305 path
//!
//! Sealing a 64-byte event adds about 2 µs to a persist in a default release build on x86-64,
//! and about 0.7–0.9 µs with either of these builds (1 KiB: about 3 µs, 1.2 µs with AVX2):
//!
//! ```text
//! # CPUs with AVX2 only: the AVX2 Poly1305 backend, inlined
//! RUSTFLAGS="-C target-feature=+avx2" cargo build --release
//! # any CPU: the portable Poly1305 backend, faster than the detected AVX2 one for short records
//! RUSTFLAGS='--cfg poly1305_backend="soft"' cargo build --release
//! ```
//!
//! By default `poly1305` detects AVX2 at run time and takes its AVX2 backend without inlining
//! it, whose set-up dominates short records. `-C target-feature=+avx2` (or `-C
//! target-cpu=native`) inlines it but makes a binary that needs AVX2; the `soft` backend is
//! portable and best for small events, slower than AVX2 above about 1 KiB. The benchmark
//! `cargo bench -p persevere-core --bench seal` measures both.

use std::collections::BTreeMap;
use std::fmt;

use chacha20::cipher::{KeyIvInit, StreamCipher};
use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use thiserror::Error;
use zeroize::Zeroize;
pub use zeroize::ZeroizeOnDrop;

use crate::codec::CodecError;
use crate::record::{self, RecordKind, FLAG_SEALED, FORMAT_VERSION};

/// Bytes of a key.
pub const KEY_LEN: usize = 32;
/// Bytes of a nonce (192 bits).
pub const NONCE_LEN: usize = 24;
/// Bytes of an authentication tag.
pub const TAG_LEN: usize = 16;
/// Bytes of a key id.
pub const KEY_ID_LEN: usize = 4;
/// Bytes of a chain value (the tag of an event).
pub const CHAIN_LEN: usize = TAG_LEN;

/// A chain value: the tag of the event a position follows (all zero before the first event).
pub type Chain = [u8; CHAIN_LEN];

/// A source of random bytes for nonces: the journal's only randomness input.
///
/// The core never reads OS randomness. Adapters give each journal a cryptographically secure
/// generator seeded from the OS (for instance [`ChaChaRandom`] seeded with 32 bytes from the
/// OS); tests give one with a fixed seed.
pub trait Randomness: Send {
    /// Fills `dest` with random bytes.
    fn fill_bytes(&mut self, dest: &mut [u8]);
}

impl<R: Randomness + ?Sized> Randomness for Box<R> {
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        (**self).fill_bytes(dest);
    }
}

/// A ChaCha20 keystream generator: a CSPRNG when its seed is secret and random (seed it with 32
/// bytes from the OS), a reproducible generator when the seed is fixed (tests).
///
/// It re-keys itself from its own output every GiB, so it never exhausts its counter. Its state
/// is wiped on drop.
///
/// ```
/// use persevere_core::seal::{ChaChaRandom, Randomness};
/// let mut a = ChaChaRandom::from_seed([7; 32]);
/// let mut b = ChaChaRandom::from_seed([7; 32]);
/// let (mut x, mut y) = ([0u8; 24], [0u8; 24]);
/// a.fill_bytes(&mut x);
/// b.fill_bytes(&mut y);
/// assert_eq!(x, y);
/// a.fill_bytes(&mut x);
/// assert_ne!(x, y);
/// ```
pub struct ChaChaRandom {
    cipher: chacha20::ChaCha20,
    used: u64,
}

const RANDOM_REKEY_BYTES: u64 = 1 << 30;

impl ChaChaRandom {
    /// A generator whose whole output is determined by `seed`.
    pub fn from_seed(mut seed: [u8; 32]) -> Self {
        let cipher = chacha20::ChaCha20::new(&seed.into(), &[0u8; 12].into());
        seed.zeroize();
        Self { cipher, used: 0 }
    }

    /// A reproducible generator from a small seed, for tests. Not secret: never use it to seal
    /// real data.
    pub fn from_u64(seed: u64) -> Self {
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&seed.to_le_bytes());
        bytes[8..16].copy_from_slice(b"persevre");
        Self::from_seed(bytes)
    }

    fn keystream(&mut self, dest: &mut [u8]) {
        dest.fill(0);
        // The counter cannot run out: the generator re-keys long before 256 GiB.
        let _ = self.cipher.try_apply_keystream(dest);
        self.used += dest.len() as u64;
    }
}

impl Randomness for ChaChaRandom {
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(1 << 16) {
            if self.used >= RANDOM_REKEY_BYTES {
                let mut seed = [0u8; 32];
                self.keystream(&mut seed);
                *self = Self::from_seed(seed);
            }
            self.keystream(chunk);
        }
    }
}

impl ZeroizeOnDrop for ChaChaRandom {}

impl fmt::Debug for ChaChaRandom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ChaChaRandom(<redacted>)")
    }
}

/// The id of a key, stored in every record it seals, so a ring can hold old keys for reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId(pub u32);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "key {}", self.0)
    }
}

/// A 256-bit XChaCha20-Poly1305 key. Wiped on drop; its `Debug` never shows the bytes.
///
/// ```
/// use persevere_core::seal::Key;
/// let key = Key::from_bytes([1; 32]);
/// assert_eq!(format!("{key:?}"), "Key(<redacted>)");
/// assert!(Key::from_slice(&[0; 31]).is_err());
/// ```
pub struct Key([u8; KEY_LEN]);

impl Key {
    /// A key from its bytes.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// A key from a slice of exactly [`KEY_LEN`] bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, SealError> {
        let array: [u8; KEY_LEN] = bytes
            .try_into()
            .map_err(|_| SealError::KeyLength { len: bytes.len() })?;
        Ok(Self(array))
    }

    /// A fresh key from `random`.
    pub fn generate(random: &mut dyn Randomness) -> Self {
        let mut key = Self([0; KEY_LEN]);
        random.fill_bytes(&mut key.0);
        key
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl ZeroizeOnDrop for Key {}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(<redacted>)")
    }
}

/// The keys a journal seals and opens records with: one primary key for new records, and older
/// keys still accepted for reading (rotation).
///
/// Each key's cipher is set up once, when it enters the ring, not per record. Share one ring
/// between journals with an `Arc`. Every key is wiped when the ring is dropped.
///
/// ```
/// use persevere_core::seal::{Key, KeyId, KeyRing};
/// let mut ring = KeyRing::new(KeyId(1), Key::from_bytes([1; 32]));
/// // Rotation: a new primary key; records sealed with key 1 stay readable.
/// ring.insert(KeyId(2), Key::from_bytes([2; 32])).unwrap();
/// ring.set_primary(KeyId(2)).unwrap();
/// assert_eq!(ring.primary(), KeyId(2));
/// assert!(ring.contains(KeyId(1)));
/// assert_eq!(format!("{ring:?}"), "KeyRing { primary: KeyId(2), keys: [KeyId(1), KeyId(2)] }");
/// ```
pub struct KeyRing {
    primary: KeyId,
    ciphers: BTreeMap<KeyId, XChaCha20Poly1305>,
}

impl KeyRing {
    /// A ring holding `key` under `id`, as the primary key.
    pub fn new(id: KeyId, key: Key) -> Self {
        let mut ciphers = BTreeMap::new();
        ciphers.insert(id, XChaCha20Poly1305::new(&key.0.into()));
        Self {
            primary: id,
            ciphers,
        }
    }

    /// Adds a key for reading (and for writing once made primary). An id already present is
    /// refused: a key id names one key forever.
    pub fn insert(&mut self, id: KeyId, key: Key) -> Result<(), SealError> {
        if self.ciphers.contains_key(&id) {
            return Err(SealError::DuplicateKey { key_id: id });
        }
        self.ciphers
            .insert(id, XChaCha20Poly1305::new(&key.0.into()));
        Ok(())
    }

    /// Makes `id` the key new records are sealed with.
    pub fn set_primary(&mut self, id: KeyId) -> Result<(), SealError> {
        if !self.ciphers.contains_key(&id) {
            return Err(SealError::KeyNotFound { key_id: id });
        }
        self.primary = id;
        Ok(())
    }

    /// The id of the key new records are sealed with.
    pub fn primary(&self) -> KeyId {
        self.primary
    }

    /// Whether the ring holds key `id`.
    pub fn contains(&self, id: KeyId) -> bool {
        self.ciphers.contains_key(&id)
    }

    /// The ids of every key in the ring, in increasing order.
    pub fn key_ids(&self) -> impl Iterator<Item = KeyId> + '_ {
        self.ciphers.keys().copied()
    }

    fn primary_cipher(&self) -> (KeyId, &XChaCha20Poly1305) {
        let cipher = self
            .ciphers
            .get(&self.primary)
            // `primary` is only ever set to an id present in the map, and keys are never removed.
            .unwrap_or_else(|| unreachable!("the primary key is always in the ring"));
        (self.primary, cipher)
    }
}

// Every key in the ring lives in a cipher that wipes it on drop.
impl ZeroizeOnDrop for KeyRing {}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("primary", &self.primary)
            .field("keys", &self.ciphers.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// What an application keeps outside the store to detect a rollback of the whole stream: the
/// last seq and the tag of the last event, which (through the chain) commits to every event
/// before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HeadCommitment {
    /// The last durable seq.
    pub seq: u64,
    /// The chain value at `seq` (all zero for an empty stream).
    pub chain: Chain,
}

impl HeadCommitment {
    /// Bytes of [`to_bytes`](Self::to_bytes).
    pub const LEN: usize = 8 + CHAIN_LEN;

    /// A fixed-size encoding, to store anywhere.
    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let mut out = [0; Self::LEN];
        out[..8].copy_from_slice(&self.seq.to_le_bytes());
        out[8..].copy_from_slice(&self.chain);
        out
    }

    /// Reads [`to_bytes`](Self::to_bytes) back.
    pub fn from_bytes(bytes: &[u8; Self::LEN]) -> Self {
        let mut seq = [0; 8];
        seq.copy_from_slice(&bytes[..8]);
        let mut chain = [0; CHAIN_LEN];
        chain.copy_from_slice(&bytes[8..]);
        Self {
            seq: u64::from_le_bytes(seq),
            chain,
        }
    }
}

/// Why a record could not be sealed or opened, or a key ring refused a change.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SealError {
    /// The record was sealed with a key the ring does not hold.
    #[error("the record is sealed with {key_id}, which the key ring does not hold")]
    KeyNotFound {
        /// The key id the record names.
        key_id: KeyId,
    },
    /// The record does not authenticate under the key it names, at the position, stream and
    /// store it was read from: a wrong key, or a record changed, moved or replayed.
    #[error("the record does not authenticate with {key_id} at this position")]
    Authentication {
        /// The key id the record names.
        key_id: KeyId,
    },
    /// The sealed payload is shorter than its fixed fields.
    #[error("sealed payload of {len} bytes is shorter than its fixed fields")]
    Malformed {
        /// The payload length.
        len: usize,
    },
    /// A plaintext record where the journal only accepts sealed ones.
    #[error("the record is not sealed, and this journal reads sealed records only")]
    NotSealed,
    /// A sealed record read by a journal that has no keys.
    #[error("the record is sealed and this journal has no keys")]
    NoKeys,
    /// A key of the wrong length.
    #[error("a key has {KEY_LEN} bytes, not {len}")]
    KeyLength {
        /// The length given.
        len: usize,
    },
    /// A key id already in the ring.
    #[error("{key_id} is already in the key ring")]
    DuplicateKey {
        /// The id.
        key_id: KeyId,
    },
    /// The cipher refused to seal (the payload is too long).
    #[error("sealing failed: the payload is too long")]
    TooLong,
}

/// Where a record belongs: what the associated data binds (besides the key id, the type
/// version and the chain value). A reader fills it from what it expects to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Binding<'a> {
    /// The store id ([`JournalConfig::store_id`](crate::JournalConfig::store_id)).
    pub store: &'a str,
    /// The stream id.
    pub stream: &'a str,
    /// The record kind.
    pub kind: RecordKind,
    /// The codec id of the payload.
    pub codec: u8,
    /// The seq the record is filed under.
    pub seq: u64,
}

fn associated_data(
    out: &mut Vec<u8>,
    at: &Binding<'_>,
    type_version: u32,
    key_id: KeyId,
    chain: &Chain,
) {
    out.clear();
    out.extend_from_slice(b"persevere/seal");
    out.extend_from_slice(&[FORMAT_VERSION, at.kind.to_byte(), at.codec, FLAG_SEALED]);
    out.extend_from_slice(&type_version.to_le_bytes());
    out.extend_from_slice(&at.seq.to_le_bytes());
    out.extend_from_slice(&key_id.0.to_le_bytes());
    out.extend_from_slice(chain);
    for text in [at.store, at.stream] {
        out.extend_from_slice(&(text.len() as u64).to_le_bytes());
        out.extend_from_slice(text.as_bytes());
    }
}

/// What sealing a record produced.
pub(crate) struct Sealed {
    pub(crate) bytes: Vec<u8>,
    pub(crate) checksum: u32,
    pub(crate) tag: Chain,
}

/// Seals the payload `encode` produces into a new record at `at`. `chain` is the previous
/// event's tag (events) or the chain value to store (snapshots).
pub(crate) fn seal(
    keys: &KeyRing,
    random: &mut dyn Randomness,
    at: &Binding<'_>,
    type_version: u32,
    chain: &Chain,
    encode: impl FnOnce(&mut Vec<u8>) -> Result<(), CodecError>,
) -> Result<Sealed, CodecError> {
    let (key_id, cipher) = keys.primary_cipher();
    let mut nonce = [0u8; NONCE_LEN];
    random.fill_bytes(&mut nonce);
    let mut ad = Vec::with_capacity(96 + at.store.len() + at.stream.len());
    associated_data(&mut ad, at, type_version, key_id, chain);
    let mut tag = [0u8; TAG_LEN];
    let mut bytes = Vec::with_capacity(128);
    let checksum = record::encode_with(
        at.kind,
        at.codec,
        FLAG_SEALED,
        type_version,
        at.seq,
        &mut bytes,
        |out| {
            out.extend_from_slice(&key_id.0.to_le_bytes());
            out.extend_from_slice(&nonce);
            if at.kind == RecordKind::Snapshot {
                out.extend_from_slice(chain);
            }
            let start = out.len();
            encode(out)?;
            let sealed = cipher
                .encrypt_inout_detached(&XNonce::from(nonce), &ad, (&mut out[start..]).into())
                .map_err(|_| CodecError::new(SealError::TooLong))?;
            tag.copy_from_slice(&sealed);
            out.extend_from_slice(&tag);
            Ok(())
        },
    )?;
    Ok(Sealed {
        bytes,
        checksum,
        tag,
    })
}

/// Seals `payload` (already in the codec's encoding) into a complete record at `at`, with the
/// ring's primary key and a fresh nonce from `random`. `chain` is the tag of the event before
/// (events) or the chain value to store (snapshots). Journals do this themselves; this is for
/// tools and measurements.
///
/// ```
/// use persevere_core::record::{self, RecordKind};
/// use persevere_core::seal::{self, Binding, ChaChaRandom, Key, KeyId, KeyRing};
/// let keys = KeyRing::new(KeyId(1), Key::from_bytes([1; 32]));
/// let mut random = ChaChaRandom::from_u64(1);
/// let at = Binding { store: "s", stream: "a", kind: RecordKind::Event, codec: 1, seq: 1 };
/// let bytes = seal::seal_payload(&keys, &mut random, &at, 1, &[0; 16], b"event").unwrap();
/// let rec = record::decode(&bytes).unwrap();
/// let opened = seal::open_payload(&keys, &at, 1, &[0; 16], rec.payload).unwrap();
/// assert_eq!(opened.plaintext, b"event");
/// let elsewhere = Binding { seq: 2, ..at };
/// assert!(seal::open_payload(&keys, &elsewhere, 1, &[0; 16], rec.payload).is_err());
/// ```
pub fn seal_payload(
    keys: &KeyRing,
    random: &mut dyn Randomness,
    at: &Binding<'_>,
    type_version: u32,
    chain: &Chain,
    payload: &[u8],
) -> Result<Vec<u8>, SealError> {
    seal(keys, random, at, type_version, chain, |out| {
        out.extend_from_slice(payload);
        Ok(())
    })
    .map(|sealed| sealed.bytes)
    .map_err(|_| SealError::TooLong)
}

/// An opened record.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Opened {
    /// The payload, in the codec's encoding.
    pub plaintext: Vec<u8>,
    /// The record's authentication tag (an event's tag is the chain value after it).
    pub tag: Chain,
    /// The chain value the record was bound to: the expected one for an event, the stored
    /// (and authenticated) one for a snapshot.
    pub chain: Chain,
}

/// Opens the sealed `payload` of a record (see [`record::decode`]) read at `at` with header
/// type version `type_version`. `chain` is the expected chain value (events; ignored for
/// snapshots, whose chain value is stored in the record and authenticated).
pub fn open_payload(
    keys: &KeyRing,
    at: &Binding<'_>,
    type_version: u32,
    chain: &Chain,
    payload: &[u8],
) -> Result<Opened, SealError> {
    let stored_chain = at.kind == RecordKind::Snapshot;
    let fixed = KEY_ID_LEN + NONCE_LEN + if stored_chain { CHAIN_LEN } else { 0 } + TAG_LEN;
    if payload.len() < fixed {
        return Err(SealError::Malformed { len: payload.len() });
    }
    let (id_bytes, rest) = payload.split_at(KEY_ID_LEN);
    let mut word = [0u8; KEY_ID_LEN];
    word.copy_from_slice(id_bytes);
    let key_id = KeyId(u32::from_le_bytes(word));
    let (nonce, rest) = rest.split_at(NONCE_LEN);
    let (chain, rest) = if stored_chain {
        let (stored, rest) = rest.split_at(CHAIN_LEN);
        let mut value = [0u8; CHAIN_LEN];
        value.copy_from_slice(stored);
        (value, rest)
    } else {
        (*chain, rest)
    };
    let (ciphertext, tag_bytes) = rest.split_at(rest.len() - TAG_LEN);
    let cipher = keys
        .ciphers
        .get(&key_id)
        .ok_or(SealError::KeyNotFound { key_id })?;
    let mut ad = Vec::with_capacity(96 + at.store.len() + at.stream.len());
    associated_data(&mut ad, at, type_version, key_id, &chain);
    let mut tag = [0u8; TAG_LEN];
    tag.copy_from_slice(tag_bytes);
    let mut nonce_array = [0u8; NONCE_LEN];
    nonce_array.copy_from_slice(nonce);
    let mut plaintext = ciphertext.to_vec();
    cipher
        .decrypt_inout_detached(
            &XNonce::from(nonce_array),
            &ad,
            plaintext.as_mut_slice().into(),
            &tag.into(),
        )
        .map_err(|_| SealError::Authentication { key_id })?;
    Ok(Opened {
        plaintext,
        tag,
        chain,
    })
}

/// The nonce of a sealed record, for tests and audits; `None` if `bytes` is not a sealed record.
///
/// ```
/// use persevere_core::seal::nonce_of;
/// assert_eq!(nonce_of(b"not a record"), None);
/// ```
pub fn nonce_of(bytes: &[u8]) -> Option<[u8; NONCE_LEN]> {
    let rec = record::decode(bytes).ok()?;
    if !rec.sealed {
        return None;
    }
    let nonce = rec.payload.get(KEY_ID_LEN..KEY_ID_LEN + NONCE_LEN)?;
    let mut out = [0u8; NONCE_LEN];
    out.copy_from_slice(nonce);
    Some(out)
}

/// The Poly1305 tag a sealed record's `payload` ends with (its last [`TAG_LEN`] bytes), read
/// without opening it; `None` if the payload is too short to hold one. An event's tag is the
/// chain value after it, so it identifies the event and, through the chain, every event
/// before it.
pub(crate) fn stored_tag(payload: &[u8]) -> Option<Chain> {
    let at = payload
        .len()
        .checked_sub(KEY_ID_LEN + NONCE_LEN + TAG_LEN)?
        + KEY_ID_LEN
        + NONCE_LEN;
    payload.get(at..)?.try_into().ok()
}

/// The key id a sealed record names; `None` if `bytes` is not a sealed record.
pub fn key_id_of(bytes: &[u8]) -> Option<KeyId> {
    let rec = record::decode(bytes).ok()?;
    if !rec.sealed {
        return None;
    }
    let id = rec.payload.get(..KEY_ID_LEN)?;
    let mut word = [0u8; KEY_ID_LEN];
    word.copy_from_slice(id);
    Some(KeyId(u32::from_le_bytes(word)))
}

/// The encryption a journal uses: its keys and its nonce source.
pub(crate) struct Encryption {
    pub(crate) keys: std::sync::Arc<KeyRing>,
    pub(crate) random: Box<dyn Randomness>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ring() -> KeyRing {
        KeyRing::new(KeyId(3), Key::from_bytes([9; 32]))
    }

    fn at(seq: u64) -> Binding<'static> {
        Binding {
            store: "s",
            stream: "a",
            kind: RecordKind::Event,
            codec: 1,
            seq,
        }
    }

    fn sealed(seq: u64) -> Sealed {
        let mut random = ChaChaRandom::from_u64(1);
        let chain = [0; CHAIN_LEN];
        seal(&ring(), &mut random, &at(seq), 1, &chain, |out| {
            out.extend_from_slice(b"hello");
            Ok(())
        })
        .unwrap()
    }

    #[test]
    fn round_trip() {
        let s = sealed(4);
        let rec = record::decode(&s.bytes).unwrap();
        assert!(rec.sealed);
        let opened = open_payload(&ring(), &at(4), 1, &[0; CHAIN_LEN], rec.payload).unwrap();
        assert_eq!(opened.plaintext, b"hello");
        assert_eq!(opened.tag, s.tag);
        assert_eq!(nonce_of(&s.bytes).map(|n| n.len()), Some(NONCE_LEN));
        assert_eq!(key_id_of(&s.bytes), Some(KeyId(3)));
    }

    #[test]
    fn other_position_fails() {
        let s = sealed(4);
        let rec = record::decode(&s.bytes).unwrap();
        assert_eq!(
            open_payload(&ring(), &at(5), 1, &[0; CHAIN_LEN], rec.payload).unwrap_err(),
            SealError::Authentication { key_id: KeyId(3) }
        );
    }

    #[test]
    fn random_rekeys_before_its_counter_runs_out() {
        let mut a = ChaChaRandom::from_u64(5);
        let mut b = ChaChaRandom::from_u64(5);
        a.used = RANDOM_REKEY_BYTES;
        b.used = RANDOM_REKEY_BYTES - 1;
        let (mut x, mut y) = ([0u8; 64], [0u8; 64]);
        a.fill_bytes(&mut x);
        b.fill_bytes(&mut y);
        // `a` re-keyed from its keystream; `b` went on with the original key.
        assert_ne!(x, y);
        assert_eq!(a.used, 64);
        let mut again = ChaChaRandom::from_u64(5);
        again.used = RANDOM_REKEY_BYTES;
        let mut z = [0u8; 64];
        again.fill_bytes(&mut z);
        assert_eq!(x, z, "re-keying is deterministic");
    }

    #[test]
    fn generated_keys_differ_and_ring_refuses_duplicates() {
        let mut random = ChaChaRandom::from_u64(9);
        let mut ring = KeyRing::new(KeyId(1), Key::generate(&mut random));
        assert_eq!(
            ring.insert(KeyId(1), Key::generate(&mut random)),
            Err(SealError::DuplicateKey { key_id: KeyId(1) })
        );
        assert_eq!(
            ring.set_primary(KeyId(4)),
            Err(SealError::KeyNotFound { key_id: KeyId(4) })
        );
        assert_eq!(ring.key_ids().collect::<Vec<_>>(), vec![KeyId(1)]);
    }

    #[test]
    fn short_payloads_are_malformed_not_panics() {
        for len in 0..KEY_ID_LEN + NONCE_LEN + TAG_LEN {
            let payload = vec![0u8; len];
            assert_eq!(
                open_payload(&ring(), &at(1), 1, &[0; CHAIN_LEN], &payload).unwrap_err(),
                SealError::Malformed { len }
            );
        }
    }
}
