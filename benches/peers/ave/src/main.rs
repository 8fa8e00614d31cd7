//! persevere-ave against ave-actors-store 0.5, in one run on one machine, on the same entity
//! (a counter of `Incremented(u64)` events, Full persistence, no automatic snapshot). Unless
//! said otherwise a message makes the handler call `persist` 1000 times, so that the figures
//! measure persisting rather than ave's message round trip. Each figure is the median of three
//! interleaved rounds:
//!
//! - persist rate, memory (both `MemoryManager`);
//! - durable persist rate, one actor (ave: `ave-actors-sqlite` 0.6, synchronous=FULL; ours: the
//!   file journal), and 16 actors persisting at once, one event per message;
//! - SQLite against SQLite, both WAL with synchronous=FULL (ours: `persevere-sqlite`, linked in
//!   the same binary as `ave-actors-sqlite`): one actor, and 1,000 actors persisting at once,
//!   one event per message;
//! - the same ave `DbManager` on both sides (ours: persevere's journal over its collections):
//!   ave-actors-sqlite's, one actor; ave-actors-store's memory manager;
//! - encrypted persist rate, memory (both an `EncryptedKey`);
//! - memory, one message per persist (the actor system's round trip included);
//! - the floor under persevere-ave's in-memory rows: the same counter as a bare persevere entity,
//!   persisted (and recovered) through the driver alone on the same in-memory backend, from a
//!   task of the same runtime, with no actor system, in the same interleaved rounds (printed
//!   as `floor` under the rows it bounds: the best ratio persevere-ave could reach with an
//!   adapter and an actor system costing nothing);
//! - recovery of 100 000 events with no snapshot: the writer crashed (its runtime dropped
//!   without a stop, so ave-actors-store takes no snapshot on the way out), then the start of
//!   a new actor — `start_store` and the replay — is timed.
//!
//! `cargo run --release --manifest-path benches/peers/ave/Cargo.toml`

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use ave_actors_actor::{
    Actor, ActorContext, ActorPath, ActorRef, ActorSystem, Error as ActorError, Event, Handler,
    IntoActor, Message, Response,
};
use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

const MEMORY_EVENTS: u64 = 100_000;
const DURABLE_EVENTS: u64 = 2_000;
const ENCRYPTED_EVENTS: u64 = 20_000;
const RECOVERY_EVENTS: u64 = 100_000;
const ASK_EVENTS: u64 = 20_000;
/// Persist calls per message (the handler loops), so that the figures measure `persist`, not
/// the actor system's message round trip.
const PER_ASK: u64 = 1_000;
const KEY: [u8; 32] = [42; 32];
/// Actors persisting at once in the concurrent durable run.
const ACTORS: u64 = 16;
/// Actors persisting at once in the SQLite-against-SQLite run, and the events they persist.
const SQLITE_ACTORS: u64 = 1_000;
const SQLITE_EVENTS: u64 = 10_000;
/// Rounds of each measurement (the median is printed).
const ROUNDS: usize = 3;

type BenchError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, Clone, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
struct Incremented(u64);

impl Event for Incremented {}

#[derive(Debug, Clone)]
enum Msg {
    /// Persists this many increments of 1, one `persist` call each.
    Increment(u64),
    Get,
}

impl Message for Msg {}

#[derive(Debug)]
struct Value(u64);

impl Response for Value {}

/// Where a counter is stored.
#[derive(Clone, Default)]
enum Backend {
    #[default]
    None,
    AveMemory(ave_actors_store::memory::MemoryManager),
    AveSqlite(ave_actors_sqlite::SqliteManager),
    OurMemory(persevere_ave::MemoryManager),
    OurFile(persevere_ave::FileManager),
    OurSqlite(persevere_ave::SqliteManager),
}

#[derive(Clone, Default)]
struct Setup {
    backend: Backend,
    encrypted: bool,
}

// --- The counter on ave-actors-store -------------------------------------------------------

#[derive(Debug, Clone, Default, BorshSerialize, BorshDeserialize)]
struct AveCounter {
    value: u64,
    #[borsh(skip)]
    setup: Arc<SetupCell>,
}

/// The setup, behind one `Arc` so that ave-actors-store's clone per persist pays a counter
/// increment for it and nothing more.
#[derive(Default)]
struct SetupCell(Setup);

impl std::fmt::Debug for SetupCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Setup")
    }
}

#[async_trait]
impl Actor for AveCounter {
    type Message = Msg;
    type Event = Incremented;
    type Response = Value;

    fn get_span(id: &str, _parent: Option<tracing::Span>) -> tracing::Span {
        tracing::info_span!("AveCounter", id)
    }

    async fn pre_start(&mut self, ctx: &mut ActorContext<Self>) -> Result<(), ActorError> {
        use ave_actors_store::store::PersistentActor;
        let setup = self.setup.0.clone();
        let key = if setup.encrypted {
            Some(ave_actors_actor::EncryptedKey::new(&KEY)?)
        } else {
            None
        };
        match setup.backend {
            Backend::AveMemory(manager) => {
                self.start_store("counter", None, ctx, manager, key).await
            }
            Backend::AveSqlite(manager) => {
                self.start_store("counter", None, ctx, manager, key).await
            }
            _ => Err(ActorError::Functional {
                description: "not an ave-actors-store backend".into(),
            }),
        }
    }
}

#[async_trait]
impl Handler<AveCounter> for AveCounter {
    async fn handle_message(
        &mut self,
        _: ActorPath,
        msg: Msg,
        ctx: &mut ActorContext<Self>,
    ) -> Result<Value, ActorError> {
        use ave_actors_store::store::PersistentActor;
        if let Msg::Increment(times) = msg {
            for _ in 0..times {
                self.persist(&Incremented(1), ctx).await?;
            }
        }
        Ok(Value(self.value))
    }
}

impl ave_actors_store::store::PersistentActor for AveCounter {
    type Persistence = ave_actors_store::store::FullPersistence;
    type InitParams = Setup;

    fn create_initial(setup: Setup) -> Self {
        Self {
            value: 0,
            setup: Arc::new(SetupCell(setup)),
        }
    }

    fn apply(&mut self, Incremented(n): &Incremented) -> Result<(), ActorError> {
        self.value += n;
        Ok(())
    }

    fn snapshot_every() -> Option<u64> {
        None
    }
}

// --- The same counter on persevere-ave ------------------------------------------------------

#[derive(Debug, Clone, Default, BorshSerialize, BorshDeserialize)]
struct OurCounter {
    value: u64,
    #[borsh(skip)]
    setup: Arc<SetupCell>,
}

#[async_trait]
impl Actor for OurCounter {
    type Message = Msg;
    type Event = Incremented;
    type Response = Value;

    fn get_span(id: &str, _parent: Option<tracing::Span>) -> tracing::Span {
        tracing::info_span!("OurCounter", id)
    }

    async fn pre_start(&mut self, ctx: &mut ActorContext<Self>) -> Result<(), ActorError> {
        use persevere_ave::store::PersistentActor;
        let setup = self.setup.0.clone();
        let key = if setup.encrypted {
            Some(persevere_ave::EncryptedKey::new(&KEY)?)
        } else {
            None
        };
        match setup.backend {
            Backend::OurMemory(manager) => {
                self.start_store("counter", None, ctx, manager, key).await
            }
            Backend::OurFile(manager) => self.start_store("counter", None, ctx, manager, key).await,
            Backend::OurSqlite(manager) => {
                self.start_store("counter", None, ctx, manager, key).await
            }
            // ave's own managers: persevere's journal over their collections.
            Backend::AveSqlite(manager) => {
                self.start_store("counter", None, ctx, manager, key).await
            }
            Backend::AveMemory(manager) => {
                self.start_store("counter", None, ctx, manager, key).await
            }
            _ => Err(ActorError::Functional {
                description: "not a persevere-ave backend".into(),
            }),
        }
    }
}

#[async_trait]
impl Handler<OurCounter> for OurCounter {
    async fn handle_message(
        &mut self,
        _: ActorPath,
        msg: Msg,
        ctx: &mut ActorContext<Self>,
    ) -> Result<Value, ActorError> {
        use persevere_ave::store::PersistentActor;
        if let Msg::Increment(times) = msg {
            for _ in 0..times {
                self.persist(&Incremented(1), ctx).await?;
            }
        }
        Ok(Value(self.value))
    }
}

impl persevere_ave::store::PersistentActor for OurCounter {
    type Persistence = persevere_ave::store::FullPersistence;
    type InitParams = Setup;

    fn create_initial(setup: Setup) -> Self {
        Self {
            value: 0,
            setup: Arc::new(SetupCell(setup)),
        }
    }

    fn apply(&mut self, Incremented(n): &Incremented) -> Result<(), ActorError> {
        self.value += n;
        Ok(())
    }

    fn snapshot_every() -> Option<u64> {
        None
    }
}

// --- The same counter as a bare persevere entity (the driver alone) ------------------------

#[derive(Debug, Default, BorshSerialize, BorshDeserialize)]
struct BareCounter {
    value: u64,
}

impl persevere_core::Entity for BareCounter {
    type Event = Incremented;
    type Error = ActorError;

    fn apply(&mut self, Incremented(n): &Incremented) -> Result<(), ActorError> {
        self.value += n;
        Ok(())
    }
}

/// Opens the bare counter's stream on `manager`'s backend with persevere-ave's configuration
/// for the counter (Full, no automatic snapshot), recovering `state`.
async fn open_bare(
    manager: &persevere_ave::MemoryManager,
    state: &mut BareCounter,
) -> Result<persevere_driver::Driver<BareCounter>, BenchError> {
    let config = persevere_core::JournalConfig::new("/user/counter/counter").snapshot_every(None);
    let journal = persevere_core::Journal::new(config, BareCounter::default);
    Ok(persevere_driver::Driver::open(manager.manager().backend(), journal, state).await?)
}

/// Persists `events` increments through the driver alone, from a task of the runtime the
/// actors run on; returns events per second.
fn driver_rate(events: u64) -> Result<f64, BenchError> {
    let runtime = runtime();
    let rate = runtime.block_on(async move {
        tokio::spawn(async move {
            let manager = persevere_ave::MemoryManager::default();
            let mut state = BareCounter::default();
            let mut driver = open_bare(&manager, &mut state).await?;
            let started = Instant::now();
            for _ in 0..events {
                driver.persist(Incremented(1), &mut state).await?;
            }
            let elapsed = started.elapsed();
            assert_eq!(state.value, events);
            Ok::<_, BenchError>(events as f64 / elapsed.as_secs_f64())
        })
        .await?
    })?;
    drop(runtime);
    Ok(rate)
}

/// Writes `events` increments through the driver alone, one persist each, drops the driver,
/// then times opening the stream again (the replay of every event).
fn driver_recovery_time(events: u64) -> Result<Duration, BenchError> {
    let runtime = runtime();
    let elapsed = runtime.block_on(async move {
        tokio::spawn(async move {
            let manager = persevere_ave::MemoryManager::default();
            let mut state = BareCounter::default();
            let mut driver = open_bare(&manager, &mut state).await?;
            // One persist per event, as the actor writes them (the store's records then lie
            // in memory as they do under the actor's row).
            for _ in 0..events {
                driver.persist(Incremented(1), &mut state).await?;
            }
            drop(driver);
            let mut state = BareCounter::default();
            let started = Instant::now();
            let driver = open_bare(&manager, &mut state).await?;
            let elapsed = started.elapsed();
            assert_eq!((state.value, driver.last_seq()), (events, events));
            Ok::<_, BenchError>(elapsed)
        })
        .await?
    })?;
    drop(runtime);
    Ok(elapsed)
}

// --- Measurements ---------------------------------------------------------------------------

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// Either side's counter actor, as the measurements drive it.
trait CounterActor: Actor<Message = Msg, Response = Value> + Handler<Self> {}

impl<A: Actor<Message = Msg, Response = Value> + Handler<A>> CounterActor for A {}

/// Persists `events` increments spread over `actors` fresh counters working at once,
/// `per_ask` persist calls per message; returns events per second.
fn persist_rate<A, I>(
    init: impl Fn() -> I,
    actors: u64,
    events: u64,
    per_ask: u64,
) -> Result<f64, BenchError>
where
    A: CounterActor,
    I: IntoActor<A> + Send + 'static,
{
    let inits: Vec<I> = (0..actors).map(|_| init()).collect();
    let each = events / actors;
    let runtime = runtime();
    let rate = runtime.block_on(async move {
        let (system, mut runner) = ActorSystem::create(Default::default(), Default::default());
        let mut counters: Vec<ActorRef<A>> = Vec::new();
        for (i, init) in inits.into_iter().enumerate() {
            counters.push(
                system
                    .create_root_actor(&format!("counter-{i}"), init)
                    .await?,
            );
        }
        let started = Instant::now();
        let tasks: Vec<_> = counters
            .iter()
            .cloned()
            .map(|counter| {
                tokio::spawn(async move {
                    for _ in 0..each / per_ask {
                        counter.ask(Msg::Increment(per_ask)).await?;
                    }
                    Ok::<_, ActorError>(())
                })
            })
            .collect();
        for task in tasks {
            task.await??;
        }
        let elapsed = started.elapsed();
        for counter in &counters {
            let Value(value) = counter.ask(Msg::Get).await?;
            assert_eq!(value, each);
        }
        system.stop_system();
        runner.run().await;
        Ok::<_, BenchError>((each * actors) as f64 / elapsed.as_secs_f64())
    })?;
    drop(runtime);
    Ok(rate)
}

/// The median of `ROUNDS` runs of each measurement, the measurements interleaved in each round
/// (theirs, ours and, where a row has one, the driver alone).
fn medians<const N: usize>(
    mut runs: [&mut dyn FnMut() -> Result<f64, BenchError>; N],
) -> Result<[f64; N], BenchError> {
    let mut values: [Vec<f64>; N] = std::array::from_fn(|_| Vec::with_capacity(ROUNDS));
    for _ in 0..ROUNDS {
        for (run, values) in runs.iter_mut().zip(&mut values) {
            values.push(run()?);
        }
    }
    Ok(values.map(median))
}

/// The row `label`, if selected: the medians of `theirs` and `ours`, with their ratio.
fn pair_row(
    label: &str,
    events: u64,
    mut theirs: impl FnMut() -> Result<f64, BenchError>,
    mut ours: impl FnMut() -> Result<f64, BenchError>,
) -> Result<(), BenchError> {
    if selected(label) {
        let [theirs, ours] = medians([&mut theirs, &mut ours])?;
        rate_line(label, events, theirs, ours);
    }
    Ok(())
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Writes `events` increments, crashes (drops the runtime without a stop), then times the
/// start of a new counter on the same store: `start_store` and the replay of every event.
fn recovery_time<A, I>(init: impl Fn() -> I, events: u64) -> Result<Duration, BenchError>
where
    A: CounterActor,
    I: IntoActor<A> + Send + 'static,
{
    let writer = runtime();
    let first = init();
    writer.block_on(async move {
        let (system, _runner) = ActorSystem::create(Default::default(), Default::default());
        let counter: ActorRef<A> = system.create_root_actor("counter", first).await?;
        counter.ask(Msg::Increment(events)).await?;
        Ok::<_, BenchError>(())
    })?;
    drop(writer); // the crash
    let reader = runtime();
    let second = init();
    let elapsed = reader.block_on(async move {
        let (system, mut runner) = ActorSystem::create(Default::default(), Default::default());
        let started = Instant::now();
        let counter: ActorRef<A> = system.create_root_actor("counter", second).await?;
        let elapsed = started.elapsed();
        let Value(value) = counter.ask(Msg::Get).await?;
        assert_eq!(value, events);
        system.stop_system();
        runner.run().await;
        Ok::<_, BenchError>(elapsed)
    })?;
    drop(reader);
    Ok(elapsed)
}

fn ave(backend: Backend, encrypted: bool) -> ave_actors_store::store::InitializedActor<AveCounter> {
    use ave_actors_store::store::PersistentActor;
    AveCounter::initial(Setup { backend, encrypted })
}

fn ours(backend: Backend, encrypted: bool) -> persevere_ave::InitializedActor<OurCounter> {
    use persevere_ave::store::PersistentActor;
    OurCounter::initial(Setup { backend, encrypted })
}

/// A durable store for one side of a line, made new for each run.
#[derive(Clone, Copy)]
enum Durable {
    AveSqlite,
    OurFile,
    OurSqlite,
}

impl Durable {
    /// A new store of this kind in `dir`.
    fn open(self, dir: &std::path::Path) -> Result<Backend, BenchError> {
        Ok(match self {
            Durable::AveSqlite => Backend::AveSqlite(ave_actors_sqlite::SqliteManager::new(
                &dir.to_path_buf(),
                true,
                None,
            )?),
            Durable::OurFile => Backend::OurFile(persevere_ave::FileManager::open_or_create(dir)?),
            Durable::OurSqlite => Backend::OurSqlite(persevere_ave::SqliteManager::open_or_create(
                dir.join("a.db"),
            )?),
        })
    }
}

/// [`persist_rate`] of `side` (`ave` or `ours`) over a new `store` in a new temporary directory.
fn durable_rate<A, I>(
    side: fn(Backend, bool) -> I,
    store: Durable,
    actors: u64,
    events: u64,
    per_ask: u64,
) -> Result<f64, BenchError>
where
    A: CounterActor,
    I: IntoActor<A> + Send + 'static,
{
    let dir = tempfile::tempdir()?;
    let backend = store.open(dir.path())?;
    persist_rate(|| side(backend.clone(), false), actors, events, per_ask)
}

/// ave-actors-store's in-memory store, new.
fn ave_memory() -> Backend {
    Backend::AveMemory(Default::default())
}

/// persevere-ave's in-memory store, new.
fn our_memory() -> Backend {
    Backend::OurMemory(Default::default())
}

fn rate_line(what: &str, events: u64, theirs: f64, ours: f64) {
    println!(
        "{what:<30} {events:>7} events   ave-actors-store {theirs:>11.0}/s   persevere-ave {ours:>11.0}/s   ours/theirs {:>7.1}x",
        ours / theirs
    );
}

/// Whether to run the row `label`: every row, or only those whose label contains the first
/// argument (`cargo run --release -- SQLite` runs the SQLite rows).
fn selected(label: &str) -> bool {
    std::env::args()
        .nth(1)
        .is_none_or(|filter| label.contains(&filter))
}

/// A row measured by [`durable_row`] or [`memory_row`], with their arguments after the label.
enum Row {
    Durable(Durable, u64, u64, u64),
    Memory(fn() -> Backend, bool, u64, u64),
}

/// The row `label` of a durable store: ave-actors-store on ave-actors-sqlite against
/// persevere-ave on `ours`, `actors` counters sharing `events`, `per_ask` persists per message.
/// A run of ave-actors-sqlite failing with "database is locked" runs again (the row says how
/// many did).
fn durable_row(
    label: &str,
    ours_on: Durable,
    actors: u64,
    events: u64,
    per_ask: u64,
) -> Result<(), BenchError> {
    let mut locked = 0;
    pair_row(
        label,
        events,
        || {
            retry_locked(&mut locked, || {
                durable_rate(ave, Durable::AveSqlite, actors, events, per_ask)
            })
        },
        || durable_rate(ours, ours_on, actors, events, per_ask),
    )?;
    if locked > 0 {
        println!("{:<30} ave-actors-store failed {locked} runs with \"database is locked\" (each run again on a new database)", "");
    }
    Ok(())
}

/// The row `label` of one counter in memory: ave-actors-store's memory store against
/// persevere-ave on the store `ours_on` makes.
fn memory_row(
    label: &str,
    ours_on: fn() -> Backend,
    encrypted: bool,
    events: u64,
    per_ask: u64,
) -> Result<(), BenchError> {
    pair_row(
        label,
        events,
        || persist_rate(|| ave(ave_memory(), encrypted), 1, events, per_ask),
        || persist_rate(|| ours(ours_on(), encrypted), 1, events, per_ask),
    )
}

/// Runs `run` again, on a new database, when ave-actors-sqlite fails a write with "database
/// is locked" (it does under load), at most `LOCKED_RETRIES` times in all; counts the
/// failures in `locked`, which the row reports.
fn retry_locked(
    locked: &mut u32,
    mut run: impl FnMut() -> Result<f64, BenchError>,
) -> Result<f64, BenchError> {
    loop {
        match run() {
            Err(error)
                if *locked < LOCKED_RETRIES && error.to_string().contains("database is locked") =>
            {
                *locked += 1;
            }
            other => return other,
        }
    }
}

/// At most this many runs of ave-actors-sqlite failing with "database is locked" are run again.
const LOCKED_RETRIES: u32 = 10;

fn main() -> Result<(), BenchError> {
    println!(
        "persevere-ave vs ave-actors-store 0.5, one run, {} cores: a counter actor, Full persistence, no automatic snapshot, {PER_ASK} persist calls per ask unless said; median of {ROUNDS} interleaved rounds",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!("durable: ave-actors-store on ave-actors-sqlite 0.6 (WAL, synchronous=FULL); persevere-ave on the file journal (fdatasync before every acknowledgement)");

    if selected("persist, memory") {
        let [theirs, our, floor] = medians([
            &mut || persist_rate(|| ave(ave_memory(), false), 1, MEMORY_EVENTS, PER_ASK),
            &mut || persist_rate(|| ours(our_memory(), false), 1, MEMORY_EVENTS, PER_ASK),
            &mut || driver_rate(MEMORY_EVENTS),
        ])?;
        rate_line("persist, memory", MEMORY_EVENTS, theirs, our);
        println!(
            "{:<30} {MEMORY_EVENTS:>7} events   the driver alone, no actor system: {floor:>11.0}/s = {:.1}x ave-actors-store, {:.2}x persevere-ave",
            "  floor", floor / theirs, floor / our
        );
    }

    // (label, the run: persevere-ave's store, counters, events, persists per message).
    // "same DbManager": ave's own manager on both sides, persevere's journal over its collections.
    let rows = [
        (
            "persist, durable".to_owned(),
            Row::Durable(Durable::OurFile, 1, DURABLE_EVENTS, PER_ASK),
        ),
        (
            format!("durable, {ACTORS} actors, 1/ask"),
            Row::Durable(Durable::OurFile, ACTORS, DURABLE_EVENTS, 1),
        ),
        (
            "durable, SQLite both".to_owned(),
            Row::Durable(Durable::OurSqlite, 1, DURABLE_EVENTS, PER_ASK),
        ),
        (
            "same DbManager, ave SQLite".to_owned(),
            Row::Durable(Durable::AveSqlite, 1, DURABLE_EVENTS, PER_ASK),
        ),
        (
            "same DbManager, ave memory".to_owned(),
            Row::Memory(ave_memory, false, ENCRYPTED_EVENTS, PER_ASK),
        ),
        (
            format!("SQLite both, {SQLITE_ACTORS} actors"),
            Row::Durable(Durable::OurSqlite, SQLITE_ACTORS, SQLITE_EVENTS, 1),
        ),
        (
            "persist, encrypted, memory".to_owned(),
            Row::Memory(our_memory, true, ENCRYPTED_EVENTS, PER_ASK),
        ),
        (
            "memory, one ask per persist".to_owned(),
            Row::Memory(our_memory, false, ASK_EVENTS, 1),
        ),
    ];
    for (label, row) in rows {
        match row {
            Row::Durable(store, actors, events, per_ask) => {
                durable_row(&label, store, actors, events, per_ask)?
            }
            Row::Memory(store, encrypted, events, per_ask) => {
                memory_row(&label, store, encrypted, events, per_ask)?
            }
        }
    }

    if selected("recovery, memory, no snapshot") {
        let [theirs, our, floor] = medians([
            &mut || {
                let manager = ave_actors_store::memory::MemoryManager::default();
                recovery_time(
                    || ave(Backend::AveMemory(manager.clone()), false),
                    RECOVERY_EVENTS,
                )
                .map(|d| d.as_secs_f64())
            },
            &mut || {
                let manager = persevere_ave::MemoryManager::default();
                recovery_time(
                    || ours(Backend::OurMemory(manager.clone()), false),
                    RECOVERY_EVENTS,
                )
                .map(|d| d.as_secs_f64())
            },
            &mut || driver_recovery_time(RECOVERY_EVENTS).map(|d| d.as_secs_f64()),
        ])?;
        println!(
            "{:<30} {RECOVERY_EVENTS:>7} events   ave-actors-store {:>9.1} ms   persevere-ave {:>9.1} ms   ours/theirs {:>6.1}x faster",
            "recovery, memory, no snapshot",
            theirs * 1e3,
            our * 1e3,
            theirs / our
        );
        println!(
            "{:<30} {RECOVERY_EVENTS:>7} events   the driver alone, no actor system: {:>9.1} ms = {:.1}x faster than ave-actors-store",
            "  floor",
            floor * 1e3,
            theirs / floor
        );
    }

    Ok(())
}
