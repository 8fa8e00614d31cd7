//! Compaction runs in bounded steps between group commits: writers keep committing (and
//! reading, deleting, snapshotting) while it copies, and the result is the model's state.

use persevere_core::memory::MemoryStore;
use persevere_core::{CommandResult, Store};

use crate::sim::SimDisk;
use crate::tests::{dump, generate, sim_store, small_options, Mix, STREAMS};

#[test]
fn writers_keep_committing_while_a_compaction_runs() {
    let mix = Mix {
        streams: STREAMS.len(),
        snapshots: true,
        deletes: true,
        reads: true,
    };
    for seed in 0..8 {
        let disk = SimDisk::new();
        let options = small_options();
        let mut store = sim_store(&disk, &options).expect("open");
        let mut model = MemoryStore::new();
        let mut during = 0;
        let mut longest = 0;
        let mut run = 0;
        for (i, batch) in generate(seed, 150, mix).into_iter().enumerate() {
            let compacting = store.compacting();
            let want: Vec<CommandResult> = Store::execute(&mut model, batch.clone());
            let got = store.execute(batch);
            assert_eq!(got, want, "seed {seed}, batch {i}");
            if compacting {
                during += 1;
                run += 1;
                longest = longest.max(run);
            } else {
                run = 0;
            }
            if i % 50 == 49 {
                drop(store);
                store = sim_store(&disk, &options).expect("reopen");
                assert!(
                    store.repairs().is_empty(),
                    "seed {seed}: {:?}",
                    store.repairs()
                );
            }
        }
        assert!(store.stats().compactions > 0 || during > 0, "seed {seed}");
        assert!(
            longest >= 2,
            "seed {seed}: a compaction never spanned two commits"
        );
        assert!(
            during >= 5,
            "seed {seed}: only {during} batches ran during compactions"
        );
        assert_eq!(
            dump(&mut store, STREAMS),
            dump(&mut model, STREAMS),
            "seed {seed}"
        );
        drop(store);
        let mut store = sim_store(&disk, &options).expect("reopen");
        assert_eq!(
            dump(&mut store, STREAMS),
            dump(&mut model, STREAMS),
            "seed {seed}"
        );
    }
}
