//! Deleting events up to a seq (compaction) keeps the head.

use persevere_core::StorageError;

use crate::case::{ensure, ensure_eq, Ctx, Outcome};

pub(crate) fn delete_events_up_to_is_inclusive(ctx: &mut Ctx<'_>) -> Outcome {
    let mut kit = ctx.fresh();
    kit.must_append("s", 0, 1..=6)?;
    kit.delete_events("s", 3)?;
    ensure_eq!(
        kit.read_all("s")?.seqs(),
        vec![4, 5, 6],
        "events after deleting up to 3"
    );
    ensure_eq!(
        kit.read("s", 2, 2)?.seqs(),
        vec![4, 5],
        "read from a deleted seq"
    );
    Ok(())
}

pub(crate) fn compaction_keeps_the_head(ctx: &mut Ctx<'_>) -> Outcome {
    let mut kit = ctx.fresh();
    kit.must_append("s", 0, 1..=6)?;
    kit.delete_events("s", 4)?;
    ensure_eq!(kit.head("s")?, 6, "head after partial compaction");
    kit.delete_events("s", 6)?;
    let read = kit.read_all("s")?;
    ensure!(read.records.is_empty(), "events left: {:?}", read.seqs());
    ensure_eq!(read.head, 6, "head after full compaction");
    Ok(())
}

pub(crate) fn append_after_full_compaction_continues_at_the_head(ctx: &mut Ctx<'_>) -> Outcome {
    let mut kit = ctx.fresh();
    kit.must_append("s", 0, 1..=6)?;
    kit.delete_events("s", 6)?;
    let restart = kit.append("s", 0, 1..=1)?;
    ensure_eq!(
        restart,
        Err(StorageError::Conflict {
            expected: 0,
            actual: 6
        }),
        "an append restarting a compacted stream"
    );
    kit.must_append("s", 6, 7..=7)?;
    let read = kit.read_all("s")?;
    ensure_eq!(read.seqs(), vec![7], "events");
    ensure_eq!(read.head, 7, "head");
    Ok(())
}

pub(crate) fn delete_events_keeps_snapshots(ctx: &mut Ctx<'_>) -> Outcome {
    let mut kit = ctx.fresh();
    kit.must_append("s", 0, 1..=4)?;
    kit.save("s", 3, "v1")?;
    kit.delete_events("s", 3)?;
    ensure_eq!(
        kit.load_seq("s", None)?,
        Some(3),
        "snapshot after compaction"
    );
    ensure_eq!(kit.read_all("s")?.seqs(), vec![4], "events");
    Ok(())
}

pub(crate) fn deletes_on_an_unknown_stream_are_harmless(ctx: &mut Ctx<'_>) -> Outcome {
    let mut kit = ctx.fresh();
    kit.must_append("other", 0, 1..=2)?;
    kit.delete_events("ghost", 10)?;
    kit.keep_snapshots("ghost", 1)?;
    ensure_eq!(kit.head("ghost")?, 0, "head of the unknown stream");
    kit.must_append("ghost", 0, 1..=1)?;
    ensure_eq!(kit.read_all("other")?.seqs(), vec![1, 2], "other stream");
    Ok(())
}
