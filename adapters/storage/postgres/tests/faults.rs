//! Connections die and servers restart during a stream of appends: every acknowledged event is
//! present, none twice.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use persevere_core::{Entity, JournalConfig};
use persevere_driver::{Backend, Persistent, ReopenBackoff};
use persevere_postgres::{PostgresConfig, PostgresStore};

#[derive(Debug, Default, borsh::BorshSerialize, borsh::BorshDeserialize)]
struct Tally(Vec<u64>);

impl Entity for Tally {
    type Event = u64;
    type Error = String;
    fn apply(&mut self, n: &u64) -> Result<(), String> {
        self.0.push(*n);
        Ok(())
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}

/// Persists 1..=`count` through the driver, whatever fails on the way; returns the values
/// acknowledged.
fn persist_through_faults(
    config: &PostgresConfig,
    stream: &str,
    count: u64,
    acked_so_far: &AtomicU64,
) -> Vec<u64> {
    runtime().block_on(async {
        let store = PostgresStore::open_config(config.clone()).expect("opens");
        let backend = Backend::new(persevere_tokio::Tokio::current(), store).with_reopen_backoff(
            ReopenBackoff::new(Duration::from_millis(5), Duration::from_millis(200)),
        );
        let journal = JournalConfig::new(stream).reread(50, Duration::from_millis(20));
        let mut tally = loop {
            match Persistent::<Tally>::open(&backend, journal.clone(), Tally::default).await {
                Ok(tally) => break tally,
                Err(e) => common::say(&format!("open failed, retrying: {e}")),
            }
        };
        let (mut acked, mut failed) = (Vec::new(), 0);
        for n in 1..=count {
            match tally.persist(n).await {
                Ok(_) => {
                    acked.push(n);
                    acked_so_far.fetch_add(1, Ordering::SeqCst);
                }
                Err(_) => failed += 1,
            }
        }
        common::say(&format!("{} acknowledged, {failed} failed", acked.len()));
        acked
    })
}

/// What a fresh recovery of `stream` holds.
fn recovered(config: &PostgresConfig, stream: &str) -> Vec<u64> {
    runtime().block_on(async {
        let store = PostgresStore::open_config(config.clone()).expect("opens");
        let backend = Backend::new(persevere_tokio::Tokio::current(), store);
        let tally = Persistent::<Tally>::open(&backend, JournalConfig::new(stream), Tally::default)
            .await
            .expect("recovers");
        tally.state().expect("settled").0.clone()
    })
}

fn check(acked: &[u64], stored: &[u64]) {
    let mut sorted = stored.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), stored.len(), "an event is stored twice");
    for n in acked {
        assert!(stored.contains(n), "acknowledged event {n} is missing");
    }
}

#[test]
fn terminated_connections_lose_no_acknowledged_event_and_duplicate_none() {
    let Some(server) = common::server() else {
        return;
    };
    let schema = common::Schema::new(&server, "kill");
    let app = schema.config.schema().to_owned();
    let mut pg = server.pg().clone();
    pg.application_name(&app);
    let config = PostgresConfig::new(pg, schema.config.schema()).expect("a config");

    let stop = Arc::new(AtomicBool::new(false));
    let acked_so_far = Arc::new(AtomicU64::new(0));
    let killer = {
        let (stop, admin, acked_so_far) =
            (Arc::clone(&stop), server.clone(), Arc::clone(&acked_so_far));
        std::thread::spawn(move || {
            let client = admin.connect().expect("an admin client");
            let mut kills = 0u64;
            let mut last = 0;
            while !stop.load(Ordering::SeqCst) {
                // Kill once per few acknowledged appends, so progress is made between kills.
                let now = acked_so_far.load(Ordering::SeqCst);
                if now >= last + 7 {
                    last = now;
                    let rows = futures::executor::block_on(client.query(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
                        &[&app],
                    ))
                    .expect("the kill query");
                    kills += rows.len() as u64;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            kills
        })
    };
    let acked = persist_through_faults(&config, "s", 300, &acked_so_far);
    stop.store(true, Ordering::SeqCst);
    let kills = killer.join().expect("the killer");
    common::say(&format!("{kills} connections terminated"));
    assert!(kills > 0);
    check(&acked, &recovered(&schema.config, "s"));
}

#[test]
fn a_server_restart_loses_no_acknowledged_event_and_duplicates_none() {
    // Runs with the suite; it needs no shared server, only the PostgreSQL binaries.
    if common::server().is_none() {
        return;
    }
    let Some(cluster) = common::cluster::Cluster::start(&["-A", "trust"], None) else {
        common::say(
            "SKIPPED a_server_restart_loses_no_acknowledged_event_and_duplicates_none: no private \
             cluster could be started (initdb from `pg_config --bindir` or PERSEVERE_POSTGRES_BIN, \
             run as a non-root user)",
        );
        return;
    };
    let config = PostgresConfig::from_url(&cluster.url()).expect("a config");
    let acked_so_far = Arc::new(AtomicU64::new(0));
    let restarter = {
        let counter = Arc::clone(&acked_so_far);
        let cluster = &cluster;
        std::thread::scope(|scope| {
            let restarts = scope.spawn(move || {
                let mut restarts = 0;
                for at in [40, 120] {
                    while counter.load(Ordering::SeqCst) < at {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    assert!(
                        cluster.ctl(&["restart", "-m", "immediate"]),
                        "pg_ctl restart in {}",
                        cluster.path().display()
                    );
                    restarts += 1;
                }
                restarts
            });
            let acked = persist_through_faults(&config, "s", 200, &acked_so_far);
            (acked, restarts.join().expect("the restarter"))
        })
    };
    let (acked, restarts) = restarter;
    assert_eq!(restarts, 2);
    check(&acked, &recovered(&config, "s"));
}
