//! Atomic appends with an expected last seq.

use persevere_core::{Completion, StorageError};

use crate::case::{ensure, ensure_eq, Ctx, Outcome};
use crate::kit::{event, snapshot};

pub(crate) fn append_to_a_new_stream(ctx: &mut Ctx<'_>) -> Outcome {
    let mut kit = ctx.fresh();
    kit.must_append("s", 0, 1..=3)?;
    let read = kit.read_all("s")?;
    ensure_eq!(read.seqs(), vec![1, 2, 3], "events after the first append");
    ensure_eq!(read.head, 3, "head after the first append");
    Ok(())
}

pub(crate) fn appends_advance_the_head(ctx: &mut Ctx<'_>) -> Outcome {
    let mut kit = ctx.fresh();
    kit.must_append("s", 0, 1..=2)?;
    kit.must_append("s", 2, 3..=3)?;
    kit.must_append("s", 3, 4..=6)?;
    let read = kit.read_all("s")?;
    ensure_eq!(read.seqs(), (1..=6).collect::<Vec<_>>(), "events");
    ensure_eq!(read.head, 6, "head");
    Ok(())
}

pub(crate) fn stale_expected_last_conflicts(ctx: &mut Ctx<'_>) -> Outcome {
    let mut kit = ctx.fresh();
    kit.must_append("s", 0, 1..=3)?;
    let result = kit.append("s", 1, 2..=2)?;
    ensure_eq!(
        result,
        Err(StorageError::Conflict {
            expected: 1,
            actual: 3
        }),
        "append with a stale expected last"
    );
    Ok(())
}

pub(crate) fn conflict_writes_nothing(ctx: &mut Ctx<'_>) -> Outcome {
    let mut kit = ctx.fresh();
    kit.must_append("s", 0, 1..=3)?;
    let id = kit.id();
    let rogue = persevere_core::Command::Append {
        id,
        expected_last: 1,
        events: vec![
            persevere_core::StoredRecord {
                seq: 2,
                bytes: b"overwrite".to_vec().into(),
            },
            persevere_core::StoredRecord {
                seq: 3,
                bytes: b"overwrite".to_vec().into(),
            },
            persevere_core::StoredRecord {
                seq: 4,
                bytes: b"overwrite".to_vec().into(),
            },
        ]
        .into(),
        snapshot: None,
    };
    let result = kit.one("s", rogue)?;
    ensure!(
        matches!(result, Err(StorageError::Conflict { .. })),
        "a conflicting append answered {result:?}"
    );
    let read = kit.read_all("s")?;
    ensure_eq!(read.seqs(), vec![1, 2, 3], "events after a conflict");
    ensure_eq!(read.head, 3, "head after a conflict");
    Ok(())
}

pub(crate) fn expected_last_ahead_of_head_conflicts(ctx: &mut Ctx<'_>) -> Outcome {
    let mut kit = ctx.fresh();
    kit.must_append("s", 0, 1..=3)?;
    let result = kit.append("s", 5, 6..=6)?;
    ensure_eq!(
        result,
        Err(StorageError::Conflict {
            expected: 5,
            actual: 3
        }),
        "append expecting a head beyond the real one"
    );
    ensure_eq!(kit.read_all("s")?.seqs(), vec![1, 2, 3], "events");
    ensure_eq!(kit.head("s")?, 3, "head");
    Ok(())
}

pub(crate) fn nonzero_expected_on_a_new_stream_conflicts(ctx: &mut Ctx<'_>) -> Outcome {
    let mut kit = ctx.fresh();
    let result = kit.append("s", 2, 3..=3)?;
    ensure_eq!(
        result,
        Err(StorageError::Conflict {
            expected: 2,
            actual: 0
        }),
        "append expecting head 2 on a new stream"
    );
    ensure_eq!(kit.head("s")?, 0, "head");
    ensure!(kit.read_all("s")?.records.is_empty(), "events were written");
    Ok(())
}

pub(crate) fn expected_zero_on_a_written_stream_conflicts(ctx: &mut Ctx<'_>) -> Outcome {
    let mut kit = ctx.fresh();
    kit.must_append("s", 0, 1..=2)?;
    let result = kit.append("s", 0, 1..=1)?;
    ensure_eq!(
        result,
        Err(StorageError::Conflict {
            expected: 0,
            actual: 2
        }),
        "a second writer starting the stream"
    );
    Ok(())
}

pub(crate) fn large_batch_is_atomic(ctx: &mut Ctx<'_>) -> Outcome {
    let mut kit = ctx.fresh();
    kit.must_append("s", 0, 1..=500)?;
    let read = kit.read_all("s")?;
    ensure_eq!(read.records.len(), 500, "events of a 500-event append");
    let result = kit.append("s", 100, 101..=400)?;
    ensure!(
        matches!(result, Err(StorageError::Conflict { .. })),
        "a conflicting 300-event append answered {result:?}"
    );
    let read = kit.read_all("s")?;
    ensure_eq!(
        read.records.len(),
        500,
        "events after the conflicting batch"
    );
    ensure_eq!(read.head, 500, "head");
    Ok(())
}

pub(crate) fn non_contiguous_append_writes_nothing(ctx: &mut Ctx<'_>) -> Outcome {
    let mut kit = ctx.fresh();
    kit.must_append("s", 0, 1..=1)?;
    let id = kit.id();
    let command = persevere_core::Command::Append {
        id,
        expected_last: 1,
        events: vec![event("s", 2), event("s", 4)].into(),
        snapshot: None,
    };
    let result = kit.one("s", command)?;
    ensure!(result.is_err(), "an append with a gap answered {result:?}");
    ensure_eq!(kit.read_all("s")?.seqs(), vec![1], "events");
    ensure_eq!(kit.head("s")?, 1, "head");
    Ok(())
}

/// A snapshot written with an append (Light strategy) covers exactly the batch's last event: a
/// snapshot at another seq would be recovered as the state at a seq it does not describe.
pub(crate) fn append_with_a_snapshot_not_at_its_last_seq_writes_nothing(
    ctx: &mut Ctx<'_>,
) -> Outcome {
    let mut kit = ctx.fresh();
    kit.must_append("s", 0, 1..=1)?;
    for misplaced in [1, 2, 3, 5] {
        let id = kit.id();
        let command = persevere_core::Command::Append {
            id,
            expected_last: 1,
            events: vec![event("s", 2), event("s", 3), event("s", 4)].into(),
            snapshot: Some(snapshot("s", misplaced, "misplaced")),
        };
        let result = kit.one("s", command)?;
        ensure!(
            matches!(result, Err(StorageError::Rejected(_))),
            "an append of 2..=4 with a snapshot at {misplaced} answered {result:?}"
        );
        ensure_eq!(kit.read_all("s")?.seqs(), vec![1], "events");
        ensure_eq!(kit.head("s")?, 1, "head");
        ensure_eq!(
            kit.load("s", None)?,
            None,
            "snapshot of an append refused for its snapshot at {misplaced}"
        );
    }
    Ok(())
}

pub(crate) fn racing_appends_in_one_batch_one_wins(ctx: &mut Ctx<'_>) -> Outcome {
    let mut kit = ctx.fresh();
    let first = kit.append_cmd("s", 0, 1..=2);
    let second = kit.append_cmd("s", 0, 1..=1);
    let results = kit.batch(vec![("s", first), ("s", second)])?;
    ensure_eq!(results[0], Ok(Completion::Done), "the first writer");
    ensure_eq!(
        results[1],
        Err(StorageError::Conflict {
            expected: 0,
            actual: 2
        }),
        "the second writer"
    );
    ensure_eq!(kit.read_all("s")?.seqs(), vec![1, 2], "events");
    Ok(())
}
