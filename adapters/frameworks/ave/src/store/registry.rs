//! The stores of one actor system, by actor path.

use std::any::Any;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use ave_actors_actor::{ActorPath, SystemRef};

/// The name of the system helper holding the registry.
const HELPER: &str = "persevere-ave/stores";

/// Serializes the creation of registries (get-or-add on the system's helpers is two steps).
static CREATE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// One actor's store: the slot (a `tokio::sync::Mutex<Slot<A>>`) and the id of the child
/// actor whose drop removes it.
struct Entry {
    keeper: u64,
    slot: Arc<dyn Any + Send + Sync>,
}

/// The live stores of one actor system, kept as a system helper so that two systems in one
/// process never see each other's actors.
#[derive(Clone, Default)]
pub(crate) struct Registry {
    entries: Arc<Mutex<HashMap<ActorPath, Entry>>>,
    next_keeper: Arc<AtomicU64>,
}

impl Registry {
    /// The registry of `system`, created on first use.
    pub(crate) async fn of(system: &SystemRef) -> Registry {
        if let Some(registry) = system.get_helper::<Registry>(HELPER).await {
            return registry;
        }
        let _creating = CREATE.lock().await;
        if let Some(registry) = system.get_helper::<Registry>(HELPER).await {
            return registry;
        }
        let registry = Registry::default();
        system.add_helper(HELPER, registry.clone()).await;
        registry
    }

    /// The registry of `system`, if a store was ever started in it.
    pub(crate) async fn existing(system: &SystemRef) -> Option<Registry> {
        system.get_helper::<Registry>(HELPER).await
    }

    fn entries(&self) -> MutexGuard<'_, HashMap<ActorPath, Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Removes the store of `path` (a restart replaces it) and returns the id of the keeper
    /// that guards it, if any.
    pub(crate) fn take(&self, path: &ActorPath) -> Option<u64> {
        self.entries().remove(path).map(|entry| entry.keeper)
    }

    /// A fresh keeper id.
    pub(crate) fn new_keeper(&self) -> u64 {
        self.next_keeper.fetch_add(1, Ordering::Relaxed)
    }

    /// Files `slot` as the store of `path`, guarded by `keeper`.
    pub(crate) fn insert(&self, path: ActorPath, keeper: u64, slot: Arc<dyn Any + Send + Sync>) {
        self.entries().insert(path, Entry { keeper, slot });
    }

    /// Removes the store of `path` if `keeper` still guards it.
    pub(crate) fn release(&self, path: &ActorPath, keeper: u64) {
        let mut entries = self.entries();
        if entries
            .get(path)
            .is_some_and(|entry| entry.keeper == keeper)
        {
            entries.remove(path);
        }
    }

    /// The store of `path`, if it holds a `T`.
    pub(crate) fn get<T: Any + Send + Sync>(&self, path: &ActorPath) -> Option<Arc<T>> {
        let slot = Arc::clone(&self.entries().get(path)?.slot);
        slot.downcast::<T>().ok()
    }
}
