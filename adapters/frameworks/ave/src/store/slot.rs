//! One actor's open journal: the driver, the spare value its state trades places with, and
//! what it takes to open the journal again.

use std::sync::Arc;

use persevere_core::{Journal, JournalConfig, PersistError, Rejection};
use persevere_driver::{os_random, Backend, Driver, Resume};

use crate::error::Error;
use crate::key::EncryptedKey;
use crate::store::held::{Held, Lent};
use crate::store::persistent_actor::PersistentActor;

/// How to open an actor's journal.
pub(crate) struct Recipe<A> {
    pub(crate) backend: Backend,
    pub(crate) config: JournalConfig,
    pub(crate) key: Option<EncryptedKey>,
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

    /// Opens the journal and recovers the state (the base when the stream is new), claiming
    /// the stream as `claim` says (a rebuild takes it over from the slot's own driver).
    async fn open(
        &self,
        claim: persevere_driver::Claim,
    ) -> Result<(Driver<Held<A>>, Held<A>), Error> {
        let stream = self.config.stream();
        let recover = |source| Error::Recover {
            stream: stream.to_owned(),
            source,
        };
        let mut state = Held(A::clone(&self.base));
        let driver = Driver::open_claiming(&self.backend, self.builder(), &mut state, claim)
            .await
            .map_err(|source| match source {
                // The backend's one rule of stream ownership: another live store writes it.
                persevere_driver::Error::Owned { stream } => Error::AlreadyStarted { stream },
                source => recover(source),
            })?;
        Ok((driver, state))
    }
}

/// The events of one persist request.
pub(crate) enum Batch<E> {
    One(E),
    Many(Vec<E>),
}

/// One actor's open journal.
pub(crate) struct Slot<A: PersistentActor> {
    driver: Driver<Held<A>>,
    /// Holds a stale value of the actor, traded with the live one while the journal has it.
    spare: Held<A>,
    recipe: Recipe<A>,
}

impl<A> Slot<A>
where
    A: PersistentActor,
{
    /// Opens the journal and recovers `actor` from it (through [`PersistentActor::update`],
    /// when the stream holds anything).
    pub(crate) async fn open(recipe: Recipe<A>, actor: &mut A) -> Result<Self, Error> {
        let (driver, recovered) = recipe.open(persevere_driver::Claim::Exclusive).await?;
        tracing::debug!(
            stream = %driver.stream(),
            last_seq = driver.last_seq(),
            "store recovered"
        );
        if driver.last_seq() > 0 {
            actor.update(recovered.0);
        }
        Ok(Self {
            driver,
            spare: Held(A::clone(&recipe.base)),
            recipe,
        })
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
    pub(crate) async fn persist(
        &mut self,
        actor: &mut A,
        events: Batch<A::Event>,
    ) -> Result<(), Error> {
        if self.driver.needs_resume() {
            // A storage outage stopped the journal: the driver recovers the durable state (and
            // refuses this request if a write of unknown outcome had landed); the actor takes it
            // through `PersistentActor::update`, as at start.
            let stream = self.driver.stream().to_owned();
            let fail = |source| Error::Persist {
                stream: stream.clone(),
                source,
            };
            let mut recovered = Held(A::clone(&self.recipe.base));
            let resumed = self.driver.resume(&mut recovered).await.map_err(fail)?;
            if resumed != Resume::Unchanged {
                actor.update(recovered.0);
            }
            resumed.check().map_err(fail)?;
        }
        let result = {
            let mut lent = Lent::new(actor, &mut self.spare);
            match events {
                Batch::One(event) => self.driver.persist(event, lent.held()).await,
                Batch::Many(events) => self.driver.persist_all(events, lent.held()).await,
            }
        };
        match result {
            Ok(_) => Ok(()),
            Err(source) => {
                tracing::warn!(stream = %self.stream(), error = %source, "persist failed");
                if matches!(
                    source,
                    persevere_driver::Error::Persist(PersistError::Rejected(Rejection::Refused(_)))
                ) {
                    // `apply` refused: it may have changed the actor before refusing. Rebuild
                    // it from the durable log, as ave-actors-store's rollback promises.
                    self.rebuild(actor).await?;
                }
                Err(Error::Persist {
                    stream: self.stream().to_owned(),
                    source,
                })
            }
        }
    }

    /// Writes a snapshot of `state`. A journal stopped by a storage outage is not recovered
    /// here (that would recover a copy, not the actor): the snapshot fails, and the next persist
    /// recovers the actor.
    pub(crate) async fn snapshot(&mut self, state: A) -> Result<(), Error> {
        let stopped = self.driver.journal().stop_reason();
        if let Some(reason) = stopped.filter(|_| self.driver.needs_resume()) {
            return Err(Error::Snapshot {
                stream: self.driver.stream().to_owned(),
                source: persevere_driver::Error::Stopped(reason.clone()),
            });
        }
        let mut held = Held(state);
        self.driver
            .snapshot(&mut held)
            .await
            .map(drop)
            .map_err(|source| Error::Snapshot {
                stream: self.driver.stream().to_owned(),
                source,
            })
    }

    /// What the store repaired that may involve this stream.
    pub(crate) fn repairs(&self) -> Vec<persevere_core::Repair> {
        self.driver.repairs()
    }

    /// Replaces the actor's state with the durable one (newest snapshot + replay).
    async fn rebuild(&mut self, actor: &mut A) -> Result<(), Error> {
        let (driver, recovered) = self.recipe.open(persevere_driver::Claim::TakeOver).await?;
        tracing::debug!(stream = %driver.stream(), "state rebuilt after a refused event");
        self.driver = driver;
        actor.update(recovered.0);
        Ok(())
    }
}
