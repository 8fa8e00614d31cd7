//! What an acknowledged write leaves behind after the store is closed and opened again.

use crate::case::{ensure_eq, Ctx, Outcome};
use crate::kit::snapshot;

pub(crate) fn reopen_keeps_acknowledged_appends(ctx: &mut Ctx<'_>) -> Outcome {
    let mut kit = ctx.fresh();
    let a = kit.append_cmd("a", 0, 1..=3);
    let b = kit.append_cmd("a.b", 0, 1..=2);
    let results = kit.batch(vec![("a", a), ("a.b", b)])?;
    ensure_eq!(
        results,
        vec![Ok(persevere_core::Completion::Done); 2],
        "group-committed appends"
    );
    kit.must_append("a", 3, 4..=4)?;
    drop(kit);
    let mut kit = ctx.reopen()?;
    let read = kit.read_all("a")?;
    ensure_eq!(read.seqs(), vec![1, 2, 3, 4], "events of a after reopen");
    ensure_eq!(read.head, 4, "head of a after reopen");
    ensure_eq!(
        kit.read_all("a.b")?.seqs(),
        vec![1, 2],
        "events of a.b after reopen"
    );
    Ok(())
}

pub(crate) fn reopen_keeps_snapshots_compaction_and_head(ctx: &mut Ctx<'_>) -> Outcome {
    let mut kit = ctx.fresh();
    kit.must_append("s", 0, 1..=6)?;
    for seq in [2, 4, 6] {
        kit.save("s", seq, "v1")?;
    }
    kit.save("s", 6, "v2")?;
    kit.keep_snapshots("s", 2)?;
    kit.delete_events("s", 4)?;
    drop(kit);
    let mut kit = ctx.reopen()?;
    let read = kit.read_all("s")?;
    ensure_eq!(read.seqs(), vec![5, 6], "events after reopen");
    ensure_eq!(read.head, 6, "head after reopen");
    ensure_eq!(
        kit.load("s", None)?,
        Some(snapshot("s", 6, "v2")),
        "newest snapshot"
    );
    ensure_eq!(
        kit.load("s", Some(6))?,
        Some(snapshot("s", 4, "v1")),
        "older snapshot"
    );
    ensure_eq!(kit.load("s", Some(4))?, None, "pruned snapshot");
    Ok(())
}

pub(crate) fn reopen_then_continue_appending(ctx: &mut Ctx<'_>) -> Outcome {
    let mut kit = ctx.fresh();
    kit.must_append("s", 0, 1..=3)?;
    drop(kit);
    let mut kit = ctx.reopen()?;
    let stale = kit.append("s", 0, 1..=1)?;
    ensure_eq!(
        stale,
        Err(persevere_core::StorageError::Conflict {
            expected: 0,
            actual: 3
        }),
        "a stale append after reopen"
    );
    kit.must_append("s", 3, 4..=4)?;
    drop(kit);
    let mut kit = ctx.reopen()?;
    ensure_eq!(
        kit.read_all("s")?.seqs(),
        vec![1, 2, 3, 4],
        "events after two reopens"
    );
    Ok(())
}
