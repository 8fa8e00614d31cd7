//! # persevere-ave
//!
//! Durable, event-sourced state for [ave-actors](https://crates.io/crates/ave-actors-actor)
//! actors: the ave-actors-store API over persevere journals. An ave user switches by changing
//! imports (`ave_actors_store::` → `persevere_ave::`):
//!
//! - [`store::PersistentActor`] (`create_initial`, `initial`, `apply`, `start_store`,
//!   `persist`, `snapshot`, `snapshot_every`, `compact_on_snapshot`) with
//!   [`store::LightPersistence`] and [`store::FullPersistence`];
//! - [`EncryptedKey`] (ave's own): XChaCha20-Poly1305 at rest, bound to store, stream and
//!   position ([`SealingKeys`] for a key ring);
//! - [`Error`] is ave-actors-store's error (so `Collection` / `State` / `DbManager`
//!   implementations compile unchanged); this crate's typed failures are [`AdapterError`];
//! - `start_store` takes any ave `DbManager` (the application's own, ave-actors-sqlite's):
//!   see [`Manager::resolve`] and [`database::DbStore`]; what ave-actors-store itself wrote
//!   through that manager is migrated into the actor's stream on its first start (see
//!   [`store::PersistentActor::start_store`]);
//! - the child actor `store` ([`store::Store`]) answers ave's [`store::StoreCommand`]s (range
//!   reads, compaction, purge), and a Full store snapshots when it stops and after a replay;
//! - [`database`]: ave-actors-store's own `DbManager` / `Collection` / `State` traits,
//!   implemented over persevere backends by every manager;
//! - managers: [`memory::MemoryManager`], [`file::FileManager`], `sqlite::SqliteManager`
//!   (feature `sqlite`), and [`Manager`] over any
//!   persevere [`Backend`](persevere_driver::Backend) — every further backend works unchanged;
//!
//! What changes underneath is listed on [`store::PersistentActor`]: full-path stream ids, no
//! clone per persist, atomic Light writes, exactly-once after an unknown write outcome, and
//! records bound to where they belong.
//!
//! # A new crate and the yanked `memsecurity`
//!
//! ave-actors-actor 0.5 depends on `memsecurity` 3.5.2, whose releases are all yanked, so a
//! fresh resolution fails. Cargo keeps a yanked version a lock file names: before the first
//! build, write a `Cargo.lock` holding only `version = 4` and the `[[package]]` entry of
//! `memsecurity` 3.5.2 (name, version, `source =
//! "registry+https://github.com/rust-lang/crates.io-index"`, `checksum =
//! "0d5926560aa18d0a437ef884b5f18a61507c00c7268e1faaf6a6e288d89a3675"`), then build as usual.
//!
//! ```
//! use async_trait::async_trait;
//! use ave_actors_actor::{Actor, ActorContext, ActorPath, ActorSystem, Error as ActorError, Handler};
//! use ave_actors_actor::{Event, Message, Response};
//! use borsh::{BorshDeserialize, BorshSerialize};
//! use persevere_ave::memory::MemoryManager;
//! use persevere_ave::store::{FullPersistence, PersistentActor};
//!
//! #[derive(Debug, Clone, Default, BorshSerialize, BorshDeserialize)]
//! struct Counter { value: u64 }
//!
//! #[derive(Debug, Clone, serde::Serialize, serde::Deserialize, BorshSerialize, BorshDeserialize)]
//! struct Added(u64);
//! impl Event for Added {}
//!
//! #[derive(Debug, Clone)]
//! struct Add(u64);
//! impl Message for Add {}
//!
//! #[derive(Debug, PartialEq)]
//! struct Value(u64);
//! impl Response for Value {}
//!
//! #[async_trait]
//! impl Actor for Counter {
//!     type Message = Add;
//!     type Event = Added;
//!     type Response = Value;
//!     fn get_span(id: &str, _parent: Option<tracing::Span>) -> tracing::Span {
//!         tracing::info_span!("Counter", id)
//!     }
//!     async fn pre_start(&mut self, ctx: &mut ActorContext<Self>) -> Result<(), ActorError> {
//!         self.start_store("counter", None, ctx, MemoryManager::default(), None).await
//!     }
//! }
//!
//! #[async_trait]
//! impl Handler<Counter> for Counter {
//!     async fn handle_message(&mut self, _: ActorPath, Add(n): Add, ctx: &mut ActorContext<Self>) -> Result<Value, ActorError> {
//!         self.persist(&Added(n), ctx).await?;
//!         Ok(Value(self.value))
//!     }
//! }
//!
//! impl PersistentActor for Counter {
//!     type Persistence = FullPersistence;
//!     type InitParams = ();
//!     fn create_initial(_: ()) -> Self { Self::default() }
//!     fn apply(&mut self, Added(n): &Added) -> Result<(), ActorError> {
//!         self.value += n;
//!         Ok(())
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let (system, _runner) = ActorSystem::create(Default::default(), Default::default());
//! let counter = system.create_root_actor("counter", Counter::initial(())).await?;
//! assert_eq!(counter.ask(Add(2)).await?, Value(2));
//! assert_eq!(counter.ask(Add(3)).await?, Value(5));
//! # Ok::<(), ActorError>(())
//! # }).unwrap();
//! ```
#![forbid(unsafe_code)]

/// ave-actors-store's backend sizing helpers (`MachineSpec`, `resolve_spec`, ...), re-exported
/// for code that configures an ave backend through this crate's paths.
pub mod config {
    pub use ave_actors_store::config::*;
}
pub mod database;
pub mod error;
pub mod file;
mod key;
mod manager;
pub mod memory;
pub mod postgres;
#[cfg(feature = "sqlite")]
pub mod sqlite;
pub mod store;

/// ave's in-memory encrypted key, what `start_store` takes (as in ave-actors-store).
pub use ave_actors_actor::EncryptedKey;
/// ave-actors-store's contract test of a `DbManager`: `test_store_trait! { name: Manager: Store }`.
pub use ave_actors_store::test_store_trait;
pub use error::{AdapterError, Error, StoreOperation};
pub use file::FileManager;
pub use key::SealingKeys;
pub use manager::Manager;
pub use memory::MemoryManager;
pub use postgres::PostgresManager;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteManager;
pub use store::{FullPersistence, InitializedActor, LightPersistence, PersistentActor};
