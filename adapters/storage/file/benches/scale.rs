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
//! `PERSEVERE_BENCH_DIR` to measure another file system than the target directory's.

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
    let counts: Vec<u64> = std::env::var("PERSEVERE_SCALE_EVENTS")
        .unwrap_or_else(|_| "1000000,10000000".into())
        .split(',')
        .filter_map(|x| x.trim().parse().ok())
        .collect();
    for events in counts {
        for streams in [1, 1000, 100_000] {
            for kill in [false, true] {
                measure(&base, events, streams, kill);
            }
        }
    }
}
