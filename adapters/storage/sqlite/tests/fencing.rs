//! Through the driver: a full disk fails the persist (nothing applied), fences the SQLite
//! store, and the backend reopens it, so the next persist goes through — no process restart.

use std::time::Duration;

use persevere_core::{Entity, JournalConfig};
use persevere_driver::{Backend, Persistent, ReopenBackoff, StoreHealth};
use persevere_sqlite::SqliteStore;
use persevere_tokio::Tokio;

#[derive(Default, Debug, borsh::BorshSerialize, borsh::BorshDeserialize)]
struct Bytes {
    total: u64,
}

impl Entity for Bytes {
    type Event = Vec<u8>;
    type Error = String;
    fn apply(&mut self, event: &Vec<u8>) -> Result<(), String> {
        self.total += event.len() as u64;
        Ok(())
    }
}

#[test]
fn a_full_disk_fences_the_store_and_the_backend_reopens_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.db");
    let store = SqliteStore::create(&path).expect("opens");
    // This connection may not grow the database: a big write is SQLITE_FULL. A reopened
    // connection has no such limit (the disk "has space" again).
    store
        .with_connection(|c| {
            let pages: i64 = c.query_row("PRAGMA page_count", [], |r| r.get(0))?;
            c.query_row(&format!("PRAGMA max_page_count = {}", pages + 2), [], |r| {
                r.get::<_, i64>(0)
            })
        })
        .expect("connected")
        .expect("limit");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let backend = Backend::new(Tokio::from_handle(runtime.handle().clone()), store)
        .with_reopen_backoff(ReopenBackoff::new(Duration::ZERO, Duration::ZERO));
    let config = JournalConfig::new("c").reread(3, Duration::from_millis(1));
    runtime.block_on(async {
        let mut bytes = Persistent::<Bytes>::open(&backend, config.clone(), Bytes::default)
            .await
            .expect("opens");
        assert_eq!(bytes.persist(vec![1; 10]).await.expect("small"), 1..=1);
        let error = bytes.persist(vec![2; 256 << 10]).await.expect_err("full");
        assert!(
            error.to_string().contains("a.db"),
            "the error names the database: {error}"
        );
        assert_eq!(
            (bytes.state().expect("settled").total, bytes.last_seq()),
            (10, 1)
        );
        // The backend reopened the store (maybe at the next command): persisting goes on.
        let mut landed = None;
        for _ in 0..1_000 {
            match bytes.persist(vec![3; 256 << 10]).await {
                Ok(seqs) => {
                    landed = Some(seqs);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(1)).await,
            }
        }
        assert_eq!(landed, Some(2..=2));
        assert_eq!(backend.health(), StoreHealth::Open);
        // One writer per stream: the first entity lets go before the stream is opened again.
        drop(bytes);
        let again = Persistent::<Bytes>::open(&backend, JournalConfig::new("c"), Bytes::default)
            .await
            .expect("reopens");
        assert_eq!(
            (again.state().expect("settled").total, again.last_seq()),
            (10 + (256 << 10), 2)
        );
    });
}
