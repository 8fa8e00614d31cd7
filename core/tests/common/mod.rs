//! A test entity shared by the integration tests: a ledger that records which event ids it
//! applied, so a double apply or a lost event shows in its state.

#![allow(dead_code)]

use borsh::{BorshDeserialize, BorshSerialize};
use persevere_core::testkit::{Harness, HarnessError};
use persevere_core::{Entity, JournalConfig, PersistError};

/// Events: an addition with a unique id, or one `apply` refuses.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum Entry {
    Add { id: u32, amount: i64 },
    Refused,
}

/// The state: a total and every event id applied, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Ledger {
    pub total: i64,
    pub ids: Vec<u32>,
}

impl Entity for Ledger {
    type Event = Entry;
    type Error = String;

    fn apply(&mut self, entry: &Entry) -> Result<(), String> {
        match entry {
            Entry::Add { id, amount } => {
                self.total += amount;
                self.ids.push(*id);
                Ok(())
            }
            Entry::Refused => Err("this entry is always refused".into()),
        }
    }
}

pub fn add(id: u32) -> Entry {
    Entry::Add {
        id,
        amount: i64::from(id),
    }
}

/// The state that folding the events with these ids gives.
pub fn fold(ids: &[u32]) -> Ledger {
    Ledger {
        total: ids.iter().map(|&id| i64::from(id)).sum(),
        ids: ids.to_vec(),
    }
}

pub fn harness(config: JournalConfig) -> Harness<Ledger> {
    Harness::new(config, Ledger::default)
}

pub fn persist_error(result: Result<(u64, u64), HarnessError>) -> PersistError {
    match result {
        Err(HarnessError::Persist(error)) => error,
        other => panic!("expected a persist error, got {other:?}"),
    }
}
