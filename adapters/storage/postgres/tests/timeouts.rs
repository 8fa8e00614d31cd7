//! A server that goes silent — no reset, no close, just nothing — never holds the store
//! forever: a batch waiting on it fails with `Failed` (its outcome unknown) and fences the
//! store, a connection attempt gives up after `connect_timeout`, and the store reopens once the
//! server answers again.
//!
//! Every store call runs on a thread of its own and the test waits for it with a deadline, so
//! a store that hangs fails the test instead of hanging the suite.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use persevere_core::{Completion, StorageError, Store};
use persevere_postgres::{PostgresConfig, PostgresError, PostgresStore};

/// How long any one store call may take before the test calls it hung. Far above the timeouts
/// the tests configure (1 to 5 s); only there to keep a hang from hanging the suite.
const DEADLINE: Duration = Duration::from_secs(30);

/// Runs `f` on a thread of its own and returns its answer, failing the test if none comes
/// within [`DEADLINE`] (the thread is left behind, stuck, and ends with the test process).
fn within<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(DEADLINE) {
        Ok(answer) => answer,
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("{what} did not return within {DEADLINE:?}: the store waits on a silent server")
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("{what} panicked"),
    }
}

/// A TCP proxy to the PostgreSQL server that, once silenced, forwards nothing in either
/// direction but keeps every socket open: to the store, the server's host went quiet. New
/// connections are accepted and get the same silence.
struct Proxy {
    port: u16,
    silent: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a proxy listener");
        let port = listener.local_addr().expect("the proxy's address").port();
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let silent = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let (flags_silent, flags_stop) = (Arc::clone(&silent), Arc::clone(&stop));
        std::thread::spawn(move || {
            while !flags_stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let Ok(server) = TcpStream::connect(upstream) else {
                            continue;
                        };
                        let _ = client.set_nonblocking(false);
                        let (Ok(client2), Ok(server2)) = (client.try_clone(), server.try_clone())
                        else {
                            continue;
                        };
                        for (from, to) in [(client, server), (server2, client2)] {
                            let (silent, stop) =
                                (Arc::clone(&flags_silent), Arc::clone(&flags_stop));
                            std::thread::spawn(move || pump(from, to, &silent, &stop));
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(5))
                    }
                    Err(_) => return,
                }
            }
        });
        Self { port, silent, stop }
    }

    /// Stops forwarding in both directions, on every connection, keeping the sockets open.
    fn silence(&self) {
        self.silent.store(true, Ordering::SeqCst);
        // A read already under way ends within its 20 ms timeout; give it time to.
        std::thread::sleep(Duration::from_millis(100));
    }

    fn resume(&self) {
        self.silent.store(false, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Copies `from` to `to` until either closes; while `silent`, reads and writes nothing.
fn pump(mut from: TcpStream, mut to: TcpStream, silent: &AtomicBool, stop: &AtomicBool) {
    let _ = from.set_read_timeout(Some(Duration::from_millis(20)));
    let mut buf = vec![0u8; 64 * 1024];
    while !stop.load(Ordering::SeqCst) {
        if silent.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        }
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// The test server's first TCP address.
fn upstream(server: &PostgresConfig) -> SocketAddr {
    let pg = server.pg();
    let host = pg
        .get_hosts()
        .iter()
        .find_map(|h| match h {
            tokio_postgres::config::Host::Tcp(h) => Some(h.clone()),
            #[allow(unreachable_patterns)]
            _ => None,
        })
        .expect("PERSEVERE_POSTGRES_URL names a TCP host");
    let port = pg.get_ports().first().copied().unwrap_or(5432);
    (host.as_str(), port)
        .to_socket_addrs()
        .expect("the host resolves")
        .next()
        .expect("an address")
}

/// The test server's URL, pointed at the proxy, with `params` added.
fn through(proxy: &Proxy, schema: &str, params: &[(&str, &str)]) -> PostgresConfig {
    let url = std::env::var("PERSEVERE_POSTGRES_URL").expect("PERSEVERE_POSTGRES_URL");
    let mut url = url::Url::parse(&url).expect("a URL");
    url.set_host(Some("127.0.0.1")).expect("a host");
    url.set_port(Some(proxy.port)).expect("a port");
    url.query_pairs_mut().append_pair("schema", schema);
    for (k, v) in params {
        url.query_pairs_mut().append_pair(k, v);
    }
    PostgresConfig::from_url(url.as_str()).expect("a config")
}

fn execute(
    what: &str,
    mut store: PostgresStore,
    batch: Vec<persevere_core::StreamCommand>,
) -> (PostgresStore, Vec<persevere_core::CommandResult>) {
    within(what, move || {
        let results = store.execute(batch);
        (store, results)
    })
}

/// The store `config` names, opened, after a first append to stream "s" that succeeds.
fn opened_with_one_append(config: PostgresConfig) -> PostgresStore {
    let opened = within("open", move || PostgresStore::open_config(config));
    let store = opened.expect("the store opens through the proxy");
    let (store, results) = execute("a batch", store, vec![common::append("s", 1, 0, b"one")]);
    assert!(
        matches!(results[..], [(_, Ok(Completion::Done))]),
        "{results:?}"
    );
    store
}

fn assert_all_failed(results: &[persevere_core::CommandResult], mentions: &str) {
    assert!(!results.is_empty());
    for (id, result) in results {
        match result {
            Err(StorageError::Failed(reason)) => {
                assert!(reason.contains(mentions), "{id:?}: {reason}")
            }
            other => panic!("{id:?}: expected Failed (outcome unknown), got {other:?}"),
        }
    }
}

#[test]
fn a_silent_server_fails_the_batch_and_fences_the_store_until_it_reopens() {
    let Some(server) = common::server() else {
        return;
    };
    let schema = common::Schema::new(&server, "silent");
    let proxy = Proxy::start(upstream(&server));
    let config = through(
        &proxy,
        schema.config.schema(),
        &[
            ("connect_timeout", "1"),
            ("request_timeout", "2"),
            ("keepalives_idle", "1"),
            ("keepalives_interval", "1"),
            ("keepalives_retries", "2"),
            ("tcp_user_timeout", "2"),
        ],
    );
    let store = opened_with_one_append(config);

    proxy.silence();
    let batch = vec![
        common::append("s", 2, 1, b"two"),
        common::append("t", 3, 0, b"one"),
    ];
    let (store, results) = execute("a batch on a silent server", store, batch);
    assert_all_failed(&results, "request_timeout");
    let fenced = store.fenced().expect("the store is fenced");
    assert!(fenced.contains("request_timeout"), "{fenced}");

    // Fenced: later batches fail at once, and a reopen gives up after connect_timeout.
    let (store, results) = execute(
        "a batch on a fenced store",
        store,
        vec![common::read("s", 4)],
    );
    assert_all_failed(&results, "fenced");
    let (mut store, reopened) = within("a reopen on a silent server", move || {
        let mut store = store;
        let reopened = store.reopen();
        (store, reopened)
    });
    match reopened {
        Err(StorageError::Failed(reason)) => {
            assert!(reason.contains("connect_timeout"), "{reason}")
        }
        other => panic!("expected the reopen to time out, got {other:?}"),
    }

    proxy.resume();
    let (store, reopened) = within("a reopen", move || {
        let reopened = store.reopen();
        (store, reopened)
    });
    reopened.expect("the store reopens once the server answers");
    assert_eq!(store.fenced(), None);
    let (mut store, results) = execute("a read", store, vec![common::read("s", 5)]);
    let head = match &results[..] {
        [(_, Ok(Completion::Events { head, .. }))] => *head,
        other => panic!("the read failed: {other:?}"),
    };
    // The batch cut short never reached the server here, but the store could not know that:
    // the journal learns it by reading the tail, as it does now.
    assert_eq!(head, 1);
    let (_, results) = within("an append after the reopen", move || {
        let results = store.execute(vec![common::append("s", 6, head, b"two")]);
        (store, results)
    });
    assert!(
        matches!(results[..], [(_, Ok(Completion::Done))]),
        "{results:?}"
    );
}

#[test]
fn a_server_going_silent_mid_batch_is_an_unknown_outcome() {
    let Some(server) = common::server() else {
        return;
    };
    let schema = common::Schema::new(&server, "midway");
    let app = schema.config.schema().to_owned();
    let proxy = Proxy::start(upstream(&server));
    let config = through(
        &proxy,
        &app,
        &[
            ("application_name", &app),
            ("connect_timeout", "1"),
            ("request_timeout", "5"),
        ],
    );
    let store = opened_with_one_append(config);

    // Another session holds the stream's head row, so the next append waits on the server
    // with its request sent; the proxy goes silent while it waits.
    let admin = server.connect().expect("an admin client");
    futures::executor::block_on(admin.batch_execute(&format!(
        "BEGIN; SELECT head FROM \"{app}\".streams WHERE stream = 's' FOR UPDATE"
    )))
    .expect("the row is locked");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut store = store;
        let results = store.execute(vec![common::append("s", 2, 1, b"two")]);
        let _ = tx.send((store, results));
    });
    let waiting = within("watching the append wait", {
        let observer = server.clone();
        let app = app.clone();
        move || {
            let observer = observer.connect().expect("an observer client");
            for _ in 0..1000 {
                let rows = futures::executor::block_on(observer.query(
                    "SELECT 1 FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'",
                    &[&app],
                ))
                .expect("pg_stat_activity");
                if !rows.is_empty() {
                    return true;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            false
        }
    });
    assert!(waiting, "the append never reached the server's lock");
    proxy.silence();
    // The lock is released: the server runs the append and answers into the silence.
    futures::executor::block_on(admin.batch_execute("COMMIT")).expect("the lock is released");

    let (store, results) = rx
        .recv_timeout(DEADLINE)
        .expect("execute returns while the server is silent");
    assert_all_failed(&results, "outcome of the batch's writes is unknown");
    assert!(store.fenced().is_some(), "the store is fenced");
    proxy.resume();
}

/// A listener that accepts connections and never says a word.
struct Mute {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl Mute {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a listener");
        let port = listener.local_addr().expect("an address").port();
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut held = Vec::new();
            while !flag.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((socket, _)) => held.push(socket),
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Self { port, stop }
    }
}

impl Drop for Mute {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

#[test]
fn connect_timeout_bounds_a_server_that_accepts_and_never_answers() {
    // Needs no PostgreSQL server.
    let mute = Mute::start();
    let url = format!(
        "postgres://postgres@127.0.0.1:{}/test?connect_timeout=1",
        mute.port
    );
    let opened = within("open against a mute server", move || {
        PostgresStore::open(&url).map(|_| ())
    });
    match opened {
        Err(
            e @ PostgresError::TimedOut {
                parameter: "connect_timeout",
                ..
            },
        ) => {
            let shown = e.to_string();
            assert!(
                shown.contains(&format!("127.0.0.1:{}", mute.port)) && shown.contains("1s"),
                "{shown}"
            );
        }
        other => panic!("expected TimedOut on connect_timeout, got {other:?}"),
    }
}
