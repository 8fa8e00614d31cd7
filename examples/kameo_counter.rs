//! An event-sourced kameo actor on the file journal.
//!
//! Each run spawns the counter actor, which recovers its state from DATA_DIR (default:
//! `counter-data`) in `on_start`, persists ten increments from its message handler and prints
//! `counter = N` last: a second run prints ten more than the first. Stopping the actor writes a
//! final snapshot.
//!
//! Run with `cargo run --example kameo_counter -- [DATA_DIR]`.
//! DATA_DIR may be a SQLite URL instead: `cargo run --example kameo_counter -- sqlite://counter.db`.

use kameo::prelude::*;
use persevere_examples::{data_dir, Counter, ExampleError};
use persevere_kameo::{Error, Journaled, Url};

/// The actor: its state is the journaled counter.
struct CounterActor {
    counter: Journaled<Counter>,
}

impl Actor for CounterActor {
    type Args = Url;
    type Error = Error;

    async fn on_start(key: Url, _: ActorRef<Self>) -> Result<Self, Error> {
        let counter = Journaled::open(&key, Counter::default).await?;
        for repair in counter.repairs() {
            eprintln!("warning: the store repaired or set aside data: {repair}");
        }
        println!("recovered counter = {} from {key}", counter.state()?.value);
        Ok(Self { counter })
    }

    async fn on_stop(
        &mut self,
        _: WeakActorRef<Self>,
        reason: ActorStopReason,
    ) -> Result<(), Error> {
        self.counter.snapshot_on_stop(&reason).await.map(drop)
    }
}

/// Adds one to the counter; replies with the new value once it is durable.
struct Increment;

impl Message<Increment> for CounterActor {
    type Reply = Result<u64, Error>;

    async fn handle(&mut self, _: Increment, _: &mut Context<Self, Self::Reply>) -> Self::Reply {
        self.counter.persist(1).await?;
        Ok(self.counter.state()?.value)
    }
}

fn main() -> Result<(), ExampleError> {
    let dir = data_dir();
    let key = if dir.starts_with("sqlite://") {
        // The built-in `sqlite` scheme: the database, then the stream.
        Url::parse(&format!("{}/counter", dir.trim_end_matches('/')))?
    } else if persevere_examples::is_postgres_url(&dir) {
        // postgres://user@host/db?schema=s → postgres://user@host/db/counter?schema=s
        let (base, query) = dir.split_once('?').unwrap_or((&dir, ""));
        let query = if query.is_empty() {
            String::new()
        } else {
            format!("?{query}")
        };
        Url::parse(&format!("{}/counter{query}", base.trim_end_matches('/')))?
    } else {
        std::fs::create_dir_all(&dir)?;
        let dir = std::fs::canonicalize(&dir)?;
        let store =
            Url::from_directory_path(&dir).map_err(|()| "the data directory is not absolute")?;
        store.join("counter")?
    };

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let value = runtime.block_on(async {
        let actor = CounterActor::spawn(key);
        let mut value = 0;
        for _ in 0..10 {
            value = actor.ask(Increment).await.map_err(|e| e.to_string())?;
        }
        actor.stop_gracefully().await?;
        actor.wait_for_shutdown_with_result(|_| ()).await;
        Ok::<_, ExampleError>(value)
    })?;
    println!("counter = {value}");
    Ok(())
}
