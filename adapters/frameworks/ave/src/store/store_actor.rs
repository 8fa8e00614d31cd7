//! The child `store` actor: it ties a store's lifetime to its actor's, snapshots a Full store
//! when it stops, and answers ave-actors-store's [`StoreCommand`]s.

use async_trait::async_trait;
use ave_actors_actor::{
    Actor, ActorContext, ActorPath, Error as ActorError, Handler, Message, NotPersistentActor,
    Response,
};

use crate::error::AdapterError;
use crate::store::ops::SharedSlot;
use crate::store::persistent_actor::PersistentActor;
use crate::store::registry::Registry;

/// Events of the [`Store`] actor, as in ave-actors-store.
pub use ave_actors_store::store::StoreEvent;

/// The child actor `store` of every persistent actor (`ctx.get_child::<Store<Self>>("store")`,
/// as with ave-actors-store): ave stops it with its parent, and its stop (or drop) snapshots a
/// Full store that has events after its newest snapshot, then releases the store and the
/// stream it owns **before the stop is acknowledged** — the stream (and a file or database
/// manager nobody else holds) is free as soon as the parent's stop returns.
///
/// It answers [`StoreCommand`]s. Unlike ave-actors-store's, it does not persist: the persist
/// commands are refused with an error, because here `persist` lends the actor itself to the
/// journal (no clone, one atomic write) — call [`PersistentActor::persist`] instead.
pub struct Store<P: PersistentActor> {
    pub(crate) registry: Registry,
    pub(crate) parent: ActorPath,
    pub(crate) id: u64,
    pub(crate) _actor: std::marker::PhantomData<fn() -> P>,
}

impl<P: PersistentActor> Store<P> {
    fn slot(&self) -> Result<std::sync::Arc<SharedSlot<P>>, ActorError> {
        self.registry
            .get::<SharedSlot<P>>(&self.parent)
            .ok_or_else(|| {
                AdapterError::NotStarted {
                    path: self.parent.to_string(),
                }
                .into()
            })
    }
}

/// Commands of the [`Store`] actor: ave-actors-store's, with the same variants and meaning
/// (event numbers count from 0, as there; the journal's seqs count from 1). Not
/// `#[non_exhaustive]`: it mirrors ave-actors-store's enum, which code matches exhaustively.
#[derive(Debug, Clone)]
pub enum StoreCommand<P, E> {
    /// Refused: persist through [`PersistentActor::persist`].
    Persist(E),
    /// Refused: persist through [`PersistentActor::persist`].
    PersistFullEvent {
        /// The event.
        event: E,
        /// Snapshot cadence.
        snapshot_every: Option<u64>,
    },
    /// Refused: persist through [`PersistentActor::persist`].
    PersistFull {
        /// The event.
        event: E,
        /// The state.
        actor: P,
        /// Snapshot cadence.
        snapshot_every: Option<u64>,
    },
    /// Refused: persist through [`PersistentActor::persist`].
    PersistLight(E, P),
    /// Snapshot the supplied state now (it must be the actor's current state).
    Snapshot(P),
    /// Delete the events the newest snapshot covers.
    Compact,
    /// The newest event.
    LastEvent,
    /// The number of events ever persisted (the next event's number).
    LastEventNumber,
    /// Every event from event number `from` (counting from 0) to the end.
    LastEventsFrom(u64),
    /// The events numbered `from..=to` (counting from 0) that exist.
    GetEvents {
        /// The first event number.
        from: u64,
        /// The last event number.
        to: u64,
    },
    /// The durable state (newest snapshot plus replay). The live actor takes the durable state
    /// again before its next persist.
    Recover,
    /// Delete every event and snapshot: the next start recovers the initial state, and the
    /// live actor goes on from it at its next persist (under Light too, whose snapshot at the
    /// head the purge replaces).
    Purge,
}

impl<P, E> Message for StoreCommand<P, E>
where
    P: PersistentActor,
    E: Clone + Send + Sync + 'static,
{
}

/// Answers of the [`Store`] actor, as in ave-actors-store (not `#[non_exhaustive]`, as
/// there, so exhaustive matches compile).
#[derive(Debug, Clone)]
pub enum StoreResponse<P: PersistentActor> {
    /// Done, no payload.
    None,
    /// Not sent by this crate (persists go through `PersistentActor::persist`).
    Persisted,
    /// Not sent by this crate (snapshots are taken by the journal).
    SnapshotRequired,
    /// A snapshot was written.
    Snapshotted,
    /// Covered events were deleted.
    Compacted,
    /// The recovered state (`None` when the stream holds nothing).
    State(Option<P>),
    /// The newest event (`None` when there is none).
    LastEvent(Option<P::Event>),
    /// The number of events ever persisted.
    LastEventNumber(u64),
    /// Events of a range.
    Events(Vec<P::Event>),
}

impl<P: PersistentActor> Response for StoreResponse<P> {}

impl<P: PersistentActor> NotPersistentActor for Store<P> {}

#[async_trait]
impl<P: PersistentActor> Actor for Store<P> {
    type Message = StoreCommand<P, P::Event>;
    type Event = StoreEvent;
    type Response = StoreResponse<P>;

    fn get_span(id: &str, parent: Option<tracing::Span>) -> tracing::Span {
        tracing::debug_span!(parent: parent.and_then(|span| span.id()), "store", id)
    }

    /// Snapshots a Full store with events after its newest snapshot (so the next start
    /// replays nothing), then releases the store before the stop is acknowledged.
    async fn post_stop(&mut self, _ctx: &mut ActorContext<Self>) -> Result<(), ActorError> {
        if let Ok(slot) = self.slot() {
            let mut slot = slot.lock_other().await;
            if let Err(error) = slot.snapshot_if_behind().await {
                tracing::warn!(actor = %self.parent, %error, "snapshot at stop failed");
            }
        }
        self.registry.release(&self.parent, self.id);
        Ok(())
    }
}

#[async_trait]
impl<P: PersistentActor> Handler<Store<P>> for Store<P> {
    async fn handle_message(
        &mut self,
        _sender: ActorPath,
        msg: StoreCommand<P, P::Event>,
        _ctx: &mut ActorContext<Store<P>>,
    ) -> Result<StoreResponse<P>, ActorError> {
        let slot = self.slot()?;
        let mut slot = slot.lock_other().await;
        let numbered = |from: u64| from.saturating_add(1);
        Ok(match msg {
            StoreCommand::Persist(_)
            | StoreCommand::PersistFullEvent { .. }
            | StoreCommand::PersistFull { .. }
            | StoreCommand::PersistLight(..) => {
                return Err(ActorError::StoreOperation {
                    operation: "persist".into(),
                    reason: format!(
                        "the store of {} does not persist on its own: call PersistentActor::persist, which applies and writes in one step",
                        self.parent
                    ),
                })
            }
            StoreCommand::Snapshot(state) => {
                slot.snapshot(state).await?;
                StoreResponse::Snapshotted
            }
            StoreCommand::Compact => {
                slot.compact().await?;
                StoreResponse::Compacted
            }
            StoreCommand::LastEvent => {
                let last = slot.last_seq();
                StoreResponse::LastEvent(slot.events(last, last).await?.pop())
            }
            StoreCommand::LastEventNumber => StoreResponse::LastEventNumber(slot.last_seq()),
            StoreCommand::LastEventsFrom(from) => {
                let last = slot.last_seq();
                StoreResponse::Events(slot.events(numbered(from), last).await?)
            }
            StoreCommand::GetEvents { from, to } => {
                StoreResponse::Events(slot.events(numbered(from), numbered(to)).await?)
            }
            StoreCommand::Recover => StoreResponse::State(slot.recovered().await?),
            StoreCommand::Purge => {
                slot.purge().await?;
                StoreResponse::None
            }
        })
    }
}

impl<P: PersistentActor> Drop for Store<P> {
    fn drop(&mut self) {
        tracing::debug!(actor = %self.parent, "store released");
        self.registry.release(&self.parent, self.id);
    }
}
