//! Actors and helpers shared by the integration tests.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use kameo::error::HookError;
use kameo::prelude::*;
use persevere_core::seal::KeyRing;
use persevere_core::{Entity, JournalConfig};
use persevere_driver::Backend;
use persevere_kameo::{Error, Journaled, PersistentActor, Url};
use persevere_memory::Memory;
use serde::{Deserialize, Serialize};

pub fn key(text: &str) -> Url {
    Url::parse(text).expect("a valid URL")
}

/// The typed error inside an error of the kameo-persistence API.
pub fn typed<T>(result: anyhow::Result<T>) -> Error {
    match result {
        Ok(_) => panic!("expected an error"),
        Err(error) => match error.downcast::<Error>() {
            Ok(error) => error,
            Err(other) => panic!("not a persevere_kameo::Error: {other:#}"),
        },
    }
}

/// A `file://` key for `stream` in a store under `dir` (for the kameo-persistence API, the
/// directory `dir/stream`).
pub fn file_key(dir: &std::path::Path, stream: &str) -> Url {
    let mut url = Url::from_directory_path(dir).expect("an absolute directory");
    url.path_segments_mut()
        .expect("a path")
        .pop_if_empty()
        .push(stream);
    url
}

/// Registers `scheme` as an in-memory store the test can tamper with.
pub fn tamper_scheme(scheme: &str) -> Memory {
    let memory = Memory::new();
    let shared = memory.clone();
    persevere_kameo::register_scheme(scheme, move |_, runtime| {
        Ok(Backend::inline(runtime.clone(), shared.clone()))
    });
    memory
}

// ---- An event-sourced counter ----------------------------------------------------------------

#[derive(Debug, Default, borsh::BorshSerialize, borsh::BorshDeserialize)]
pub struct Count(pub u64);

impl Entity for Count {
    type Event = u64;
    type Error = String;
    fn apply(&mut self, n: &u64) -> Result<(), String> {
        self.0 = self.0.checked_add(*n).ok_or("overflow")?;
        Ok(())
    }
}

#[derive(Clone)]
pub struct CounterArgs {
    pub key: Url,
    pub snapshot_every: Option<u64>,
    /// Compact the log and keep one snapshot.
    pub compact: bool,
    /// Seal every record under these keys.
    pub keys: Option<Arc<KeyRing>>,
    pub starts: Arc<AtomicU32>,
}

impl CounterArgs {
    pub fn new(key: Url) -> Self {
        Self {
            key,
            snapshot_every: None,
            compact: false,
            keys: None,
            starts: Arc::default(),
        }
    }

    pub fn starts(&self) -> u32 {
        self.starts.load(Ordering::SeqCst)
    }
}

pub struct Counter {
    pub count: Journaled<Count>,
}

impl Actor for Counter {
    type Args = CounterArgs;
    type Error = Error;

    async fn on_start(args: CounterArgs, _: ActorRef<Self>) -> Result<Self, Error> {
        let (every, compact) = (args.snapshot_every, args.compact);
        let configure = |c: JournalConfig| {
            let c = c.snapshot_every(every);
            if compact {
                c.compact_on_snapshot(true).keep_snapshots(1)
            } else {
                c
            }
        };
        let count = match args.keys {
            None => Journaled::open_with(&args.key, configure, Count::default).await?,
            Some(keys) => {
                Journaled::open_encrypted(&args.key, configure, Count::default, keys).await?
            }
        };
        args.starts.fetch_add(1, Ordering::SeqCst);
        Ok(Self { count })
    }

    async fn on_stop(
        &mut self,
        _: WeakActorRef<Self>,
        reason: ActorStopReason,
    ) -> Result<(), Error> {
        self.count.snapshot_on_stop(&reason).await.map(drop)
    }
}

pub struct Add(pub u64);

impl Message<Add> for Counter {
    type Reply = Result<u64, Error>;
    async fn handle(&mut self, Add(n): Add, _: &mut Context<Self, Self::Reply>) -> Self::Reply {
        self.count.persist(n).await?;
        Ok(self.count.state()?.0)
    }
}

pub struct Get;

impl Message<Get> for Counter {
    type Reply = (u64, Option<u64>);
    async fn handle(&mut self, _: Get, _: &mut Context<Self, Self::Reply>) -> Self::Reply {
        let count = self.count.settle().await.map_or(0, |count| count.0);
        (count, self.count.snapshot_seq())
    }
}

pub struct Panic;

impl Message<Panic> for Counter {
    type Reply = ();
    async fn handle(&mut self, _: Panic, _: &mut Context<Self, Self::Reply>) {
        panic!("a handler bug");
    }
}

/// A plain actor to supervise others.
#[derive(Actor)]
pub struct Root;

// ---- A snapshot actor (the kameo-persistence shape) --------------------------------------------

#[derive(Debug, Clone, Actor, Serialize, Deserialize, PersistentActor)]
pub struct Profile {
    pub name: String,
    pub visits: u64,
}

impl From<&Profile> for Profile {
    fn from(actor: &Profile) -> Self {
        actor.clone()
    }
}

pub struct Visit;

impl Message<Visit> for Profile {
    type Reply = anyhow::Result<u64>;
    async fn handle(&mut self, _: Visit, ctx: &mut Context<Self, Self::Reply>) -> Self::Reply {
        self.visits += 1;
        self.save_snapshot(ctx.actor_ref()).await?;
        Ok(self.visits)
    }
}

pub struct Visits;

impl Message<Visits> for Profile {
    type Reply = u64;
    async fn handle(&mut self, _: Visits, _: &mut Context<Self, Self::Reply>) -> u64 {
        self.visits
    }
}

pub fn profile(name: &str) -> Profile {
    Profile {
        name: name.into(),
        visits: 0,
    }
}

/// Stops an actor and waits until it is gone (its `on_stop` finished).
pub async fn stop<A: Actor>(actor: &ActorRef<A>) {
    actor.stop_gracefully().await.expect("stop");
    gone(actor).await;
}

/// Waits until an actor is gone (its `on_stop` finished); `wait_for_shutdown` returns when its
/// mailbox closes, before `on_stop` runs.
pub async fn gone<A: Actor>(actor: &ActorRef<A>) {
    actor.wait_for_shutdown_with_result(|_| ()).await;
}

/// The error an actor's `on_start` returned, if it failed.
pub async fn start_error<A: Actor<Error = Error>>(actor: &ActorRef<A>) -> Option<Error> {
    actor.wait_for_startup().await;
    actor
        .with_startup_result(|result| match result {
            Ok(()) => None,
            Err(HookError::Error(error)) => Some(error.clone()),
            Err(HookError::Panicked(panic)) => panic!("on_start panicked: {panic}"),
        })
        .flatten()
}
