//! Recovery from the file journal after a graceful stop and after a crash (the tokio runtime
//! dropped without stopping the actor system), for Light and Full persistence, plain and
//! encrypted, with and without compaction.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use ave_actors_actor::ActorRef;
use common::{new_system, start, stop, Counter, Msg, Resp, Setup};
use persevere_ave::store::Persistence;
use persevere_ave::{EncryptedKey, FileManager, FullPersistence, LightPersistence};

#[derive(Debug, Clone, Copy)]
enum Ending {
    Graceful,
    Crash,
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn setup(dir: &Path, encrypted: bool) -> Setup {
    let setup = Setup::new(FileManager::open_or_create(dir).unwrap());
    if encrypted {
        setup.key(EncryptedKey::new(&[3; 32]).unwrap())
    } else {
        setup
    }
}

/// Runs one life of the counter: recovers it, checks it holds `expect`, adds `add` one by one,
/// and ends as told.
fn life<P, const C: bool>(dir: &Path, encrypted: bool, expect: &[u64], add: &[u64], ending: Ending)
where
    P: Persistence + Send + Sync + 'static,
{
    let runtime = runtime();
    runtime.block_on(async {
        let (system, runner) = new_system();
        let counter: ActorRef<Counter<P, C>> = start(&system, "counter", setup(dir, encrypted))
            .await
            .unwrap();
        let sum = expect.iter().sum();
        assert_eq!(
            counter.ask(Msg::Get).await.unwrap(),
            Resp::Value(sum, expect.to_vec())
        );
        for &n in add {
            counter.ask(Msg::Add(n)).await.unwrap();
        }
        match ending {
            Ending::Graceful => stop(system, runner).await,
            Ending::Crash => {} // the system is never told to stop
        }
    });
    drop(runtime); // a crash: every task, actor and store handle goes away mid-flight
}

fn case<P, const C: bool>(encrypted: bool, ending: Ending)
where
    P: Persistence + Send + Sync + 'static,
{
    let dir = tempfile::tempdir().unwrap();
    // More than 16 events, so Light persistence prunes (and compacts) at least once.
    let first: Vec<u64> = (1..=20).collect();
    life::<P, C>(dir.path(), encrypted, &[], &first, ending);
    life::<P, C>(dir.path(), encrypted, &first, &[100], ending);
    let mut all = first;
    all.push(100);
    life::<P, C>(dir.path(), encrypted, &all, &[], Ending::Graceful);
}

macro_rules! matrix {
    ($($name:ident: $persistence:ty, $compact:expr, $encrypted:expr;)*) => {$(
        #[test]
        fn $name() {
            for ending in [Ending::Graceful, Ending::Crash] {
                case::<$persistence, $compact>($encrypted, ending);
            }
        }
    )*};
}

matrix! {
    light_plain: LightPersistence, false, false;
    light_plain_compacted: LightPersistence, true, false;
    light_encrypted: LightPersistence, false, true;
    light_encrypted_compacted: LightPersistence, true, true;
    full_plain: FullPersistence, false, false;
    full_plain_compacted: FullPersistence, true, false;
    full_encrypted: FullPersistence, false, true;
    full_encrypted_compacted: FullPersistence, true, true;
}
