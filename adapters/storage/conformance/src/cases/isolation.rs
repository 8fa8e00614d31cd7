//! Streams never bleed into each other, whatever their names.

use crate::case::{ensure, ensure_eq, Ctx, Outcome};
use crate::kit::snapshot;

const SIMILAR: [&str; 8] = ["a", "a.b", "a/b", "a_b", "ab", "a-b", "A", "a:b"];

pub(crate) fn similar_stream_names_are_isolated(ctx: &mut Ctx<'_>) -> Outcome {
    let mut kit = ctx.fresh();
    for (name, n) in SIMILAR.iter().zip(1u64..) {
        kit.must_append(name, 0, 1..=n)?;
    }
    for (name, n) in SIMILAR.iter().zip(1u64..) {
        let read = kit.read_all(name)?;
        ensure_eq!(
            read.seqs(),
            (1..=n).collect::<Vec<_>>(),
            "events of {name:?}"
        );
        ensure_eq!(read.head, n, "head of {name:?}");
    }
    Ok(())
}

pub(crate) fn snapshots_are_isolated(ctx: &mut Ctx<'_>) -> Outcome {
    let mut kit = ctx.fresh();
    kit.must_append("a", 0, 1..=3)?;
    kit.save("a", 3, "v1")?;
    for name in &SIMILAR[1..] {
        ensure_eq!(kit.load(name, None)?, None, "snapshot of {name:?}");
    }
    kit.must_append("a/b", 0, 1..=1)?;
    kit.save("a/b", 1, "v1")?;
    ensure_eq!(
        kit.load("a", None)?,
        Some(snapshot("a", 3, "v1")),
        "snapshot of \"a\""
    );
    ensure_eq!(
        kit.load("a/b", None)?,
        Some(snapshot("a/b", 1, "v1")),
        "snapshot of \"a/b\""
    );
    Ok(())
}

pub(crate) fn deletes_are_isolated(ctx: &mut Ctx<'_>) -> Outcome {
    let mut kit = ctx.fresh();
    for name in SIMILAR {
        kit.must_append(name, 0, 1..=3)?;
        kit.save(name, 1, "v1")?;
        kit.save(name, 3, "v1")?;
    }
    kit.delete_events("a", 3)?;
    kit.keep_snapshots("a", 1)?;
    for name in &SIMILAR[1..] {
        ensure_eq!(
            kit.read_all(name)?.seqs(),
            vec![1, 2, 3],
            "events of {name:?}"
        );
        ensure_eq!(
            kit.load_seq(name, Some(3))?,
            Some(1),
            "older snapshot of {name:?}"
        );
    }
    ensure!(
        kit.read_all("a")?.records.is_empty(),
        "events of \"a\" not deleted"
    );
    Ok(())
}

pub(crate) fn heads_are_per_stream(ctx: &mut Ctx<'_>) -> Outcome {
    let mut kit = ctx.fresh();
    kit.must_append("a", 0, 1..=5)?;
    kit.must_append("a_b", 0, 1..=1)?;
    kit.must_append("a", 5, 6..=6)?;
    kit.must_append("a_b", 1, 2..=2)?;
    ensure_eq!(kit.head("a")?, 6, "head of \"a\"");
    ensure_eq!(kit.head("a_b")?, 2, "head of \"a_b\"");
    Ok(())
}

pub(crate) fn unusual_stream_names_work(ctx: &mut Ctx<'_>) -> Outcome {
    let long = "x".repeat(300);
    let names = [
        "../escape",
        "with space",
        "with_space",
        "ünïcødé/名前",
        "a\\b",
        "trailing/",
        "/leading",
        "dots..",
        "CON",
        long.as_str(),
    ];
    let mut kit = ctx.fresh();
    for (name, n) in names.iter().zip(1u64..) {
        kit.must_append(name, 0, 1..=n)?;
        kit.save(name, n, "v1")?;
    }
    for (name, n) in names.iter().zip(1u64..) {
        ensure_eq!(
            kit.read_all(name)?.seqs(),
            (1..=n).collect::<Vec<_>>(),
            "events of {name:?}"
        );
        ensure_eq!(
            kit.load(name, None)?,
            Some(snapshot(name, n, "v1")),
            "snapshot of {name:?}"
        );
    }
    Ok(())
}
