//! # persevere-driver
//!
//! The async driver of persevere, written once against `futures` with no executor dependency.
//! It runs the core's [`Journal`](persevere_core::Journal)s against a storage
//! [`Store`](persevere_core::Store) following the core's run loop, and offers the plain async
//! API for one entity, [`Persistent`]:
//!
//! - [`Runtime`]: what an executor supplies — spawn, spawn_blocking and a timer. The crates
//!   `persevere-tokio`, `persevere-smol` and `persevere-async-std` implement it.
//! - [`Backend`]: one store shared by many entities. Its batches run on the runtime's blocking
//!   pool and are **group-committed**: every command waiting when a batch starts goes to the
//!   store as one [`Store::execute`](persevere_core::Store::execute) call (one fsync or
//!   transaction); the next batch starts when it returns. With [`Execution::InPlace`] (the
//!   default) a command that finds the backend idle runs on the calling thread instead, where
//!   the runtime can let it block without holding up its other tasks
//!   ([`Runtime::block_in_place`]), sparing a lone writer the thread hand-offs. With
//!   [`Execution::Inline`] a cheap in-memory store runs in the calling task; with
//!   [`Execution::Direct`] (opt-in, see its trade-off) an idle backend's command runs in the
//!   calling task on any runtime, blocking its worker.
//! - [`Persistent`]: open → recovered state → `persist(event).await`,
//!   `persist_all(events).await`, `snapshot().await`, `state()`. The journal runs in the
//!   caller's task: no spawn, no channel on the inline path; the backend is reached only for
//!   storage. Errors are the core's typed failures, in one [`Error`].
//!   [`Persistent::open_encrypted`] seals every record under a key ring.
//! - [`PersistentHandle`]: many tasks persisting to one entity at once
//!   ([`Persistent::into_handle`]); their requests are coalesced into group appends and each
//!   caller gets its own answer.
//! - Recovery replays a long page [`REPLAY_SLICE`] events at a time and yields to the executor
//!   between slices, so a recovery never holds an async worker for a whole page.
//! - [`Driver`]: the same run loop for state the caller owns (the actor adapters' building
//!   block, where the state is the actor itself).
//! - [`OpenStores`]: the stores an adapter opens by name, by location, once per process: the
//!   live store of a location is shared, and an open waits (boundedly) until a store being
//!   dropped has released its lock and files ([`Hold`], [`Held`]).
//!
//! # Storage failures and repairs
//!
//! The rules live here, once, and every adapter (kameo, ave) inherits them:
//!
//! - **A fenced store reopens itself.** When the store reports itself
//!   [fenced](persevere_core::Store::fenced) (a failed log write or fsync) or panicked, the
//!   [`Backend`] reopens it before its next batch, with exponential backoff
//!   ([`ReopenBackoff`]); batches arriving while the backoff runs fail at once with the reason
//!   and the time of the next attempt, so nothing spins. [`Backend::health`] tells where the
//!   store stands.
//! - **A journal stopped by the outage recovers on its next use** ([`Driver`] documents the
//!   policy): built again from its recipe and recovered from the durable log; a request made
//!   blindly after an unknown outcome that turns out to have landed is refused once
//!   ([`Error::Landed`]), even if the call that started the recovery was dropped half-way, and
//!   a log found missing acknowledged events is never written on top. Until then the state is
//!   not shown ([`Error::StateUnknown`]): it may hold the unacknowledged write.
//! - **Every repair is visible.** What the store repaired or set aside at open and at each
//!   reopen is logged as a WARN naming the streams, kept in [`Backend::repairs`], and offered
//!   per stream by [`Backend::repairs_for`], [`Driver::repairs`] and [`Persistent::repairs`].
//!
//! # Features
//!
//! - `suite`: [`suite`], the behaviour suite every runtime adapter runs on its real executor.
#![forbid(unsafe_code)]

mod backend;
mod driver;
mod error;
mod handle;
mod open_stores;
mod persistent;
mod random;
mod release;
mod runtime;
#[cfg(feature = "suite")]
pub mod suite;

pub use backend::{Backend, Claim, CommitStats, Execution, Ownership, ReopenBackoff, StoreHealth};
pub use driver::{Driver, Recipe, Resume, REPLAY_SLICE};
pub use error::Error;
pub use handle::PersistentHandle;
pub use open_stores::{NotReleased, OpenError, OpenStores, Sharing, RELEASE_PATIENCE};
pub use persistent::Persistent;
pub use random::os_random;
pub use release::{Held, Hold};
pub use runtime::{BlockingWork, Runtime, Task};
