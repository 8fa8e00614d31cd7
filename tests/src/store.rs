//! Simulated storage: the reference in-memory store plus a write log, so that a crash can lose
//! the writes that were not yet synced.
//!
//! A write is durable once a completion of it or of any later write was delivered (an fsync
//! covers everything before it). At a crash, a cut point between the synced prefix and the end
//! of the log is chosen: writes after it are lost.

use std::sync::Arc;

use persevere_core::memory::MemoryStore;
use persevere_core::{Command, Completion, StorageError};

/// The reference store with a crash-aware write log.
#[derive(Debug, Default)]
pub struct SimStore {
    view: MemoryStore,
    log: Vec<(Arc<str>, Command)>,
    synced: usize,
}

impl SimStore {
    /// Executes `command`; a write is logged and gets an index for [`sync`](Self::sync).
    pub fn execute(
        &mut self,
        stream: &Arc<str>,
        command: Command,
    ) -> (Option<usize>, Result<Completion, StorageError>) {
        let index = command.is_write().then(|| {
            self.log.push((Arc::clone(stream), command.clone()));
            self.log.len()
        });
        (index, self.view.execute(stream, command).1)
    }

    /// Marks every write up to `index` durable.
    pub fn sync(&mut self, index: usize) {
        self.synced = self.synced.max(index);
    }

    /// Marks every write so far durable.
    pub fn sync_all(&mut self) {
        self.synced = self.log.len();
    }

    /// The range of possible crash cut points: the synced prefix up to the whole log.
    pub fn cut_range(&self) -> (usize, usize) {
        (self.synced, self.log.len())
    }

    /// Loses every write after `cut` (clamped to the cut range), as a power loss would.
    pub fn crash(&mut self, cut: usize) {
        let cut = cut.clamp(self.synced, self.log.len());
        self.log.truncate(cut);
        self.synced = cut;
        let mut view = MemoryStore::new();
        for (stream, command) in &self.log {
            let _ = view.execute(stream, command.clone());
        }
        self.view = view;
    }

    /// The store's current content.
    pub fn view(&self) -> &MemoryStore {
        &self.view
    }

    /// The store's content, to plant another writer's records.
    pub fn view_mut(&mut self) -> &mut MemoryStore {
        &mut self.view
    }
}
