//! # persevere-kameo
//!
//! Durable [kameo](https://docs.rs/kameo) actors on persevere, two ways:
//!
//! - **Event-sourced** ([`Journaled`]): the actor holds a journal recovered in `on_start` (a
//!   corrupt or unreadable store fails `on_start`; it never yields a fresh state), persists events
//!   from its handlers (`persist` / `persist_all`: durable and applied on `Ok`, unchanged on
//!   `Err`), snapshots every N events and once more in `on_stop`. Supervised restarts recover
//!   again; the replaced instance stops writing.
//! - **Snapshots under a key** ([`PersistentActor`], derivable): the kameo-persistence API with
//!   the same names — `spawn_persistent(key, args)`, `respawn_persistent(key)`,
//!   `try_respawn_persistent(key, args)`, `save_snapshot(&actor_ref)`,
//!   `persistence_key(&actor_ref)` — with durable, atomic, checksummed snapshots, no blocking IO
//!   on async workers, one live actor per key and no registry leak.
//!
//! Keys are URLs `SCHEME://STORE/STREAM`: `file://` (the file journal) and `memory://` are built
//! in; other backends plug in with [`register_scheme`] (see [`scheme`]). Every journal of a store
//! shares one [`Backend`](persevere_driver::Backend), whose writes are group-committed on
//! tokio's blocking pool.
//!
//! Moving from kameo-persistence: replace the `kameo_persistence` import with `persevere_kameo`
//! and use kameo 0.22.
#![forbid(unsafe_code)]

mod error;
mod journaled;
mod persistent;
mod registry;
pub mod scheme;

pub use error::Error;
pub use journaled::{open_journals, Journaled};
pub use persistent::{PersistentActor, SaveSnapshot};
pub use registry::registered_actors;
pub use scheme::{parse_key, register_scheme, release_store, repairs, split_key};
pub use url::Url;

/// `#[derive(PersistentActor)]`: implements [`PersistentActor`] and the [`SaveSnapshot`]
/// message; `#[snapshot(Type)]` names a snapshot type other than the actor's `Args`.
pub use persevere_kameo_derive::PersistentActor;

/// The kameo version this crate is built against, for the derive's generated code.
pub use kameo;
