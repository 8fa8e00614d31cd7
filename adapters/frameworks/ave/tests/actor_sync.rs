//! The live actor holds its stream's durable state and nothing else, whatever happened to its
//! store in between: a write whose outcome stayed unknown, a `Recover` or `Purge` sent to its
//! store while an outage had stopped the journal, a persist cut short while it recovered.
#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::marker::PhantomData;
use std::task::Poll;
use std::time::Duration;

use async_trait::async_trait;
use ave_actors_actor::{
    Actor, ActorContext, ActorPath, ActorRef, ActorSystem, Error as ActorError, Handler, SystemRef,
    SystemRunner,
};
use borsh::{BorshDeserialize, BorshSerialize};
use persevere_ave::store::{self, Persistence, PersistentActor, Store, StoreCommand};
use persevere_ave::{FullPersistence, LightPersistence, MemoryManager};
use persevere_memory::Fault;

/// A sum of increments, with no automatic snapshot (so a recovery replays every event).
#[derive(BorshSerialize, BorshDeserialize)]
struct Tally<P> {
    sum: u64,
    #[borsh(skip)]
    manager: Option<MemoryManager>,
    #[borsh(skip)]
    _persistence: PhantomData<fn() -> P>,
}

impl<P> Clone for Tally<P> {
    fn clone(&self) -> Self {
        Self {
            sum: self.sum,
            manager: self.manager.clone(),
            _persistence: PhantomData,
        }
    }
}

impl<P> std::fmt::Debug for Tally<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tally({})", self.sum)
    }
}

#[derive(Debug, Clone)]
enum Msg {
    /// Persists `n` increments of 1 in one atomic append.
    AddMany(u64),
    Add(u64),
    /// Persists an increment `n`, dropping the persist at its first wait (as a `select!` or a
    /// timeout would drop it). Answers whether it was cut short (`Cut`) or ended (`Ok`, or the
    /// error).
    AddCutShort(u64),
    Snapshot,
    Get,
}

impl ave_actors_actor::Message for Msg {}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Resp {
    Ok,
    Cut,
    Sum(u64),
}

impl ave_actors_actor::Response for Resp {}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, BorshSerialize, BorshDeserialize)]
struct Added(u64);

/// The increment `apply` refuses.
const REFUSED: u64 = u64::MAX;

impl ave_actors_actor::Event for Added {}

#[async_trait]
impl<P: Persistence + Send + Sync + 'static> Actor for Tally<P> {
    type Message = Msg;
    type Event = Added;
    type Response = Resp;

    fn get_span(id: &str, _parent: Option<tracing::Span>) -> tracing::Span {
        tracing::info_span!("Tally", id)
    }

    async fn pre_start(&mut self, ctx: &mut ActorContext<Self>) -> Result<(), ActorError> {
        let manager = self.manager.clone().expect("a manager");
        store::start_store(self, "tally", None, ctx, manager, None)
            .await
            .map_err(Into::into)
    }
}

#[async_trait]
impl<P: Persistence + Send + Sync + 'static> Handler<Tally<P>> for Tally<P> {
    async fn handle_message(
        &mut self,
        _sender: ActorPath,
        msg: Msg,
        ctx: &mut ActorContext<Self>,
    ) -> Result<Resp, ActorError> {
        match msg {
            Msg::AddMany(n) => store::persist_all(self, (0..n).map(|_| Added(1)), ctx).await?,
            Msg::Add(n) => self.persist(&Added(n), ctx).await?,
            Msg::AddCutShort(n) => {
                let event = Added(n);
                let mut persist = std::pin::pin!(self.persist(&event, ctx));
                match std::future::poll_fn(|cx| Poll::Ready(persist.as_mut().poll(cx))).await {
                    Poll::Ready(result) => result?,
                    Poll::Pending => return Ok(Resp::Cut),
                }
            }
            Msg::Snapshot => self.snapshot(ctx).await?,
            Msg::Get => return Ok(Resp::Sum(self.sum)),
        }
        Ok(Resp::Ok)
    }
}

impl<P: Persistence + Send + Sync + 'static> PersistentActor for Tally<P> {
    type Persistence = P;
    type InitParams = MemoryManager;

    fn create_initial(manager: MemoryManager) -> Self {
        Self {
            sum: 0,
            manager: Some(manager),
            _persistence: PhantomData,
        }
    }

    fn apply(&mut self, Added(n): &Added) -> Result<(), ActorError> {
        if *n == REFUSED {
            return Err(ActorError::Functional {
                description: "refused".into(),
            });
        }
        self.sum += n;
        Ok(())
    }

    fn update(&mut self, state: Self) {
        self.sum = state.sum;
    }

    fn snapshot_every() -> Option<u64> {
        None
    }
}

async fn start<P: Persistence + Send + Sync + 'static>(
    manager: &MemoryManager,
) -> (SystemRef, SystemRunner, ActorRef<Tally<P>>) {
    let (system, runner) = ActorSystem::create(Default::default(), Default::default());
    let tally = system
        .create_root_actor("t", Tally::<P>::initial(manager.clone()))
        .await
        .unwrap();
    (system, runner, tally)
}

async fn stop(system: SystemRef, mut runner: SystemRunner) {
    system.stop_system();
    runner.run().await;
}

async fn sum<P: Persistence + Send + Sync + 'static>(tally: &ActorRef<Tally<P>>) -> u64 {
    match tally.ask(Msg::Get).await.unwrap() {
        Resp::Sum(sum) => sum,
        other => panic!("unexpected {other:?}"),
    }
}

/// The sum a fresh start of the stream recovers.
async fn recovered<P: Persistence + Send + Sync + 'static>(manager: &MemoryManager) -> u64 {
    let (system, runner, tally) = start::<P>(manager).await;
    let recovered = sum(&tally).await;
    stop(system, runner).await;
    recovered
}

/// Runs `attempt` until it succeeds: while the backend's reopen backoff runs, commands fail at
/// once, so it tries again a little later (bounded: a store that never comes back fails).
async fn until_ok<T, E, F: Future<Output = Result<T, E>>>(mut attempt: impl FnMut() -> F) -> T {
    for _ in 0..10_000 {
        if let Ok(value) = attempt().await {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("the store never came back");
}

/// `tally` persists `before` increments of 1, then one persist of 1 meets an outage longer than
/// its re-reads: it fails with an unknown outcome, and nothing of it was written (the store
/// fences before writing). The store can be reopened again when this returns.
async fn outage<P: Persistence + Send + Sync + 'static>(
    manager: &MemoryManager,
    tally: &ActorRef<Tally<P>>,
    before: u64,
) {
    let memory = manager.memory().clone();
    tally.ask(Msg::AddMany(before)).await.unwrap();
    memory.inject(Fault::Fence);
    memory.fail_reopens(u32::MAX);
    let error = tally.ask(Msg::Add(1)).await.unwrap_err();
    assert!(error.to_string().contains("landed: None"), "{error}");
    // While the store stays down, a persist fails as a persist (its recovery of the actor
    // cannot read the log).
    let error = tally.ask(Msg::Add(1)).await.unwrap_err();
    assert!(
        matches!(&error, ActorError::StoreOperation { operation, .. } if operation == "persist"),
        "{error:?}"
    );
    memory.fail_reopens(0);
}

async fn store_of<P: Persistence + Send + Sync + 'static>(
    system: &SystemRef,
) -> ActorRef<Store<Tally<P>>> {
    system
        .get_actor(&ActorPath::from("/user/t/store"))
        .await
        .unwrap()
}

/// After [`outage`], once the store is back: a persist dropped at its first wait, which is
/// the first yield of the recovery it starts (between two slices of the replay).
async fn cut_short_while_it_recovers(system: &SystemRef, tally: &ActorRef<Tally<FullPersistence>>) {
    let store = store_of::<FullPersistence>(system).await;
    until_ok(|| store.ask(StoreCommand::GetEvents { from: 0, to: 1 })).await;
    let cut = tally.ask(Msg::AddCutShort(1)).await;
    assert_eq!(cut.unwrap(), Resp::Cut);
}

/// After the write of unknown outcome, the store's `Recover` brings the journal back (into a
/// value of its own): the actor's next persist starts from the durable state, never from the
/// value holding the event that was not written. Under Light every append carries a snapshot
/// of the actor, which would make that event durable.
async fn a_recover_by_the_store_after_an_outage<P: Persistence + Send + Sync + 'static>() {
    let manager = MemoryManager::default();
    let (system, runner, tally) = start::<P>(&manager).await;
    outage(&manager, &tally, 3).await;
    let store = store_of::<P>(&system).await;
    until_ok(|| store.ask(StoreCommand::Recover)).await;
    tally.ask(Msg::Add(5)).await.unwrap();
    assert_eq!(sum(&tally).await, 8, "the live actor");
    stop(system, runner).await;
    assert_eq!(recovered::<P>(&manager).await, 8, "the next start");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recover_by_the_store_after_an_outage_never_makes_the_unwritten_event_durable_full() {
    a_recover_by_the_store_after_an_outage::<FullPersistence>().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recover_by_the_store_after_an_outage_never_makes_the_unwritten_event_durable_light() {
    a_recover_by_the_store_after_an_outage::<LightPersistence>().await;
}

/// The actor's own snapshot while its value may hold the event of unknown outcome is refused
/// (it would make that event durable), before and after its store's `Recover`; after its next
/// persist it is taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_of_a_value_that_may_hold_an_unwritten_event_is_refused() {
    let manager = MemoryManager::default();
    let (system, runner, tally) = start::<FullPersistence>(&manager).await;
    outage(&manager, &tally, 3).await;
    for recover in [false, true] {
        if recover {
            let store = store_of::<FullPersistence>(&system).await;
            until_ok(|| store.ask(StoreCommand::Recover)).await;
        }
        let error = tally.ask(Msg::Snapshot).await.unwrap_err();
        assert!(error.to_string().contains("durable state"), "{error}");
    }
    until_ok(|| tally.ask(Msg::Add(5))).await;
    tally.ask(Msg::Snapshot).await.unwrap();
    stop(system, runner).await;
    assert_eq!(recovered::<FullPersistence>(&manager).await, 8);
}

/// A purge makes the initial state durable: the live actor's next persist starts from it, as
/// the next start does, rather than from the value it held before the purge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_purge_the_actor_goes_on_from_the_initial_state_light() {
    let manager = MemoryManager::default();
    let (system, runner, tally) = start::<LightPersistence>(&manager).await;
    outage(&manager, &tally, 3).await;
    let store = store_of::<LightPersistence>(&system).await;
    until_ok(|| store.ask(StoreCommand::Purge)).await;
    tally.ask(Msg::Add(5)).await.unwrap();
    assert_eq!(sum(&tally).await, 5, "the live actor");
    stop(system, runner).await;
    assert_eq!(
        recovered::<LightPersistence>(&manager).await,
        5,
        "the next start"
    );
}

/// After an [`outage`] over 5,000 events and two persists cut short while they recovered, `between`
/// sent to the store (if any), then a persist of 5: the live actor and the next start hold the
/// durable state plus 5 (the initial state plus 5 after a purge), never the rest of a replay
/// applied on top of another value.
async fn goes_on_after_a_cut(between: Option<StoreCommand<Tally<FullPersistence>, Added>>) {
    let manager = MemoryManager::default();
    let (system, runner, tally) = start::<FullPersistence>(&manager).await;
    outage(&manager, &tally, 5_000).await;
    cut_short_while_it_recovers(&system, &tally).await;
    // A second cut: the recovery under way has replayed part of the log by then.
    assert_eq!(tally.ask(Msg::AddCutShort(1)).await.unwrap(), Resp::Cut);
    let purge = matches!(between, Some(StoreCommand::Purge));
    if let Some(command) = between {
        let store = store_of::<FullPersistence>(&system).await;
        store.ask(command).await.unwrap();
    }
    tally.ask(Msg::Add(5)).await.unwrap();
    let want = if purge { 5 } else { 5_005 };
    assert_eq!(sum(&tally).await, want, "the live actor");
    stop(system, runner).await;
    assert_eq!(
        recovered::<FullPersistence>(&manager).await,
        want,
        "the next start"
    );
}

/// The next persist finishes the recovery the cut persist started, and the actor holds the
/// durable state plus its event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persist_cut_short_while_it_recovered_leaves_the_actor_the_durable_state() {
    goes_on_after_a_cut(None).await;
}

/// The store's `Recover` after the cut recovers on a value of its own; the next persist
/// recovers the actor afresh rather than take what the cut recovery had left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recover_after_a_persist_cut_short_while_it_recovered_leaves_the_actor_the_durable_state()
{
    goes_on_after_a_cut(Some(StoreCommand::Recover)).await;
}

/// The purge finishes the recovery the cut persist started on a value of its own, and writes
/// the initial state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purge_after_a_persist_cut_short_while_it_recovered_writes_the_initial_state() {
    goes_on_after_a_cut(Some(StoreCommand::Purge)).await;
}

/// A write that landed although its outcome stayed unknown (every re-read failed), then the
/// store's `Recover`: the actor's blind retry is still refused once, never applied twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blind_retry_after_a_recover_by_the_store_is_refused_once() {
    let manager = MemoryManager::default();
    let memory = manager.memory().clone();
    let (system, runner, tally) = start::<FullPersistence>(&manager).await;
    tally.ask(Msg::AddMany(3)).await.unwrap();
    memory.inject(Fault::FailAfterWrite);
    for _ in 0..5 {
        memory.inject(Fault::FailRead);
    }
    let error = tally.ask(Msg::Add(1)).await.unwrap_err();
    assert!(error.to_string().contains("landed: None"), "{error}");
    let store = store_of::<FullPersistence>(&system).await;
    match store.ask(StoreCommand::Recover).await.unwrap() {
        persevere_ave::store::StoreResponse::State(Some(state)) => assert_eq!(state.sum, 4),
        other => panic!("unexpected {other:?}"),
    }
    let refused = tally.ask(Msg::Add(1)).await.unwrap_err();
    assert!(refused.to_string().contains("had landed"), "{refused}");
    assert_eq!(sum(&tally).await, 4, "the live actor");
    tally.ask(Msg::Add(1)).await.unwrap();
    stop(system, runner).await;
    assert_eq!(
        recovered::<FullPersistence>(&manager).await,
        5,
        "the next start"
    );
}

/// Persists each dropped at their first wait, again and again, while the actor's value is
/// recovered from 5,000 events: every call takes that recovery further (never starting it
/// over), so one gets through after a bounded number of tries, and the actor holds the
/// durable state plus its event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persists_dropped_at_their_first_wait_still_get_through_a_recovery() {
    let manager = MemoryManager::default();
    let (system, runner, tally) = start::<FullPersistence>(&manager).await;
    outage(&manager, &tally, 5_000).await;
    cut_short_while_it_recovers(&system, &tally).await;
    let mut tries = 1;
    loop {
        match tally.ask(Msg::AddCutShort(1)).await {
            Ok(Resp::Cut) => {}
            Ok(Resp::Ok) => break,
            other => panic!("unexpected {other:?}"),
        }
        tries += 1;
        assert!(tries < 100, "no persist got through in {tries} tries");
    }
    assert_eq!(sum(&tally).await, 5_001, "the live actor");
    stop(system, runner).await;
    assert_eq!(recovered::<FullPersistence>(&manager).await, 5_001);
}

/// An event `apply` refuses, whose persist is dropped while the rebuild that follows the
/// refusal recovers the actor from 5,000 events: the next persist still starts from the
/// durable state, never from the rest of that recovery applied on top of the actor's value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_whose_rebuild_is_cut_short_leaves_the_next_persist_the_durable_state() {
    let manager = MemoryManager::default();
    let (system, runner, tally) = start::<FullPersistence>(&manager).await;
    tally.ask(Msg::AddMany(5_000)).await.unwrap();
    let cut = tally.ask(Msg::AddCutShort(REFUSED)).await.unwrap();
    assert_eq!(cut, Resp::Cut);
    tally.ask(Msg::Add(5)).await.unwrap();
    assert_eq!(sum(&tally).await, 5_005, "the live actor");
    stop(system, runner).await;
    assert_eq!(recovered::<FullPersistence>(&manager).await, 5_005);
}
