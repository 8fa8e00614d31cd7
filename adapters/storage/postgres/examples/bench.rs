//! Measures the PostgreSQL backend through the driver and prints figures:
//! 1,000 entities persisting at once, sequential persist latency, replay of 1 M events, and
//! throughput from one to three writer processes.
//!
//! ```text
//! cargo run --release -p persevere-postgres --example bench -- postgres://postgres@127.0.0.1:5432/test
//! ```
//!
//! Each run works in a schema of its own and drops it at the end.

use std::time::{Duration, Instant};

use persevere_core::{Entity, JournalConfig};
use persevere_driver::{Backend, Persistent};
use persevere_postgres::{PostgresConfig, PostgresStore};

#[derive(Debug, Default, borsh::BorshSerialize, borsh::BorshDeserialize)]
struct Counter(u64);

impl Entity for Counter {
    type Event = u64;
    type Error = String;
    fn apply(&mut self, n: &u64) -> Result<(), String> {
        self.0 = self.0.wrapping_add(*n);
        Ok(())
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

fn backend(config: &PostgresConfig) -> Backend {
    let store = PostgresStore::open_config(config.clone()).expect("the store opens");
    Backend::new(persevere_tokio::Tokio::current(), store)
}

/// `entities` entities persisting `each` events at once; returns (events, elapsed).
async fn concurrent(
    config: &PostgresConfig,
    prefix: &str,
    entities: usize,
    each: u64,
) -> (u64, Duration) {
    let backend = backend(config);
    let mut handles = Vec::new();
    for e in 0..entities {
        let backend = backend.clone();
        let stream = format!("{prefix}-{e}");
        handles.push(tokio::spawn(async move {
            Persistent::<Counter>::open(&backend, JournalConfig::new(stream), Counter::default)
                .await
                .expect("opens")
        }));
    }
    let mut opened = Vec::new();
    for h in handles {
        opened.push(h.await.expect("open task"));
    }
    let start = Instant::now();
    let tasks: Vec<_> = opened
        .into_iter()
        .map(|mut c| {
            tokio::spawn(async move {
                for n in 1..=each {
                    c.persist(n).await.expect("persists");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("persist task");
    }
    (entities as u64 * each, start.elapsed())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let url = args
        .get(1)
        .cloned()
        .or_else(|| std::env::var("PERSEVERE_POSTGRES_URL").ok())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".into());
    let server = PostgresConfig::from_url(&url).expect("a PostgreSQL URL");

    // A writer process of the multi-process measurement: `bench URL --writer SCHEMA PREFIX`.
    if args.get(2).map(String::as_str) == Some("--writer") {
        let config = server.with_schema(&args[3]).expect("a schema");
        let (events, elapsed) = runtime().block_on(concurrent(&config, &args[4], 1000, 20));
        println!("{events} {}", elapsed.as_secs_f64());
        return;
    }

    let schema = format!("bench_{}", std::process::id());
    let config = server.with_schema(&schema).expect("a schema");
    drop(PostgresStore::open_config(config.clone()).expect("the store opens"));
    let rt = runtime();

    let (events, elapsed) = rt.block_on(concurrent(&config, "c", 1000, 20));
    println!(
        "1,000 entities x 20 persists at once: {events} events in {:.2} s = {:.0} events/s",
        elapsed.as_secs_f64(),
        events as f64 / elapsed.as_secs_f64()
    );

    let mut latencies = rt.block_on(async {
        let backend = backend(&config);
        let mut c =
            Persistent::<Counter>::open(&backend, JournalConfig::new("latency"), Counter::default)
                .await
                .expect("opens");
        let mut latencies = Vec::new();
        for n in 0..2000 {
            let start = Instant::now();
            c.persist(n).await.expect("persists");
            latencies.push(start.elapsed());
        }
        latencies
    });
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    println!(
        "sequential persist latency (2,000 persists): p50 {:?}, p99 {:?}",
        at(0.50),
        at(0.99)
    );

    let (write, replay) = rt.block_on(async {
        let backend = backend(&config);
        let mut c = Persistent::<Counter>::open(
            &backend,
            JournalConfig::new("replay").snapshot_every(None),
            Counter::default,
        )
        .await
        .expect("opens");
        let start = Instant::now();
        for _ in 0..1000 {
            c.persist_all(1..=1000u64).await.expect("persists");
        }
        let write = start.elapsed();
        drop(c);
        let start = Instant::now();
        let c = Persistent::<Counter>::open(
            &backend,
            JournalConfig::new("replay").snapshot_every(None),
            Counter::default,
        )
        .await
        .expect("recovers");
        assert_eq!(c.state().expect("settled").0, 1000 * 500_500);
        (write, start.elapsed())
    });
    println!(
        "1 M events: written in 1,000 batches of 1,000 in {:.2} s; replayed in {:.2} s = {:.0} events/s",
        write.as_secs_f64(),
        replay.as_secs_f64(),
        1e6 / replay.as_secs_f64()
    );

    let exe = std::env::current_exe().expect("this binary");
    for processes in 1..=3 {
        let start = Instant::now();
        let children: Vec<_> = (0..processes)
            .map(|p| {
                std::process::Command::new(&exe)
                    .args([&url, "--writer", &schema, &format!("p{processes}-{p}")])
                    .stdout(std::process::Stdio::piped())
                    .spawn()
            })
            .collect();
        let mut events = 0u64;
        for child in children {
            let out = child
                .and_then(std::process::Child::wait_with_output)
                .expect("a writer process");
            let text = String::from_utf8_lossy(&out.stdout);
            events += text
                .split_whitespace()
                .next()
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0);
        }
        let elapsed = start.elapsed();
        println!(
            "{processes} writer process(es), 1,000 entities x 20 each: {events} events in {:.2} s = {:.0} events/s (process start and recovery included)",
            elapsed.as_secs_f64(),
            events as f64 / elapsed.as_secs_f64()
        );
    }

    if let Ok(client) = server.connect() {
        let _ = futures::executor::block_on(
            client.batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE")),
        );
    }
}
