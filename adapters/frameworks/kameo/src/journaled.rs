//! Event-sourced state for a kameo actor: recovered in `on_start`, persisted from handlers,
//! snapshotted every N events and once more on stop.

use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use kameo::error::ActorStopReason;
use persevere_core::seal::KeyRing;
use persevere_core::{Borsh, Codec, Entity, Journal, JournalConfig, Phase, Repair};
use persevere_driver::{os_random, Claim, Persistent};
use url::Url;

use crate::error::Error;
use crate::scheme;

/// How many [`Journaled`] states are open in this process.
static OPEN: AtomicUsize = AtomicUsize::new(0);

/// The number of [`Journaled`] states open in this process.
pub fn open_journals() -> usize {
    OPEN.load(Ordering::Acquire)
}

/// Counts one open [`Journaled`] in [`open_journals`] while it lives.
#[derive(Debug)]
struct Counted;

impl Counted {
    fn new() -> Self {
        OPEN.fetch_add(1, Ordering::AcqRel);
        Self
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        OPEN.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The event-sourced state of one kameo actor: a journal on the store its key names, and the
/// state recovered from it.
///
/// Open it in the actor's `on_start` (a corrupt or unreadable store makes `on_start` fail,
/// never a fresh state), persist from message handlers (once `persist` returns `Ok` the event is
/// durable and applied; on `Err` the state is as before), and call
/// [`snapshot_on_stop`](Self::snapshot_on_stop) from `on_stop`. A snapshot is also written every
/// 100 events (see [`open_with`](Self::open_with)). [`state`](Self::state) reads the state.
///
/// The newest journal opened for a key in this process owns it: an older one (for example the
/// instance a supervisor is replacing, whose `on_stop` may overlap the new `on_start`) answers
/// [`Error::Superseded`] and writes nothing more, not even its final snapshot.
///
/// ```
/// use kameo::prelude::*;
/// use persevere_core::Entity;
/// use persevere_kameo::{Error, Journaled, Url};
///
/// #[derive(Default, borsh::BorshSerialize, borsh::BorshDeserialize)]
/// struct Count(u64);
///
/// impl Entity for Count {
///     type Event = u64;
///     type Error = String;
///     fn apply(&mut self, n: &u64) -> Result<(), String> {
///         self.0 = self.0.checked_add(*n).ok_or("overflow")?;
///         Ok(())
///     }
/// }
///
/// struct Counter { count: Journaled<Count> }
///
/// impl Actor for Counter {
///     type Args = Url;
///     type Error = Error;
///
///     async fn on_start(key: Url, _: ActorRef<Self>) -> Result<Self, Error> {
///         Ok(Self { count: Journaled::open(&key, Count::default).await? })
///     }
///
///     async fn on_stop(&mut self, _: WeakActorRef<Self>, reason: ActorStopReason) -> Result<(), Error> {
///         self.count.snapshot_on_stop(&reason).await.map(drop)
///     }
/// }
///
/// struct Add(u64);
///
/// impl Message<Add> for Counter {
///     type Reply = Result<u64, Error>;
///     async fn handle(&mut self, Add(n): Add, _: &mut Context<Self, Self::Reply>) -> Self::Reply {
///         self.count.persist(n).await?;
///         Ok(self.count.state()?.0)
///     }
/// }
///
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
/// let key = Url::parse("memory://doc-journaled/counter").unwrap();
/// let counter = Counter::spawn(key.clone());
/// assert_eq!(counter.ask(Add(2)).await.unwrap(), 2);
/// counter.stop_gracefully().await.unwrap();
/// counter.wait_for_shutdown().await;
///
/// let again = Counter::spawn(key);
/// assert_eq!(again.ask(Add(3)).await.unwrap(), 5);
/// # });
/// ```
pub struct Journaled<S: Entity, C = Borsh> {
    persistent: Persistent<S, C>,
    key: Url,
    _counted: Counted,
}

impl<S, C> Journaled<S, C>
where
    S: Entity + 'static,
    C: Codec<S> + Codec<S::Event>,
{
    /// Opens the journal `key` names and recovers the state (`initial()` for a new stream),
    /// with the defaults of [`JournalConfig::new`] (a snapshot every 100 events).
    pub async fn open(key: &Url, initial: impl Fn() -> S + Send + 'static) -> Result<Self, Error> {
        Self::open_with(key, |config| config, initial).await
    }

    /// Opens the journal with its configuration adjusted by `configure` (snapshot cadence,
    /// compaction, retention; the stream id is the key's).
    ///
    /// ```no_run
    /// # use persevere_kameo::Journaled;
    /// # #[derive(Default, borsh::BorshSerialize, borsh::BorshDeserialize)] struct Count(u64);
    /// # impl persevere_core::Entity for Count { type Event = u64; type Error = String;
    /// #   fn apply(&mut self, n: &u64) -> Result<(), String> { self.0 += n; Ok(()) } }
    /// # async fn f(key: url::Url) -> Result<(), persevere_kameo::Error> {
    /// let count = Journaled::<Count>::open_with(&key, |c| c.snapshot_every(Some(10)), Count::default).await?;
    /// # Ok(()) }
    /// ```
    pub async fn open_with(
        key: &Url,
        configure: impl FnOnce(JournalConfig) -> JournalConfig,
        initial: impl Fn() -> S + Send + 'static,
    ) -> Result<Self, Error> {
        Self::open_sealed(key, configure, initial, None).await
    }

    /// Opens the journal with every record sealed under `keys` (see
    /// [`persevere_core::seal`]).
    pub async fn open_encrypted(
        key: &Url,
        configure: impl FnOnce(JournalConfig) -> JournalConfig,
        initial: impl Fn() -> S + Send + 'static,
        keys: Arc<KeyRing>,
    ) -> Result<Self, Error> {
        Self::open_sealed(key, configure, initial, Some(keys)).await
    }

    async fn open_sealed(
        key: &Url,
        configure: impl FnOnce(JournalConfig) -> JournalConfig,
        initial: impl Fn() -> S + Send + 'static,
        keys: Option<Arc<KeyRing>>,
    ) -> Result<Self, Error> {
        let (backend, stream) = scheme::resolve(key).await?;
        let config = configure(JournalConfig::new(stream));
        let scratch = initial();
        let initial = Arc::new(Mutex::new(initial));
        let recipe = move || {
            let initial = Arc::clone(&initial);
            let journal = Journal::new(config.clone(), move || {
                (initial.lock().unwrap_or_else(PoisonError::into_inner))()
            });
            Ok(match &keys {
                Some(keys) => journal.with_encryption(Arc::clone(keys), os_random()?),
                None => journal,
            })
        };
        // The newest journal of a stream owns it (a supervised restart's new instance may
        // start before the old one has stopped): the backend's one ownership rule, taken over.
        let opened = Persistent::open_claiming(&backend, recipe, scratch, Claim::TakeOver).await;
        let persistent = opened.map_err(|error| {
            tracing::error!(%key, %error, "recovery failed");
            Error::journal(key, error)
        })?;
        tracing::debug!(%key, last_seq = persistent.last_seq(), "journal recovered");
        Ok(Self {
            persistent,
            key: key.clone(),
            _counted: Counted::new(),
        })
    }

    /// Persists one event: once it returns `Ok`, the event is durable and applied, and the
    /// range holds its seq. On `Err` the state is as before.
    pub async fn persist(&mut self, event: S::Event) -> Result<RangeInclusive<u64>, Error> {
        self.check_owner()?;
        self.persistent
            .persist(event)
            .await
            .map_err(|e| Error::journal(&self.key, e))
    }

    /// Persists `events` atomically: all of them become durable and applied, or none.
    pub async fn persist_all(
        &mut self,
        events: impl IntoIterator<Item = S::Event>,
    ) -> Result<RangeInclusive<u64>, Error> {
        self.check_owner()?;
        self.persistent
            .persist_all(events)
            .await
            .map_err(|e| Error::journal(&self.key, e))
    }

    /// Writes a snapshot of the state (unless the newest one covers it) and returns the seq it
    /// covers.
    pub async fn snapshot(&mut self) -> Result<u64, Error> {
        self.check_owner()?;
        self.persistent
            .snapshot()
            .await
            .map_err(|e| Error::journal(&self.key, e))
    }

    /// The final snapshot, for the actor's `on_stop`: written when this journal still owns the
    /// key, is healthy, has events the newest snapshot does not cover, and the actor did not
    /// panic (a panic may have left the state half-changed; the log holds the truth). Returns
    /// the seq it covers, or `None` when skipped.
    pub async fn snapshot_on_stop(
        &mut self,
        reason: &ActorStopReason,
    ) -> Result<Option<u64>, Error> {
        if !self.persistent.owns_stream() {
            tracing::debug!(key = %self.key, "final snapshot skipped: a newer actor owns the key");
            return Ok(None);
        }
        if matches!(reason, ActorStopReason::Panicked(_)) {
            tracing::warn!(key = %self.key, "final snapshot skipped: the actor panicked");
            return Ok(None);
        }
        if self.persistent.phase() == Phase::Stopped {
            return Ok(None);
        }
        let covered = self.persistent.journal().snapshot_seq().unwrap_or(0);
        if self.persistent.last_seq() == covered {
            return Ok(None);
        }
        self.snapshot().await.map(Some)
    }

    /// The state: every acknowledged event applied, and no other. A call dropped mid-flight
    /// (a `timeout`, a `select!`) leaves its request unsettled and the state may then hold its
    /// unacknowledged events: until it is settled ([`settle`](Self::settle), or any request)
    /// this returns an error wrapping
    /// [`persevere_driver::Error::Unsettled`] instead of showing them; after a storage outage
    /// stopped the journal, one wrapping [`persevere_driver::Error::StateUnknown`] until the
    /// next request has recovered the state from the log.
    pub fn state(&self) -> Result<&S, Error> {
        self.persistent
            .state()
            .map_err(|e| Error::journal(&self.key, e))
    }

    /// Settles a request left in flight by a call dropped mid-flight, then returns the state
    /// (see [`state`](Self::state)).
    pub async fn settle(&mut self) -> Result<&S, Error> {
        self.persistent
            .settle()
            .await
            .map_err(|e| Error::journal(&self.key, e))
    }

    /// Whether the state holds exactly the acknowledged events (see [`state`](Self::state)).
    pub fn is_settled(&self) -> bool {
        self.persistent.is_settled()
    }

    /// The key.
    pub fn key(&self) -> &Url {
        &self.key
    }

    /// The last durable seq (0 for a new stream).
    pub fn last_seq(&self) -> u64 {
        self.persistent.last_seq()
    }

    /// The seq the newest durable snapshot covers, if any.
    pub fn snapshot_seq(&self) -> Option<u64> {
        self.persistent.journal().snapshot_seq()
    }

    /// The journal's phase.
    pub fn phase(&self) -> Phase {
        self.persistent.phase()
    }

    /// What the key's store repaired or set aside (when it was opened, or reopened after a
    /// failure) that may involve this key's stream. Each one was also logged as a WARN when the
    /// store was opened and when this journal was. See [`Backend::repairs_for`].
    ///
    /// [`Backend::repairs_for`]: persevere_driver::Backend::repairs_for
    pub fn repairs(&self) -> Vec<Repair> {
        self.persistent.repairs()
    }

    /// Whether this journal still owns its key (no newer one was opened for it).
    pub fn owns_key(&self) -> bool {
        self.persistent.owns_stream()
    }

    fn check_owner(&self) -> Result<(), Error> {
        if self.persistent.owns_stream() {
            Ok(())
        } else {
            Err(Error::Superseded(self.key.clone()))
        }
    }
}

impl<S, C> std::fmt::Debug for Journaled<S, C>
where
    S: Entity + std::fmt::Debug,
    C: Codec<S> + Codec<S::Event>,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journaled")
            .field("key", &self.key.as_str())
            .field("state", &self.persistent.state())
            .finish_non_exhaustive()
    }
}
