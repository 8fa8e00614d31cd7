//! A store that stays unreachable longer than a journal's re-reads: the actor's persists fail,
//! and once the store can be reopened the same actor goes on, without a restart.
#![allow(clippy::unwrap_used)]

mod common;

use std::future::Future;
use std::time::Duration;

use ave_actors_actor::{ActorRef, Error as ActorError, SystemRef, SystemRunner};
use common::{new_system, start, stop, value, Full, Msg, Setup};
use persevere_ave::MemoryManager;
use persevere_memory::Fault;

/// A counter "c" on `manager` that persisted 1, then a persist during an outage longer than
/// its re-reads (the store fenced, every reopen failing): the system, the counter and that
/// persist's error. The store can be reopened again when this returns.
async fn after_an_outage(
    manager: &MemoryManager,
) -> (SystemRef, SystemRunner, ActorRef<Full>, ActorError) {
    let memory = manager.memory().clone();
    let (system, runner) = new_system();
    let counter: ActorRef<Full> = start(&system, "c", Setup::new(manager.clone()))
        .await
        .unwrap();
    counter.ask(Msg::Add(1)).await.unwrap();
    memory.inject(Fault::Fence);
    memory.fail_reopens(u32::MAX);
    let error = counter.ask(Msg::Add(1)).await.unwrap_err();
    memory.fail_reopens(0);
    (system, runner, counter, error)
}

/// Runs `attempt` until it succeeds: while the backend's reopen backoff runs, commands fail at
/// once, so it tries again a little later (bounded: a store that never comes back fails).
async fn until_ok<T, E, F: Future<Output = Result<T, E>>>(mut attempt: impl FnMut() -> F) {
    let mut refused = 0;
    while attempt().await.is_err() {
        refused += 1;
        assert!(refused < 10_000, "the store never came back");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_actor_goes_on_after_an_outage_longer_than_its_re_reads() {
    let manager = MemoryManager::default();
    let (system, runner, counter, error) = after_an_outage(&manager).await;
    // The outcome is unknown (`landed: None`): until the journal recovers, the actor may show
    // the event it applied before writing.
    assert!(error.to_string().contains("landed: None"), "{error}");
    until_ok(|| counter.ask(Msg::Add(5))).await;
    assert_eq!(value(&counter).await, 6);
    stop(system, runner).await;

    let (system, runner) = new_system();
    let counter: ActorRef<Full> = start(&system, "c", Setup::new(manager)).await.unwrap();
    assert_eq!(value(&counter).await, 6);
    stop(system, runner).await;
}

/// A purge sent to the store while an outage had stopped its journal: the next start
/// recovers the initial state, not the durable state the purge's resume recovered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purge_after_an_outage_leaves_the_initial_state() {
    use ave_actors_actor::ActorPath;
    use persevere_ave::store::{Store, StoreCommand};

    let manager = MemoryManager::default();
    let (system, runner, _counter, _error) = after_an_outage(&manager).await;
    let store: ActorRef<Store<Full>> = system
        .get_actor(&ActorPath::from("/user/c/store"))
        .await
        .unwrap();
    until_ok(|| store.ask(StoreCommand::Purge)).await;
    stop(system, runner).await;

    let (system, runner) = new_system();
    let counter: ActorRef<Full> = start(&system, "c", Setup::new(manager)).await.unwrap();
    assert_eq!(value(&counter).await, 0);
    stop(system, runner).await;
}
