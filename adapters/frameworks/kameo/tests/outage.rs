//! A store that stays unreachable longer than a journal's re-reads: the journal stops, and the
//! same kameo actors go on once the store can be reopened — a `Journaled` actor on its next
//! message, a kameo-persistence key on its next save — without a restart.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{key, profile, stop, tamper_scheme, Add, Counter, CounterArgs, Profile, Visit};
use kameo::prelude::*;
use persevere_kameo::PersistentActor;
use persevere_memory::Fault;

/// Asks until the answer is `Ok`: while the backend's reopen backoff runs, requests fail at
/// once, so each try waits a little.
async fn until_ok<T, E: std::fmt::Debug>(mut ask: impl AsyncFnMut() -> Result<T, E>) -> (T, usize) {
    for refused in 0..10_000 {
        match ask().await {
            Ok(value) => return (value, refused),
            Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
    panic!("the store never came back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actors_go_on_after_an_outage_longer_than_their_re_reads() {
    let memory = tamper_scheme("outage");

    let counter = Counter::spawn(CounterArgs::new(key("outage://s/counter")));
    assert_eq!(counter.ask(Add(1)).await.unwrap(), 1);
    memory.inject(Fault::Fence);
    memory.fail_reopens(u32::MAX);
    let error = counter.ask(Add(1)).await.unwrap_err();
    assert!(error.to_string().contains("landed: None"), "{error}");
    memory.fail_reopens(0);
    let (value, _) = until_ok(async || counter.ask(Add(5)).await).await;
    assert_eq!(value, 6);
    stop(&counter).await;

    let key = key("outage://s/profile");
    let visitor = Profile::spawn_persistent(key.clone(), profile("v"))
        .await
        .unwrap();
    assert_eq!(visitor.ask(Visit).await.unwrap(), 1);
    memory.inject(Fault::Fence);
    memory.fail_reopens(u32::MAX);
    assert!(visitor.ask(Visit).await.is_err());
    memory.fail_reopens(0);
    let (visits, _) = until_ok(async || visitor.ask(Visit).await).await;
    assert!(visits >= 3, "{visits}");
    stop(&visitor).await;
    let restored = Profile::respawn_persistent(key).await.unwrap();
    assert_eq!(restored.ask(common::Visits).await.unwrap(), visits);
    stop(&restored).await;
}
