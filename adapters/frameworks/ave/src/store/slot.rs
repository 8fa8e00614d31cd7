//! One actor's open journal: the driver, the spare value its state trades places with, and
//! what it takes to open the journal again.

use std::sync::Arc;

use persevere_core::record::{self, RecordKind};
use persevere_core::seal::{self, Binding, Chain, CHAIN_LEN, TAG_LEN};
use persevere_core::{
    Batch, Borsh, Codec, Command, CommandId, Completion, Journal, JournalConfig, PersistError,
    Rejection, Strategy,
};
use persevere_driver::{os_random, Driver, Resume};

use crate::error::AdapterError;
use crate::key::SealingKeys;
use crate::store::held::{Held, Lent};
use crate::store::persistent_actor::PersistentActor;

/// How to open an actor's journal.
pub(crate) struct Recipe<A> {
    /// The manager (held, not only its backend, so a file manager's directory counts as in
    /// use while this store lives).
    pub(crate) manager: crate::manager::Manager,
    pub(crate) config: JournalConfig,
    pub(crate) key: Option<SealingKeys>,
    /// The state an actor starts from when its stream has no snapshot.
    pub(crate) base: Arc<A>,
}

impl<A> Recipe<A>
where
    A: PersistentActor,
{
    /// Builds the journal, again and again: the driver calls it once to open the stream and
    /// again to recover it after a storage outage stopped it.
    fn builder(&self) -> persevere_driver::Recipe<Held<A>, persevere_core::Borsh> {
        let config = self.config.clone();
        let key = self.key.clone();
        let base = Arc::clone(&self.base);
        Box::new(move || {
            let base = Arc::clone(&base);
            let journal = Journal::new(config.clone(), move || Held(A::clone(&base)));
            Ok(match &key {
                Some(key) => journal.with_encryption(Arc::clone(key.ring()), os_random()?),
                None => journal,
            })
        })
    }

    /// Opens the journal and recovers the state (the base when the stream is new); fails if
    /// another live store of the process owns the stream.
    async fn open(&self) -> Result<(Driver<Held<A>>, Held<A>), AdapterError> {
        let stream = self.config.stream();
        let recover = |source| AdapterError::Recover {
            stream: stream.to_owned(),
            source,
        };
        let mut state = Held(A::clone(&self.base));
        let driver = Driver::open_with(self.manager.backend(), self.builder(), &mut state)
            .await
            .map_err(|source| match source {
                // The backend's one rule of stream ownership: another live store writes it.
                persevere_driver::Error::Owned { stream } => {
                    AdapterError::AlreadyStarted { stream }
                }
                source => recover(source),
            })?;
        Ok((driver, state))
    }
}

/// Whether the live actor's value is its stream's durable state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ActorState {
    /// It holds every acknowledged event and nothing else: a persist goes on from it.
    Durable,
    /// It may differ from the durable state: a write whose outcome stayed unknown, a purge, or
    /// a command of the store that finished or redid the journal's work without the actor
    /// came in between. Its next persist recovers the durable state into it first, and its
    /// own snapshot is refused until then.
    Unknown,
    /// Unknown, and a command of the store found, recovering the log, that a write of unknown
    /// outcome had landed: the next persist recovers the actor, then is refused once (see
    /// [`Resume::check`]) so that a blind retry never applies it twice.
    Landed(Resume),
}

/// Whether the driver's work under way, if any, is a recovery of the actor's value into the
/// slot's spare that nothing else has touched since it started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SpareRecovery {
    /// No: a rebuild starts one afresh.
    Idle,
    /// Yes (a rebuild was dropped mid-way): the next rebuild finishes it rather than start
    /// over, so that calls each dropped at their first wait still get through.
    Underway,
}

/// One actor's open journal.
pub(crate) struct Slot<A: PersistentActor> {
    driver: Driver<Held<A>>,
    /// Holds a stale value of the actor, traded with the live one while the journal has it
    /// (and what the actor's recoveries recover into before it takes the result).
    spare: Held<A>,
    recipe: Recipe<A>,
    actor: ActorState,
    spare_recovery: SpareRecovery,
}

impl<A> Slot<A>
where
    A: PersistentActor,
{
    /// The state the actor started from when this store was first opened for it (what a
    /// stream with no snapshot recovers from).
    pub(crate) fn base(&self) -> Arc<A> {
        Arc::clone(&self.recipe.base)
    }

    /// Opens the journal and recovers `actor` from it (through [`PersistentActor::update`],
    /// when the stream holds anything).
    pub(crate) async fn open(recipe: Recipe<A>, actor: &mut A) -> Result<Self, AdapterError> {
        let (driver, recovered) = recipe.open().await?;
        tracing::debug!(
            stream = %driver.stream(),
            last_seq = driver.last_seq(),
            "store recovered"
        );
        let mut slot = Self {
            driver,
            spare: Held(A::clone(&recipe.base)),
            recipe,
            actor: ActorState::Durable,
            spare_recovery: SpareRecovery::Idle,
        };
        let mut recovered = recovered;
        // As ave-actors-store does: a Full store that replayed events snapshots the result, so
        // the next start replays nothing.
        if slot.behind() {
            if let Err(error) = slot.driver.snapshot(&mut recovered).await {
                tracing::warn!(stream = %slot.stream(), %error, "snapshot after replay failed");
            }
        }
        if slot.driver.last_seq() > 0 {
            actor.update(recovered.0);
        }
        Ok(slot)
    }

    /// Persists the events of a migration from ave-actors-store (see `legacy::prepare`) into
    /// `actor`, in one atomic append, and snapshots a Full store after them.
    pub(crate) async fn migrate(
        &mut self,
        actor: &mut A,
        events: Vec<A::Event>,
    ) -> Result<(), AdapterError> {
        if events.is_empty() {
            return Ok(());
        }
        let count = events.len();
        self.persist(actor, events.into()).await?;
        if self.behind() {
            self.snapshot(actor.clone()).await?;
        }
        tracing::info!(stream = %self.stream(), events = count, "migrated ave-actors-store's events");
        Ok(())
    }

    /// Whether this is a Full store with events after its newest snapshot.
    fn behind(&self) -> bool {
        let journal = self.driver.journal();
        self.recipe.config.strategy_kind() == Strategy::Full
            && journal.stop_reason().is_none()
            && journal.last_seq() > journal.snapshot_seq().unwrap_or(0)
    }

    /// Snapshots the durable state of a Full store with events after its newest snapshot
    /// (the store's stop: the actor itself is gone, so the state is recovered from the log).
    pub(crate) async fn snapshot_if_behind(&mut self) -> Result<(), AdapterError> {
        if !self.behind() || self.driver.needs_resume() {
            return Ok(());
        }
        let mut recovered = self.recover_aside().await?;
        self.driver
            .snapshot(&mut recovered)
            .await
            .map(drop)
            .map_err(|source| AdapterError::Snapshot {
                stream: self.stream().to_owned(),
                source,
            })
    }

    /// The durable state (newest snapshot plus replay), `None` when the stream is empty.
    pub(crate) async fn recovered(&mut self) -> Result<Option<A>, AdapterError> {
        let recovered = self.recover_aside().await?;
        Ok((self.driver.last_seq() > 0).then_some(recovered.0))
    }

    /// The durable state, recovered afresh for a command of the store on a value of its own:
    /// the actor takes the durable state again at its next persist, refused once if a write
    /// of unknown outcome had landed.
    async fn recover_aside(&mut self) -> Result<Held<A>, AdapterError> {
        self.mark_unknown();
        self.spare_recovery = SpareRecovery::Idle;
        let mut recovered = Held(A::clone(&self.recipe.base));
        let resumed = self.driver.recover(&mut recovered).await;
        self.keep_landed(resumed)?;
        Ok(recovered)
    }

    /// Keeps what a recovery found of a write of unknown outcome that had landed (the actor's
    /// next persist is then refused once), or fails with the recovery's error.
    fn keep_landed(
        &mut self,
        resumed: Result<Resume, persevere_driver::Error>,
    ) -> Result<(), AdapterError> {
        match resumed {
            Ok(landed @ Resume::Landed { .. }) => self.actor = ActorState::Landed(landed),
            Ok(_) => {}
            Err(source) => {
                return Err(AdapterError::Recover {
                    stream: self.stream().to_owned(),
                    source,
                })
            }
        }
        Ok(())
    }

    /// The actor's value is no longer known to be the durable state (a refusal a recovery
    /// found pending stays pending).
    fn mark_unknown(&mut self) {
        if self.actor == ActorState::Durable {
            self.actor = ActorState::Unknown;
        }
    }

    /// Drives to its end whatever a call dropped mid-flight left the journal doing (an append,
    /// a recovery), on a value of its own: never on a state a command is about to write. The
    /// actor then no longer knows its value to be the durable state.
    async fn settle_aside(&mut self) -> Result<(), AdapterError> {
        // The command is about to use the journal with a value of its own.
        self.spare_recovery = SpareRecovery::Idle;
        if self.driver.is_settled() {
            return Ok(());
        }
        self.mark_unknown();
        let mut scratch = Held(A::clone(&self.recipe.base));
        match self.driver.settle(&mut scratch).await {
            // The stop is the command's to report.
            Ok(()) | Err(persevere_driver::Error::StateUnknown { .. }) => Ok(()),
            Err(source) => Err(AdapterError::Persist {
                stream: self.stream().to_owned(),
                source,
            }),
        }
    }

    /// Runs one storage command on the stream.
    async fn command(
        &mut self,
        operation: &'static str,
        command: Command,
    ) -> Result<Completion, AdapterError> {
        let stream: std::sync::Arc<str> = self.driver.stream().into();
        let backend = self.driver.backend().clone();
        backend
            .execute(std::sync::Arc::clone(&stream), command)
            .await
            .map_err(|e| AdapterError::Command {
                stream: stream.to_string(),
                operation,
                reason: e.to_string(),
            })
    }

    /// Deletes the events the newest snapshot covers.
    pub(crate) async fn compact(&mut self) -> Result<(), AdapterError> {
        if let Some(up_to) = self.driver.journal().snapshot_seq() {
            self.command(
                "compact",
                Command::DeleteEvents {
                    id: CommandId(0),
                    up_to,
                },
            )
            .await?;
        }
        Ok(())
    }

    /// Makes the next start recover the initial state: a snapshot of it at the head, then
    /// every event and older snapshot deleted (the head does not move).
    pub(crate) async fn purge(&mut self) -> Result<(), AdapterError> {
        let stream = self.stream().to_owned();
        let failed = |source| AdapterError::Snapshot {
            stream: stream.clone(),
            source,
        };
        // The initial state becomes the durable one: the actor's next persist starts from it.
        self.mark_unknown();
        // Whatever the journal has under way or stopped on (an outage) is finished first, on
        // a state of its own: the snapshot below must hold the initial state, never what the
        // log recovers to.
        self.settle_aside().await?;
        if self.driver.needs_resume() {
            let mut recovered = Held(A::clone(&self.recipe.base));
            self.driver.resume(&mut recovered).await.map_err(failed)?;
        }
        // Written even over a snapshot at the head (every Light append carries one).
        let mut base = Held(A::clone(&self.recipe.base));
        self.driver
            .snapshot_replacing(&mut base)
            .await
            .map_err(failed)?;
        let up_to = self.driver.last_seq();
        self.command(
            "purge",
            Command::DeleteEvents {
                id: CommandId(0),
                up_to,
            },
        )
        .await?;
        self.command(
            "purge",
            Command::DeleteSnapshots {
                id: CommandId(0),
                keep: 1,
            },
        )
        .await?;
        Ok(())
    }

    /// The events with seqs `from..=to` that exist. An encrypted store's events are opened
    /// in order, each bound to the tag of the event before it: the range is read from the
    /// event before `from` (whose tag it takes as stored: a changed tag fails the next event's
    /// authentication), and an event whose predecessor was compacted away takes the chain value
    /// the snapshot at that seq authenticates.
    pub(crate) async fn events(
        &mut self,
        from: u64,
        to: u64,
    ) -> Result<Vec<A::Event>, AdapterError> {
        let stream = self.stream().to_owned();
        let fail = |reason: String| AdapterError::Command {
            stream: stream.clone(),
            operation: "get_events_range",
            reason,
        };
        let keys = self.recipe.key.as_ref().map(|key| Arc::clone(key.ring()));
        let from = from.max(1);
        // The last event read and its tag: the chain value of the event after it.
        let mut chain: Option<(u64, Chain)> = None;
        let mut events = Vec::new();
        let mut next = if keys.is_some() { from - 1 } else { from }.max(1);
        while next <= to {
            let page = self
                .command(
                    "get_events_range",
                    Command::ReadEvents {
                        id: CommandId(0),
                        from: next,
                        limit: 1024,
                    },
                )
                .await?;
            let Completion::Events { records, .. } = page else {
                return Err(fail(format!(
                    "the store answered {} to a read",
                    page.kind()
                )));
            };
            let Some(last) = records.last().map(|r| r.seq) else {
                break;
            };
            for stored in records.iter().filter(|r| r.seq <= to) {
                let seq = stored.seq;
                let record =
                    record::decode(&stored.bytes).map_err(|e| fail(format!("event {seq}: {e}")))?;
                if record.header.kind != RecordKind::Event {
                    return Err(fail(format!("event {seq} is not an event record")));
                }
                let opened;
                let payload = match &keys {
                    None if record.sealed => {
                        return Err(fail(format!(
                            "event {seq} is sealed, and the store has no key"
                        )))
                    }
                    None => record.payload,
                    Some(_) if !record.sealed => {
                        return Err(fail(format!(
                            "event {seq} is not sealed in an encrypted store"
                        )))
                    }
                    Some(_) if seq < from => {
                        chain = Some((
                            seq,
                            stored_tag(record.payload).ok_or_else(|| {
                                fail(format!("event {seq} is too short to be sealed"))
                            })?,
                        ));
                        continue;
                    }
                    Some(keys) => {
                        let before = match chain {
                            Some((previous, tag)) if previous + 1 == seq => tag,
                            _ => self.chain_before(seq).await?,
                        };
                        let at = Binding {
                            store: self.recipe.config.store_id(),
                            stream: &stream,
                            kind: RecordKind::Event,
                            codec: <Borsh as Codec<A::Event>>::ID,
                            seq,
                        };
                        opened = seal::open_payload(
                            keys,
                            &at,
                            record.header.type_version,
                            &before,
                            record.payload,
                        )
                        .map_err(|e| fail(format!("event {seq}: {e}")))?;
                        chain = Some((seq, opened.tag));
                        &opened.plaintext[..]
                    }
                };
                let version = record.header.type_version;
                let event = if version == A::EVENT_VERSION {
                    <Borsh as Codec<A::Event>>::decode(payload)
                        .map_err(|e| fail(format!("event {seq}: {e}")))?
                } else {
                    A::upcast_event(version, payload)
                        .map_err(|e| fail(format!("event {seq}: {e}")))?
                };
                events.push(event);
            }
            next = last + 1;
        }
        Ok(events)
    }

    /// The chain value an encrypted event at `seq` is bound to when the event before it is not
    /// stored: zero for the first event, else the one the snapshot at `seq - 1` authenticates.
    async fn chain_before(&mut self, seq: u64) -> Result<Chain, AdapterError> {
        let stream = self.stream().to_owned();
        let fail = |reason: String| AdapterError::Command {
            stream: stream.clone(),
            operation: "get_events_range",
            reason,
        };
        if seq <= 1 {
            return Ok([0; CHAIN_LEN]);
        }
        let covered = seq - 1;
        let found = self
            .command(
                "get_events_range",
                Command::LoadSnapshot {
                    id: CommandId(0),
                    before: Some(seq),
                },
            )
            .await?;
        let snapshot = match found {
            Completion::Snapshot(Some(snapshot)) if snapshot.seq == covered => snapshot,
            Completion::Snapshot(_) => {
                return Err(fail(format!(
                    "event {covered} is not stored and no snapshot covers it, so event {seq} cannot be authenticated"
                )))
            }
            other => {
                return Err(fail(format!(
                    "the store answered {} to a snapshot read",
                    other.kind()
                )))
            }
        };
        let (Some(keys), Ok(record)) = (&self.recipe.key, record::decode(&snapshot.bytes)) else {
            return Err(fail(format!("the snapshot at {covered} is unreadable")));
        };
        let at = Binding {
            store: self.recipe.config.store_id(),
            stream: &stream,
            kind: RecordKind::Snapshot,
            codec: <Borsh as Codec<A>>::ID,
            seq: covered,
        };
        seal::open_payload(
            keys.ring(),
            &at,
            record.header.type_version,
            &[0; CHAIN_LEN],
            record.payload,
        )
        .map(|opened| opened.chain)
        .map_err(|e| fail(format!("the snapshot at {covered}: {e}")))
    }

    /// The stream id.
    pub(crate) fn stream(&self) -> &str {
        self.driver.stream()
    }

    /// The last durable seq.
    pub(crate) fn last_seq(&self) -> u64 {
        self.driver.last_seq()
    }

    /// Persists `events` atomically into `actor`. On error the actor is as before.
    ///
    /// The rare paths (resuming after a storage outage, handling a failure) are boxed: the
    /// future of every persist holds only the common path, so the box ave's `async_trait`
    /// allocates per call stays small.
    pub(crate) async fn persist(
        &mut self,
        actor: &mut A,
        events: Batch<A::Event>,
    ) -> Result<(), AdapterError> {
        if self.actor != ActorState::Durable || self.driver.needs_resume() {
            Box::pin(self.resync(actor)).await?;
        }
        let result = {
            let mut lent = Lent::new(actor, &mut self.spare);
            self.driver.persist_batch(events, lent.held()).await
        };
        match result {
            Ok(_) => Ok(()),
            Err(source) => Box::pin(self.failed(actor, source)).await,
        }
    }

    /// Gives the actor the durable state before a persist, when its own value may be another
    /// (see [`ActorState`]) or a storage outage stopped the journal (see
    /// [`rebuild`](Self::rebuild)); then refuses the request once if a write of unknown
    /// outcome had landed.
    async fn resync(&mut self, actor: &mut A) -> Result<(), AdapterError> {
        let stream = self.driver.stream().to_owned();
        let fail = |source| AdapterError::Persist {
            stream: stream.clone(),
            source,
        };
        let pending = match self.actor {
            ActorState::Landed(landed) => Some(landed),
            _ => None,
        };
        // Until it is done (a recovery cut short goes on at the next call).
        self.mark_unknown();
        let resumed = self.rebuild(actor).await.map_err(fail)?;
        if let Some(landed) = pending {
            landed.check().map_err(fail)?;
        }
        resumed.check().map_err(fail)
    }

    /// The error of a failed persist; after a refusal, the actor rebuilt first.
    async fn failed(
        &mut self,
        actor: &mut A,
        source: persevere_driver::Error,
    ) -> Result<(), AdapterError> {
        tracing::warn!(stream = %self.stream(), error = %source, "persist failed");
        if matches!(
            source,
            persevere_driver::Error::Persist(PersistError::Rejected(Rejection::Refused(_)))
        ) {
            // `apply` refused: it may have changed the actor before refusing. Rebuild it from
            // the durable log, as ave-actors-store's rollback promises (until that is done,
            // a rebuild cut short included, the actor's value is not known).
            self.mark_unknown();
            let rebuilt = self.rebuild(actor).await;
            self.keep_landed(rebuilt)?;
        } else if !self.driver.holds_acknowledged_state() {
            // A write of unknown outcome: the actor holds its events until the next persist
            // recovers the durable state into it.
            self.mark_unknown();
        }
        Err(AdapterError::Persist {
            stream: self.stream().to_owned(),
            source,
        })
    }

    /// Writes a snapshot of `state`. A journal stopped by a storage outage is not recovered
    /// here (that would recover a copy, not the actor): the snapshot fails, and the next persist
    /// recovers the actor.
    pub(crate) async fn snapshot(&mut self, state: A) -> Result<(), AdapterError> {
        self.settle_aside().await?;
        let stopped = self.driver.journal().stop_reason();
        if let Some(reason) = stopped.filter(|_| self.driver.needs_resume()) {
            return Err(AdapterError::Snapshot {
                stream: self.driver.stream().to_owned(),
                source: persevere_driver::Error::Stopped(reason.clone()),
            });
        }
        let mut held = Held(state);
        self.driver
            .snapshot(&mut held)
            .await
            .map(drop)
            .map_err(|source| AdapterError::Snapshot {
                stream: self.driver.stream().to_owned(),
                source,
            })
    }

    /// Writes a snapshot of the actor's own value, `state` (its clone): refused while that
    /// value may differ from the durable state (see [`ActorState::Unknown`]), which the
    /// snapshot would make durable.
    pub(crate) async fn snapshot_actor(&mut self, state: A) -> Result<(), AdapterError> {
        let settled = self.settle_aside().await;
        if self.actor != ActorState::Durable {
            return Err(AdapterError::StateUnknown {
                stream: self.stream().to_owned(),
            });
        }
        settled?;
        self.snapshot(state).await
    }

    /// What the store repaired that may involve this stream.
    pub(crate) fn repairs(&self) -> Vec<persevere_core::Repair> {
        self.driver.repairs()
    }

    /// Replaces the actor's state with the durable one (newest snapshot + replay): the driver
    /// settles, builds the journal again and recovers (see [`Driver::recover`]) on the slot's
    /// spare value, never on the actor, and the actor takes the result through
    /// `PersistentActor::update`, as at start. A call dropped mid-way leaves the actor as it
    /// was, and the next one finishes that recovery (see [`SpareRecovery`]). Returns what the
    /// recovery found (see [`Resume`]).
    async fn rebuild(&mut self, actor: &mut A) -> Result<Resume, persevere_driver::Error> {
        let resumed = match self.spare_recovery {
            // Settles it, and recovers again only if the journal stopped meanwhile.
            SpareRecovery::Underway => self.driver.resume(&mut self.spare).await,
            SpareRecovery::Idle => {
                self.spare_recovery = SpareRecovery::Underway;
                self.driver.recover(&mut self.spare).await
            }
        };
        self.spare_recovery = SpareRecovery::Idle;
        let resumed = resumed?;
        tracing::debug!(stream = %self.stream(), "actor's state rebuilt from the log");
        actor.update(std::mem::replace(
            &mut self.spare.0,
            A::clone(&self.recipe.base),
        ));
        self.actor = ActorState::Durable;
        Ok(resumed)
    }
}

/// The tag a sealed record's payload ends with (the chain value of the event after it).
fn stored_tag(payload: &[u8]) -> Option<Chain> {
    let start = payload.len().checked_sub(TAG_LEN)?;
    payload.get(start..)?.try_into().ok()
}
