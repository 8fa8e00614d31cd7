//! The `PersistentActor` trait and the `InitializedActor` wrapper.

use async_trait::async_trait;
use ave_actors_actor::{Actor, ActorContext, Error as ActorError, Handler, IntoActor};
use borsh::{BorshDeserialize, BorshSerialize};
use persevere_core::UpcastError;

use crate::database::{Collection, DbManager, State};
use crate::key::SealingKeys;
use crate::manager::Manager;
use crate::store::persistence::Persistence;
use crate::store::{legacy, ops};

/// A persistent actor built with [`PersistentActor::initial`], the only value the actor
/// system accepts for one.
#[derive(Debug)]
pub struct InitializedActor<A>(A);

impl<A> IntoActor<A> for InitializedActor<A>
where
    A: PersistentActor,
{
    fn into_actor(self) -> A {
        self.0
    }
}

/// An ave actor whose state is event-sourced: `apply` says how an event changes it,
/// `persist` makes a change durable, `start_store` (in `pre_start`) recovers it.
///
/// The names, signatures and defaults are those of ave-actors-store's trait, with these
/// differences in behaviour:
///
/// - the stream is the actor's **full path** plus the store name (`/user/a/counter`), or the
///   prefix plus the store name when a prefix is given; two live stores never share one
///   (the second `start_store` fails);
/// - `persist` lends the actor itself to the journal — **no clone** of the actor per persist;
///   a refused event, a failed write or a conflict leaves the actor exactly as before;
/// - Light persistence writes the event and the snapshot in **one atomic write**;
/// - a write whose outcome was unknown is re-read: if it landed, `persist` returns `Ok` (a
///   retry never applies the event twice); if that cannot be learnt, the store stops, and the
///   actor holds the event meanwhile (its outcome is unknown, and the store cannot be read to
///   roll it back). The next `persist` first recovers the actor from the log (through
///   [`update`](Self::update)) once the store can be read again; if the write had landed,
///   that `persist` fails once (the state now shows the event) so that a blind retry does not
///   apply it twice. Whatever happens between (the store's `Recover` or `Purge`, a `persist`
///   dropped mid-way by a `select!` or a timeout), the actor never goes on from, nor
///   snapshots, a value the log does not hold;
/// - with a key, every record is sealed **bound to its store, stream and position**.
///
/// `apply` must be deterministic. When it returns `Err` the event is not written; the actor
/// is then rebuilt from the durable log (newest snapshot plus replay), so an `apply` that
/// changed something before refusing leaves no trace.
///
/// Rollback rebuilds rather than restores a copy. After a refused event the rebuilt state goes
/// through [`update`](Self::update) (so an `update` that keeps non-persisted fields keeps
/// them). After a failed write or a conflict the journal rebuilds the actor itself: fields
/// outside the persisted state (`#[borsh(skip)]`) then hold the value they had when the store
/// started (replay from the initial state) or their `Default` (a snapshot was loaded).
#[async_trait]
pub trait PersistentActor:
    Actor<Event: BorshSerialize + BorshDeserialize>
    + Handler<Self>
    + Clone
    + BorshSerialize
    + BorshDeserialize
{
    /// The strategy: [`LightPersistence`](crate::store::LightPersistence) or
    /// [`FullPersistence`](crate::store::FullPersistence).
    type Persistence: Persistence;

    /// What [`create_initial`](Self::create_initial) takes (`()` when nothing).
    type InitParams;

    /// The state of an actor whose stream holds nothing; also the base a replay without a
    /// snapshot starts from.
    fn create_initial(params: Self::InitParams) -> Self;

    /// The actor, wrapped as the actor system requires for a persistent actor.
    fn initial(params: Self::InitParams) -> InitializedActor<Self> {
        InitializedActor(Self::create_initial(params))
    }

    /// Applies one event to the in-memory state. Deterministic; `Err` refuses the event.
    fn apply(&mut self, event: &Self::Event) -> Result<(), ActorError>;

    /// Replaces the state with a recovered (or rebuilt) one. Default: `*self = state`.
    fn update(&mut self, state: Self) {
        *self = state;
    }

    /// Full persistence: snapshot after every `n` events (`None`: only on demand).
    /// Default: `Some(100)`.
    fn snapshot_every() -> Option<u64> {
        Some(100)
    }

    /// Delete the events a durable snapshot covers. Default: `false`.
    fn compact_on_snapshot() -> bool {
        false
    }

    /// The type version written with every new event (schema evolution: a stored event with
    /// another version goes to [`upcast_event`](Self::upcast_event)). Default: 1.
    const EVENT_VERSION: u32 = 1;

    /// The type version written with every new snapshot (a stored snapshot with another
    /// version goes to [`upcast_snapshot`](Self::upcast_snapshot)). Default: 1.
    const SNAPSHOT_VERSION: u32 = 1;

    /// Reads an event payload (borsh) written with an older `version`. Default: refuses, and
    /// recovery fails with a typed error rather than guessing.
    fn upcast_event(version: u32, payload: &[u8]) -> Result<Self::Event, UpcastError> {
        let _ = payload;
        Err(UpcastError::UnknownVersion(version))
    }

    /// Reads a snapshot payload (borsh) written with an older `version`. Default: refuses;
    /// recovery then falls back to an older snapshot or a full replay (an error only if the
    /// events it covers were compacted).
    fn upcast_snapshot(version: u32, payload: &[u8]) -> Result<Self, UpcastError> {
        let _ = payload;
        Err(UpcastError::UnknownVersion(version))
    }

    /// How many snapshots to keep (`None`: all). Default: `None`, which keeps one for Light
    /// persistence (it writes a snapshot with every event) and all for Full. Light prunes once
    /// every 16 events, so up to 16 superseded snapshots exist between prunings.
    fn keep_snapshots() -> Option<usize> {
        None
    }

    /// Applies `event` and records it durably. On `Err` the actor is as before (see the
    /// trait documentation for what each failure means).
    ///
    /// Called as ave-actors-store's (`self.persist(&event, ctx).await?`). Unlike the trait's
    /// other async methods it returns its future unboxed: a persist costs no allocation of
    /// its own.
    fn persist(
        &mut self,
        event: &Self::Event,
        ctx: &mut ActorContext<Self>,
    ) -> impl std::future::Future<Output = Result<(), ActorError>> + Send {
        async move { ops::persist(self, event, ctx).await.map_err(Into::into) }
    }

    /// Writes a snapshot of the current state now (this clones the actor once). Refused
    /// ([`AdapterError::StateUnknown`](crate::AdapterError::StateUnknown)) while the state may
    /// differ from the durable one — after a persist whose outcome stayed unknown, or a `Recover`
    /// or `Purge` by the store — until the next persist recovers the durable state into it.
    async fn snapshot(&self, ctx: &mut ActorContext<Self>) -> Result<(), ActorError> {
        ops::snapshot(self, ctx).await.map_err(Into::into)
    }

    /// Opens store `name` on `manager` and recovers the persisted state into `self`; call it
    /// from `pre_start`. `prefix` stands in for the actor's path in the stream id; `key_box`
    /// encrypts every record. Fails — never starts fresh — when the stream cannot be read.
    ///
    /// `manager` is any ave [`DbManager`]: this crate's managers keep their own backend; any
    /// other (the application's own, ave-actors-sqlite's, ave-actors-store's memory manager)
    /// runs persevere's journal over its collections (see [`Manager::resolve`]). What
    /// ave-actors-store itself wrote there for this store (its `{name}_events` and
    /// `{name}_states` tables under the prefix, or the last segment of the actor's path) is
    /// migrated into the actor's stream the first time it starts, with the state ave would
    /// recover (the whole log when every event is still there, else its snapshot and the
    /// events after it); ave's tables are left as they were. Data that cannot be migrated
    /// (a wrong key, a gap) fails the start with [`AdapterError::Migrate`](crate::AdapterError::Migrate).
    async fn start_store<C: Collection, S: State>(
        &mut self,
        name: &str,
        prefix: Option<String>,
        ctx: &mut ActorContext<Self>,
        manager: impl DbManager<C, S> + 'static,
        key_box: Option<ave_actors_actor::EncryptedKey>,
    ) -> Result<(), ActorError> {
        let keys = key_box.as_ref().map(SealingKeys::try_from).transpose()?;
        let (manager, migrated) = match Manager::ours(&manager) {
            Some(ours) => (ours, Vec::new()),
            None => {
                // A foreign manager may hold what ave-actors-store wrote for this store.
                let scope = prefix.clone().unwrap_or_else(|| ctx.path().to_string());
                let stream = ops::stream_id(&scope, name)?;
                let legacy = if legacy::needs_reading(&manager, &stream)? {
                    let legacy_prefix = prefix.clone().unwrap_or_else(|| ctx.path().key());
                    legacy::read::<Self, C, S>(&manager, name, &legacy_prefix, key_box.as_ref())?
                } else {
                    None
                };
                let migrated = match legacy {
                    None => Vec::new(),
                    Some(legacy) => {
                        let plan = legacy.plan(self)?;
                        legacy::prepare(&manager, &stream, "", keys.as_ref(), plan)?
                    }
                };
                (Manager::from_db(manager), migrated)
            }
        };
        ops::start_store_migrating(self, name, prefix, ctx, manager, keys, migrated)
            .await
            .map_err(Into::into)
    }
}
