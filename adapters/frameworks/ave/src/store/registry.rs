//! The live stores of every actor system in the process, by actor path.
//!
//! Entries are tagged with the id of their actor system (kept as a system helper), so two
//! systems with the same actor path never see each other's store, and with the address of
//! the actor they belong to: a persist finds its store by path and address without asking the
//! actor system anything (the fast path), and by path and system id otherwise. Each thread
//! remembers its last fast-path answer, with the generation of the index it came from: an
//! actor persisting again and again finds its store without taking the index's lock, and any
//! change of the index (a store started, stopped or replaced) makes every remembered answer
//! stale.

use std::any::Any;
use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError, Weak};

use ave_actors_actor::{ActorPath, SystemRef};

/// The name of the system helper holding the system's id.
const HELPER: &str = "persevere-ave/system";

/// Serializes the creation of system ids (get-or-add on the system's helpers is two steps).
static CREATE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Ids of systems and keepers.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Every live store of the process.
static INDEX: LazyLock<Mutex<Index>> = LazyLock::new(Default::default);

/// Bumped (under the index's lock) by every change of the index: a lookup remembered at one
/// generation is the index's answer for as long as the generation stays the same.
static GENERATION: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// The last store [`Registry::find_by_actor`] found on this thread: an actor persisting
    /// again and again finds it here without taking the index's lock.
    static LAST_FOUND: RefCell<Option<Found>> = const { RefCell::new(None) };
}

/// A remembered answer of [`Registry::find_by_actor`]. The slot is held weakly: a store the
/// index dropped is released at once, whatever this thread remembers.
struct Found {
    generation: u64,
    actor: usize,
    path: ActorPath,
    slot: Weak<dyn Any + Send + Sync>,
}

/// One actor's store: the slot (a `SharedSlot<A>`), the system and path of the
/// actor it belongs to, and the id of the child actor whose stop or drop removes it.
struct Entry {
    system: u64,
    path: ActorPath,
    keeper: u64,
    slot: Arc<dyn Any + Send + Sync>,
}

/// The stores by actor address (the persist path) and by system and path (start and stop).
#[derive(Default)]
struct Index {
    by_actor: HashMap<usize, Vec<Entry>, BuildHasherDefault<AddressHasher>>,
    by_path: HashMap<(u64, ActorPath), usize>,
}

impl Index {
    fn remove(&mut self, system: u64, path: &ActorPath, keeper: Option<u64>) -> Option<Entry> {
        let key = (system, path.clone());
        let actor = *self.by_path.get(&key)?;
        let entries = self.by_actor.get_mut(&actor)?;
        let position = entries.iter().position(|e| {
            e.system == system && e.path == *path && keeper.is_none_or(|k| k == e.keeper)
        })?;
        let entry = entries.swap_remove(position);
        GENERATION.fetch_add(1, Ordering::Release);
        if entries.is_empty() {
            self.by_actor.remove(&actor);
        }
        self.by_path.remove(&key);
        Some(entry)
    }
}

/// Hashes an address: a multiplication spreads its bits (addresses are unique, so no
/// attacker-chosen keys reach this map).
#[derive(Default)]
struct AddressHasher(u64);

impl Hasher for AddressHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(byte)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_usize(&mut self, value: usize) {
        self.0 = (value as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

fn index() -> MutexGuard<'static, Index> {
    INDEX.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The stores of one actor system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Registry {
    system: u64,
}

impl Registry {
    /// The registry of `system`, created on first use.
    pub(crate) async fn of(system: &SystemRef) -> Registry {
        if let Some(registry) = Self::existing(system).await {
            return registry;
        }
        let _creating = CREATE.lock().await;
        if let Some(registry) = Self::existing(system).await {
            return registry;
        }
        let registry = Registry {
            system: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        };
        system.add_helper(HELPER, registry).await;
        registry
    }

    /// The registry of `system`, if a store was ever started in it.
    pub(crate) async fn existing(system: &SystemRef) -> Option<Registry> {
        system.get_helper::<Registry>(HELPER).await
    }

    /// Removes the store of `path` (a restart replaces it) and returns the id of the keeper
    /// that guards it and the store itself, if any. The caller drops the store (releasing the
    /// stream it owns) before it opens another on the stream.
    pub(crate) fn take(&self, path: &ActorPath) -> Option<(u64, Arc<dyn Any + Send + Sync>)> {
        let entry = index().remove(self.system, path, None)?;
        Some((entry.keeper, entry.slot))
    }

    /// A fresh keeper id.
    pub(crate) fn new_keeper(&self) -> u64 {
        NEXT_ID.fetch_add(1, Ordering::Relaxed)
    }

    /// Files `slot` as the store of the actor at `path` and address `actor`, guarded by
    /// `keeper`.
    pub(crate) fn insert(
        &self,
        path: ActorPath,
        actor: usize,
        keeper: u64,
        slot: Arc<dyn Any + Send + Sync>,
    ) {
        let mut index = index();
        let replaced = index.remove(self.system, &path, None);
        index.by_path.insert((self.system, path.clone()), actor);
        GENERATION.fetch_add(1, Ordering::Release);
        index.by_actor.entry(actor).or_default().push(Entry {
            system: self.system,
            path,
            keeper,
            slot,
        });
        drop(index);
        debug_assert!(replaced.is_none(), "a store replaced without being taken");
    }

    /// Removes the store of `path` if `keeper` still guards it.
    pub(crate) fn release(&self, path: &ActorPath, keeper: u64) {
        let removed = index().remove(self.system, path, Some(keeper));
        // The slot (and the stream it owns) is released outside the lock.
        drop(removed);
    }

    /// The store of the actor at `path` whose address is `actor`, if exactly one store of the
    /// process matches both (no need to know its system).
    pub(crate) fn find_by_actor<T: Any + Send + Sync>(
        path: &ActorPath,
        actor: usize,
    ) -> Option<Arc<T>> {
        let generation = GENERATION.load(Ordering::Acquire);
        // `try_with`: a thread tearing down its locals finds nothing remembered (and the
        // index answers), rather than a panic.
        let remembered = LAST_FOUND
            .try_with(|last| {
                last.borrow()
                    .as_ref()
                    .filter(|f| f.generation == generation && f.actor == actor && f.path == *path)
                    .and_then(|f| f.slot.upgrade())
            })
            .ok()
            .flatten();
        let slot = match remembered {
            Some(slot) => slot,
            None => {
                let (slot, generation) = {
                    let index = index();
                    let mut matches = index
                        .by_actor
                        .get(&actor)?
                        .iter()
                        .filter(|e| e.path == *path);
                    let slot = Arc::clone(&matches.next()?.slot);
                    if matches.next().is_some() {
                        return None;
                    }
                    // Read under the lock: no change of the index can come in between.
                    (slot, GENERATION.load(Ordering::Acquire))
                };
                // Nothing is remembered on a thread tearing down its locals.
                let _ = LAST_FOUND.try_with(|last| {
                    *last.borrow_mut() = Some(Found {
                        generation,
                        actor,
                        path: path.clone(),
                        slot: Arc::downgrade(&slot),
                    });
                });
                slot
            }
        };
        slot.downcast::<T>().ok()
    }

    /// The store of the actor at `path` in this registry's system, if it holds a `T`.
    pub(crate) fn get<T: Any + Send + Sync>(&self, path: &ActorPath) -> Option<Arc<T>> {
        let slot = {
            let index = index();
            let actor = index.by_path.get(&(self.system, path.clone()))?;
            let entry = index
                .by_actor
                .get(actor)?
                .iter()
                .find(|e| e.system == self.system && e.path == *path)?;
            Arc::clone(&entry.slot)
        };
        slot.downcast::<T>().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store replaced under the same actor and path is found at once, even while the old
    /// one is still alive (held by a persist or a stop in progress) and this thread remembers
    /// it.
    #[test]
    fn a_replaced_store_is_found_in_place_of_the_remembered_one() {
        let registry = Registry {
            system: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        };
        let path = ActorPath::from("/user/replaced");
        let actor = 0x5eed_0001;
        let old: Arc<u32> = Arc::new(1);
        registry.insert(
            path.clone(),
            actor,
            7,
            Arc::clone(&old) as Arc<dyn Any + Send + Sync>,
        );
        let found = Registry::find_by_actor::<u32>(&path, actor);
        assert_eq!(found.as_deref(), Some(&1));
        // Remembered now; the old store stays alive while it is replaced.
        assert_eq!(registry.take(&path).map(|(keeper, _)| keeper), Some(7));
        let new = Arc::new(2_u32);
        let weak = Arc::downgrade(&new);
        registry.insert(path.clone(), actor, 8, new);
        let found = Registry::find_by_actor::<u32>(&path, actor);
        assert_eq!(found.as_deref(), Some(&2), "the old store was found");
        drop(found);
        registry.release(&path, 8);
        assert_eq!(Registry::find_by_actor::<u32>(&path, actor), None);
        // What this thread remembers does not keep a released store (its stream) alive.
        assert!(weak.upgrade().is_none(), "a released store is still alive");
        drop(old);
    }
}
