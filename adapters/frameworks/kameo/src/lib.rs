//! # persevere-kameo
//!
//! Durable [kameo](https://docs.rs/kameo) actors on persevere, two ways:
//!
//! - **Event-sourced** ([`Journaled`]): the actor holds a journal recovered in `on_start` (a
//!   corrupt or unreadable store fails `on_start`; it never yields a fresh state), persists events
//!   from its handlers (`persist` / `persist_all`: durable and applied on `Ok`, unchanged on
//!   `Err`), snapshots every N events and once more in `on_stop`. Supervised restarts recover
//!   again; the replaced instance stops writing.
//! - **Snapshots under a key** ([`PersistentActor`], derivable): every public item of
//!   kameo-persistence 0.1 at the same path, with the same meaning and signatures —
//!   `spawn_persistent(key, args)`, `respawn_persistent(key)`,
//!   `try_respawn_persistent(key, args)`, `save_snapshot(&actor_ref)`,
//!   `persistence_key(&actor_ref)`, `register_persistent`, `lookup_persistent`, `try_read`,
//!   `try_write`, [`BiHashMap`], the `bi_hash_map` and `persistent_actor` modules and the
//!   `tracing` feature — with durable, atomic, checksummed snapshots, no blocking IO on async
//!   workers, one live actor per key and no registry leak. A `file:///DIR/KEY` key is a
//!   directory of its own, as in kameo-persistence, and kameo-persistence's `index.bin`
//!   snapshots found there are imported (see [`persistent_actor`]).
//!
//! Keys are URLs: `file://` (the file journal) and `memory://` are built in; other backends
//! plug in with [`register_scheme`] (see [`scheme`]). Every journal of a store shares one
//! [`Backend`](persevere_driver::Backend), whose writes are group-committed on tokio's blocking
//! pool.
//!
//! Moving from kameo-persistence: replace the `kameo_persistence` imports with
//! `persevere_kameo` and use kameo 0.22.
//!
//! # Features
//!
//! - `sqlite`: the built-in `sqlite` scheme (`persevere-sqlite`).
//! - `tracing`: accepted for kameo-persistence's `features = ["tracing"]`; this crate emits its
//!   `tracing` events (an error for every failure, a warning for every repair) in every build.
#![forbid(unsafe_code)]

pub mod bi_hash_map;
mod error;
mod journaled;
mod keyed;
mod legacy;
pub mod persistent_actor;
mod registry;
pub mod scheme;

pub use bi_hash_map::BiHashMap;
pub use error::Error;
pub use journaled::{open_journals, Journaled};
pub use persistent_actor::{PersistentActor, SaveSnapshot};
pub use registry::registered_actors;
pub use scheme::{
    key_repairs, locate_key, parse_key, register_scheme, release_key_store, release_store, repairs,
    split_key, IDLE_KEY_STORES, KEY_STREAM,
};
pub use url::Url;

/// `#[derive(PersistentActor)]`: implements [`PersistentActor`] and the [`SaveSnapshot`]
/// message; `#[snapshot(Type)]` names a snapshot type other than the actor's `Args`, as in
/// kameo-persistence.
pub use persevere_kameo_derive::PersistentActor;

/// The kameo version this crate is built against, for the derive's generated code.
pub use kameo;
