//! persevere-kameo next to kameo-persistence, on the same actor state, in one run.
//!
//! Run with `cargo run --release --manifest-path benches/peers/kameo/Cargo.toml`.
//!
//! Prints, for each store:
//! - `save_snapshot` rate: one actor asked to change and save its snapshot, N times;
//! - `respawn_persistent` latency: stop the actor, respawn it from its key, ask it once;
//! - (persevere only) persisted events/s of event-sourced actors, for 1 and for 1,000 actors.
//!
//! kameo-persistence writes its snapshot with a plain `fs::write` (no fsync); persevere's
//! `file://` store makes every snapshot durable (fdatasync) before `save_snapshot` returns, and
//! `memory://` is persevere without IO.

use std::path::Path;
use std::time::{Duration, Instant};

use kameo_persistence::PersistentActor as _;
use persevere_kameo::kameo as k22;
use persevere_kameo::PersistentActor as _;
use serde::{Deserialize, Serialize};
use url::Url;

/// The state both libraries save: a profile of about 120 bytes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProfileState {
    pub name: String,
    pub visits: u64,
    pub tags: Vec<String>,
}

fn state() -> ProfileState {
    ProfileState {
        name: "Ada Lovelace, Countess of Lovelace".into(),
        visits: 0,
        tags: (0..6).map(|i| format!("tag-number-{i}")).collect(),
    }
}

/// Asks an actor to record a visit and save its snapshot.
pub struct Visit;

/// Asks an actor for its visit count (no write).
pub struct Visits;

// ---- kameo-persistence (kameo 0.17) ------------------------------------------------------------

// Its derive tests a `tracing` feature of the crate it expands in.
#[allow(unexpected_cfgs)]
mod theirs {
    use kameo::prelude::*;

    use super::{ProfileState, Visit};

    #[derive(Debug, Clone, kameo_persistence::PersistentActor)]
    #[snapshot(ProfileState)]
    pub struct Profile(pub ProfileState);

    impl From<&Profile> for ProfileState {
        fn from(actor: &Profile) -> Self {
            actor.0.clone()
        }
    }

    impl Actor for Profile {
        type Args = ProfileState;
        type Error = anyhow::Error;

        async fn on_start(args: ProfileState, _: ActorRef<Self>) -> anyhow::Result<Self> {
            Ok(Self(args))
        }
    }

    impl Message<Visit> for Profile {
        type Reply = anyhow::Result<u64>;

        async fn handle(&mut self, _: Visit, ctx: &mut Context<Self, Self::Reply>) -> Self::Reply {
            use kameo_persistence::PersistentActor;
            self.0.visits += 1;
            self.save_snapshot(&ctx.actor_ref()).await?;
            Ok(self.0.visits)
        }
    }

    impl Message<super::Visits> for Profile {
        type Reply = u64;

        async fn handle(&mut self, _: super::Visits, _: &mut Context<Self, u64>) -> u64 {
            self.0.visits
        }
    }
}

// ---- persevere-kameo (kameo 0.22) --------------------------------------------------------------

mod ours {
    use persevere_core::Entity;
    use persevere_kameo::kameo::prelude::*;
    use persevere_kameo::{Error, Journaled, Url};

    use super::{ProfileState, Visit};

    #[derive(Debug, Clone, persevere_kameo::PersistentActor)]
    #[snapshot(ProfileState)]
    pub struct Profile(pub ProfileState);

    impl From<&Profile> for ProfileState {
        fn from(actor: &Profile) -> Self {
            actor.0.clone()
        }
    }

    impl Actor for Profile {
        type Args = ProfileState;
        type Error = Error;

        async fn on_start(args: ProfileState, _: ActorRef<Self>) -> Result<Self, Error> {
            Ok(Self(args))
        }
    }

    impl Message<Visit> for Profile {
        type Reply = anyhow::Result<u64>;

        async fn handle(&mut self, _: Visit, ctx: &mut Context<Self, Self::Reply>) -> Self::Reply {
            use persevere_kameo::PersistentActor;
            self.0.visits += 1;
            self.save_snapshot(ctx.actor_ref()).await?;
            Ok(self.0.visits)
        }
    }

    impl Message<super::Visits> for Profile {
        type Reply = u64;

        async fn handle(&mut self, _: super::Visits, _: &mut Context<Self, u64>) -> u64 {
            self.0.visits
        }
    }

    /// An event-sourced counter.
    #[derive(Default, borsh::BorshSerialize, borsh::BorshDeserialize)]
    pub struct Count(pub u64);

    impl Entity for Count {
        type Event = u64;
        type Error = String;
        fn apply(&mut self, n: &u64) -> Result<(), String> {
            self.0 = self.0.checked_add(*n).ok_or("overflow")?;
            Ok(())
        }
    }

    pub struct Counter(Journaled<Count>);

    impl Actor for Counter {
        type Args = Url;
        type Error = Error;

        async fn on_start(key: Url, _: ActorRef<Self>) -> Result<Self, Error> {
            Ok(Self(Journaled::open(&key, Count::default).await?))
        }

        async fn on_stop(
            &mut self,
            _: WeakActorRef<Self>,
            reason: ActorStopReason,
        ) -> Result<(), Error> {
            self.0.snapshot_on_stop(&reason).await.map(drop)
        }
    }

    /// Adds one, durably.
    pub struct Add;

    impl Message<Add> for Counter {
        type Reply = Result<u64, Error>;

        async fn handle(&mut self, _: Add, _: &mut Context<Self, Self::Reply>) -> Self::Reply {
            self.0.persist(1).await?;
            Ok(self.0.state()?.0)
        }
    }
}

fn per_second(n: usize, elapsed: Duration) -> f64 {
    n as f64 / elapsed.as_secs_f64()
}

fn micros(total: Duration, n: usize) -> f64 {
    total.as_secs_f64() * 1e6 / n as f64
}

/// One row of the snapshot table.
struct Row {
    store: &'static str,
    saves_per_second: f64,
    respawn_micros: f64,
}

async fn ours_row(store: &'static str, key: Url, saves: usize, respawns: usize) -> Row {
    let actor = ours::Profile::spawn_persistent(key.clone(), state())
        .await
        .expect("spawn");
    let start = Instant::now();
    for _ in 0..saves {
        actor.ask(Visit).await.expect("save");
    }
    let saves_per_second = per_second(saves, start.elapsed());
    stop22(&actor).await;

    let mut total = Duration::ZERO;
    for _ in 0..respawns {
        let start = Instant::now();
        let actor = ours::Profile::respawn_persistent(key.clone())
            .await
            .expect("respawn");
        actor.ask(Visits).await.expect("first message");
        total += start.elapsed();
        stop22(&actor).await;
    }
    Row {
        store,
        saves_per_second,
        respawn_micros: micros(total, respawns),
    }
}

async fn stop22<A: k22::Actor>(actor: &k22::actor::ActorRef<A>) {
    actor.stop_gracefully().await.expect("stop");
    actor.wait_for_shutdown_with_result(|_| ()).await;
}

async fn theirs_row(dir: &Path, saves: usize, respawns: usize) -> Row {
    let key = Url::from_directory_path(dir.join("profile")).expect("absolute");
    let actor = theirs::Profile::spawn_persistent(key.clone(), state())
        .await
        .expect("spawn");
    let start = Instant::now();
    for _ in 0..saves {
        actor.ask(Visit).await.expect("save");
    }
    let saves_per_second = per_second(saves, start.elapsed());
    actor.stop_gracefully().await.expect("stop");
    actor.wait_for_shutdown().await;
    // Its registry keeps a weak reference, and would hand back this stopped actor while a
    // strong one lives.
    drop(actor);

    let mut total = Duration::ZERO;
    for _ in 0..respawns {
        let start = Instant::now();
        let actor = theirs::Profile::respawn_persistent(key.clone())
            .await
            .expect("respawn");
        actor.ask(Visits).await.expect("first message");
        total += start.elapsed();
        actor.stop_gracefully().await.expect("stop");
        actor.wait_for_shutdown().await;
    }
    Row {
        store: "kameo-persistence file:// (no fsync)",
        saves_per_second,
        respawn_micros: micros(total, respawns),
    }
}

/// Persisted events/s of `actors` event-sourced actors, each persisting `events` events, all
/// at once.
async fn events_per_second(store: &Url, prefix: &str, actors: usize, events: usize) -> f64 {
    let refs: Vec<_> = (0..actors)
        .map(|i| {
            let key = store.join(&format!("{prefix}-{i}")).expect("key");
            <ours::Counter as k22::actor::Spawn>::spawn(key)
        })
        .collect();
    for actor in &refs {
        actor.wait_for_startup().await;
    }
    let start = Instant::now();
    let tasks: Vec<_> = refs
        .iter()
        .cloned()
        .map(|actor| {
            tokio::spawn(async move {
                for _ in 0..events {
                    actor.ask(ours::Add).await.expect("persist");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task");
    }
    let rate = per_second(actors * events, start.elapsed());
    for actor in &refs {
        stop22(actor).await;
    }
    rate
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ours_dir = dir.path().join("persevere");
    std::fs::create_dir_all(&ours_dir).expect("mkdir");
    let ours_store = Url::from_directory_path(&ours_dir).expect("absolute");
    let theirs_dir = dir.path().join("kameo-persistence");

    const SAVES: usize = 2_000;
    const RESPAWNS: usize = 200;
    println!("save_snapshot: {SAVES} saves by one actor; respawn_persistent: mean of {RESPAWNS} respawns, each timed up to the first reply, then a graceful stop");
    let rows = [
        theirs_row(&theirs_dir, SAVES, RESPAWNS).await,
        ours_row(
            "persevere file:// (durable)",
            ours_store.join("profile").expect("key"),
            SAVES,
            RESPAWNS,
        )
        .await,
        ours_row(
            "persevere memory://",
            Url::parse("memory://bench/profile").expect("key"),
            SAVES,
            RESPAWNS,
        )
        .await,
    ];
    let peer = &rows[0];
    println!(
        "{:<38} {:>14} {:>8} {:>16} {:>8}",
        "store", "saves/s", "× peer", "respawn µs", "× peer"
    );
    for row in &rows {
        println!(
            "{:<38} {:>14.0} {:>8.2} {:>16.1} {:>8.2}",
            row.store,
            row.saves_per_second,
            row.saves_per_second / peer.saves_per_second,
            row.respawn_micros,
            peer.respawn_micros / row.respawn_micros,
        );
    }
    println!("(× peer: higher is better for both; for latency it is peer / ours)");

    println!();
    println!("event-sourced actors (persevere only; kameo-persistence has no events):");
    let memory = Url::parse("memory://events/").expect("store");
    for (label, store) in [("file:// (durable)", &ours_store), ("memory://", &memory)] {
        let one = events_per_second(store, "one", 1, 2_000).await;
        let many = events_per_second(store, "many", 1_000, 100).await;
        println!("{label:<20} 1 actor: {one:>12.0} events/s   1,000 actors: {many:>12.0} events/s");
    }
}
