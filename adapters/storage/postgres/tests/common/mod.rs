//! What the PostgreSQL tests share: the server from `PERSEVERE_POSTGRES_URL`, a schema of
//! their own per test, and a few commands.
#![allow(dead_code)]

pub mod cluster;

use std::sync::atomic::{AtomicU64, Ordering};

use persevere_core::{
    Command, CommandId, CommandResult, Completion, StorageError, Store, StoredRecord, StreamCommand,
};
use persevere_postgres::{PostgresConfig, PostgresStore};

/// The server the tests use, or `None` (after saying so) when none is configured. Under
/// `PERSEVERE_REQUIRE_POSTGRES=1`, a missing or unreachable server fails the test.
pub fn server() -> Option<PostgresConfig> {
    let required = std::env::var("PERSEVERE_REQUIRE_POSTGRES").is_ok_and(|v| v == "1");
    let Ok(url) = std::env::var("PERSEVERE_POSTGRES_URL") else {
        assert!(
            !required,
            "PERSEVERE_REQUIRE_POSTGRES=1 but PERSEVERE_POSTGRES_URL is not set"
        );
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| say(
            "\nPostgreSQL suite skipped: set PERSEVERE_POSTGRES_URL (e.g. \
             PERSEVERE_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test cargo test -p persevere-postgres) to run it",
        ));
        return None;
    };
    let config = match PostgresConfig::from_url(&url) {
        Ok(config) => config,
        Err(e) => panic!("PERSEVERE_POSTGRES_URL is not usable: {e}"),
    };
    match config.connect() {
        Ok(_) => Some(config),
        Err(e) if required => panic!("the PostgreSQL server is required but unusable: {e}"),
        Err(e) => {
            say(&format!("PostgreSQL suite skipped: {e}"));
            None
        }
    }
}

/// Writes to the process's stderr past the test harness's capture, so a skip is seen.
pub fn say(message: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{message}");
}

/// A schema of the test's own, dropped with the value.
pub struct Schema {
    pub config: PostgresConfig,
}

static NEXT: AtomicU64 = AtomicU64::new(0);

impl Schema {
    pub fn new(server: &PostgresConfig, name: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let schema = format!(
            "t_{name}_{}_{}_{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        Self::named(server, &schema)
    }

    pub fn named(server: &PostgresConfig, schema: &str) -> Self {
        let config = server.with_schema(schema).expect("a valid schema name");
        Self { config }
    }

    pub fn open(&self) -> PostgresStore {
        PostgresStore::open_config(self.config.clone()).expect("the store opens")
    }

    pub fn sql(&self, sql: &str) {
        let client = self.config.connect().expect("a client");
        futures::executor::block_on(client.batch_execute(sql)).expect("the statement runs");
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        if let Ok(client) = self.config.connect() {
            let _ = futures::executor::block_on(client.batch_execute(&format!(
                "DROP SCHEMA IF EXISTS \"{}\" CASCADE",
                self.config.schema()
            )));
        }
    }
}

pub fn append(stream: &str, id: u64, expected_last: u64, bytes: &[u8]) -> StreamCommand {
    StreamCommand {
        stream: stream.into(),
        command: Command::Append {
            id: CommandId(id),
            expected_last,
            events: StoredRecord {
                seq: expected_last + 1,
                bytes: bytes.to_vec().into(),
            }
            .into(),
            snapshot: None,
        },
    }
}

pub fn read(stream: &str, id: u64) -> StreamCommand {
    StreamCommand {
        stream: stream.into(),
        command: Command::ReadEvents {
            id: CommandId(id),
            from: 1,
            limit: usize::MAX,
        },
    }
}

/// Every event of `stream` and its head.
pub fn events(store: &mut dyn Store, stream: &str) -> (Vec<(u64, Vec<u8>)>, u64) {
    match one(store, read(stream, 0)) {
        Ok(Completion::Events { records, head }) => (
            records
                .into_iter()
                .map(|r| (r.seq, r.bytes.to_vec()))
                .collect(),
            head,
        ),
        other => panic!("read failed: {other:?}"),
    }
}

pub fn one(store: &mut dyn Store, command: StreamCommand) -> Result<Completion, StorageError> {
    let mut results: Vec<CommandResult> = store.execute(vec![command]);
    results
        .pop()
        .map_or(Err(StorageError::Failed("no result".into())), |(_, r)| r)
}

/// Asserts the stream is seqs `1..=head` with no gap, and returns its payloads.
pub fn contiguous(store: &mut dyn Store, stream: &str) -> Vec<Vec<u8>> {
    let (events, head) = events(store, stream);
    let seqs: Vec<u64> = events.iter().map(|(s, _)| *s).collect();
    assert_eq!(
        seqs,
        (1..=head).collect::<Vec<_>>(),
        "stream {stream} is not contiguous"
    );
    events.into_iter().map(|(_, b)| b).collect()
}
