//! The file journal at scale: open time and resident memory of stores of many events, after a
//! clean shutdown and after a SIGKILL (`cargo bench -p persevere-file --bench scale`).
//!
//! Each store is filled by a child process (appends of 10 events of 64 bytes, 1,000 appends
//! per group commit, streams taken in turn), which either drops the store (a clean shutdown)
//! or is killed with SIGKILL once every append is acknowledged. Another child process then
//! opens the store and reports the time open took and its resident memory (VmRSS) before and
//! after open.
//!
//! By default the stores hold 1 M and 10 M events over 1, 1,000 and 100,000 streams. Set
//! `PERSEVERE_SCALE_EVENTS` to a comma-separated list of event counts (for instance
//! `10000000,100000000`: the 100 M runs take minutes and 7 GB of disk) and
//! `PERSEVERE_BENCH_DIR` to measure another file system than the temporary directory's;
//! `PERSEVERE_SCALE_STREAMS` chooses the stream counts (default `1,1000,100000`).
//!
//! With `PERSEVERE_SCALE_COMPACT_MIB=1024` it measures instead the commit latency of 1,000
//! entities persisting (one 64-byte event each per round, one group commit per round) while a
//! compaction of that many MiB of live data runs, against the same load on the same store
//! with compaction held off (it writes twice that much first).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use persevere_core::{Command as StoreCommand, CommandId, Store, StoredRecord, StreamCommand};
use persevere_file::FileStore;

const EVENTS_PER_APPEND: u64 = 10;
const APPENDS_PER_COMMIT: u64 = 1000;

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn fill(dir: &Path, events: u64, streams: u64, kill: bool) {
    let mut store = FileStore::create(dir).expect("create");
    let names: Vec<Arc<str>> = (0..streams)
        .map(|i| Arc::from(format!("entity-{i}")))
        .collect();
    let mut heads = vec![0u64; streams as usize];
    let payload = [7u8; 64];
    let mut written = 0u64;
    let mut next = 0usize;
    let mut id = 0u64;
    while written < events {
        let mut batch = Vec::new();
        for _ in 0..APPENDS_PER_COMMIT {
            if written >= events {
                break;
            }
            let n = EVENTS_PER_APPEND.min(events - written);
            let s = next;
            next = (next + 1) % names.len();
            let head = heads[s];
            id += 1;
            batch.push(StreamCommand {
                stream: Arc::clone(&names[s]),
                command: StoreCommand::Append {
                    id: CommandId(id),
                    expected_last: head,
                    events: (head + 1..=head + n)
                        .map(|seq| StoredRecord::new(seq, payload.to_vec()))
                        .collect(),
                    snapshot: None,
                },
            });
            heads[s] += n;
            written += n;
        }
        for (_, r) in store.execute(batch) {
            r.expect("append");
        }
    }
    if kill {
        println!("filled");
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
    drop(store);
    println!("filled");
}

fn open(dir: &Path) {
    let before = rss_kib();
    let start = Instant::now();
    let mut store = FileStore::open(dir).expect("open");
    let took = start.elapsed();
    let after = rss_kib();
    // One read, so the store is used as well as opened.
    let r = store.execute(vec![StreamCommand {
        stream: Arc::from("entity-0"),
        command: StoreCommand::ReadEvents {
            id: CommandId(1),
            from: 1,
            limit: 10,
        },
    }]);
    assert!(r[0].1.is_ok(), "read after open: {r:?}");
    println!(
        "{} {} {}",
        took.as_secs_f64(),
        before,
        after.saturating_sub(before)
    );
}

fn child(args: &[&str]) -> Command {
    let mut c = Command::new(std::env::current_exe().expect("exe"));
    c.args(args).stderr(Stdio::inherit());
    c
}

fn measure(base: &Path, events: u64, streams: u64, kill: bool) {
    let dir = base.join(format!("scale-{events}-{streams}-{kill}"));
    let _ = std::fs::remove_dir_all(&dir);
    let d = dir.to_string_lossy().into_owned();
    let (e, s) = (events.to_string(), streams.to_string());
    let started = Instant::now();
    let mut filler = child(&["fill", &d, &e, &s, if kill { "kill" } else { "clean" }])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut line = String::new();
    BufReader::new(filler.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("fill");
    assert_eq!(line.trim(), "filled", "the filling process failed");
    if kill {
        filler.kill().expect("SIGKILL");
    }
    filler.wait().expect("wait");
    let fill_s = started.elapsed().as_secs_f64();
    let bytes: u64 = std::fs::read_dir(&dir)
        .expect("dir")
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();
    let out = child(&["open", &d]).output().expect("open");
    let text = String::from_utf8_lossy(&out.stdout);
    let f: Vec<f64> = text
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    assert_eq!(f.len(), 3, "the opening process failed: {text}");
    println!(
        "{events:>11} events {streams:>7} streams  {:<6}  log {:>7.0} MiB (filled in {fill_s:>5.1} s)  open {:>8.3} s  RSS of the store {:>7.1} MiB (process before open {:.1} MiB)",
        if kill { "SIGKILL" } else { "clean" },
        bytes as f64 / 1048576.0,
        f[0],
        f[2] / 1024.0,
        f[1] / 1024.0,
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn summary(mut v: Vec<f64>) -> String {
    v.sort_by(f64::total_cmp);
    format!(
        "p50 {:>7.3} ms  p99 {:>7.3} ms  max {:>8.3} ms  ({} commits)",
        percentile(&v, 0.5) * 1e3,
        percentile(&v, 0.99) * 1e3,
        v[v.len() - 1] * 1e3,
        v.len()
    )
}

/// One round: each of 1,000 entities appends one 64-byte event; one execute (group commit).
fn round(store: &mut FileStore, heads: &mut [u64], id: &mut u64) -> f64 {
    let batch: Vec<StreamCommand> = heads
        .iter_mut()
        .enumerate()
        .map(|(i, head)| {
            *id += 1;
            *head += 1;
            StreamCommand {
                stream: Arc::from(format!("entity-{i}")),
                command: StoreCommand::Append {
                    id: CommandId(*id),
                    expected_last: *head - 1,
                    events: vec![StoredRecord::new(*head, vec![3u8; 64])].into(),
                    snapshot: None,
                },
            }
        })
        .collect();
    let start = Instant::now();
    for (_, r) in store.execute(batch) {
        r.expect("persist");
    }
    start.elapsed().as_secs_f64()
}

/// 1,000 entities persisting while a compaction of `live` bytes runs, against the same load
/// with compaction held off, on the same store.
fn compaction_latency(base: &Path, live: u64) {
    let dir = base.join("compaction");
    let _ = std::fs::remove_dir_all(&dir);
    let mut off = persevere_file::FileOptions::default();
    off.compact_min_bytes = u64::MAX;
    let mut store = FileStore::create_with(&dir, off.clone()).expect("create");
    // `live` bytes in 64 streams that stay, then as much in streams deleted at once.
    let fill = |store: &mut FileStore, prefix: &str, bytes: u64| {
        let mut heads = [0u64; 64];
        let mut written = 0;
        let mut id = 0;
        while written < bytes {
            let batch: Vec<StreamCommand> = (0..64)
                .map(|i| {
                    id += 1;
                    let head = heads[i];
                    heads[i] += 16;
                    StreamCommand {
                        stream: Arc::from(format!("{prefix}-{i}")),
                        command: StoreCommand::Append {
                            id: CommandId(id),
                            expected_last: head,
                            events: (head + 1..=head + 16)
                                .map(|s| StoredRecord::new(s, vec![1u8; 1000]))
                                .collect(),
                            snapshot: None,
                        },
                    }
                })
                .collect();
            written += 64 * 16 * 1004;
            for (_, r) in store.execute(batch) {
                r.expect("fill");
            }
        }
        heads
    };
    fill(&mut store, "live", live);
    // More than the live data and what the rounds below add, so that compaction starts at
    // the first commit after the store is reopened with it enabled.
    let junk = fill(&mut store, "junk", live + (512 << 20));
    let deletes: Vec<StreamCommand> = junk
        .iter()
        .enumerate()
        .map(|(i, &head)| StreamCommand {
            stream: Arc::from(format!("junk-{i}")),
            command: StoreCommand::DeleteEvents {
                id: CommandId(i as u64),
                up_to: head,
            },
        })
        .collect();
    store.execute(deletes);
    let mut heads = vec![0u64; 1000];
    let mut id = 1 << 40;
    for _ in 0..200 {
        round(&mut store, &mut heads, &mut id);
    }
    let baseline: Vec<f64> = (0..2000)
        .map(|_| round(&mut store, &mut heads, &mut id))
        .collect();
    drop(store);
    let store_start = Instant::now();
    let mut store = FileStore::open(&dir).expect("open");
    let opened = store_start.elapsed().as_secs_f64();
    let started = Instant::now();
    let mut during = Vec::new();
    loop {
        during.push(round(&mut store, &mut heads, &mut id));
        if store.stats().compactions > 0 && !store.compacting() {
            break;
        }
        assert!(
            store.stats().compactions > 0 || store.compacting() || during.len() < 100,
            "the compaction did not start"
        );
    }
    let took = started.elapsed().as_secs_f64();
    let p99 = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        percentile(&v, 0.99)
    };
    println!("1,000 entities, one group commit per round, compaction of {} MiB live (log {} MiB before):", live >> 20, (2 * live + (512 << 20)) >> 20);
    println!("  without compaction: {}", summary(baseline.clone()));
    println!(
        "  during compaction:  {}  (compaction ran {took:.1} s; open {opened:.3} s)",
        summary(during.clone())
    );
    println!(
        "  p99 ratio during/without: {:.2} (goal <= 2)",
        p99(&during) / p99(&baseline)
    );
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("fill") => {
            let n = |i: usize| args[i].parse::<u64>().expect("number");
            return fill(Path::new(&args[1]), n(2), n(3), args[4] == "kill");
        }
        Some("open") => return open(Path::new(&args[1])),
        _ => {}
    }
    let base = std::env::var_os("PERSEVERE_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("persevere-scale"));
    std::fs::create_dir_all(&base).expect("bench dir");
    if let Ok(live) = std::env::var("PERSEVERE_SCALE_COMPACT_MIB") {
        let live: u64 = live.parse().expect("MiB");
        return compaction_latency(&base, live << 20);
    }
    let counts: Vec<u64> = std::env::var("PERSEVERE_SCALE_EVENTS")
        .unwrap_or_else(|_| "1000000,10000000".into())
        .split(',')
        .filter_map(|x| x.trim().parse().ok())
        .collect();
    let streams: Vec<u64> = std::env::var("PERSEVERE_SCALE_STREAMS")
        .unwrap_or_else(|_| "1,1000,100000".into())
        .split(',')
        .filter_map(|x| x.trim().parse().ok())
        .collect();
    for events in counts {
        for &streams in &streams {
            for kill in [false, true] {
                measure(&base, events, streams, kill);
            }
        }
    }
}
