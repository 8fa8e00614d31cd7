//! Batches: append-with-snapshot atomicity, result order, many streams, per-stream order.

use persevere_core::{Command, Completion, StorageError};

use crate::case::{ensure, ensure_eq, Ctx, Outcome};
use crate::kit::{event, snapshot};

pub(crate) fn append_with_snapshot_is_atomic(ctx: &mut Ctx<'_>) -> Outcome {
    let mut kit = ctx.fresh();
    let id = kit.id();
    let command = Command::Append {
        id,
        expected_last: 0,
        events: (1..=3).map(|seq| event("s", seq)).collect(),
        snapshot: Some(snapshot("s", 3, "light")),
    };
    kit.done("s", command)?;
    ensure_eq!(kit.read_all("s")?.seqs(), vec![1, 2, 3], "events");
    ensure_eq!(
        kit.load("s", None)?,
        Some(snapshot("s", 3, "light")),
        "snapshot"
    );
    Ok(())
}

pub(crate) fn append_with_snapshot_conflict_writes_neither(ctx: &mut Ctx<'_>) -> Outcome {
    let mut kit = ctx.fresh();
    kit.must_append("s", 0, 1..=2)?;
    let id = kit.id();
    let command = Command::Append {
        id,
        expected_last: 1,
        events: vec![event("s", 2), event("s", 3)].into(),
        snapshot: Some(snapshot("s", 3, "light")),
    };
    let result = kit.one("s", command)?;
    ensure!(
        matches!(result, Err(StorageError::Conflict { .. })),
        "conflicting append with snapshot answered {result:?}"
    );
    ensure_eq!(
        kit.load("s", None)?,
        None,
        "snapshot of a conflicting append"
    );
    ensure_eq!(kit.read_all("s")?.seqs(), vec![1, 2], "events");
    Ok(())
}

pub(crate) fn results_come_in_batch_order(ctx: &mut Ctx<'_>) -> Outcome {
    let mut kit = ctx.fresh();
    let a = kit.append_cmd("a", 0, 1..=1);
    let read_b = kit.read_cmd(1, 10);
    let b = kit.append_cmd("b", 0, 1..=2);
    let id = kit.id();
    let load_a = Command::LoadSnapshot { id, before: None };
    let c = kit.append_cmd("c", 0, 1..=1);
    let read_a = kit.read_cmd(1, 10);
    let results = kit.batch(vec![
        ("a", a),
        ("b", read_b),
        ("b", b),
        ("a", load_a),
        ("c", c),
        ("a", read_a),
    ])?;
    ensure_eq!(results[0], Ok(Completion::Done), "append to a");
    ensure_eq!(
        results[1],
        Ok(Completion::Events {
            records: vec![],
            head: 0
        }),
        "read of b before its append"
    );
    ensure_eq!(results[2], Ok(Completion::Done), "append to b");
    ensure_eq!(
        results[3],
        Ok(Completion::Snapshot(None)),
        "snapshot load of a"
    );
    ensure_eq!(results[4], Ok(Completion::Done), "append to c");
    ensure_eq!(
        results[5],
        Ok(Completion::Events {
            records: vec![event("a", 1)],
            head: 1
        }),
        "read of a after its append"
    );
    Ok(())
}

pub(crate) fn many_streams_in_one_batch(ctx: &mut Ctx<'_>) -> Outcome {
    let mut kit = ctx.fresh();
    let names: Vec<String> = (0..64).map(|i| format!("entity-{i}")).collect();
    let commands: Vec<_> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let command = kit.append_cmd(name, 0, 1..=(i as u64 % 4 + 1));
            (name.as_str(), command)
        })
        .collect();
    let results = kit.batch(commands)?;
    ensure!(
        results.iter().all(|r| *r == Ok(Completion::Done)),
        "appends of a group commit failed: {:?}",
        results.iter().filter(|r| r.is_err()).collect::<Vec<_>>()
    );
    for (i, name) in names.iter().enumerate() {
        let n = i as u64 % 4 + 1;
        let read = kit.read_all(name)?;
        ensure_eq!(read.seqs(), (1..=n).collect::<Vec<_>>(), "events of {name}");
        ensure_eq!(read.head, n, "head of {name}");
    }
    Ok(())
}

pub(crate) fn commands_of_a_stream_apply_in_batch_order(ctx: &mut Ctx<'_>) -> Outcome {
    let mut kit = ctx.fresh();
    let first = kit.append_cmd("s", 0, 1..=2);
    let second = kit.append_cmd("s", 2, 3..=3);
    let read = kit.read_cmd(1, 10);
    let id = kit.id();
    let delete = Command::DeleteEvents { id, up_to: 1 };
    let read_again = kit.read_cmd(1, 10);
    let results = kit.batch(vec![
        ("s", first),
        ("s", second),
        ("s", read),
        ("s", delete),
        ("s", read_again),
    ])?;
    ensure_eq!(results[0], Ok(Completion::Done), "first append");
    ensure_eq!(
        results[1],
        Ok(Completion::Done),
        "second append, after the first"
    );
    ensure_eq!(
        results[2],
        Ok(Completion::Events {
            records: (1..=3).map(|seq| event("s", seq)).collect(),
            head: 3
        }),
        "read after both appends"
    );
    ensure_eq!(results[3], Ok(Completion::Done), "delete");
    ensure_eq!(
        results[4],
        Ok(Completion::Events {
            records: (2..=3).map(|seq| event("s", seq)).collect(),
            head: 3
        }),
        "read after the delete"
    );
    Ok(())
}

pub(crate) fn conflict_in_a_batch_spares_the_others(ctx: &mut Ctx<'_>) -> Outcome {
    let mut kit = ctx.fresh();
    kit.must_append("y", 0, 1..=1)?;
    let x = kit.append_cmd("x", 0, 1..=1);
    let y = kit.append_cmd("y", 0, 1..=1);
    let z = kit.append_cmd("z", 0, 1..=2);
    let results = kit.batch(vec![("x", x), ("y", y), ("z", z)])?;
    ensure_eq!(results[0], Ok(Completion::Done), "append to x");
    ensure_eq!(
        results[1],
        Err(StorageError::Conflict {
            expected: 0,
            actual: 1
        }),
        "conflicting append to y"
    );
    ensure_eq!(results[2], Ok(Completion::Done), "append to z");
    ensure_eq!(kit.read_all("x")?.seqs(), vec![1], "events of x");
    ensure_eq!(kit.read_all("y")?.seqs(), vec![1], "events of y");
    ensure_eq!(kit.read_all("z")?.seqs(), vec![1, 2], "events of z");
    Ok(())
}
