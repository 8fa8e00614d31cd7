//! ave's storage traits — ave-actors-store's own [`DbManager`], [`Collection`] and [`State`],
//! re-exported here — implemented over persevere backends by every manager of this crate, so
//! existing code written against those traits (generic over `impl DbManager<C, S>`) takes our
//! managers unchanged. A collection or state is one persevere stream: checksummed, optionally
//! on the file journal, group-committed with every other stream of the backend. The peer's own
//! contract tests (`ave_actors_store::test_store_trait!`) run against these implementations.
//!
//! The other way round, [`DbStore`] runs persevere's journal over any ave `DbManager` — the
//! application's own, ave-actors-sqlite's — which is what `start_store` does when given one.
//!
//! ```
//! use persevere_ave::database::{Collection, DbManager, State, Table};
//! use persevere_ave::MemoryManager;
//!
//! let manager = MemoryManager::default();
//! let mut events: Table = manager.create_collection("events", "user/a")?;
//! Collection::put(&mut events, "00000000000000000001", b"one")?;
//! Collection::put(&mut events, "00000000000000000002", b"two")?;
//! assert_eq!(events.last()?, Some(("00000000000000000002".into(), b"two".to_vec())));
//! assert_eq!(events.get_by_range(None, -1)?, vec![b"two".to_vec()]);
//!
//! let mut state: Table = manager.create_state("state", "user/a")?;
//! State::put(&mut state, b"snapshot")?;
//! assert_eq!(State::get(&state)?, b"snapshot");
//! # Ok::<(), ave_actors_store::Error>(())
//! ```

pub(crate) mod journal;
mod store;
mod table;

pub use ave_actors_store::database::{
    Collection, CollectionEntry, CollectionEntryResult, CollectionIter, DbManager, State,
};
/// ave-actors-store's error, the error type of these traits (also [`crate::Error`]).
pub use ave_actors_store::{Error as StoreError, StoreOperation};
pub use journal::{DbStore, EVENTS, SNAPSHOTS};
pub(crate) use store::OpenTables;
pub use store::Table;

use crate::file::FileManager;
use crate::manager::Manager;
use crate::memory::MemoryManager;

impl DbManager<Table, Table> for Manager {
    fn create_collection(&self, name: &str, prefix: &str) -> Result<Table, StoreError> {
        Table::open(self, "collection", name, prefix)
    }

    fn create_state(&self, name: &str, prefix: &str) -> Result<Table, StoreError> {
        Table::open(self, "state", name, prefix)
    }
}

impl DbManager<Table, Table> for MemoryManager {
    fn create_collection(&self, name: &str, prefix: &str) -> Result<Table, StoreError> {
        self.manager().create_collection(name, prefix)
    }

    fn create_state(&self, name: &str, prefix: &str) -> Result<Table, StoreError> {
        self.manager().create_state(name, prefix)
    }
}

impl DbManager<Table, Table> for FileManager {
    fn create_collection(&self, name: &str, prefix: &str) -> Result<Table, StoreError> {
        self.manager().create_collection(name, prefix)
    }

    fn create_state(&self, name: &str, prefix: &str) -> Result<Table, StoreError> {
        self.manager().create_state(name, prefix)
    }
}

impl DbManager<Table, Table> for crate::PostgresManager {
    fn create_collection(&self, name: &str, prefix: &str) -> Result<Table, StoreError> {
        self.manager().create_collection(name, prefix)
    }

    fn create_state(&self, name: &str, prefix: &str) -> Result<Table, StoreError> {
        self.manager().create_state(name, prefix)
    }
}

#[cfg(feature = "sqlite")]
impl DbManager<Table, Table> for crate::SqliteManager {
    fn create_collection(&self, name: &str, prefix: &str) -> Result<Table, StoreError> {
        self.manager().create_collection(name, prefix)
    }

    fn create_state(&self, name: &str, prefix: &str) -> Result<Table, StoreError> {
        self.manager().create_state(name, prefix)
    }
}

ave_actors_store::test_store_trait! { memory_manager: MemoryManager: Table }

#[cfg(test)]
mod tests {
    use super::*;

    /// ave-actors-store keys a table by the last path segment; here every name and prefix
    /// pair is a stream of its own.
    #[test]
    fn names_and_prefixes_never_share_data() -> Result<(), StoreError> {
        let manager = MemoryManager::default();
        let mut a: Table = manager.create_collection("a", "p/q")?;
        let b: Table = manager.create_collection("a/p", "q")?;
        let c: Table = manager.create_collection("a", "p")?;
        let s: Table = manager.create_state("a", "p/q")?;
        Collection::put(&mut a, "k", b"v")?;
        for other in [&b, &c] {
            assert_eq!(other.last()?, None);
        }
        assert!(matches!(
            State::get(&s),
            Err(StoreError::EntryNotFound { .. })
        ));
        // A table opened twice is one table: both handles see every change.
        let mut twice: Table = manager.create_collection("a", "p/q")?;
        Collection::put(&mut twice, "k2", b"v2")?;
        assert_eq!(Collection::get(&a, "k2")?, b"v2");
        drop((a, twice));
        let again: Table = manager.create_collection("a", "p/q")?;
        assert_eq!(Collection::get(&again, "k")?, b"v");
        Ok(())
    }
}
