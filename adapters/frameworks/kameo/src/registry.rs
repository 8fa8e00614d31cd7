//! The persistent actors of this process, by key: at most one live actor per key, no dead
//! entries kept beyond the next registration. The key of the newest actor of each key stays
//! known after it stops (as in kameo-persistence, a manager saving while its sub-actors are
//! stopped still finds their keys): one entry per key, replaced when the key is used again.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError};

use kameo::actor::{ActorId, ActorRef, WeakActorRef};
use kameo::Actor;
use url::Url;

/// One registered actor, type-erased.
pub(crate) trait Registered: Send {
    fn is_alive(&self) -> bool;
    fn actor_id(&self) -> ActorId;
    /// Becomes `true` once the actor has fully stopped and its entry is cleared.
    fn gone(&self) -> tokio::sync::watch::Receiver<bool>;
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

/// A key's place in the registry. Its lock is held while the key's actor is being spawned and
/// while a snapshot is written, so that one key never gets two live actors and snapshots are
/// written in the order they were taken.
pub(crate) type Slot = Arc<tokio::sync::Mutex<Option<Box<dyn Registered>>>>;

#[derive(Default)]
struct Registry {
    slots: HashMap<String, Slot>,
    keys: HashMap<ActorId, Url>,
    /// The actor bound to each key (normalised), as a type-erased `WeakActorRef`, for the
    /// synchronous `lookup_persistent`.
    actors: HashMap<String, (ActorId, Box<dyn Any + Send>)>,
    /// Slots after the last sweep; the next sweep runs when there are twice as many.
    swept: usize,
}

static REGISTRY: LazyLock<Mutex<Registry>> = LazyLock::new(Mutex::default);

fn registry() -> MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The slot of `key`, created if need be. Sweeps dead entries when the registry has doubled
/// since the last sweep, so entries of stopped actors never pile up.
pub(crate) fn slot(key: &Url) -> Slot {
    let mut registry = registry();
    if registry.slots.len() >= 2 * registry.swept.max(32) {
        sweep(&mut registry);
    }
    Arc::clone(registry.slots.entry(normal(key)).or_default())
}

/// Records that `actor` is the actor of `key`.
pub(crate) fn bind<A: Actor>(actor: &WeakActorRef<A>, key: &Url) {
    let mut registry = registry();
    let replaced = registry
        .actors
        .insert(normal(key), (actor.id(), Box::new(actor.clone())));
    if let Some((old, _)) = replaced.filter(|(old, _)| *old != actor.id()) {
        registry.keys.remove(&old);
    }
    registry.keys.insert(actor.id(), key.clone());
}

/// The live actor of `key`, if one of type `A` is bound to it.
pub(crate) fn lookup<A: Actor>(key: &Url) -> Option<ActorRef<A>> {
    let registry = registry();
    let (_, actor) = registry.actors.get(&normal(key))?;
    actor
        .downcast_ref::<WeakActorRef<A>>()?
        .upgrade()
        .filter(ActorRef::is_alive)
}

/// The key of the actor `id`, if it is registered.
pub(crate) fn key_of(id: ActorId) -> Option<Url> {
    registry().keys.get(&id).cloned()
}

/// Removes the slot of `key` if it is empty and nobody else holds it.
pub(crate) fn forget_if_unused(key: &Url) {
    let mut registry = registry();
    let key = normal(key);
    let unused = registry.slots.get(&key).is_some_and(|slot| {
        Arc::strong_count(slot) == 1 && slot.try_lock().is_ok_and(|entry| entry.is_none())
    });
    if unused {
        registry.slots.remove(&key);
    }
}

/// The registry's key for `key`: the store and stream it names (its query and fragment
/// dropped, a `file` key's trailing `/` too), so that two spellings of one stream find the
/// same actor.
fn normal(key: &Url) -> String {
    match crate::scheme::locate_key(key) {
        Ok((location, stream)) => format!("{location}/{stream}"),
        Err(_) => key.as_str().to_owned(),
    }
}

/// Removes the entries of actors that are no longer alive and the slots nobody uses.
fn sweep(registry: &mut Registry) {
    registry.slots.retain(|_, slot| {
        // A slot someone holds (or is about to lock) stays.
        if Arc::strong_count(slot) > 1 {
            return true;
        }
        let Ok(mut entry) = slot.try_lock() else {
            return true;
        };
        match entry.as_ref() {
            Some(actor) if actor.is_alive() => true,
            Some(_) => {
                *entry = None;
                false
            }
            None => false,
        }
    });
    registry.swept = registry.slots.len();
}

/// Sweeps dead actors out of the registry and returns how many keys it still holds.
///
/// Registration sweeps by itself whenever the registry has doubled since the last sweep, so
/// the registry stays within twice the live actors (plus a small constant) without calling
/// this; call it to see the exact number of live registered actors.
pub fn registered_actors() -> usize {
    let mut registry = registry();
    sweep(&mut registry);
    registry.slots.len()
}
