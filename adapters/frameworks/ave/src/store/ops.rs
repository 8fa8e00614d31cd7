//! The store operations with this crate's typed [`AdapterError`]; the [`PersistentActor`] methods
//! call them and convert the error to ave's.

use std::sync::Arc;

use ave_actors_actor::ActorContext;
use persevere_core::{Batch, JournalConfig, Repair};

use crate::error::AdapterError;
use crate::key::SealingKeys;
use crate::manager::Manager;
use crate::store::persistence::{Persistence, PersistenceType};
use crate::store::persistent_actor::PersistentActor;
use crate::store::registry::Registry;
use crate::store::shared::Shared;
use crate::store::slot::{Recipe, Slot};
use crate::store::store_actor::Store;

/// An actor's store as the actor and its `store` child share it.
pub(crate) type SharedSlot<A> = Shared<Slot<A>>;

/// Light persists between two prunings of superseded snapshots.
const LIGHT_HOUSEKEEPING: u64 = 16;

/// The stream id of store `name` of the actor at `path` (or under `prefix`, which stands in
/// for the path): `{path or prefix}/{name}`.
///
/// ```
/// assert_eq!(persevere_ave::store::stream_id("/user/a", "counter")?, "/user/a/counter");
/// assert!(persevere_ave::store::stream_id("/user/a", "a/b").is_err());
/// # Ok::<(), persevere_ave::Error>(())
/// ```
pub fn stream_id(scope: &str, name: &str) -> Result<String, AdapterError> {
    let invalid = |name: &str, reason| AdapterError::InvalidName {
        name: name.to_owned(),
        reason,
    };
    if name.is_empty() {
        return Err(invalid(name, "a store name cannot be empty"));
    }
    if name.contains('/') {
        return Err(invalid(name, "a store name cannot contain '/'"));
    }
    if scope.is_empty() {
        return Err(invalid(scope, "a prefix cannot be empty"));
    }
    Ok(format!("{scope}/{name}"))
}

/// Opens store `name` for `actor` and recovers its state into it: see
/// [`PersistentActor::start_store`], which calls this with `key` built from ave's
/// `EncryptedKey`; call it directly for a key ring of several keys (rotation).
pub async fn start_store<A>(
    actor: &mut A,
    name: &str,
    prefix: Option<String>,
    ctx: &mut ActorContext<A>,
    manager: impl Into<Manager>,
    key: Option<SealingKeys>,
) -> Result<(), AdapterError>
where
    A: PersistentActor,
{
    start_store_migrating(actor, name, prefix, ctx, manager, key, Vec::new()).await
}

/// [`start_store`], then persisting the `migrated` events of a migration from
/// ave-actors-store.
pub(crate) async fn start_store_migrating<A>(
    actor: &mut A,
    name: &str,
    prefix: Option<String>,
    ctx: &mut ActorContext<A>,
    manager: impl Into<Manager>,
    key: Option<SealingKeys>,
    migrated: Vec<A::Event>,
) -> Result<(), AdapterError>
where
    A: PersistentActor,
{
    let manager: Manager = manager.into();
    let path = ctx.path().clone();
    let scope = prefix.unwrap_or_else(|| path.to_string());
    let stream = stream_id(&scope, name)?;
    let registry = Registry::of(ctx.system()).await;
    // A restart of this actor replaces its store (and releases the stream first). ave restarts
    // an actor by running `pre_start` again on the same value, which holds what the store
    // recovered and persisted since: the new store recovers from the state the first start
    // recorded, never replaying the events onto the state they built.
    let (keeper, first_state) = match registry.take(&path) {
        Some((keeper, previous)) => {
            let first = match Arc::clone(&previous).downcast::<SharedSlot<A>>() {
                Ok(previous) => Some(previous.lock().await.base()),
                Err(_) => None,
            };
            drop(previous);
            (Some(keeper), first)
        }
        None => (None, None),
    };
    let persistence = A::Persistence::get_persistence();
    let mut config = JournalConfig::new(stream)
        .strategy(persistence.strategy())
        .snapshot_every(A::snapshot_every())
        .compact_on_snapshot(A::compact_on_snapshot())
        .with_store_id(manager.store_id());
    let keep = A::keep_snapshots().or(match persistence {
        PersistenceType::Light => Some(1),
        _ => None,
    });
    if let Some(keep) = keep {
        config = config.keep_snapshots(keep);
    }
    if persistence == PersistenceType::Light {
        // Every Light append carries a snapshot: prune (and compact) once per
        // LIGHT_HOUSEKEEPING events rather than with a write of its own after every one.
        config = config.housekeep_every(LIGHT_HOUSEKEEPING);
    }
    let recipe = Recipe {
        manager: manager.clone(),
        config,
        key,
        base: first_state.unwrap_or_else(|| Arc::new(actor.clone())),
    };
    let mut slot = Slot::open(recipe, actor).await?;
    slot.migrate(actor, migrated).await?;
    let keeper = match keeper {
        Some(id) => id,
        None => {
            let id = registry.new_keeper();
            let keeper = Store::<A> {
                registry,
                parent: path.clone(),
                id,
                _actor: std::marker::PhantomData,
            };
            ctx.create_child("store", keeper)
                .await
                .map_err(|e| AdapterError::System(e.to_string()))?;
            id
        }
    };
    tracing::debug!(actor = %path, stream = %slot.stream(), "store started");
    registry.insert(path, address(actor), keeper, Arc::new(Shared::new(slot)));
    Ok(())
}

/// Where `actor` lives: ave keeps an actor in place from `pre_start` to its stop, so with its
/// path this finds its store without a lookup in the actor system.
fn address<A>(actor: &A) -> usize {
    std::ptr::from_ref(actor) as usize
}

/// The open store of `actor`, whose context is `ctx`, when it is found without a lookup in the
/// actor system (the common case): on the hot path, a caller tries this first and makes the
/// future of [`slot_in_system`] only when it fails.
#[inline]
fn slot_at_once<A>(actor: &A, ctx: &ActorContext<A>) -> Option<Arc<SharedSlot<A>>>
where
    A: PersistentActor,
{
    Registry::find_by_actor::<SharedSlot<A>>(ctx.path(), address(actor))
}

/// The open store of the actor whose context is `ctx`, looked up in its actor system.
async fn slot_in_system<A>(ctx: &ActorContext<A>) -> Result<Arc<SharedSlot<A>>, AdapterError>
where
    A: PersistentActor,
{
    let not_started = || AdapterError::NotStarted {
        path: ctx.path().to_string(),
    };
    let registry = Registry::existing(ctx.system())
        .await
        .ok_or_else(not_started)?;
    registry
        .get::<SharedSlot<A>>(ctx.path())
        .ok_or_else(not_started)
}

/// The open store of `actor`, whose context is `ctx`.
async fn slot<A>(actor: &A, ctx: &ActorContext<A>) -> Result<Arc<SharedSlot<A>>, AdapterError>
where
    A: PersistentActor,
{
    match slot_at_once(actor, ctx) {
        Some(slot) => Ok(slot),
        None => slot_in_system(ctx).await,
    }
}

/// Applies `event` to `actor` and persists it: see [`PersistentActor::persist`].
pub async fn persist<A>(
    actor: &mut A,
    event: &A::Event,
    ctx: &ActorContext<A>,
) -> Result<(), AdapterError>
where
    A: PersistentActor,
{
    let slot = match slot_at_once(actor, ctx) {
        Some(slot) => slot,
        None => slot_in_system(ctx).await?,
    };
    let mut slot = match slot.try_lock() {
        Some(slot) => slot,
        None => slot.lock_after_others().await,
    };
    slot.persist(actor, Batch::from(event.clone())).await
}

/// Applies `events` to `actor` and persists them atomically: all of them become durable and
/// applied, or none (the actor is as before).
pub async fn persist_all<A>(
    actor: &mut A,
    events: impl IntoIterator<Item = A::Event>,
    ctx: &ActorContext<A>,
) -> Result<(), AdapterError>
where
    A: PersistentActor,
{
    let slot = slot(actor, ctx).await?;
    let mut slot = slot.lock().await;
    slot.persist(actor, events.into_iter().collect()).await
}

/// Writes a snapshot of `actor` now: see [`PersistentActor::snapshot`].
pub async fn snapshot<A>(actor: &A, ctx: &ActorContext<A>) -> Result<(), AdapterError>
where
    A: PersistentActor,
{
    let slot = slot(actor, ctx).await?;
    let mut slot = slot.lock().await;
    slot.snapshot_actor(actor.clone()).await
}

/// The last durable seq of `actor`'s stream (0 when it holds no event).
pub async fn last_seq<A>(actor: &A, ctx: &ActorContext<A>) -> Result<u64, AdapterError>
where
    A: PersistentActor,
{
    let slot = slot(actor, ctx).await?;
    let slot = slot.lock().await;
    Ok(slot.last_seq())
}

/// What `actor`'s store repaired or set aside (when its manager's store was opened, or
/// reopened after a failure) that may involve `actor`'s stream: repairs naming the stream, and
/// those naming none. Each one was also logged as a WARN when the store was opened and when
/// this actor's store started. See [`Backend::repairs_for`](persevere_driver::Backend::repairs_for);
/// [`Manager::repairs`] lists every repair of the store.
pub async fn repairs<A>(actor: &A, ctx: &ActorContext<A>) -> Result<Vec<Repair>, AdapterError>
where
    A: PersistentActor,
{
    let slot = slot(actor, ctx).await?;
    let slot = slot.lock().await;
    Ok(slot.repairs())
}
