//! A configurable counter actor shared by the tests.
#![allow(dead_code, clippy::unwrap_used)]

use std::marker::PhantomData;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use ave_actors_actor::{
    Actor, ActorContext, ActorPath, ActorRef, ActorSystem, Error as ActorError, Handler, SystemRef,
    SystemRunner,
};
use borsh::{BorshDeserialize, BorshSerialize};
use persevere_ave::store::{self, Persistence, PersistentActor};
use persevere_ave::{AdapterError as Error, EncryptedKey, Manager, SealingKeys};

/// How a counter starts its store (not persisted).
#[derive(Clone, Default)]
pub struct Setup {
    pub manager: Option<Manager>,
    pub name: String,
    pub prefix: Option<String>,
    pub key: Option<EncryptedKey>,
    /// The typed error of a failed `start_store`, for the test to read.
    pub start_error: Arc<Mutex<Option<Error>>>,
    /// Counts clones of the actor.
    pub clones: Arc<AtomicUsize>,
}

impl Setup {
    pub fn new(manager: impl Into<Manager>) -> Self {
        Self {
            manager: Some(manager.into()),
            name: "counter".into(),
            ..Self::default()
        }
    }

    pub fn key(mut self, key: EncryptedKey) -> Self {
        self.key = Some(key);
        self
    }

    pub fn prefix(mut self, prefix: &str) -> Self {
        self.prefix = Some(prefix.into());
        self
    }

    pub fn start_error(&self) -> Option<Error> {
        self.start_error.lock().unwrap().clone()
    }
}

/// A counter: `Add(n)` persists `n` (refused above `LIMIT`), `Get` reads it.
/// `P`: the persistence; `COMPACT`: compaction on snapshot; snapshots every 3 events.
#[derive(BorshSerialize, BorshDeserialize)]
pub struct Counter<P, const COMPACT: bool> {
    pub value: u64,
    pub history: Vec<u64>,
    #[borsh(skip)]
    pub setup: Setup,
    #[borsh(skip)]
    _persistence: PhantomData<fn() -> P>,
}

pub const LIMIT: u64 = 1_000;

impl<P, const C: bool> Clone for Counter<P, C> {
    fn clone(&self) -> Self {
        self.setup.clones.fetch_add(1, Ordering::SeqCst);
        Self {
            value: self.value,
            history: self.history.clone(),
            setup: self.setup.clone(),
            _persistence: PhantomData,
        }
    }
}

impl<P, const C: bool> std::fmt::Debug for Counter<P, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Counter")
            .field("value", &self.value)
            .finish()
    }
}

#[derive(Debug, Clone)]
pub enum Msg {
    Add(u64),
    /// Adds `n`, then refuses: `apply` changes the state before it returns `Err`.
    AddThenRefuse(u64),
    AddAll(Vec<u64>),
    Snapshot,
    Get,
    LastSeq,
    /// What the store repaired that may involve this actor's stream.
    Repairs,
}

impl ave_actors_actor::Message for Msg {}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resp {
    Ok,
    Value(u64, Vec<u64>),
    Seq(u64),
    Repairs(Vec<persevere_core::Repair>),
}

impl ave_actors_actor::Response for Resp {}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, BorshSerialize, BorshDeserialize)]
pub enum Ev {
    Add(u64),
    AddThenRefuse(u64),
}

impl ave_actors_actor::Event for Ev {}

#[async_trait]
impl<P, const C: bool> Actor for Counter<P, C>
where
    P: Persistence + Send + Sync + 'static,
{
    type Message = Msg;
    type Event = Ev;
    type Response = Resp;

    fn get_span(id: &str, _parent: Option<tracing::Span>) -> tracing::Span {
        tracing::info_span!("Counter", id)
    }

    async fn pre_start(&mut self, ctx: &mut ActorContext<Self>) -> Result<(), ActorError> {
        let setup = self.setup.clone();
        let manager = setup.manager.clone().expect("a manager");
        let result = store::start_store(
            self,
            &setup.name,
            setup.prefix.clone(),
            ctx,
            manager,
            setup
                .key
                .as_ref()
                .map(SealingKeys::try_from)
                .transpose()
                .expect("a readable key"),
        )
        .await;
        if let Err(error) = &result {
            *setup.start_error.lock().unwrap() = Some(error.clone());
        }
        result.map_err(Into::into)
    }
}

#[async_trait]
impl<P, const C: bool> Handler<Counter<P, C>> for Counter<P, C>
where
    P: Persistence + Send + Sync + 'static,
{
    async fn handle_message(
        &mut self,
        _sender: ActorPath,
        msg: Msg,
        ctx: &mut ActorContext<Self>,
    ) -> Result<Resp, ActorError> {
        match msg {
            Msg::Add(n) => self.persist(&Ev::Add(n), ctx).await?,
            Msg::AddThenRefuse(n) => self.persist(&Ev::AddThenRefuse(n), ctx).await?,
            Msg::AddAll(ns) => {
                store::persist_all(self, ns.into_iter().map(Ev::Add), ctx).await?;
            }
            Msg::Snapshot => self.snapshot(ctx).await?,
            Msg::Get => return Ok(Resp::Value(self.value, self.history.clone())),
            Msg::LastSeq => return Ok(Resp::Seq(store::last_seq(self, ctx).await?)),
            Msg::Repairs => return Ok(Resp::Repairs(store::repairs(self, ctx).await?)),
        }
        Ok(Resp::Ok)
    }
}

impl<P, const C: bool> PersistentActor for Counter<P, C>
where
    P: Persistence + Send + Sync + 'static,
{
    type Persistence = P;
    type InitParams = Setup;

    fn create_initial(setup: Setup) -> Self {
        Self {
            value: 0,
            history: Vec::new(),
            setup,
            _persistence: PhantomData,
        }
    }

    fn apply(&mut self, event: &Ev) -> Result<(), ActorError> {
        match *event {
            Ev::Add(n) if self.value + n > LIMIT => Err(ActorError::Functional {
                description: format!("{} + {n} is above the limit", self.value),
            }),
            Ev::Add(n) => {
                self.value += n;
                self.history.push(n);
                Ok(())
            }
            Ev::AddThenRefuse(n) => {
                self.value += n;
                self.history.push(n);
                Err(ActorError::Functional {
                    description: "refused after changing the state".into(),
                })
            }
        }
    }

    /// Keeps the setup (not persisted) across recovery.
    fn update(&mut self, state: Self) {
        self.value = state.value;
        self.history = state.history;
    }

    fn snapshot_every() -> Option<u64> {
        Some(3)
    }

    fn compact_on_snapshot() -> bool {
        C
    }
}

pub type Full = Counter<persevere_ave::FullPersistence, false>;
pub type Light = Counter<persevere_ave::LightPersistence, false>;

/// A fresh actor system.
pub fn new_system() -> (SystemRef, SystemRunner) {
    ActorSystem::create(Default::default(), Default::default())
}

/// Starts a counter named `name` at the root.
pub async fn start<P, const C: bool>(
    system: &SystemRef,
    name: &str,
    setup: Setup,
) -> Result<ActorRef<Counter<P, C>>, ActorError>
where
    P: Persistence + Send + Sync + 'static,
{
    system
        .create_root_actor(name, Counter::<P, C>::initial(setup))
        .await
}

/// The counter's value.
pub async fn value<P, const C: bool>(actor: &ActorRef<Counter<P, C>>) -> u64
where
    P: Persistence + Send + Sync + 'static,
{
    match actor.ask(Msg::Get).await.unwrap() {
        Resp::Value(value, _) => value,
        other => panic!("unexpected {other:?}"),
    }
}

/// Stops the system gracefully and waits for it.
pub async fn stop(system: SystemRef, mut runner: SystemRunner) {
    system.stop_system();
    runner.run().await;
}
