//! The in-memory manager, for tests and ephemeral state.

use persevere_driver::Backend;
use persevere_memory::Memory;

use crate::manager::Manager;
use persevere_tokio::Tokio;

/// A manager over a fresh in-memory store, for tests and ephemeral state; clones share it.
///
/// Its commands run inline (no thread hop), so it measures the adapter, not the storage.
///
/// ```
/// use persevere_ave::MemoryManager;
/// let manager = MemoryManager::default();
/// let shared = manager.clone(); // the same streams
/// # let _ = (manager.memory(), shared);
/// ```
#[derive(Clone, Debug)]
pub struct MemoryManager {
    manager: Manager,
    memory: Memory,
}

impl Default for MemoryManager {
    fn default() -> Self {
        Self::from_memory(Memory::new())
    }
}

impl MemoryManager {
    /// A manager over `memory` (keep a clone to inspect the store or inject faults).
    pub fn from_memory(memory: Memory) -> Self {
        let backend = Backend::inline(Tokio::ambient(), memory.clone());
        Self {
            manager: Manager::new(backend),
            memory,
        }
    }

    /// The in-memory store.
    pub fn memory(&self) -> &Memory {
        &self.memory
    }

    /// The manager.
    pub fn manager(&self) -> &Manager {
        &self.manager
    }
}

impl From<MemoryManager> for Manager {
    fn from(manager: MemoryManager) -> Self {
        manager.manager
    }
}

/// The collection and state type of [`MemoryManager`] (its
/// [`DbManager`](crate::database::DbManager) implementation), at the path ave-actors-store
/// gives its own: one persevere stream per collection or state.
pub type MemoryStore = crate::database::Table;
