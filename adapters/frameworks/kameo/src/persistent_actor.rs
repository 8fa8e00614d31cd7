//! The kameo-persistence API: actors restored from a snapshot under a URL key.
//!
//! Every public item of kameo-persistence 0.1 is here with the same name, path and meaning
//! (the trait's methods, their `anyhow::Result` return types, `#[derive(PersistentActor)]`
//! with `#[snapshot(Type)]`, [`BiHashMap`](crate::BiHashMap), the `tracing` feature), so an
//! application moves over by replacing `kameo_persistence` with `persevere_kameo` in its
//! imports (and moving to kameo 0.22).
//!
//! # Keys
//!
//! A `file:///DIR/KEY` key is the directory `/DIR/KEY`, the key's own, as in kameo-persistence
//! (see [`locate_key`](crate::locate_key)): the key's file store lives there, so keys may nest
//! and two processes can each use their own keys of one parent directory. Relative keys
//! (`file://HOST/…`; [`parse_key`](crate::parse_key) refuses `file:relative` text) and the
//! root directory are refused. `memory://`, `sqlite://` and `postgres://` keys, and schemes an
//! application registers, name a store and a stream (`SCHEME://STORE/STREAM`).
//!
//! # Existing kameo-persistence data
//!
//! kameo-persistence keeps a key's snapshot in `DIR/KEY/index.bin`. The first time a key is
//! opened (by any method: a spawn, a respawn, a save, `try_read`, `try_write`), that snapshot
//! is imported: its bytes are copied to `index.bin.imported` (kept, never deleted), the
//! snapshot is saved in the key's journal, and then `index.bin` is removed. A snapshot that
//! cannot be read or decoded is [`Error::Import`] — `try_respawn_persistent` never starts a
//! fresh actor beside it — and an `index.bin` that appears beside persevere state later (say,
//! written by a kameo-persistence process after the import) is [`Error::ImportConflict`],
//! never ignored. A crash during an import is finished at the next open.
//!
//! # Where this differs from kameo-persistence, and why
//!
//! - Snapshots are durable (fsync) and atomic before `save_snapshot` returns, checksummed,
//!   written on the blocking pool; older snapshots are deleted only after the newest is
//!   durable. kameo-persistence's plain `fs::write` can leave a torn snapshot after a crash.
//! - An unreadable key is an error from every method; kameo-persistence's
//!   `try_respawn_persistent` starts a fresh actor and overwrites the key.
//! - One key has at most one live actor: `spawn_persistent` and `register_persistent` of a key
//!   whose actor lives fail with [`Error::KeyInUse`] (kameo-persistence replaces the old
//!   registration, leaving two live actors writing one key), and `respawn_persistent` returns
//!   the live actor, also when called concurrently (kameo-persistence's can return a stopped
//!   one). Stopped actors leave the registry; only their keys stay known to
//!   `persistence_key`, one entry per key, replaced when the key is used again.
//! - A derived actor's first snapshot is stored by `spawn_persistent` itself (see
//!   [`save_spawned`](PersistentActor::save_spawned)), so the key can be respawned at once.
//! - The registry, `try_read` and `try_write` are provided methods here, and spawning and
//!   saving go through the key's journal, not through them: overriding them in a hand-written
//!   impl changes what direct calls see, not where the actor's snapshots are kept. Storage is
//!   chosen by the key's scheme ([`register_scheme`](crate::register_scheme)).
//! - Each `file` key's directory holds a store of its own (two file descriptors while open).
//!   Once its actor is gone it stays open among at most
//!   [`IDLE_KEY_STORES`](crate::IDLE_KEY_STORES) idle stores (a quick respawn does not reopen
//!   it), and is then closed; [`wait_key_closed`] closes it at once.
//! - Errors are `anyhow::Error`s, as in kameo-persistence, holding a typed [`Error`]:
//!   `error.downcast_ref::<persevere_kameo::Error>()` tells what happened.

use std::future::Future;

use kameo::actor::ActorRef;
use kameo::Actor;
use serde::de::DeserializeOwned;
use serde::Serialize;
use url::Url;

use crate::error::Error;
use crate::keyed::{self, Mode};
use crate::registry;

/// Asks a [`PersistentActor`] to save its snapshot now; the reply is the outcome of
/// [`PersistentActor::save_snapshot`], or [`Error::NotPersistent`] for an actor that has no
/// key. `#[derive(PersistentActor)]` implements the message.
///
/// ```no_run
/// # use persevere_kameo::{PersistentActor, SaveSnapshot};
/// # async fn f<A: PersistentActor + kameo::message::Message<SaveSnapshot>>(actor_ref: kameo::actor::ActorRef<A>) {
/// actor_ref.ask(SaveSnapshot).await.expect("saved");
/// # }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SaveSnapshot;

/// A kameo actor whose snapshot is kept under a URL key (`file:///…`, `memory://…`, or any
/// scheme registered with [`register_scheme`](crate::register_scheme)): the API of
/// kameo-persistence, with the same names and signatures (see the [module](self) docs for
/// keys, the import of kameo-persistence's files and the differences).
///
/// Derive it with `#[derive(PersistentActor)]`: the snapshot type is the actor's `Args`, or
/// the type named by `#[snapshot(Type)]`; it converts from `&Self` and into `Args`.
///
/// Snapshots are taken when the actor calls `save_snapshot` (or is sent [`SaveSnapshot`]), as
/// in kameo-persistence: a snapshot is built with `From<&Self>`, which may read live state (the
/// quick start's manager asks for its sub-actors' keys), so it is never taken behind the actor's
/// back, say when it stops. For state where every change must survive, use
/// [`Journaled`](crate::Journaled), which persists each change as an event.
///
/// ```
/// use kameo::prelude::*;
/// use persevere_kameo::PersistentActor;
/// use serde::{Deserialize, Serialize};
/// use url::Url;
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
///     type Reply = anyhow::Result<()>;
///     async fn handle(&mut self, SetTheme(theme): SetTheme, ctx: &mut Context<Self, Self::Reply>) -> Self::Reply {
///         self.theme = theme;
///         self.save_snapshot(ctx.actor_ref()).await
///     }
/// }
///
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
/// let dir = tempfile::tempdir()?;
/// let key = Url::from_directory_path(dir.path().join("settings")).unwrap();
/// let settings: anyhow::Result<ActorRef<Settings>> =
///     Settings::spawn_persistent(key.clone(), Settings { theme: "light".into() }).await;
/// let settings = settings?;
/// settings.ask(SetTheme("dark".into())).await.map_err(|e| anyhow::anyhow!("{e}"))?;
/// assert_eq!(Settings::persistence_key(&settings), Some(key.clone()));
/// settings.stop_gracefully().await?;
/// settings.wait_for_shutdown().await;
///
/// // The key is a directory of its own, holding its store.
/// assert!(dir.path().join("settings").is_dir());
/// let restored = Settings::respawn_persistent(key).await?;
/// # Ok::<(), anyhow::Error>(())
/// # }).unwrap();
/// ```
pub trait PersistentActor: Actor {
    /// What is stored: taken from the actor, turned into its `Args` to restore it.
    type Snapshot: Clone
        + Send
        + Sync
        + Serialize
        + DeserializeOwned
        + Into<<Self as Actor>::Args>
        + for<'a> From<&'a Self>
        + 'static;

    /// Registers a running actor (spawned with kameo's plain `spawn`) under `persistence_key`:
    /// from now on its `save_snapshot` writes to the key. Synchronous, as in kameo-persistence.
    ///
    /// Fails while a live actor owns the key ([`Error::KeyInUse`]: kameo-persistence would
    /// replace that registration and leave two actors writing one key), when the actor is
    /// registered under another key, and outside a tokio runtime. The key's journal is opened
    /// at the first save (importing a kameo-persistence snapshot found in its directory).
    fn register_persistent(persistence_key: Url, actor_ref: &ActorRef<Self>) -> anyhow::Result<()> {
        keyed::register(persistence_key, actor_ref).map_err(anyhow::Error::from)
    }

    /// The key of an actor spawned (or registered) through this API. It stays known after the
    /// actor stops, as in kameo-persistence (a manager saving while its sub-actors are stopped
    /// keeps their keys), until another actor takes the key: one entry per key.
    fn persistence_key(actor_ref: &ActorRef<Self>) -> Option<Url> {
        registry::key_of(actor_ref.id())
    }

    /// The live actor of `persistence_key`, if there is one. Synchronous, as in
    /// kameo-persistence; another spelling of the same key (a `file` key with or without its
    /// trailing `/`) finds the same actor.
    fn lookup_persistent(persistence_key: &Url) -> Option<ActorRef<Self>> {
        registry::lookup(persistence_key)
    }

    /// Stores a snapshot of this actor (call it from a handler with `ctx.actor_ref()`). Once it
    /// returns `Ok` the snapshot is durable. An actor without a key has nothing to save to:
    /// `Ok(())`, as in kameo-persistence (the [`SaveSnapshot`] message answers
    /// [`Error::NotPersistent`] instead).
    fn save_snapshot(
        &self,
        actor_ref: &ActorRef<Self>,
    ) -> impl Future<Output = anyhow::Result<()>> + Send {
        let id = actor_ref.id();
        let snapshot = registry::key_of(id).map(|_| Self::Snapshot::from(self));
        async move {
            let Some(snapshot) = snapshot else {
                tracing::trace!(actor = %keyed::describe::<Self>(id), "the actor has no key; nothing saved");
                return Ok(());
            };
            keyed::save::<Self>(id, snapshot).await?;
            Ok(())
        }
    }

    /// Spawns a new actor with `args` under `persistence_key`. A derived actor's first
    /// snapshot is stored before this returns ([`save_spawned`](Self::save_spawned)),
    /// replacing what the key held. Fails with [`Error::KeyInUse`] while a live actor owns the
    /// key, and with a recovery error when the key's store is unreadable.
    fn spawn_persistent(
        persistence_key: Url,
        args: <Self as Actor>::Args,
    ) -> impl Future<Output = anyhow::Result<ActorRef<Self>>> + Send {
        async move { Ok(keyed::start::<Self>(persistence_key, Mode::Spawn(args)).await?) }
    }

    /// The live actor of the key, or a new one restored from its newest snapshot. Fails with
    /// [`Error::NotFound`] when nothing is stored under the key, and with a recovery or import
    /// error when what is stored cannot be read.
    fn respawn_persistent(
        persistence_key: Url,
    ) -> impl Future<Output = anyhow::Result<ActorRef<Self>>> + Send {
        async move { Ok(keyed::start::<Self>(persistence_key, Mode::Respawn).await?) }
    }

    /// Like [`respawn_persistent`](Self::respawn_persistent), but spawns a fresh actor with
    /// `args` when nothing is stored under the key. Anything stored that cannot be read is an
    /// error: the key is never overwritten with fresh state — nor when nothing readable is
    /// stored but the store set aside data naming the key's stream when it opened
    /// ([`Error::Repaired`]; see [`key_repairs`](crate::key_repairs)): spawn deliberately with
    /// [`spawn_persistent`](Self::spawn_persistent) then.
    fn try_respawn_persistent(
        persistence_key: Url,
        args: <Self as Actor>::Args,
    ) -> impl Future<Output = anyhow::Result<ActorRef<Self>>> + Send {
        async move { Ok(keyed::start::<Self>(persistence_key, Mode::TryRespawn(args)).await?) }
    }

    /// The key's newest snapshot, encoded as kameo-persistence stores it (postcard): from the
    /// journal of its live or stopping actor (so an actor may read its own key from its
    /// `on_stop`), or read from the key's store. [`Error::NotFound`] when nothing is stored.
    fn try_read(persistence_key: &Url) -> impl Future<Output = anyhow::Result<Vec<u8>>> + Send {
        let key = persistence_key.clone();
        async move {
            let snapshot = keyed::read::<Self>(&key).await?;
            Ok(postcard::to_stdvec(&snapshot)?)
        }
    }

    /// Stores `snapshot` as the key's newest (durable when it returns `Ok`): through the
    /// journal of its live or stopping actor (so an actor may write its own key from its
    /// `on_stop`), or straight into the key's store. A key with no actor is claimed for the
    /// write, so a concurrent spawn of it waits or fails rather than races.
    fn try_write(
        persistence_key: &Url,
        snapshot: Self::Snapshot,
    ) -> impl Future<Output = anyhow::Result<()>> + Send {
        let key = persistence_key.clone();
        async move { Ok(keyed::store::<Self>(&key, snapshot).await?) }
    }

    /// Stores the first snapshot of an actor `spawn_persistent` (or `try_respawn_persistent`
    /// with nothing stored) has just started, and returns whether it did.
    /// `#[derive(PersistentActor)]` asks the actor for it with [`SaveSnapshot`]; the default,
    /// for a hand-written impl, stores nothing, as kameo-persistence does: the key is then
    /// written by the actor's first `save_snapshot`.
    fn save_spawned(
        actor_ref: &ActorRef<Self>,
    ) -> impl Future<Output = Result<bool, Error>> + Send {
        let _ = actor_ref;
        async { Ok(false) }
    }
}

/// Waits until `key` has no live or stopping actor and, for a `file` key, closes its store if
/// it is idle and waits until it is closed (the key's directory is then untouched by this
/// process until the key is used again), e.g. before copying or inspecting the directory.
/// Returns `false` at once while a live actor owns the key, and [`Error::Storage`] naming the
/// store when something keeps it open past
/// [`RELEASE_PATIENCE`](persevere_driver::RELEASE_PATIENCE) after its last handle is gone.
///
/// Without it, the store of a `file` key whose actor is gone stays open among at most
/// [`IDLE_KEY_STORES`](crate::IDLE_KEY_STORES) idle ones, then closes by itself (its lock and
/// file descriptors are released), unless a [`Journaled`](crate::Journaled) key names the
/// same store.
///
/// ```
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
/// let dir = tempfile::tempdir()?;
/// let key = url::Url::from_file_path(dir.path().join("k")).unwrap();
/// assert!(persevere_kameo::persistent_actor::wait_key_closed(&key).await?);
/// # Ok::<(), anyhow::Error>(())
/// # }).unwrap();
/// ```
pub async fn wait_key_closed(key: &Url) -> Result<bool, Error> {
    keyed::wait_closed(key).await
}

/// Saves `actor`'s snapshot for the [`SaveSnapshot`] message: [`Error::NotPersistent`] when it
/// has no key. Used by `#[derive(PersistentActor)]`.
#[doc(hidden)]
pub async fn save_for_message<A: PersistentActor>(
    actor: &A,
    actor_ref: &ActorRef<A>,
) -> Result<(), Error> {
    let id = actor_ref.id();
    if registry::key_of(id).is_none() {
        return Err(Error::NotPersistent(keyed::describe::<A>(id)));
    }
    let snapshot = A::Snapshot::from(actor);
    match keyed::save::<A>(id, snapshot).await? {
        true => Ok(()),
        false => Err(Error::NotPersistent(keyed::describe::<A>(id))),
    }
}

/// Asks a freshly spawned derived actor for its first snapshot. Used by
/// `#[derive(PersistentActor)]`.
#[doc(hidden)]
pub async fn ask_first_snapshot<A>(actor_ref: &ActorRef<A>) -> Result<bool, Error>
where
    A: PersistentActor + kameo::message::Message<SaveSnapshot, Reply = Result<(), Error>>,
{
    match actor_ref.ask(SaveSnapshot).await {
        Ok(()) => Ok(true),
        Err(kameo::error::SendError::HandlerError(error)) => Err(error),
        Err(other) => Err(match A::persistence_key(actor_ref) {
            Some(key) => Error::Send {
                key,
                reason: other.to_string(),
            },
            None => Error::NotPersistent(keyed::describe::<A>(actor_ref.id())),
        }),
    }
}
