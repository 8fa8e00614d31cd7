//! ave's storage traits — [`DbManager`], [`Collection`], [`State`] — with the same shapes and
//! meanings as ave-actors-store's `database` module, implemented over persevere backends by
//! every manager of this crate. Code written against those traits switches by changing its
//! imports; a collection or state is one persevere stream (checksummed, optionally on the
//! file journal, group-committed with every other stream of the backend).
//!
//! ```
//! use persevere_ave::database::{Collection, DbManager, State};
//! use persevere_ave::MemoryManager;
//!
//! let manager = MemoryManager::default();
//! let mut events = manager.create_collection("events", "user/a")?;
//! Collection::put(&mut events, "00000000000000000001", b"one")?;
//! Collection::put(&mut events, "00000000000000000002", b"two")?;
//! assert_eq!(events.last()?, Some(("00000000000000000002".into(), b"two".to_vec())));
//! assert_eq!(events.get_by_range(None, -1)?, vec![b"two".to_vec()]);
//!
//! let mut state = manager.create_state("state", "user/a")?;
//! State::put(&mut state, b"snapshot")?;
//! assert_eq!(State::get(&state)?, b"snapshot");
//! # Ok::<(), persevere_ave::Error>(())
//! ```

mod store;
mod table;

pub use store::Table;

use crate::error::Error;
use crate::file::FileManager;
use crate::manager::Manager;
use crate::memory::MemoryManager;

/// A key and its value, as a [`Collection`] iterator yields them.
pub type CollectionEntry = (String, Vec<u8>);

/// One item of a [`Collection`] iterator.
pub type CollectionEntryResult = Result<CollectionEntry, Error>;

/// The iterator [`Collection::iter`] returns.
pub type CollectionIter<'a> = Box<dyn Iterator<Item = CollectionEntryResult> + 'a>;

/// Builds the [`Collection`]s and [`State`]s of a backend.
pub trait DbManager<C, S>: Sync + Send + Clone
where
    C: Collection + 'static,
    S: State + 'static,
{
    /// An ordered key-value collection `name`, scoped by `prefix`.
    fn create_collection(&self, name: &str, prefix: &str) -> Result<C, Error>;

    /// A single-value state `name`, scoped by `prefix`.
    fn create_state(&self, name: &str, prefix: &str) -> Result<S, Error>;

    /// Shuts the backend down. Default: nothing to do.
    fn stop(&mut self) -> Result<(), Error> {
        Ok(())
    }
}

/// One value, replaced as a whole (typically a snapshot).
pub trait State: Sync + Send + 'static {
    /// The state's name.
    fn name(&self) -> &str;

    /// The value; [`Error::EntryNotFound`] when none is stored.
    fn get(&self) -> Result<Vec<u8>, Error>;

    /// Stores `data`, replacing the value.
    fn put(&mut self, data: &[u8]) -> Result<(), Error>;

    /// Deletes the value; [`Error::EntryNotFound`] when none is stored.
    fn del(&mut self) -> Result<(), Error>;

    /// Deletes the value if any.
    fn purge(&mut self) -> Result<(), Error>;
}

/// Ordered key-value storage (typically events under zero-padded sequence numbers).
pub trait Collection: Sync + Send + 'static {
    /// The collection's name.
    fn name(&self) -> &str;

    /// The value under `key`; [`Error::EntryNotFound`] when absent.
    fn get(&self, key: &str) -> Result<Vec<u8>, Error>;

    /// Stores `data` under `key`, replacing any value.
    fn put(&mut self, key: &str, data: &[u8]) -> Result<(), Error>;

    /// Removes `key`; [`Error::EntryNotFound`] when absent.
    fn del(&mut self, key: &str) -> Result<(), Error>;

    /// The entry with the greatest key, if any.
    fn last(&self) -> Result<Option<(String, Vec<u8>)>, Error>;

    /// Removes every entry.
    fn purge(&mut self) -> Result<(), Error>;

    /// Every entry in key order (descending when `reverse`).
    fn iter<'a>(&'a self, reverse: bool) -> Result<CollectionIter<'a>, Error>;

    /// At most `|quantity|` values in key order (descending when `quantity < 0`), starting
    /// after key `from` when given ([`Error::EntryNotFound`] when `from` is absent).
    fn get_by_range(&self, from: Option<String>, quantity: isize) -> Result<Vec<Vec<u8>>, Error> {
        let mut entries = self.iter(quantity < 0)?;
        if let Some(from) = from {
            loop {
                match entries.next() {
                    Some(Ok((key, _))) if key == from => break,
                    Some(Ok(_)) => {}
                    Some(Err(error)) => return Err(error),
                    None => return Err(Error::EntryNotFound { key: from }),
                }
            }
        }
        entries
            .take(quantity.unsigned_abs())
            .map(|entry| entry.map(|(_, value)| value))
            .collect()
    }
}

impl DbManager<Table, Table> for Manager {
    fn create_collection(&self, name: &str, prefix: &str) -> Result<Table, Error> {
        Table::open(self, "collection", name, prefix)
    }

    fn create_state(&self, name: &str, prefix: &str) -> Result<Table, Error> {
        Table::open(self, "state", name, prefix)
    }
}

impl DbManager<Table, Table> for MemoryManager {
    fn create_collection(&self, name: &str, prefix: &str) -> Result<Table, Error> {
        self.manager().create_collection(name, prefix)
    }

    fn create_state(&self, name: &str, prefix: &str) -> Result<Table, Error> {
        self.manager().create_state(name, prefix)
    }
}

impl DbManager<Table, Table> for FileManager {
    fn create_collection(&self, name: &str, prefix: &str) -> Result<Table, Error> {
        self.manager().create_collection(name, prefix)
    }

    fn create_state(&self, name: &str, prefix: &str) -> Result<Table, Error> {
        self.manager().create_state(name, prefix)
    }
}

/// Runs the storage-trait contract against a manager type with `Default` and its store type:
/// `test_store_trait! { my_tests: MyManager: MyStore }` (the shape of ave-actors-store's macro).
#[macro_export]
macro_rules! test_store_trait {
    ($name:ident: $manager:ty: $store:ty) => {
        #[cfg(test)]
        #[allow(clippy::unwrap_used)]
        mod $name {
            use super::*;
            use $crate::database::{Collection, DbManager, State};
            use $crate::Error;

            fn collection() -> ($manager, $store) {
                let manager = <$manager>::default();
                let store: $store = manager.create_collection("test", "test").unwrap();
                (manager, store)
            }

            fn filled() -> ($manager, $store) {
                let (manager, mut store) = collection();
                for (key, value) in [("key1", "value1"), ("key2", "value2"), ("key3", "value3")] {
                    Collection::put(&mut store, key, value.as_bytes()).unwrap();
                }
                (manager, store)
            }

            fn entry(key: &str, value: &str) -> (String, Vec<u8>) {
                (key.to_owned(), value.as_bytes().to_vec())
            }

            #[test]
            fn names_and_stop() {
                let (mut manager, store) = collection();
                assert_eq!(Collection::name(&store), "test");
                let state: $store = manager.create_state("test", "test").unwrap();
                assert_eq!(State::name(&state), "test");
                assert!(manager.stop().is_ok());
            }

            #[test]
            fn put_get_del_collection() {
                let (_manager, mut store) = collection();
                Collection::put(&mut store, "key", b"value").unwrap();
                assert_eq!(Collection::get(&store, "key").unwrap(), b"value");
                Collection::put(&mut store, "key", b"other").unwrap();
                assert_eq!(Collection::get(&store, "key").unwrap(), b"other");
                Collection::del(&mut store, "key").unwrap();
                assert!(matches!(
                    Collection::get(&store, "key"),
                    Err(Error::EntryNotFound { .. })
                ));
                assert!(matches!(
                    Collection::del(&mut store, "key"),
                    Err(Error::EntryNotFound { .. })
                ));
            }

            #[test]
            fn put_get_del_state() {
                let manager = <$manager>::default();
                let mut state: $store = manager.create_state("test", "test").unwrap();
                assert!(matches!(
                    State::get(&state),
                    Err(Error::EntryNotFound { .. })
                ));
                State::put(&mut state, b"value").unwrap();
                assert_eq!(State::get(&state).unwrap(), b"value");
                State::del(&mut state).unwrap();
                assert!(matches!(
                    State::get(&state),
                    Err(Error::EntryNotFound { .. })
                ));
                State::put(&mut state, b"again").unwrap();
                State::purge(&mut state).unwrap();
                assert!(matches!(
                    State::get(&state),
                    Err(Error::EntryNotFound { .. })
                ));
                State::purge(&mut state).unwrap();
            }

            #[test]
            fn iteration_order_and_last() {
                let (_manager, store) = filled();
                let forward: Vec<_> = store
                    .iter(false)
                    .unwrap()
                    .collect::<Result<_, _>>()
                    .unwrap();
                assert_eq!(
                    forward,
                    vec![
                        entry("key1", "value1"),
                        entry("key2", "value2"),
                        entry("key3", "value3")
                    ]
                );
                let backward: Vec<_> = store.iter(true).unwrap().collect::<Result<_, _>>().unwrap();
                assert_eq!(backward.first(), Some(&entry("key3", "value3")));
                assert_eq!(backward.len(), 3);
                assert_eq!(store.last().unwrap(), Some(entry("key3", "value3")));
            }

            #[test]
            fn ranges() {
                let (_manager, store) = filled();
                assert_eq!(
                    store.get_by_range(None, 2).unwrap(),
                    vec![b"value1".to_vec(), b"value2".to_vec()]
                );
                assert_eq!(
                    store.get_by_range(Some("key3".into()), -2).unwrap(),
                    vec![b"value2".to_vec(), b"value1".to_vec()]
                );
                assert_eq!(
                    store.get_by_range(Some("key1".into()), 5).unwrap(),
                    vec![b"value2".to_vec(), b"value3".to_vec()]
                );
                assert!(matches!(
                    store.get_by_range(Some("nope".into()), 1),
                    Err(Error::EntryNotFound { .. })
                ));
            }

            #[test]
            fn purge_collection() {
                let (_manager, mut store) = filled();
                Collection::purge(&mut store).unwrap();
                assert_eq!(store.last().unwrap(), None);
                assert!(matches!(
                    Collection::get(&store, "key1"),
                    Err(Error::EntryNotFound { .. })
                ));
            }

            #[test]
            fn names_and_prefixes_never_share_data() {
                let manager = <$manager>::default();
                let mut a: $store = manager.create_collection("a", "p/q").unwrap();
                let b: $store = manager.create_collection("a/p", "q").unwrap();
                let c: $store = manager.create_collection("a", "p").unwrap();
                let s: $store = manager.create_state("a", "p/q").unwrap();
                Collection::put(&mut a, "k", b"v").unwrap();
                for other in [&b, &c] {
                    assert_eq!(other.last().unwrap(), None);
                }
                assert!(State::get(&s).is_err());
                let again: $store = manager.create_collection("a", "p/q").unwrap();
                assert_eq!(Collection::get(&again, "k").unwrap(), b"v");
            }
        }
    };
}

test_store_trait! { memory_manager: MemoryManager: Table }
