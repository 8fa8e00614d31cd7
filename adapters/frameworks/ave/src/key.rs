//! The keys that seal a store's records: [`SealingKeys`], built from ave's
//! [`EncryptedKey`](ave_actors_actor::EncryptedKey) (what `start_store` takes, as in
//! ave-actors-store) or from a persevere key ring (key rotation).

use std::sync::Arc;

use persevere_core::seal::{Key, KeyId, KeyRing};

use crate::error::AdapterError;

/// The key that seals every event and snapshot of a store at rest (XChaCha20-Poly1305, a
/// fresh random nonce per record, bound to the store, stream, position and key id — see
/// [`persevere_core::seal`]). Key material is wiped on drop.
///
/// `start_store` takes ave's own [`EncryptedKey`](ave_actors_actor::EncryptedKey) (key material
/// held encrypted in memory) and turns it into these; [`store::start_store`](crate::store::start_store)
/// takes them directly, for a key ring with several keys.
///
/// ```
/// use persevere_ave::SealingKeys;
/// let key = SealingKeys::new(&[7u8; 32])?;
/// let from_ave = SealingKeys::try_from(&ave_actors_actor::EncryptedKey::new(&[7u8; 32]).unwrap())?;
/// assert_eq!(from_ave.ring().key_ids().count(), 1);
/// assert_eq!(key.ring().key_ids().count(), 1);
/// # Ok::<(), persevere_ave::Error>(())
/// ```
#[derive(Clone)]
pub struct SealingKeys {
    ring: Arc<KeyRing>,
}

impl SealingKeys {
    /// The key id a key built with [`new`](Self::new) gets.
    pub const DEFAULT_ID: KeyId = KeyId(1);

    /// A key from 32 bytes of key material, under [`DEFAULT_ID`](Self::DEFAULT_ID).
    pub fn new(key: &[u8; 32]) -> Result<Self, AdapterError> {
        Ok(Self::from_ring(KeyRing::new(
            Self::DEFAULT_ID,
            Key::from_bytes(*key),
        )))
    }

    /// A key ring with several keys: records are sealed with its primary key and opened with
    /// any of them (key rotation).
    pub fn from_ring(ring: KeyRing) -> Self {
        Self {
            ring: Arc::new(ring),
        }
    }

    /// The key ring.
    pub fn ring(&self) -> &Arc<KeyRing> {
        &self.ring
    }
}

impl TryFrom<&ave_actors_actor::EncryptedKey> for SealingKeys {
    type Error = AdapterError;

    /// Reads the key material out of ave's in-memory encrypted key (a key that cannot be read
    /// is [`AdapterError::Key`]).
    fn try_from(key: &ave_actors_actor::EncryptedKey) -> Result<Self, AdapterError> {
        let bytes = key.key().map_err(|e| AdapterError::Key(e.to_string()))?;
        Self::new(&bytes)
    }
}

impl std::fmt::Debug for SealingKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealingKeys")
            .field("ring", &self.ring)
            .finish()
    }
}
