//! Snapshots: latest, before a bound, replacement, retention.

use crate::case::{ensure, ensure_eq, Ctx, Outcome};
use crate::kit::snapshot;

pub(crate) fn snapshot_save_and_load(ctx: &mut Ctx<'_>) -> Outcome {
    let mut kit = ctx.fresh();
    kit.must_append("s", 0, 1..=3)?;
    kit.save("s", 3, "v1")?;
    ensure_eq!(
        kit.load("s", None)?,
        Some(snapshot("s", 3, "v1")),
        "latest snapshot"
    );
    Ok(())
}

pub(crate) fn latest_snapshot_is_the_highest_seq(ctx: &mut Ctx<'_>) -> Outcome {
    let mut kit = ctx.fresh();
    kit.must_append("s", 0, 1..=6)?;
    kit.save("s", 5, "v1")?;
    kit.save("s", 2, "v1")?;
    kit.save("s", 4, "v1")?;
    ensure_eq!(kit.load_seq("s", None)?, Some(5), "latest snapshot");
    Ok(())
}

pub(crate) fn snapshot_before_is_exclusive(ctx: &mut Ctx<'_>) -> Outcome {
    let mut kit = ctx.fresh();
    kit.must_append("s", 0, 1..=6)?;
    for seq in [2, 4, 6] {
        kit.save("s", seq, "v1")?;
    }
    ensure_eq!(kit.load_seq("s", Some(6))?, Some(4), "before 6");
    ensure_eq!(kit.load_seq("s", Some(5))?, Some(4), "before 5");
    ensure_eq!(kit.load_seq("s", Some(7))?, Some(6), "before 7");
    ensure_eq!(kit.load_seq("s", Some(3))?, Some(2), "before 3");
    ensure_eq!(kit.load_seq("s", Some(2))?, None, "before 2");
    ensure_eq!(
        kit.load("s", Some(4))?,
        Some(snapshot("s", 2, "v1")),
        "bytes before 4"
    );
    Ok(())
}

pub(crate) fn snapshot_with_the_same_seq_is_replaced(ctx: &mut Ctx<'_>) -> Outcome {
    let mut kit = ctx.fresh();
    kit.must_append("s", 0, 1..=4)?;
    kit.save("s", 2, "v1")?;
    kit.save("s", 4, "v1")?;
    kit.save("s", 4, "v2")?;
    ensure_eq!(
        kit.load("s", None)?,
        Some(snapshot("s", 4, "v2")),
        "replaced"
    );
    kit.keep_snapshots("s", 2)?;
    ensure_eq!(
        kit.load_seq("s", Some(4))?,
        Some(2),
        "a replacement is one snapshot"
    );
    Ok(())
}

pub(crate) fn retention_keeps_the_newest_n(ctx: &mut Ctx<'_>) -> Outcome {
    let mut kit = ctx.fresh();
    kit.must_append("s", 0, 1..=5)?;
    for seq in 1..=5 {
        kit.save("s", seq, "v1")?;
    }
    kit.keep_snapshots("s", 2)?;
    ensure_eq!(kit.load_seq("s", None)?, Some(5), "newest kept");
    ensure_eq!(kit.load_seq("s", Some(5))?, Some(4), "second newest kept");
    ensure_eq!(kit.load_seq("s", Some(4))?, None, "older ones deleted");
    Ok(())
}

pub(crate) fn retention_keeps_at_least_one(ctx: &mut Ctx<'_>) -> Outcome {
    let mut kit = ctx.fresh();
    kit.must_append("s", 0, 1..=3)?;
    for seq in 1..=3 {
        kit.save("s", seq, "v1")?;
    }
    kit.keep_snapshots("s", 0)?;
    ensure_eq!(kit.load_seq("s", None)?, Some(3), "newest after keep 0");
    ensure_eq!(kit.load_seq("s", Some(3))?, None, "older after keep 0");
    Ok(())
}

pub(crate) fn snapshots_do_not_move_the_head(ctx: &mut Ctx<'_>) -> Outcome {
    let mut kit = ctx.fresh();
    kit.must_append("s", 0, 1..=2)?;
    kit.save("s", 2, "v1")?;
    kit.save("s", 1, "v1")?;
    kit.keep_snapshots("s", 1)?;
    let read = kit.read_all("s")?;
    ensure_eq!(read.head, 2, "head");
    ensure_eq!(read.seqs(), vec![1, 2], "events");
    ensure!(kit.load("s", None)?.is_some(), "snapshot gone");
    Ok(())
}
