//! Runnable programs a new user starts from; see the `[[example]]` targets.
//!
//! The entity the async examples share lives here.

use persevere_core::Entity;

/// A counter changed only by increments.
#[derive(Debug, Default, Clone, PartialEq, Eq, borsh::BorshSerialize, borsh::BorshDeserialize)]
pub struct Counter {
    /// The sum of every increment persisted.
    pub value: u64,
}

impl Entity for Counter {
    type Event = u64;
    type Error = String;

    fn apply(&mut self, increment: &u64) -> Result<(), String> {
        self.value = self
            .value
            .checked_add(*increment)
            .ok_or_else(|| "counter overflow".to_owned())?;
        Ok(())
    }
}
