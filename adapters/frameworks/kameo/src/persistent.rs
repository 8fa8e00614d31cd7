//! The kameo-persistence API: actors restored from a snapshot under a URL key.

use std::any::Any;
use std::future::Future;
use std::sync::Arc;

use kameo::actor::{ActorId, ActorRef, Spawn, WeakActorRef};
use kameo::error::SendError;
use kameo::message::Message;
use kameo::Actor;
use persevere_core::{Entity, Journal, JournalConfig, Json, Strategy};
use persevere_driver::Driver;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use url::Url;

use crate::error::Error;
use crate::registry::{self, Registered};
use crate::scheme;

/// Asks a [`PersistentActor`] to save its snapshot now; the reply is the outcome of
/// [`PersistentActor::save_snapshot`]. `#[derive(PersistentActor)]` implements the message.
///
/// ```no_run
/// # use persevere_kameo::{PersistentActor, SaveSnapshot};
/// # async fn f<A: PersistentActor>(actor_ref: kameo::actor::ActorRef<A>) {
/// actor_ref.ask(SaveSnapshot).await.expect("saved");
/// # }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SaveSnapshot;

/// A kameo actor whose snapshot is kept under a URL key (`file:///…`, `memory://…`, or any
/// scheme registered with [`register_scheme`](crate::register_scheme)): the API of
/// kameo-persistence, with the same names.
///
/// Derive it with `#[derive(PersistentActor)]`: the snapshot type is the actor's `Args`, or
/// the type named by `#[snapshot(Type)]`; it converts from `&Self` and into `Args`.
///
/// Unlike a plain file write, every snapshot goes into the actor's journal: written on the
/// blocking pool, durable (fsync) and atomic before `save_snapshot` returns, framed with a
/// header, a type version and a checksum, and older snapshots are deleted only after the new one
/// is durable. A key is written when the actor is spawned, so it can be respawned at once. A
/// corrupt or unreadable key is an error from `respawn_persistent` and
/// `try_respawn_persistent`, never a fresh actor that overwrites it. One key has at most one
/// live actor in the process: `respawn_persistent` of a key whose actor lives returns that
/// actor, also when called concurrently. Entries of stopped actors are swept from the registry.
///
/// Snapshots are taken when the actor calls `save_snapshot` (or is sent [`SaveSnapshot`]), as
/// in kameo-persistence: a snapshot is built with `From<&Self>`, which may read live state (the
/// quick start's manager asks for its sub-actors' keys), so it is never taken behind the actor's
/// back, say when it stops. For state where every change must survive, use
/// [`Journaled`](crate::Journaled), which persists each change as an event.
///
/// ```
/// use kameo::prelude::*;
/// use persevere_kameo::{PersistentActor, Url};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Debug, Clone, Actor, Serialize, Deserialize, PersistentActor)]
/// struct Settings { theme: String }
///
/// impl From<&Settings> for Settings {
///     fn from(actor: &Settings) -> Self { actor.clone() }
/// }
///
/// struct SetTheme(String);
///
/// impl Message<SetTheme> for Settings {
///     type Reply = Result<(), persevere_kameo::Error>;
///     async fn handle(&mut self, SetTheme(theme): SetTheme, ctx: &mut Context<Self, Self::Reply>) -> Self::Reply {
///         self.theme = theme;
///         self.save_snapshot(ctx.actor_ref()).await
///     }
/// }
///
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
/// let key = Url::parse("memory://doc-persistent/settings").unwrap();
/// let settings = Settings::spawn_persistent(key.clone(), Settings { theme: "light".into() }).await?;
/// settings.ask(SetTheme("dark".into())).await.unwrap();
/// assert_eq!(Settings::persistence_key(&settings), Some(key.clone()));
/// settings.stop_gracefully().await.unwrap();
/// settings.wait_for_shutdown().await;
///
/// let restored = Settings::respawn_persistent(key).await?;
/// # Ok::<(), persevere_kameo::Error>(())
/// # }).unwrap();
/// ```
pub trait PersistentActor:
    Actor + Message<SaveSnapshot, Reply = Result<(), Error>> + Sized
{
    /// What is stored: taken from the actor, turned into its `Args` to restore it.
    type Snapshot: Clone
        + Send
        + Sync
        + Serialize
        + DeserializeOwned
        + Into<Self::Args>
        + for<'a> From<&'a Self>
        + 'static;

    /// Spawns a new actor with `args` under `key` and stores its first snapshot before
    /// returning (replacing what the key held). Fails with [`Error::KeyInUse`] while a live
    /// actor owns the key, and with a recovery error when the key's store is unreadable.
    fn spawn_persistent(
        persistence_key: Url,
        args: Self::Args,
    ) -> impl Future<Output = Result<ActorRef<Self>, Error>> + Send {
        start::<Self>(persistence_key, Mode::Spawn(args))
    }

    /// The live actor of `key`, or a new one restored from its newest snapshot. Fails with
    /// [`Error::NotFound`] when nothing is stored under the key, and with a recovery error when
    /// what is stored cannot be read.
    fn respawn_persistent(
        persistence_key: Url,
    ) -> impl Future<Output = Result<ActorRef<Self>, Error>> + Send {
        start::<Self>(persistence_key, Mode::Respawn)
    }

    /// Like [`respawn_persistent`](Self::respawn_persistent), but spawns a fresh actor with
    /// `args` when nothing is stored under the key. Anything stored that cannot be read is an
    /// error: the key is never overwritten with fresh state — nor when nothing readable is
    /// stored but the store set aside data naming the key's stream when it opened
    /// ([`Error::Repaired`]; see [`repairs`](crate::repairs)): spawn deliberately with
    /// [`spawn_persistent`](Self::spawn_persistent) then.
    fn try_respawn_persistent(
        persistence_key: Url,
        args: Self::Args,
    ) -> impl Future<Output = Result<ActorRef<Self>, Error>> + Send {
        start::<Self>(persistence_key, Mode::TryRespawn(args))
    }

    /// Stores a snapshot of this actor (call it from a handler with `ctx.actor_ref()`). Once it
    /// returns `Ok` the snapshot is durable.
    fn save_snapshot(
        &self,
        actor_ref: &ActorRef<Self>,
    ) -> impl Future<Output = Result<(), Error>> + Send {
        let id = actor_ref.id();
        let snapshot = Self::Snapshot::from(self);
        save::<Self>(id, snapshot)
    }

    /// The key of an actor spawned through this API, while it is registered.
    fn persistence_key(actor_ref: &ActorRef<Self>) -> Option<Url> {
        registry::key_of(actor_ref.id())
    }
}

/// The stored form of a snapshot-only actor: its newest snapshot. Each save is an event that
/// replaces it, written with a snapshot of the result in one atomic append.
#[derive(Serialize, Deserialize)]
#[serde(transparent)]
struct Saved<T>(Option<T>);

impl<T: Clone> Entity for Saved<T> {
    type Event = T;
    type Error = std::convert::Infallible;

    fn apply(&mut self, snapshot: &T) -> Result<(), Self::Error> {
        self.0 = Some(snapshot.clone());
        Ok(())
    }
}

/// Saves between two deletions of superseded records.
const SAVES_PER_CLEANUP: u64 = 16;

/// The journal configuration of a snapshot-only actor: each save is one atomic, durable write
/// of the snapshot with its event; every [`SAVES_PER_CLEANUP`] saves the older records are
/// deleted, so the key holds at most that many superseded snapshots besides the newest.
fn saved_config(stream: String) -> JournalConfig {
    JournalConfig::new(stream)
        .strategy(Strategy::Light)
        .compact_on_snapshot(true)
        .keep_snapshots(1)
        .housekeep_every(SAVES_PER_CLEANUP)
}

/// A registered actor: its weak reference and its journal.
struct Entry<A: PersistentActor> {
    actor: WeakActorRef<A>,
    driver: Driver<Saved<A::Snapshot>, Json>,
    state: Saved<A::Snapshot>,
    /// Becomes `true` once the actor has fully stopped and the entry is cleared.
    gone: watch::Receiver<bool>,
}

impl<A: PersistentActor> Registered for Entry<A> {
    fn is_alive(&self) -> bool {
        self.actor.is_alive()
    }

    fn actor_id(&self) -> ActorId {
        self.actor.id()
    }

    fn gone(&self) -> watch::Receiver<bool> {
        self.gone.clone()
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

enum Mode<Args> {
    Spawn(Args),
    Respawn,
    TryRespawn(Args),
}

async fn start<A: PersistentActor>(key: Url, mode: Mode<A::Args>) -> Result<ActorRef<A>, Error> {
    let slot = registry::slot(&key);
    let mut held = loop {
        let mut held = slot.lock().await;
        let Some(current) = held.as_mut() else {
            break held;
        };
        if current.is_alive() {
            let Some(entry) = current.as_any_mut().downcast_mut::<Entry<A>>() else {
                return Err(Error::KeyInUse(key));
            };
            if let Some(actor_ref) = entry.actor.upgrade().filter(ActorRef::is_alive) {
                return match mode {
                    Mode::Spawn(_) => Err(Error::KeyInUse(key)),
                    Mode::Respawn | Mode::TryRespawn(_) => {
                        tracing::trace!(%key, "the key's actor is alive");
                        Ok(actor_ref)
                    }
                };
            }
        }
        // The actor is stopping or stopped (its on_stop may still save), and its watcher has
        // not cleared the entry: wait for it.
        let stale = current.actor_id();
        let mut gone = current.gone();
        drop(held);
        tracing::debug!(%key, "waiting for the key's stopping actor");
        if gone.wait_for(|gone| *gone).await.is_err() {
            // The watcher ended without finishing (its runtime shut down): clear its entry.
            let mut held = slot.lock().await;
            if held.as_ref().is_some_and(|entry| entry.actor_id() == stale) {
                registry::unbind(stale);
                *held = None;
            }
        }
    };

    let (backend, stream) = scheme::resolve(&key).await?;
    // The recipe lets the driver build the journal again after a storage outage, so the key
    // goes on saving once the store is back (see `Driver::open_with`).
    let recipe = move || {
        Ok(Journal::<Saved<A::Snapshot>, Json>::new(
            saved_config(stream.clone()),
            || Saved(None),
        ))
    };
    let mut state = Saved(None);
    let driver = Driver::open_with(&backend, Box::new(recipe), &mut state)
        .await
        .map_err(|error| {
            tracing::error!(%key, %error, "stored snapshot unreadable");
            Error::journal(&key, error)
        })?;
    let (args, fresh) = match (mode, &state.0) {
        (Mode::Respawn, None) => return Err(Error::NotFound(key)),
        (Mode::TryRespawn(_), None) if set_aside(&driver) => {
            // Nothing readable is stored, but the store set aside bytes of this key's stream
            // when it opened (a torn last write, say): they may have been its only snapshot,
            // and a fresh actor would overwrite the key. Only an explicit spawn does that.
            tracing::error!(%key, "nothing readable under the key, but the store set aside data of its stream");
            return Err(Error::Repaired(key));
        }
        (Mode::Respawn | Mode::TryRespawn(_), Some(snapshot)) => (snapshot.clone().into(), false),
        (Mode::TryRespawn(args) | Mode::Spawn(args), _) => (args, true),
    };

    let prepared = A::prepare();
    let actor_ref = prepared.actor_ref().clone();
    let id = actor_ref.id();
    let (done, gone) = watch::channel(false);
    registry::bind(id, &key);
    *held = Some(Box::new(Entry::<A> {
        actor: actor_ref.downgrade(),
        driver,
        state,
        gone,
    }));
    drop(held);
    tracing::debug!(%key, fresh, actor = %id, "spawning persistent actor");
    let running = prepared.spawn(args);

    // Clears the entry once the actor has fully stopped (after its on_stop), so the registry
    // holds no dead actors and a respawn waiting for it can go ahead.
    let watched = Arc::downgrade(&slot);
    drop(slot);
    let watched_key = key.clone();
    tokio::spawn(async move {
        let _ = running.await;
        if let Some(slot) = watched.upgrade() {
            let mut held = slot.lock().await;
            if held.as_ref().is_some_and(|entry| entry.actor_id() == id) {
                *held = None;
            }
        }
        registry::unbind(id);
        registry::forget_if_unused(&watched_key);
        let _ = done.send(true);
    });

    actor_ref.wait_for_startup().await;
    let started = actor_ref
        .with_startup_result(|result| result.is_ok())
        .unwrap_or(false);
    if !started {
        return Err(Error::Start(key));
    }
    if fresh {
        if let Err(error) = actor_ref.ask(SaveSnapshot).await {
            tracing::error!(%key, ?error, "first snapshot failed; stopping the actor");
            actor_ref.kill();
            return Err(match error {
                SendError::HandlerError(error) => error,
                other => Error::Send {
                    key,
                    reason: other.to_string(),
                },
            });
        }
    }
    Ok(actor_ref)
}

/// Whether the store reported a repair naming this driver's stream (repairs naming no stream
/// do not count: they would block every new key of the store).
fn set_aside<S: Entity, C>(driver: &Driver<S, C>) -> bool
where
    C: persevere_core::Codec<S> + persevere_core::Codec<S::Event>,
{
    driver
        .repairs()
        .iter()
        .any(|repair| repair.streams.iter().any(|s| **s == *driver.stream()))
}

async fn save<A: PersistentActor>(id: ActorId, snapshot: A::Snapshot) -> Result<(), Error> {
    let not_persistent = || Error::NotPersistent(format!("{} {id}", <A as Actor>::name()));
    let key = registry::key_of(id).ok_or_else(not_persistent)?;
    let slot = registry::slot(&key);
    let mut held = slot.lock().await;
    let entry = held
        .as_mut()
        .and_then(|entry| entry.as_any_mut().downcast_mut::<Entry<A>>())
        .filter(|entry| entry.actor.id() == id)
        .ok_or_else(not_persistent)?;
    entry
        .driver
        .persist(snapshot, &mut entry.state)
        .await
        .map(drop)
        .map_err(|error| Error::journal(&key, error))
}
