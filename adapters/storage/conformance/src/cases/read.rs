//! Ordered reads from a seq, with a limit, and the head.

use crate::case::{ensure, ensure_eq, Ctx, Outcome};

pub(crate) fn reads_return_events_in_seq_order(ctx: &mut Ctx<'_>) -> Outcome {
    let mut kit = ctx.fresh();
    for seq in 1..=20 {
        kit.must_append("s", seq - 1, seq..=seq)?;
    }
    ensure_eq!(
        kit.read_all("s")?.seqs(),
        (1..=20).collect::<Vec<_>>(),
        "events"
    );
    Ok(())
}

pub(crate) fn read_from_a_middle_seq(ctx: &mut Ctx<'_>) -> Outcome {
    let mut kit = ctx.fresh();
    kit.must_append("s", 0, 1..=5)?;
    ensure_eq!(
        kit.read("s", 3, 100)?.seqs(),
        vec![3, 4, 5],
        "events from 3"
    );
    ensure_eq!(kit.read("s", 5, 100)?.seqs(), vec![5], "events from 5");
    ensure_eq!(
        kit.read("s", 0, 100)?.seqs(),
        vec![1, 2, 3, 4, 5],
        "events from 0"
    );
    Ok(())
}

pub(crate) fn reads_respect_the_limit(ctx: &mut Ctx<'_>) -> Outcome {
    let mut kit = ctx.fresh();
    kit.must_append("s", 0, 1..=5)?;
    ensure_eq!(kit.read("s", 1, 2)?.seqs(), vec![1, 2], "first page");
    ensure_eq!(kit.read("s", 3, 2)?.seqs(), vec![3, 4], "second page");
    ensure_eq!(kit.read("s", 5, 2)?.seqs(), vec![5], "last page");
    ensure_eq!(kit.read("s", 2, 1)?.seqs(), vec![2], "one event");
    Ok(())
}

pub(crate) fn read_beyond_the_head_is_empty(ctx: &mut Ctx<'_>) -> Outcome {
    let mut kit = ctx.fresh();
    kit.must_append("s", 0, 1..=5)?;
    let read = kit.read("s", 6, 10)?;
    ensure!(
        read.records.is_empty(),
        "events beyond the head: {:?}",
        read.seqs()
    );
    ensure_eq!(read.head, 5, "head");
    Ok(())
}

pub(crate) fn reads_report_the_head(ctx: &mut Ctx<'_>) -> Outcome {
    let mut kit = ctx.fresh();
    for last in [2, 3, 7] {
        let before = kit.head("s")?;
        kit.must_append("s", before, before + 1..=last)?;
        ensure_eq!(kit.read("s", 1, 1)?.head, last, "head on a limited read");
        ensure_eq!(kit.read("s", 1, 100)?.head, last, "head on a full read");
    }
    Ok(())
}

pub(crate) fn unknown_stream_is_empty(ctx: &mut Ctx<'_>) -> Outcome {
    let mut kit = ctx.fresh();
    kit.must_append("known", 0, 1..=2)?;
    kit.save("known", 2, "v1")?;
    let read = kit.read("unknown", 1, 100)?;
    ensure!(read.records.is_empty(), "events of an unknown stream");
    ensure_eq!(read.head, 0, "head of an unknown stream");
    ensure_eq!(
        kit.load("unknown", None)?,
        None,
        "snapshot of an unknown stream"
    );
    Ok(())
}

pub(crate) fn bytes_round_trip_exactly(ctx: &mut Ctx<'_>) -> Outcome {
    let mut kit = ctx.fresh();
    let payloads: Vec<Vec<u8>> = vec![
        vec![0],
        vec![0, 0, 0, 0],
        (0..=255).collect(),
        vec![0xff; 3],
        b"\n\r\n".to_vec(),
        (0..256 * 1024).map(|i| (i % 251) as u8).collect(),
    ];
    let events: Vec<_> = payloads
        .iter()
        .zip(1..)
        .map(|(bytes, seq)| persevere_core::StoredRecord {
            seq,
            bytes: bytes.clone().into(),
        })
        .collect();
    let id = kit.id();
    let snapshot = persevere_core::StoredRecord {
        seq: events.len() as u64,
        bytes: (0..=255).rev().collect(),
    };
    let result = kit.one(
        "s",
        persevere_core::Command::Append {
            id,
            expected_last: 0,
            events: events.clone().into(),
            snapshot: Some(snapshot.clone()),
        },
    )?;
    ensure_eq!(result, Ok(persevere_core::Completion::Done), "append");
    let read = kit.read("s", 1, 100)?;
    ensure!(
        read.records == events,
        "event bytes changed on the way back"
    );
    ensure!(
        kit.load("s", None)? == Some(snapshot),
        "snapshot bytes changed on the way back"
    );
    Ok(())
}
