//! A key-value table as a persevere entity: puts, deletes and purges are its events.

use std::collections::BTreeMap;

use borsh::{BorshDeserialize, BorshSerialize};
use persevere_core::Entity;

/// The contents of a table: ordered keys and their values.
#[derive(Debug, Clone, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub(crate) struct Contents {
    pub(crate) entries: BTreeMap<String, Vec<u8>>,
}

/// A change to a table.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub(crate) enum Change {
    /// Insert or replace.
    Put { key: String, value: Vec<u8> },
    /// Remove one key (refused when absent).
    Del { key: String },
    /// Remove every key.
    Purge,
}

impl Entity for Contents {
    type Event = Change;
    type Error = String;

    fn apply(&mut self, change: &Change) -> Result<(), String> {
        match change {
            Change::Put { key, value } => {
                self.entries.insert(key.clone(), value.clone());
            }
            Change::Del { key } => {
                if self.entries.remove(key).is_none() {
                    return Err(format!("no entry {key:?}"));
                }
            }
            Change::Purge => self.entries.clear(),
        }
        Ok(())
    }
}
