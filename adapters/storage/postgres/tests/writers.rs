//! Many writers on one journal: two stores (and two processes) racing on one stream, three
//! processes owning disjoint entities, and a split brain. Exactly one append per seq wins, the
//! loser gets `Conflict`, and the stream stays contiguous.

mod common;

use std::collections::BTreeMap;
use std::process::Command as Process;

use persevere_core::{Completion, Entity, JournalConfig, PersistError, Phase, StorageError, Store};
use persevere_driver::{Backend, Error, Persistent};
use persevere_postgres::PostgresStore;

use common::{append, contiguous, events, one, Schema};

/// Appends to `stream` until its head reaches `target`, re-reading the head after each
/// conflict. Returns the acknowledged (seq, payload) pairs and the number of conflicts.
fn race(store: &mut dyn Store, stream: &str, tag: &str, target: u64) -> (Vec<(u64, Vec<u8>)>, u64) {
    let (_, mut head) = events(store, stream);
    let (mut acked, mut conflicts) = (Vec::new(), 0);
    let mut id = 1;
    while head < target {
        let payload = format!("{tag} {}", head + 1).into_bytes();
        id += 1;
        match one(store, append(stream, id, head, &payload)) {
            Ok(Completion::Done) => {
                head += 1;
                acked.push((head, payload));
            }
            Err(StorageError::Conflict { expected, actual }) => {
                assert_eq!(expected, head);
                assert!(actual > head, "a conflict reports a newer head");
                conflicts += 1;
                head = actual;
            }
            other => panic!("append failed: {other:?}"),
        }
    }
    (acked, conflicts)
}

/// Every acknowledged append is in the stream exactly as written, and no seq was acknowledged
/// to two writers.
fn check_acked(store: &mut dyn Store, stream: &str, writers: &[Vec<(u64, Vec<u8>)>], head: u64) {
    let stored = contiguous(store, stream);
    assert_eq!(stored.len() as u64, head);
    let mut owner = BTreeMap::new();
    for (w, acked) in writers.iter().enumerate() {
        for (seq, payload) in acked {
            assert!(
                owner.insert(*seq, w).is_none(),
                "seq {seq} acknowledged twice"
            );
            assert_eq!(
                &stored[*seq as usize - 1],
                payload,
                "seq {seq} is not what was acknowledged"
            );
        }
    }
    assert_eq!(
        owner.len() as u64,
        head,
        "every seq was acknowledged to exactly one writer"
    );
}

#[test]
fn two_stores_on_one_stream_one_append_per_seq_wins() {
    let Some(server) = common::server() else {
        return;
    };
    let schema = Schema::new(&server, "two");
    let (mut a, mut b) = (schema.open(), schema.open());

    // Both expect the empty stream: exactly one wins.
    let ra = one(&mut a, append("s", 1, 0, b"a 1"));
    let rb = one(&mut b, append("s", 1, 0, b"b 1"));
    assert_eq!(ra, Ok(Completion::Done));
    assert_eq!(
        rb,
        Err(StorageError::Conflict {
            expected: 0,
            actual: 1
        })
    );

    // Then both race to 400.
    let config = schema.config.clone();
    let writer = |tag: &'static str| {
        let config = config.clone();
        std::thread::spawn(move || {
            let mut store = PostgresStore::open_config(config).expect("opens");
            race(&mut store, "s", tag, 400)
        })
    };
    let (wa, wb) = (writer("a"), writer("b"));
    let (acked_a, conflicts_a) = wa.join().expect("writer a");
    let (acked_b, conflicts_b) = wb.join().expect("writer b");
    common::say(&format!(
        "two stores: a won {} (lost {conflicts_a}), b won {} (lost {conflicts_b})",
        acked_a.len(),
        acked_b.len()
    ));
    let first = vec![(1, b"a 1".to_vec())];
    check_acked(&mut a, "s", &[first, acked_a, acked_b], 400);
}

/// A batch holding a stale append and fresh ones: only the stale one is refused.
#[test]
fn a_conflict_does_not_abort_the_other_appends_of_the_batch() {
    let Some(server) = common::server() else {
        return;
    };
    let schema = Schema::new(&server, "batch");
    let mut store = schema.open();
    assert_eq!(
        one(&mut store, append("x", 1, 0, b"x1")),
        Ok(Completion::Done)
    );
    let results = store.execute(vec![
        append("w", 2, 0, b"w1"),
        append("x", 3, 0, b"stale"),
        append("y", 4, 0, b"y1"),
    ]);
    assert_eq!(results[0].1, Ok(Completion::Done));
    assert_eq!(
        results[1].1,
        Err(StorageError::Conflict {
            expected: 0,
            actual: 1
        })
    );
    assert_eq!(results[2].1, Ok(Completion::Done));
    assert_eq!(contiguous(&mut store, "x"), vec![b"x1".to_vec()]);
    assert_eq!(contiguous(&mut store, "y"), vec![b"y1".to_vec()]);
}

const ROLE: &str = "PERSEVERE_POSTGRES_TEST_ROLE";
const SCHEMA: &str = "PERSEVERE_POSTGRES_TEST_SCHEMA";

/// Runs this test binary's `test` in a child process with `role`, returning its stdout.
fn spawn(test: &str, role: &str, schema: &str) -> std::process::Child {
    let exe = std::env::current_exe().expect("the test binary");
    Process::new(exe)
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(ROLE, role)
        .env(SCHEMA, schema)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("a child process")
}

fn lines(child: std::process::Child) -> Vec<String> {
    let output = child.wait_with_output().expect("the child ran");
    assert!(output.status.success(), "a child process failed");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        // The harness may print its own words before ours on a line.
        .filter_map(|l| l.find("ACK ").map(|at| l[at..].to_owned()))
        .collect()
}

#[test]
fn two_processes_on_one_stream_one_append_per_seq_wins() {
    let Some(server) = common::server() else {
        return;
    };
    let name = "two_processes_on_one_stream_one_append_per_seq_wins";
    if let Ok(role) = std::env::var(ROLE) {
        let schema = std::env::var(SCHEMA).expect("the schema");
        let mut store =
            PostgresStore::open_config(server.with_schema(&schema).expect("valid")).expect("opens");
        let (acked, conflicts) = race(&mut store, "s", &role, 300);
        for (seq, _) in acked {
            println!("ACK {seq}");
        }
        common::say(&format!("process {role}: {conflicts} conflicts"));
        return;
    }
    let schema = Schema::new(&server, "procs");
    drop(schema.open());
    let children = [
        spawn(name, "p", schema.config.schema()),
        spawn(name, "q", schema.config.schema()),
    ];
    let acked: Vec<Vec<(u64, Vec<u8>)>> = children
        .into_iter()
        .zip(["p", "q"])
        .map(|(child, tag)| {
            lines(child)
                .iter()
                .filter_map(|l| l.strip_prefix("ACK ")?.parse::<u64>().ok())
                .map(|seq| (seq, format!("{tag} {seq}").into_bytes()))
                .collect()
        })
        .collect();
    check_acked(&mut schema.open(), "s", &acked, 300);
}

#[test]
fn three_processes_own_disjoint_entities_and_write_at_once() {
    let Some(server) = common::server() else {
        return;
    };
    let name = "three_processes_own_disjoint_entities_and_write_at_once";
    const ENTITIES: usize = 30;
    const ROUNDS: u64 = 30;
    if let Ok(role) = std::env::var(ROLE) {
        let schema = std::env::var(SCHEMA).expect("the schema");
        let mut store =
            PostgresStore::open_config(server.with_schema(&schema).expect("valid")).expect("opens");
        for round in 0..ROUNDS {
            // One group commit per round: one append per owned entity.
            let batch = (0..ENTITIES)
                .map(|e| {
                    append(
                        &format!("{role}-{e}"),
                        round,
                        round,
                        format!("{role}-{e} {}", round + 1).as_bytes(),
                    )
                })
                .collect();
            for (_, result) in store.execute(batch) {
                assert_eq!(result, Ok(Completion::Done));
            }
        }
        println!("ACK {role}");
        return;
    }
    let schema = Schema::new(&server, "cluster");
    drop(schema.open());
    let roles = ["n1", "n2", "n3"];
    let children: Vec<_> = roles
        .iter()
        .map(|r| spawn(name, r, schema.config.schema()))
        .collect();
    for child in children {
        assert_eq!(lines(child).len(), 1);
    }
    let mut store = schema.open();
    for role in roles {
        for e in 0..ENTITIES {
            let stream = format!("{role}-{e}");
            let stored = contiguous(&mut store, &stream);
            let expected: Vec<Vec<u8>> = (1..=ROUNDS)
                .map(|s| format!("{stream} {s}").into_bytes())
                .collect();
            assert_eq!(stored, expected);
        }
    }
}

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

#[test]
fn split_brain_the_old_owner_gets_conflict_and_stops() {
    let Some(server) = common::server() else {
        return;
    };
    let schema = Schema::new(&server, "split");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let tokio = persevere_tokio::Tokio::current;
        let old_node = Backend::new(tokio(), schema.open());
        let new_node = Backend::new(tokio(), schema.open());
        let mut old =
            Persistent::<Tally>::open(&old_node, JournalConfig::new("order-7"), Tally::default)
                .await
                .expect("opens");
        for n in 1..=10 {
            old.persist(n).await.expect("persists");
        }
        // The entity is handed over while the old owner still runs.
        let mut new =
            Persistent::<Tally>::open(&new_node, JournalConfig::new("order-7"), Tally::default)
                .await
                .expect("opens");
        assert_eq!(new.state().expect("settled").0.len(), 10);
        new.persist(100).await.expect("the new owner persists");
        let refused = old.persist(11).await;
        assert!(
            matches!(refused, Err(Error::Persist(PersistError::Conflict { .. }))),
            "{refused:?}"
        );
        assert_eq!(old.phase(), Phase::Stopped);
        assert!(
            old.persist(12).await.is_err(),
            "the old owner stays stopped"
        );
        new.persist(101).await.expect("the new owner goes on");
        assert_eq!(
            old.state().expect("settled").0,
            (1..=10).collect::<Vec<_>>()
        );
    });
    let stored = contiguous(&mut schema.open(), "order-7");
    assert_eq!(stored.len(), 12);
}
