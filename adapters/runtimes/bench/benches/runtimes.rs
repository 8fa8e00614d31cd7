//! Throughput of the async driver on every runtime, over the in-memory backend.
//!
//! - sequential `persist().await` of one entity (inline memory backend), per runtime;
//! - 1,000 entities persisting concurrently through the blocking-pool backend (group commit),
//!   with the mean batch size; and again over a store whose every batch takes 200 µs (a
//!   stand-in for an fsync), where group commit decides the throughput.
//!
//! Run with `cargo bench -p persevere-runtime-bench`. `PERSEVERE_BENCH_EVENTS` sets the number
//! of sequential events (default 1,000,000); `PERSEVERE_BENCH_ONLY=sequential` runs only the
//! sequential inline persist on tokio current-thread, in `PERSEVERE_BENCH_ROUNDS` rounds
//! (default 7; 1 for a profiler) after a warm-up, and prints each round and their median, and
//! `PERSEVERE_BENCH_ONLY=recovery` only the recovery (open and replay, no snapshot) of that
//! many events written one persist at a time, from a task on tokio current-thread and
//! multi-thread.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use persevere_async_std::AsyncStd;
use persevere_core::{Entity, JournalConfig};
use persevere_driver::{Backend, Execution, Persistent, Runtime};
use persevere_memory::Memory;
use persevere_smol::Smol;
use persevere_tokio::Tokio;

#[derive(Default, borsh::BorshSerialize, borsh::BorshDeserialize)]
struct Counter {
    value: u64,
}

impl Entity for Counter {
    type Event = u64;
    type Error = String;
    fn apply(&mut self, n: &u64) -> Result<(), String> {
        self.value = self.value.checked_add(*n).ok_or("overflow")?;
        Ok(())
    }
}

const ENTITIES: usize = 1_000;
const PER_ENTITY: u64 = 100;
const SLOW_PER_ENTITY: u64 = 10;

async fn sequential(runtime: Arc<dyn Runtime>, execution: Execution, events: u64) -> Duration {
    let backend = Backend::from_parts(runtime, Box::new(Memory::new()), execution);
    let mut counter =
        Persistent::<Counter>::open(&backend, JournalConfig::new("counter"), Counter::default)
            .await
            .expect("open");
    let start = Instant::now();
    for _ in 0..events {
        counter.persist(1).await.expect("persist");
    }
    let elapsed = start.elapsed();
    assert_eq!(counter.state().expect("settled").value, events);
    elapsed
}

/// Writes `events` one persist at a time with no snapshot, then times opening the stream
/// again: the replay of every event.
async fn recovery(runtime: Arc<dyn Runtime>, events: u64) -> Duration {
    let backend = Backend::from_parts(runtime, Box::new(Memory::new()), Execution::Inline);
    let config = || JournalConfig::new("counter").snapshot_every(None);
    let mut counter = Persistent::<Counter>::open(&backend, config(), Counter::default)
        .await
        .expect("open");
    for _ in 0..events {
        counter.persist(1).await.expect("persist");
    }
    drop(counter);
    let start = Instant::now();
    let counter = Persistent::<Counter>::open(&backend, config(), Counter::default)
        .await
        .expect("recover");
    let elapsed = start.elapsed();
    assert_eq!(counter.state().expect("settled").value, events);
    elapsed
}

async fn concurrent(
    runtime: Arc<dyn Runtime>,
    execution: Execution,
    memory: Memory,
    per_entity: u64,
) -> (Duration, Backend) {
    let backend = Backend::from_parts(Arc::clone(&runtime), Box::new(memory), execution);
    let start = Instant::now();
    let mut done = Vec::new();
    for i in 0..ENTITIES {
        let backend = backend.clone();
        let (sender, receiver) = futures_oneshot();
        done.push(receiver);
        runtime.spawn(Box::pin(async move {
            let config = JournalConfig::new(format!("entity/{i}"));
            let mut counter = Persistent::<Counter>::open(&backend, config, Counter::default)
                .await
                .expect("open");
            for _ in 0..per_entity {
                counter.persist(1).await.expect("persist");
            }
            let _ = sender.send(());
        }));
    }
    for receiver in done {
        receiver.await.expect("entity task");
    }
    (start.elapsed(), backend)
}

fn futures_oneshot() -> (
    futures::channel::oneshot::Sender<()>,
    futures::channel::oneshot::Receiver<()>,
) {
    futures::channel::oneshot::channel()
}

fn rate(events: u64, elapsed: Duration) -> String {
    format!("{:>10.0} events/s", events as f64 / elapsed.as_secs_f64())
}

fn run_on<'a>(
    name: &'a str,
    block_on: &dyn Fn(std::pin::Pin<Box<dyn Future<Output = ()> + 'a>>),
    runtime: &'a dyn Fn() -> Arc<dyn Runtime>,
    events: u64,
) {
    let runtime_for = runtime;
    block_on(Box::pin(async move {
        let rt = runtime_for();
        // Warm up, then measure.
        sequential(Arc::clone(&rt), Execution::Inline, events / 10).await;
        let elapsed = sequential(Arc::clone(&rt), Execution::Inline, events).await;
        println!(
            "{name:<22} sequential persist, inline memory    {}  ({:.0} ns/persist)",
            rate(events, elapsed),
            elapsed.as_nanos() as f64 / events as f64
        );
        let pooled_events = events / 20;
        let elapsed = sequential(Arc::clone(&rt), Execution::Blocking, pooled_events).await;
        println!(
            "{name:<22} sequential persist, blocking pool    {}  ({:.0} ns/persist)",
            rate(pooled_events, elapsed),
            elapsed.as_nanos() as f64 / pooled_events as f64
        );
        for execution in [Execution::Blocking, Execution::Inline] {
            let (elapsed, backend) =
                concurrent(Arc::clone(&rt), execution, Memory::new(), PER_ENTITY).await;
            let stats = backend.stats();
            let label = match execution {
                Execution::Inline => "inline       ",
                _ => "blocking pool",
            };
            println!(
                "{name:<22} {ENTITIES} entities x {PER_ENTITY}, {label}   {}  (mean batch {:.1}, largest {}, {} batches)",
                rate(ENTITIES as u64 * PER_ENTITY, elapsed),
                stats.mean_batch(),
                stats.largest,
                stats.batches
            );
        }
        // A store whose every batch costs 200 µs, as an fsync would.
        let memory = Memory::new();
        memory.set_latency(Some(Duration::from_micros(200)));
        let (elapsed, backend) = concurrent(
            Arc::clone(&rt),
            Execution::Blocking,
            memory,
            SLOW_PER_ENTITY,
        )
        .await;
        let stats = backend.stats();
        println!(
            "{name:<22} {ENTITIES} entities x {SLOW_PER_ENTITY}, 200 us per batch {}  (mean batch {:.1}, largest {}, {} batches)",
            rate(ENTITIES as u64 * SLOW_PER_ENTITY, elapsed),
            stats.mean_batch(),
            stats.largest,
            stats.batches
        );
    }));
}

fn main() {
    let events: u64 = std::env::var("PERSEVERE_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);

    let current = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    if std::env::var("PERSEVERE_BENCH_ONLY").as_deref() == Ok("recovery") {
        let multi = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        for (name, runtime) in [("current-thread", &current), ("multi-thread(2)", &multi)] {
            let elapsed = runtime.block_on(async {
                let task = tokio::spawn(recovery(Arc::new(Tokio::current()), events));
                task.await.expect("recovery task")
            });
            println!(
                "tokio {name:<16} recovery of {events} events, inline memory   {:.1} ms  ({:.0} ns/event)",
                elapsed.as_secs_f64() * 1e3,
                elapsed.as_nanos() as f64 / events as f64
            );
        }
        return;
    }
    if std::env::var("PERSEVERE_BENCH_ONLY").as_deref() == Ok("sequential") {
        let rounds: usize = std::env::var("PERSEVERE_BENCH_ROUNDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(7)
            .max(1);
        let mut nanos: Vec<f64> = current.block_on(async {
            let rt: Arc<dyn Runtime> = Arc::new(Tokio::current());
            sequential(Arc::clone(&rt), Execution::Inline, events / 10).await;
            let mut nanos = Vec::with_capacity(rounds);
            for _ in 0..rounds {
                let elapsed = sequential(Arc::clone(&rt), Execution::Inline, events).await;
                nanos.push(elapsed.as_nanos() as f64 / events as f64);
            }
            nanos
        });
        println!(
            "tokio current-thread   sequential persist, inline memory, rounds of {events}: {}",
            nanos
                .iter()
                .map(|n| format!("{n:.0}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
        nanos.sort_by(f64::total_cmp);
        println!(
            "tokio current-thread   sequential persist, inline memory    median {:.0} ns/persist  (fastest {:.0}, slowest {:.0}, {rounds} rounds)",
            nanos[nanos.len() / 2],
            nanos[0],
            nanos[nanos.len() - 1]
        );
        return;
    }
    run_on(
        "tokio current-thread",
        &|f| current.block_on(f),
        &|| Arc::new(Tokio::current()),
        events,
    );
    let multi = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    run_on(
        "tokio multi-thread(2)",
        &|f| multi.block_on(f),
        &|| Arc::new(Tokio::current()),
        events,
    );
    run_on("smol", &|f| smol::block_on(f), &|| Arc::new(Smol), events);
    run_on(
        "async-std",
        &|f| async_std::task::block_on(f),
        &|| Arc::new(AsyncStd),
        events,
    );
}
