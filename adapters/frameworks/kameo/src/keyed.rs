//! Snapshots under a key: the journals behind the kameo-persistence API, opened, imported
//! from kameo-persistence's files, written and read.

use std::any::Any;
use std::path::PathBuf;
use std::sync::Arc;

use kameo::actor::{ActorId, ActorRef, Spawn, WeakActorRef};
use kameo::Actor;
use persevere_core::{Entity, Journal, JournalConfig, Json, Strategy};
use persevere_driver::Driver;
use serde::{Deserialize, Serialize};
use tokio::sync::{watch, OwnedMutexGuard};
use url::Url;

use crate::error::Error;
use crate::legacy;
use crate::persistent_actor::PersistentActor;
use crate::registry::{self, Registered, Slot};
use crate::scheme;

/// The stored form of a snapshot-only actor: its newest snapshot. Each save is an event that
/// replaces it, written with a snapshot of the result in one atomic append.
#[derive(Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct Saved<T>(Option<T>);

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

/// A key's open journal and the newest snapshot in it.
struct Opened<T: Clone> {
    driver: Driver<Saved<T>, Json>,
    state: Saved<T>,
    /// Dropped after the driver (fields drop in order): closes a `file` key's store.
    _store: scheme::KeyStore,
}

/// A registered actor: its weak reference and, once opened, its key's journal.
struct Entry<A: PersistentActor> {
    actor: WeakActorRef<A>,
    /// Opened when the actor is spawned through the API, or at its first save when it was
    /// registered with `register_persistent`.
    opened: Option<Opened<A::Snapshot>>,
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

/// How an actor is started under a key.
pub(crate) enum Mode<Args> {
    /// With these args, replacing what the key held.
    Spawn(Args),
    /// From the key's newest snapshot; nothing stored is an error.
    Respawn,
    /// From the key's newest snapshot, or with these args when nothing is stored.
    TryRespawn(Args),
}

/// A key's slot, locked.
type Held = OwnedMutexGuard<Option<Box<dyn Registered>>>;

/// What [`settled_slot`] does when the key's actor of type `A` is stopping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stopping {
    /// Wait until it is gone (its `on_stop` may still save): another actor is to start.
    WaitUntilGone,
    /// Return its entry like a live actor's: a read or a write of the key goes through its
    /// journal, and may come from that very `on_stop`, which waiting would deadlock.
    UseEntry,
}

/// The key's slot, locked, once it holds no actor that is stopping (unless `stopping` says to
/// use one): either empty, or holding an actor of type `A` (returned when live). An actor of
/// another type is [`Error::KeyInUse`].
async fn settled_slot<A: PersistentActor>(
    key: &Url,
    stopping: Stopping,
) -> Result<(Slot, Held, Option<ActorRef<A>>), Error> {
    let slot = registry::slot(key);
    loop {
        let mut held = Arc::clone(&slot).lock_owned().await;
        let Some(current) = held.as_mut() else {
            return Ok((slot, held, None));
        };
        let alive = current.is_alive();
        match current.as_any_mut().downcast_mut::<Entry<A>>() {
            Some(entry) => {
                if let Some(actor_ref) = entry.actor.upgrade().filter(ActorRef::is_alive) {
                    return Ok((slot, held, Some(actor_ref)));
                }
                if stopping == Stopping::UseEntry {
                    return Ok((slot, held, None));
                }
            }
            None if alive => return Err(Error::KeyInUse(key.clone())),
            None => {}
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
                *held = None;
            }
        }
    }
}

/// The entry of type `A` in a locked slot.
fn entry_of<A: PersistentActor>(held: &mut Held) -> Option<&mut Entry<A>> {
    held.as_mut()?.as_any_mut().downcast_mut::<Entry<A>>()
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

/// Opens the key's journal (claiming its stream in the store's backend) and recovers its
/// newest snapshot, importing a kameo-persistence snapshot found in the key's directory (see
/// [`legacy`]). With `repairs_block`, a key with nothing readable whose stream the store set
/// aside data of is [`Error::Repaired`], before anything is imported. With `must_exist`, a
/// `file` key whose directory does not exist is [`Error::NotFound`], and no store is created
/// for it.
async fn open<A: PersistentActor>(
    key: &Url,
    repairs_block: bool,
    must_exist: bool,
) -> Result<Opened<A::Snapshot>, Error> {
    // kameo-persistence's files in the key's directory, read in one trip to the blocking pool.
    let legacy = match legacy::key_dir(key) {
        Some(dir) => {
            let found = {
                let dir = dir.clone();
                blocking(move || legacy::inspect(&dir)).await
            }
            .map_err(|e| Error::Import {
                key: key.clone(),
                file: dir.join(legacy::SNAPSHOT_FILE).into_boxed_path(),
                reason: format!("reading the key's directory failed: {e}").into_boxed_str(),
            })?;
            if must_exist && !found.exists {
                // Nothing can be stored in a directory that does not exist: no store is
                // created for a key that only names one (kameo-persistence answers the same).
                return Err(Error::NotFound(key.clone()));
            }
            Some((dir, found))
        }
        None => None,
    };
    let (backend, stream, store) = scheme::resolve_persistent(key).await?;
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
            Error::journal(key, error)
        })?;
    if repairs_block && state.0.is_none() && set_aside(&driver) {
        // Nothing readable is stored, but the store set aside bytes of this key's stream when
        // it opened (a torn last write, say): they may have been its only snapshot, and a
        // fresh actor would overwrite the key. Only an explicit spawn does that.
        tracing::error!(%key, "nothing readable under the key, but the store set aside data of its stream");
        return Err(Error::Repaired(key.clone()));
    }
    let mut opened = Opened {
        driver,
        state,
        _store: store,
    };
    if let Some((dir, found)) = legacy {
        import::<A>(key, dir, found, &mut opened).await?;
    }
    Ok(opened)
}

/// Runs blocking file work on the blocking pool.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|join| Err(std::io::Error::other(join.to_string())))
}

/// Imports the kameo-persistence snapshot in `dir`, if there is one (see [`legacy`]).
async fn import<A: PersistentActor>(
    key: &Url,
    dir: PathBuf,
    found: legacy::Found,
    opened: &mut Opened<A::Snapshot>,
) -> Result<(), Error> {
    let file = dir.join(legacy::SNAPSHOT_FILE);
    let failed = |reason: String| Error::Import {
        key: key.clone(),
        file: file.clone().into_boxed_path(),
        reason: reason.into_boxed_str(),
    };
    let Some(bytes) = found.snapshot else {
        return Ok(());
    };
    if opened.state.0.is_some() {
        if found.imported.as_deref() == Some(&bytes[..]) {
            // An import interrupted after its save: finish it.
            blocking(move || legacy::retire(&dir))
                .await
                .map_err(|e| failed(format!("removing it after its import failed: {e}")))?;
            tracing::info!(%key, "finished importing the kameo-persistence snapshot");
            return Ok(());
        }
        tracing::error!(%key, file = %file.display(), "persevere state and a kameo-persistence snapshot that was not imported");
        return Err(Error::ImportConflict {
            key: key.clone(),
            file,
        });
    }
    let snapshot: A::Snapshot = postcard::from_bytes(&bytes).map_err(|e| {
        tracing::error!(%key, file = %file.display(), error = %e, "kameo-persistence snapshot unreadable");
        failed(format!(
            "it does not decode as {} (postcard): {e}",
            std::any::type_name::<A::Snapshot>()
        ))
    })?;
    {
        let dir = dir.clone();
        blocking(move || legacy::keep_copy(&dir, &bytes)).await
    }
    .map_err(|e| failed(format!("keeping a copy failed: {e}")))?;
    opened
        .driver
        .persist(snapshot, &mut opened.state)
        .await
        .map_err(|error| Error::journal(key, error))?;
    blocking(move || legacy::retire(&dir))
        .await
        .map_err(|e| failed(format!("removing it after its import failed: {e}")))?;
    tracing::info!(%key, file = %file.display(), kept = legacy::IMPORTED_FILE, "imported the kameo-persistence snapshot");
    Ok(())
}

/// Spawns an actor under `key` as `mode` says (see `PersistentActor`'s methods).
pub(crate) async fn start<A: PersistentActor>(
    key: Url,
    mode: Mode<A::Args>,
) -> Result<ActorRef<A>, Error> {
    scheme::locate_key(&key)?;
    if !matches!(mode, Mode::Spawn(_)) {
        // As kameo-persistence does: the registry the impl keeps (this crate's, unless a
        // hand-written impl keeps its own) is asked first.
        if let Some(actor_ref) = A::lookup_persistent(&key).filter(ActorRef::is_alive) {
            return Ok(actor_ref);
        }
    }
    let (slot, mut held, live) = settled_slot::<A>(&key, Stopping::WaitUntilGone).await?;
    if let Some(actor_ref) = live {
        return match mode {
            Mode::Spawn(_) => Err(Error::KeyInUse(key)),
            Mode::Respawn | Mode::TryRespawn(_) => {
                tracing::trace!(%key, "the key's actor is alive");
                Ok(actor_ref)
            }
        };
    }

    let repairs_block = matches!(mode, Mode::TryRespawn(_));
    let must_exist = matches!(mode, Mode::Respawn);
    let opened = open::<A>(&key, repairs_block, must_exist).await?;
    let (args, fresh) = match (mode, &opened.state.0) {
        (Mode::Respawn, None) => return Err(Error::NotFound(key)),
        (Mode::Respawn | Mode::TryRespawn(_), Some(snapshot)) => (snapshot.clone().into(), false),
        (Mode::TryRespawn(args) | Mode::Spawn(args), _) => (args, true),
    };

    let prepared = A::prepare();
    let actor_ref = prepared.actor_ref().clone();
    let id = actor_ref.id();
    let (done, gone) = watch::channel(false);
    registry::bind(&actor_ref.downgrade(), &key);
    *held = Some(Box::new(Entry::<A> {
        actor: actor_ref.downgrade(),
        opened: Some(opened),
        gone,
    }));
    drop(held);
    tracing::debug!(%key, fresh, actor = %id, "spawning persistent actor");
    let running = prepared.spawn(args);
    watch_until_stopped(slot, &key, id, done, async move {
        let _ = running.await;
    });

    actor_ref.wait_for_startup().await;
    let started = actor_ref
        .with_startup_result(|result| result.is_ok())
        .unwrap_or(false);
    if !started {
        return Err(Error::Start(key));
    }
    // As kameo-persistence does; with this crate's registry the actor is registered already
    // (a no-op), a hand-written impl's own registry learns of it here.
    if let Err(error) = A::register_persistent(key.clone(), &actor_ref) {
        tracing::error!(%key, %error, "register_persistent refused the actor; stopping it");
        actor_ref.kill();
        return Err(Error::Register {
            key,
            reason: format!("{error:#}"),
        });
    }
    if fresh {
        if let Err(error) = A::save_spawned(&actor_ref).await {
            tracing::error!(%key, %error, "first snapshot failed; stopping the actor");
            actor_ref.kill();
            return Err(error);
        }
    }
    Ok(actor_ref)
}

/// Clears the key's entry once the actor has fully stopped (`stopped` resolves after its
/// on_stop), so the registry holds no dead actors and a respawn waiting for it can go ahead.
fn watch_until_stopped(
    slot: Slot,
    key: &Url,
    id: ActorId,
    done: watch::Sender<bool>,
    stopped: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let watched = Arc::downgrade(&slot);
    drop(slot);
    let key = key.clone();
    tokio::spawn(async move {
        stopped.await;
        if let Some(slot) = watched.upgrade() {
            let mut held = slot.lock().await;
            if held.as_ref().is_some_and(|entry| entry.actor_id() == id) {
                *held = None;
            }
        }
        registry::forget_if_unused(&key);
        let _ = done.send(true);
    });
}

/// Registers a running actor under `key`: its saves go to the key from now on. The key's
/// journal is opened (and a kameo-persistence snapshot in its directory imported) at the first
/// save.
pub(crate) fn register<A: PersistentActor>(key: Url, actor_ref: &ActorRef<A>) -> Result<(), Error> {
    scheme::locate_key(&key)?;
    if let Some(bound) = registry::key_of(actor_ref.id()) {
        if bound == key {
            return Ok(());
        }
        return Err(Error::Key {
            key: key.to_string(),
            reason: format!("the actor is registered under {bound} already"),
        });
    }
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| Error::Send {
        key: key.clone(),
        reason: "register_persistent needs a tokio runtime".into(),
    })?;
    let slot = registry::slot(&key);
    // Busy: an actor of the key is being started, or is saving.
    let Ok(mut held) = Arc::clone(&slot).try_lock_owned() else {
        return Err(Error::KeyInUse(key));
    };
    if held.is_some() {
        // A live actor owns the key, or one is stopping (its on_stop may still save).
        return Err(Error::KeyInUse(key));
    }
    let weak = actor_ref.downgrade();
    let id = actor_ref.id();
    let (done, gone) = watch::channel(false);
    registry::bind(&weak, &key);
    *held = Some(Box::new(Entry::<A> {
        actor: weak.clone(),
        opened: None,
        gone,
    }));
    drop(held);
    tracing::debug!(%key, actor = %id, "registered persistent actor");
    let _enter = runtime.enter();
    watch_until_stopped(slot, &key, id, done, async move {
        weak.wait_for_shutdown_with_result(|_| ()).await;
    });
    Ok(())
}

/// Saves `snapshot` under the key of the actor `id`; `Ok(false)` when the actor has no key.
pub(crate) async fn save<A: PersistentActor>(
    id: ActorId,
    snapshot: A::Snapshot,
) -> Result<bool, Error> {
    let Some(key) = registry::key_of(id) else {
        return Ok(false);
    };
    let slot = registry::slot(&key);
    let mut held = slot.lock().await;
    let Some(entry) = held
        .as_mut()
        .and_then(|entry| entry.as_any_mut().downcast_mut::<Entry<A>>())
        .filter(|entry| entry.actor.id() == id)
    else {
        return Ok(false);
    };
    write(&key, entry, snapshot).await.map(|()| true)
}

/// Writes `snapshot` through the entry's journal, opening it first if need be.
async fn write<A: PersistentActor>(
    key: &Url,
    entry: &mut Entry<A>,
    snapshot: A::Snapshot,
) -> Result<(), Error> {
    if entry.opened.is_none() {
        entry.opened = Some(open::<A>(key, false, false).await?);
    }
    let Some(opened) = entry.opened.as_mut() else {
        return Err(Error::NotPersistent(key.to_string()));
    };
    opened
        .driver
        .persist(snapshot, &mut opened.state)
        .await
        .map(drop)
        .map_err(|error| Error::journal(key, error))
}

/// The key's newest snapshot: its live or stopping actor's journal's, or read from the store.
pub(crate) async fn read<A: PersistentActor>(key: &Url) -> Result<A::Snapshot, Error> {
    scheme::locate_key(key)?;
    let (_slot, mut held, _) = settled_slot::<A>(key, Stopping::UseEntry).await?;
    let newest = match entry_of::<A>(&mut held) {
        Some(entry) => {
            if entry.opened.is_none() {
                entry.opened = Some(open::<A>(key, false, false).await?);
            }
            entry
                .opened
                .as_ref()
                .and_then(|opened| opened.state.0.clone())
        }
        None => open::<A>(key, false, true).await?.state.0,
    };
    newest.ok_or_else(|| Error::NotFound(key.clone()))
}

/// Stores `snapshot` under the key: through its live or stopping actor's journal, or directly.
pub(crate) async fn store<A: PersistentActor>(
    key: &Url,
    snapshot: A::Snapshot,
) -> Result<(), Error> {
    scheme::locate_key(key)?;
    let (_slot, mut held, _) = settled_slot::<A>(key, Stopping::UseEntry).await?;
    match entry_of::<A>(&mut held) {
        Some(entry) => write(key, entry, snapshot).await,
        None => {
            let mut opened = open::<A>(key, false, false).await?;
            opened
                .driver
                .persist(snapshot, &mut opened.state)
                .await
                .map(drop)
                .map_err(|error| Error::journal(key, error))
        }
    }
}

/// Waits until `key` has no live or stopping actor and, for a `file` key, its store is closed;
/// `false` when a live actor owns the key.
pub(crate) async fn wait_closed(key: &Url) -> Result<bool, Error> {
    let (location, _) = scheme::locate_key(key)?;
    let slot = registry::slot(key);
    loop {
        let held = slot.lock().await;
        let Some(current) = held.as_ref() else {
            break;
        };
        if current.is_alive() {
            return Ok(false);
        }
        let mut gone = current.gone();
        drop(held);
        if gone.wait_for(|gone| *gone).await.is_err() {
            break;
        }
    }
    drop(slot);
    registry::forget_if_unused(key);
    scheme::close_idle(&location)
        .await
        .map_err(|error| Error::Storage {
            key: key.clone(),
            reason: error.to_string(),
        })?;
    Ok(true)
}

/// The actor's name and id, for errors.
pub(crate) fn describe<A: Actor>(id: ActorId) -> String {
    format!("{} {id}", <A as Actor>::name())
}
