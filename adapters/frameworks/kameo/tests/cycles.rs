//! 10,000 spawn/stop cycles of persistent actors leave no registry entries, no open journals
//! and no growth of the heap.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use common::*;
use kameo::prelude::*;
use persevere_kameo::PersistentActor;

/// The system allocator, counting the bytes currently allocated.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

#[allow(unsafe_code)]
// SAFETY: every call is forwarded unchanged to the system allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const KEYS: usize = 100;
const WARMUP: usize = 1_000;
const CYCLES: usize = 10_000;
/// Allowed heap growth between the end of the warm-up and the end of the run.
const SLACK: isize = 64 * 1024;

/// Yields until the tasks that finish a stopped actor (dropping its state) have run.
async fn settle(done: impl Fn() -> bool) {
    for _ in 0..10_000 {
        if done() {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("the stopped actors were never released");
}

/// One test, so that nothing else allocates in this process while it measures.
#[tokio::test]
async fn spawn_stop_cycles_do_not_grow_memory() {
    let growth = snapshot_actor_cycles().await;
    assert!(
        growth < SLACK,
        "snapshot actors: the heap grew by {growth} bytes"
    );
    let growth = event_sourced_actor_cycles().await;
    assert!(
        growth < SLACK,
        "event-sourced actors: the heap grew by {growth} bytes"
    );
}

/// Returns the heap growth over the cycles after the warm-up.
async fn snapshot_actor_cycles() -> isize {
    let keys: Vec<_> = (0..KEYS)
        .map(|i| key(&format!("memory://cycles-snapshot/p{i}")))
        .collect();
    let mut baseline = 0;
    for cycle in 0..WARMUP + CYCLES {
        if cycle == WARMUP {
            settle(|| persevere_kameo::registered_actors() == 0).await;
            baseline = LIVE.load(Ordering::Relaxed);
        }
        let key = keys[cycle % KEYS].clone();
        let actor = if cycle < KEYS {
            Profile::spawn_persistent(key, profile("p")).await
        } else {
            Profile::respawn_persistent(key).await
        }
        .expect("spawn");
        actor.ask(Visit).await.expect("visit");
        stop(&actor).await;
    }
    settle(|| persevere_kameo::registered_actors() == 0).await;
    let growth = LIVE.load(Ordering::Relaxed) - baseline;
    println!("snapshot actors: {CYCLES} cycles, heap {baseline} bytes after the warm-up, growth {growth} bytes");
    growth
}

/// Returns the heap growth over the cycles after the warm-up.
async fn event_sourced_actor_cycles() -> isize {
    let keys: Vec<_> = (0..KEYS)
        .map(|i| key(&format!("memory://cycles-journal/c{i}")))
        .collect();
    let mut baseline = 0;
    for cycle in 0..WARMUP + CYCLES {
        if cycle == WARMUP {
            settle(|| persevere_kameo::open_journals() == 0).await;
            baseline = LIVE.load(Ordering::Relaxed);
        }
        let mut args = CounterArgs::new(keys[cycle % KEYS].clone());
        args.compact = true;
        let counter = Counter::spawn(args);
        let value = counter.ask(Add(1)).await.expect("add");
        assert_eq!(value as usize, cycle / KEYS + 1);
        stop(&counter).await;
    }
    settle(|| persevere_kameo::open_journals() == 0).await;
    let growth = LIVE.load(Ordering::Relaxed) - baseline;
    println!("event-sourced actors: {CYCLES} cycles, heap {baseline} bytes after the warm-up, growth {growth} bytes");
    growth
}
