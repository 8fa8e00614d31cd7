//! Cross-crate tests of persevere and the deterministic simulator they use.
//!
//! [`Simulation`] runs many journals over simulated storage with seeded faults, crashes and
//! reordered completions, checking every outcome against a reference model.

mod backend;
mod ledger;
mod rng;
mod sim;
mod store;

pub use backend::StorageKind;
pub use ledger::{Entry, Ledger};
pub use rng::SimRng;
pub use sim::{FaultRates, Plan, Report, Simulation};
pub use store::SimStore;
