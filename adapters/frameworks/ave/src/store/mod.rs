//! Event-sourced persistence for ave actors: [`PersistentActor`] and its strategies.

mod held;
mod legacy;
mod ops;
mod persistence;
mod persistent_actor;
mod registry;
mod shared;
mod slot;
mod store_actor;

pub use ops::{last_seq, persist, persist_all, repairs, snapshot, start_store, stream_id};
/// Why an upcaster could not read an old record (see [`PersistentActor::upcast_event`]).
pub use persevere_core::UpcastError;
pub use persistence::{FullPersistence, LightPersistence, Persistence, PersistenceType};
pub use persistent_actor::{InitializedActor, PersistentActor};
pub use store_actor::{Store, StoreCommand, StoreEvent, StoreResponse};
