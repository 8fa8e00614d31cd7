//! How a journal persists: strategy, snapshot cadence, compaction, retention.

use std::num::NonZeroUsize;
use std::time::Duration;

/// When state snapshots are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Strategy {
    /// Events are the record; a snapshot is written every N events (see
    /// [`JournalConfig::snapshot_every`]), on demand, or when a predicate says so. Recovery loads
    /// the newest snapshot and replays the events after it.
    #[default]
    Full,
    /// Every append writes the event(s) *and* a snapshot of the resulting state, in one atomic
    /// command. Recovery loads the snapshot and replays nothing.
    Light,
}

/// The configuration of one [`Journal`](crate::Journal).
///
/// ```
/// use persevere_core::{JournalConfig, Strategy};
/// let config = JournalConfig::new("accounts/42")
///     .snapshot_every(Some(50))
///     .compact_on_snapshot(true)
///     .keep_snapshots(2);
/// assert_eq!(config.stream(), "accounts/42");
/// assert_eq!(config.strategy_kind(), Strategy::Full);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalConfig {
    pub(crate) stream: String,
    pub(crate) store_id: String,
    pub(crate) strategy: Strategy,
    pub(crate) snapshot_every: Option<u64>,
    pub(crate) compact_on_snapshot: bool,
    pub(crate) keep_snapshots: Option<NonZeroUsize>,
    pub(crate) housekeep_every: u64,
    pub(crate) read_batch: usize,
    pub(crate) replay_slice: Option<usize>,
    pub(crate) reread_attempts: u32,
    pub(crate) reread_backoff: Duration,
    pub(crate) max_append_events: usize,
    pub(crate) max_append_bytes: usize,
}

impl JournalConfig {
    /// Defaults for `stream`: [`Strategy::Full`], a snapshot every 100 events, no compaction,
    /// every snapshot kept, replay in pages of 4096 events, and 5 re-read attempts starting 50 ms
    /// apart (doubling) after a failed write; requests queued behind a write are coalesced into
    /// appends of at most 1024 events and 4 MiB of event records.
    pub fn new(stream: impl Into<String>) -> Self {
        Self {
            stream: stream.into(),
            store_id: String::new(),
            strategy: Strategy::Full,
            snapshot_every: Some(100),
            compact_on_snapshot: false,
            keep_snapshots: None,
            housekeep_every: 1,
            read_batch: 4096,
            replay_slice: None,
            reread_attempts: 5,
            reread_backoff: Duration::from_millis(50),
            max_append_events: 1024,
            max_append_bytes: 4 << 20,
        }
    }

    /// The stream id.
    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// The id of the store the stream lives in (empty unless set).
    pub fn store_id(&self) -> &str {
        &self.store_id
    }

    /// Names the store the stream lives in. Encrypted records are bound to it, so a record
    /// copied from another store with the same stream id and key does not open. Give every
    /// store (database, directory, tenant) that may share keys its own id, and never change it.
    pub fn with_store_id(mut self, store_id: impl Into<String>) -> Self {
        self.store_id = store_id.into();
        self
    }

    /// The strategy.
    pub fn strategy_kind(&self) -> Strategy {
        self.strategy
    }

    /// Sets the strategy.
    pub fn strategy(mut self, strategy: Strategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// Snapshot after every `n` events (Full strategy); `None` or `Some(0)` disables it. Checked
    /// after each append: the snapshot is taken at the append's last seq once it is at least `n`
    /// events past the newest snapshot (an append may carry several events and requests).
    pub fn snapshot_every(mut self, n: Option<u64>) -> Self {
        self.snapshot_every = n.filter(|&n| n > 0);
        self
    }

    /// Delete the events a snapshot covers once the snapshot is durable.
    pub fn compact_on_snapshot(mut self, compact: bool) -> Self {
        self.compact_on_snapshot = compact;
        self
    }

    /// Keep only the newest `n` snapshots (at least one is always kept).
    pub fn keep_snapshots(mut self, n: usize) -> Self {
        self.keep_snapshots = NonZeroUsize::new(n.max(1));
        self
    }

    /// Run compaction and retention after a durable snapshot only once the snapshot is at least
    /// `n` events past the one they last ran after (default 1: after every snapshot; this
    /// journal's first housekeeping counts from seq 0). Each of them is a storage write of its
    /// own, so with the [`Light`](Strategy::Light) strategy, where every append carries a
    /// snapshot, `n > 1` saves two writes per append at the cost of up to `n` superseded records
    /// kept a while longer. `0` counts as 1.
    pub fn housekeep_every(mut self, n: u64) -> Self {
        self.housekeep_every = n.max(1);
        self
    }

    /// The most events read per [`Command::ReadEvents`](crate::Command::ReadEvents).
    pub fn read_batch(mut self, n: usize) -> Self {
        self.read_batch = n.max(1);
        self
    }

    /// Applies a page of replayed events at most `n` events at a time: after each slice the
    /// journal pauses ([`Journal::poll_replay`](crate::Journal::poll_replay) is true) until the
    /// driver calls [`Journal::handle_replay`](crate::Journal::handle_replay), so that a driver
    /// on an async executor can let other tasks run within a long page. Unset (the default), a
    /// page is applied whole on its completion, and a run loop that knows nothing of
    /// `handle_replay` works unchanged. `0` counts as 1.
    ///
    /// ```
    /// use persevere_core::JournalConfig;
    /// let config = JournalConfig::new("s").replay_slice(256);
    /// assert_eq!(config.replay_slice_size(), Some(256));
    /// assert_eq!(JournalConfig::new("s").replay_slice_size(), None);
    /// ```
    pub fn replay_slice(mut self, n: usize) -> Self {
        self.replay_slice = Some(n.max(1));
        self
    }

    /// The replay slice, if set (see [`replay_slice`](Self::replay_slice)).
    pub fn replay_slice_size(&self) -> Option<usize> {
        self.replay_slice
    }

    /// After a write whose outcome is unknown, how many times the journal tries to re-read the
    /// log before stopping, and the delay before the first retry (doubling after each).
    pub fn reread(mut self, attempts: u32, backoff: Duration) -> Self {
        self.reread_attempts = attempts.max(1);
        self.reread_backoff = backoff;
        self
    }

    /// Caps the appends that coalesce queued persist requests: requests queued while a write is
    /// in flight go into the next append together, as long as it holds at most `events` events
    /// and `bytes` bytes of encoded event records (a Light snapshot is not counted). A single
    /// request larger than the cap is still appended, alone: a request is atomic and never
    /// split. `1` for either turns coalescing off (one request per append). `0` counts as 1.
    pub fn max_append(mut self, events: usize, bytes: usize) -> Self {
        self.max_append_events = events.max(1);
        self.max_append_bytes = bytes.max(1);
        self
    }

    /// The cap on coalesced appends: (events, bytes); see [`max_append`](Self::max_append).
    pub fn max_append_size(&self) -> (usize, usize) {
        (self.max_append_events, self.max_append_bytes)
    }
}
