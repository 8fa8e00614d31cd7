//! The simulated entity: a ledger recording every event id it applied, so a lost, phantom or
//! doubly applied event shows in its state.

use borsh::{BorshDeserialize, BorshSerialize};
use persevere_core::Entity;

/// Events: an addition with a unique id, or one that `apply` refuses.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum Entry {
    /// Adds the id to the ledger.
    Add(u32),
    /// Always refused by `apply`.
    Refused,
}

/// Every event id applied, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Ledger {
    /// The ids applied.
    pub ids: Vec<u32>,
}

impl Entity for Ledger {
    type Event = Entry;
    type Error = &'static str;

    fn apply(&mut self, entry: &Entry) -> Result<(), &'static str> {
        match entry {
            Entry::Add(id) => {
                self.ids.push(*id);
                Ok(())
            }
            Entry::Refused => Err("refused"),
        }
    }
}
