//! A disk that fills, then has space again, under ave actors (Full and Light persistence) on
//! the real file journal: persists fail with a clear error, no acknowledged event is lost and
//! none is invented, and once there is space again the same actors go on persisting without a
//! process restart.
//!
//! The disk fills through a lowered soft `RLIMIT_FSIZE` (with `SIGXFSZ` ignored), in a child
//! process: this test binary run again through `sh -c 'trap "" XFSZ; exec …'` with
//! `FULL_DISK_DIR` set, so that only [`full_disk_child`] does anything.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use ave_actors_actor::ActorRef;
use common::{new_system, start, stop, value, Counter, Msg, Setup};
use persevere_ave::store::Persistence;
use persevere_ave::{FileManager, FullPersistence, LightPersistence};
use persevere_conformance::full_disk::{self, CHILD_ENV};

/// Fills the disk under a running counter and gives the space back; returns its value.
async fn fill_and_free<P>(name: &str, counter: &ActorRef<Counter<P, false>>, dir: &Path) -> u64
where
    P: Persistence + Send + Sync + 'static,
{
    for _ in 0..5 {
        counter.ask(Msg::Add(1)).await.unwrap();
    }
    full_disk::fill(dir, 1024).unwrap();
    let mut acknowledged = value(counter).await;
    let error = loop {
        match counter.ask(Msg::Add(1)).await {
            Ok(_) => acknowledged += 1,
            Err(error) => break error,
        }
        assert!(acknowledged < 900, "the disk never filled");
    };
    println!("{name}: full at {acknowledged}: {error}");
    assert!(error.to_string().contains("File too large"), "{error}");
    for _ in 0..3 {
        assert!(counter.ask(Msg::Add(1)).await.is_err());
        assert_eq!(value(counter).await, acknowledged);
    }
    full_disk::free().unwrap();
    counter.ask(Msg::Add(1)).await.unwrap();
    counter.ask(Msg::Add(1)).await.unwrap();
    assert_eq!(value(counter).await, acknowledged + 2);
    acknowledged + 2
}

/// The child's work; does nothing unless run as the child.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_disk_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let dir = Path::new(&dir);
    let manager = FileManager::create(dir).unwrap();
    let (system, runner) = new_system();
    let full: ActorRef<Counter<FullPersistence, false>> =
        start(&system, "full", Setup::new(manager.clone()))
            .await
            .unwrap();
    let light: ActorRef<Counter<LightPersistence, false>> =
        start(&system, "light", Setup::new(manager.clone()))
            .await
            .unwrap();
    let full_value = fill_and_free("full", &full, dir).await;
    let light_value = fill_and_free("light", &light, dir).await;
    for repair in manager.manager().repairs() {
        println!("repair: {repair}");
    }
    stop(system, runner).await;

    // Nothing acknowledged lost, nothing invented.
    let (system, runner) = new_system();
    let full: ActorRef<Counter<FullPersistence, false>> =
        start(&system, "full", Setup::new(manager.clone()))
            .await
            .unwrap();
    let light: ActorRef<Counter<LightPersistence, false>> =
        start(&system, "light", Setup::new(manager)).await.unwrap();
    assert_eq!(value(&full).await, full_value);
    assert_eq!(value(&light).await, light_value);
    stop(system, runner).await;
    println!("{}", full_disk::CHILD_DONE);
}

#[cfg(unix)]
#[test]
fn a_full_disk_fails_clearly_and_the_actors_go_on_once_there_is_space() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let stdout = full_disk::run_child("full_disk_child", &dir.path().join("store"))
        .unwrap_or_else(|failure| panic!("{failure}"));
    println!("{stdout}");
}
