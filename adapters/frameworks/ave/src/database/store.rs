//! [`Table`]: one collection or state, kept in its own persevere stream.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use persevere_core::JournalConfig;
use persevere_driver::Persistent;
use tokio::runtime::{Handle, RuntimeFlavor};

use crate::database::table::{Change, Contents};
use crate::database::{Collection, CollectionIter, State, StoreError, StoreOperation};
use crate::manager::Manager;

/// A [`Collection`] or [`State`] over a persevere backend: every change is an event of the
/// table's own stream, durable before the call returns; snapshots every 1000 changes compact
/// the log.
///
/// The traits are synchronous: each write blocks the calling thread until it is durable
/// (the file journal's work runs on tokio's blocking pool). On a multi-thread runtime's worker
/// the wait goes through `block_in_place`, so the worker's other tasks move elsewhere; on a
/// current-thread runtime it holds the thread, as with any blocking database.
pub struct Table {
    name: String,
    label: String,
    /// Always `Some` but while dropping.
    inner: Option<Arc<Mutex<Persistent<Contents>>>>,
    /// Keeps the manager (and a file manager's directory) in use while the table lives.
    _manager: Manager,
}

/// The tables open on one manager, by stream id.
pub(crate) type OpenTables = Mutex<HashMap<String, Weak<Mutex<Persistent<Contents>>>>>;

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table")
            .field("name", &self.name)
            .field("stream", &self.label)
            .finish()
    }
}

/// Waits for `work` on the calling thread: ave's storage traits are synchronous. Inside a
/// multi-thread tokio runtime the worker first hands its other tasks to another worker
/// (`block_in_place`), so they do not stall behind a durable write.
fn wait<T>(work: impl Future<Output = T>) -> T {
    let on_multi_thread = Handle::try_current()
        .is_ok_and(|runtime| runtime.runtime_flavor() == RuntimeFlavor::MultiThread);
    if on_multi_thread {
        tokio::task::block_in_place(|| futures::executor::block_on(work))
    } else {
        futures::executor::block_on(work)
    }
}

/// The key under which a [`State`] keeps its one value.
const STATE_KEY: &str = "";

impl Table {
    /// Opens the table `kind` `name` under `prefix` on `manager` and recovers its contents.
    pub(crate) fn open(
        manager: &Manager,
        kind: &str,
        name: &str,
        prefix: &str,
    ) -> Result<Self, StoreError> {
        // Lengths make the id unambiguous whatever the name and prefix contain.
        let stream = format!("ave-db/{kind}/{}:{name}/{prefix}", name.len());
        // A table opened twice is one table (as with ave's own managers): both handles share
        // its journal, so a handle still held by a stopping actor never blocks a new opener.
        let mut open = manager
            .tables()
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        open.retain(|_, table| table.strong_count() > 0);
        if let Some(inner) = open.get(&stream).and_then(Weak::upgrade) {
            return Ok(Self {
                name: name.to_owned(),
                label: stream,
                inner: Some(inner),
                _manager: manager.clone(),
            });
        }
        let config = JournalConfig::new(stream.clone())
            .snapshot_every(Some(1000))
            .compact_on_snapshot(true)
            .keep_snapshots(1)
            .with_store_id(manager.store_id())
            // No timer waits: the calling thread blocks, and may be the timer's own.
            .reread(5, Duration::ZERO);
        let opened = wait(Persistent::open(
            manager.backend(),
            config,
            Contents::default,
        ))
        .map_err(|e| StoreError::CreateStore {
            reason: format!("{stream}: {e}"),
        })?;
        let inner = Arc::new(Mutex::new(opened));
        open.insert(stream.clone(), Arc::downgrade(&inner));
        Ok(Self {
            name: name.to_owned(),
            label: stream,
            inner: Some(inner),
            _manager: manager.clone(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Persistent<Contents>> {
        self.inner
            .as_deref()
            .expect("a live table has its journal")
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `read` on the contents once no change is left in flight (every change is waited
    /// for, so one is left only if a call unwound mid-flight).
    fn contents<T>(&self, read: impl FnOnce(&Contents) -> T) -> Result<T, StoreError> {
        let mut table = self.lock();
        let contents = wait(table.settle()).map_err(|e| StoreError::Store {
            operation: StoreOperation::Recover,
            reason: format!("{}: {e}", self.label),
        })?;
        Ok(read(contents))
    }

    fn change(&self, operation: StoreOperation, change: Change) -> Result<(), StoreError> {
        let mut table = self.lock();
        wait(table.persist(change))
            .map(drop)
            .map_err(|e| StoreError::Store {
                operation,
                reason: format!("{}: {e}", self.label),
            })
    }

    fn not_found(&self, key: &str) -> StoreError {
        StoreError::EntryNotFound {
            key: if key.is_empty() {
                self.name.clone()
            } else {
                format!("{}.{key}", self.name)
            },
        }
    }

    fn read(&self, key: &str) -> Result<Vec<u8>, StoreError> {
        self.contents(|contents| contents.entries.get(key).cloned())?
            .ok_or_else(|| self.not_found(key))
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        if !self.contents(|contents| contents.entries.contains_key(key))? {
            return Err(self.not_found(key));
        }
        self.change(
            StoreOperation::Persist,
            Change::Del {
                key: key.to_owned(),
            },
        )
    }
}

impl Drop for Table {
    /// The last handle of a table closes its journal (releasing its stream) while holding the
    /// manager's table list, so an opener never finds the table gone from the list while its
    /// stream is still owned.
    fn drop(&mut self) {
        let mut open = self
            ._manager
            .tables()
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(inner) = self.inner.take() {
            if Arc::strong_count(&inner) == 1 {
                open.remove(&self.label);
            }
            drop(inner);
        }
    }
}

impl Collection for Table {
    fn name(&self) -> &str {
        &self.name
    }

    fn get(&self, key: &str) -> Result<Vec<u8>, StoreError> {
        self.read(key)
    }

    fn put(&mut self, key: &str, data: &[u8]) -> Result<(), StoreError> {
        self.change(
            StoreOperation::Persist,
            Change::Put {
                key: key.to_owned(),
                value: data.to_vec(),
            },
        )
    }

    fn del(&mut self, key: &str) -> Result<(), StoreError> {
        self.delete(key)
    }

    fn last(&self) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        self.contents(|contents| {
            contents
                .entries
                .last_key_value()
                .map(|(k, v)| (k.clone(), v.clone()))
        })
    }

    fn purge(&mut self) -> Result<(), StoreError> {
        self.change(StoreOperation::Purge, Change::Purge)
    }

    fn iter<'a>(&'a self, reverse: bool) -> Result<CollectionIter<'a>, StoreError> {
        let entries: Vec<_> = self.contents(|contents| {
            contents
                .entries
                .iter()
                .map(|(k, v)| Ok((k.clone(), v.clone())))
                .collect()
        })?;
        Ok(if reverse {
            Box::new(entries.into_iter().rev())
        } else {
            Box::new(entries.into_iter())
        })
    }
}

impl State for Table {
    fn name(&self) -> &str {
        &self.name
    }

    fn get(&self) -> Result<Vec<u8>, StoreError> {
        self.read(STATE_KEY)
    }

    fn put(&mut self, data: &[u8]) -> Result<(), StoreError> {
        self.change(
            StoreOperation::Persist,
            Change::Put {
                key: STATE_KEY.to_owned(),
                value: data.to_vec(),
            },
        )
    }

    fn del(&mut self) -> Result<(), StoreError> {
        self.delete(STATE_KEY)
    }

    fn purge(&mut self) -> Result<(), StoreError> {
        self.change(StoreOperation::Purge, Change::Purge)
    }
}
