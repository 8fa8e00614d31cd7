//! The encryption key given to `start_store`.

use std::sync::Arc;

use persevere_core::seal::{Key, KeyId, KeyRing};

use crate::error::Error;

/// The key that seals every event and snapshot of a store at rest (XChaCha20-Poly1305, a
/// fresh random nonce per record, bound to the store, stream, position and key id — see
/// [`persevere_core::seal`]). Key material is wiped on drop.
///
/// ```
/// use persevere_ave::EncryptedKey;
/// let key = EncryptedKey::new(&[7u8; 32])?;
/// assert_eq!(key.ring().key_ids().count(), 1);
/// # Ok::<(), persevere_ave::Error>(())
/// ```
#[derive(Clone)]
pub struct EncryptedKey {
    ring: Arc<KeyRing>,
}

impl EncryptedKey {
    /// The key id a key built with [`new`](Self::new) gets.
    pub const DEFAULT_ID: KeyId = KeyId(1);

    /// A key from 32 bytes of key material, under [`DEFAULT_ID`](Self::DEFAULT_ID).
    pub fn new(key: &[u8; 32]) -> Result<Self, Error> {
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

impl TryFrom<&ave_actors_actor::EncryptedKey> for EncryptedKey {
    type Error = Error;

    /// Reads the key material out of ave's in-memory encrypted key.
    fn try_from(key: &ave_actors_actor::EncryptedKey) -> Result<Self, Error> {
        let bytes = key.key().map_err(|e| Error::Key(e.to_string()))?;
        Self::new(&bytes)
    }
}

impl std::fmt::Debug for EncryptedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncryptedKey")
            .field("ring", &self.ring)
            .finish()
    }
}
