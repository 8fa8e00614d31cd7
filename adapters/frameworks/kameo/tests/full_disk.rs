//! A disk that fills, then has space again, under kameo actors on the real file journal — an
//! event-sourced `Journaled` actor and a kameo-persistence `PersistentActor`: writes fail with
//! a clear error, no acknowledged event or snapshot is lost and none is invented, and once
//! there is space again the same actors go on (and a key stopped meanwhile respawns) without a
//! process restart.
//!
//! The disk fills through a lowered soft `RLIMIT_FSIZE` (with `SIGXFSZ` ignored), in a child
//! process: this test binary run again through `sh -c 'trap "" XFSZ; exec …'` with
//! `FULL_DISK_DIR` set, so that only [`full_disk_child`] does anything.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::{file_key, profile, stop, Add, Counter, CounterArgs, Profile, Visit, Visits};
use kameo::prelude::*;
use persevere_conformance::full_disk::{self, CHILD_ENV};
use persevere_kameo::PersistentActor;

fn full(error: &impl std::fmt::Display) -> bool {
    error.to_string().contains("File too large")
}

/// The child's work; does nothing unless run as the child.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_disk_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let dir = Path::new(&dir);
    std::fs::create_dir_all(dir).unwrap();

    // An event-sourced actor.
    let counter = Counter::spawn(CounterArgs::new(file_key(dir, "counter")));
    for n in 1..=5 {
        assert_eq!(counter.ask(Add(1)).await.unwrap(), n);
    }
    full_disk::fill(dir, 1024).unwrap();
    let mut acknowledged = 5;
    let error = loop {
        match counter.ask(Add(1)).await {
            Ok(value) => {
                acknowledged += 1;
                assert_eq!(value, acknowledged);
            }
            Err(error) => break error,
        }
        assert!(acknowledged < 10_000, "the disk never filled");
    };
    println!("journaled: full after {acknowledged} events: {error}");
    assert!(full(&error), "{error}");
    for _ in 0..3 {
        assert!(counter.ask(Add(1)).await.is_err());
    }
    full_disk::free().unwrap();
    assert_eq!(counter.ask(Add(1)).await.unwrap(), acknowledged + 1);
    stop(&counter).await;
    let again = Counter::spawn(CounterArgs::new(file_key(dir, "counter")));
    assert_eq!(
        again.ask(common::Get).await.unwrap().0,
        acknowledged + 1,
        "an acknowledged event was lost or one was invented"
    );
    stop(&again).await;

    // A kameo-persistence actor: its key outlives a full disk, even stopped meanwhile.
    let key = file_key(dir, "profile");
    let visitor = Profile::spawn_persistent(key.clone(), profile("p"))
        .await
        .unwrap();
    for n in 1..=3 {
        assert_eq!(visitor.ask(Visit).await.unwrap(), n);
    }
    full_disk::fill(dir, 1024).unwrap();
    let mut saved = 3;
    let error = loop {
        match visitor.ask(Visit).await {
            Ok(visits) => saved = visits,
            Err(error) => break error,
        }
        assert!(saved < 10_000, "the disk never filled");
    };
    println!("persistent: full after {saved} saves: {error}");
    assert!(full(&error), "{error}");
    // Stopped while the disk is full, the key respawns (recovery only reads) with the last
    // acknowledged snapshot, and saves again once there is space.
    stop(&visitor).await;
    let restored = Profile::respawn_persistent(key.clone()).await.unwrap();
    assert_eq!(
        restored.ask(Visits).await.unwrap(),
        saved,
        "an acknowledged snapshot was lost or one was invented"
    );
    assert!(restored.ask(Visit).await.is_err());
    full_disk::free().unwrap();
    assert_eq!(restored.ask(Visit).await.unwrap(), saved + 2);
    stop(&restored).await;
    let restored = Profile::respawn_persistent(key.clone()).await.unwrap();
    assert_eq!(restored.ask(Visits).await.unwrap(), saved + 2);
    assert!(persevere_kameo::repairs(&key)
        .await
        .unwrap()
        .iter()
        .all(|repair| repair.kept_at.is_some()));
    stop(&restored).await;
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
