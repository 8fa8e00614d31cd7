//! Randomness for encrypted journals: a fast generator seeded by the operating system.

use persevere_core::seal::ChaChaRandom;

use crate::error::Error;

/// A ChaCha20 generator seeded with 32 bytes from the operating system, for the nonces of an
/// encrypted journal ([`Journal::with_encryption`](persevere_core::Journal::with_encryption)).
/// The core never reads OS randomness itself; adapters hand it one of these.
pub fn os_random() -> Result<ChaChaRandom, Error> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| Error::Entropy(e.to_string()))?;
    Ok(ChaChaRandom::from_seed(seed))
}
