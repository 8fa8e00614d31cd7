//! Crafted on-disk values at the top of their range (seqs, counts, byte totals): each is
//! refused as damage (a typed error, or a checkpoint ignored), never a panic or a wrap.

use std::sync::Arc;

use persevere_core::{Command, CommandId, Completion, Store, StoredRecord, StreamCommand};

use crate::frame::{FrameBuf, SegmentHeader, FRAME_HEADER_LEN, GROUP_START};
use crate::index::{Index, Loc, Op};
use crate::sim::SimDisk;
use crate::tests::{dump, sim_store};
use crate::vfs::Vfs;
use crate::{FileOptions, IndexCheckpoint};

fn stream() -> Arc<str> {
    Arc::from("s")
}

fn loc() -> Loc {
    Loc {
        seg: 1,
        off: 100,
        len: 4,
    }
}

#[test]
fn the_index_refuses_seqs_past_u64_max() {
    let mut index = Index::default();
    let at_max = Op::Checkpoint {
        stream: stream(),
        head: u64::MAX,
        low_water: u64::MAX,
        events: Vec::new(),
        snapshots: Vec::new(),
    };
    assert!(index.apply(at_max).is_err());
    let below = Op::Checkpoint {
        stream: stream(),
        head: u64::MAX - 1,
        low_water: u64::MAX - 1,
        events: Vec::new(),
        snapshots: Vec::new(),
    };
    index.apply(below).expect("a head below the largest seq");
    let past = Op::Append {
        stream: stream(),
        expected_last: u64::MAX - 1,
        events: vec![loc()],
        snapshot: None,
    };
    assert!(index.apply(past).is_err());
    assert_eq!(index.streams[&stream()].head, u64::MAX - 1);
}

/// A segment whose one frame appends an event after seq `u64::MAX`, intact (checksums made
/// with the store id): scanning it for its events' positions finds damage, never panics.
#[test]
fn a_segment_appending_past_u64_max_is_damaged() {
    let store = 7;
    let header = SegmentHeader {
        store,
        number: 1,
        floor: 0,
    }
    .encode();
    let mut frame = FrameBuf::new();
    frame.put_u32(0);
    let place = crate::batch::Placement {
        seg: 1,
        at: header.len() as u64,
    };
    crate::batch::append(
        &mut frame,
        place,
        &stream(),
        u64::MAX,
        &[StoredRecord::new(0, b"e".to_vec())],
        None,
    );
    frame.patch_u32(FRAME_HEADER_LEN, 1);
    let (bytes, _) = frame.seal(store, SegmentHeader::chain(&header), GROUP_START);
    let disk = SimDisk::new();
    let mut file = Vfs::open(&disk, "segment", true).expect("create");
    file.write_at(&header, 0).expect("write");
    file.write_at(&bytes, header.len() as u64).expect("write");
    let len = file.len().expect("len");
    match crate::positions::scan(&*file, len, store, 1) {
        Err(crate::positions::ScanError::Damaged { at, reason }) => {
            assert_eq!(at, header.len() as u64);
            assert!(reason.contains("largest seq"), "{reason}");
        }
        other => panic!("scanned {other:?}"),
    }
}

/// A change to a stream's entry in an index checkpoint.
type Craft = fn(&mut crate::index::StreamState);

/// An index checkpoint (intact, of this store) whose byte counts overflow, or whose stream has
/// a low-water mark at `u64::MAX`: open ignores it and replays the log.
#[test]
fn a_checkpoint_with_values_at_the_top_of_their_range_is_ignored() {
    let options = FileOptions::default();
    let disk = SimDisk::new();
    let mut store = sim_store(&disk, &options).expect("create");
    let append = StreamCommand {
        stream: stream(),
        command: Command::Append {
            id: CommandId(1),
            expected_last: 0,
            events: StoredRecord::new(1, b"one".to_vec()).into(),
            snapshot: None,
        },
    };
    assert_eq!(store.execute(vec![append])[0].1, Ok(Completion::Done));
    let want = dump(&mut store, &["s"]).expect("dump");
    drop(store);
    let image = disk.image();
    let original = crate::checkpoint::decode(&image[crate::checkpoint::NAME]).expect("decode");
    let crafts: [(&str, Craft); 3] = [
        ("more live bytes than the log holds", |s| {
            s.runs[0].bytes = u64::MAX - 10
        }),
        ("live bytes overflow", |s| {
            s.runs[0].bytes = u64::MAX;
            s.runs.push_back(s.runs[0]);
        }),
        ("low-water mark at u64::MAX", |s| s.low_water = u64::MAX),
    ];
    for (what, craft) in crafts {
        let mut cp = crate::checkpoint::decode(&image[crate::checkpoint::NAME]).expect("decode");
        let s = cp.index.streams.get_mut("s").expect("stream");
        craft(s);
        let bytes = crate::checkpoint::encode(
            cp.store,
            original.position,
            cp.floor,
            &cp.segments,
            &cp.index,
        );
        let mut crafted = image.clone();
        crafted.insert(crate::checkpoint::NAME.into(), bytes);
        let mut store = sim_store(&SimDisk::from_image(&crafted), &options)
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(
            matches!(
                store.open_summary().checkpoint,
                IndexCheckpoint::Ignored { .. }
            ),
            "{what}: {:?}",
            store.open_summary().checkpoint
        );
        assert_eq!(dump(&mut store, &["s"]).expect("dump"), want, "{what}");
        let next = StreamCommand {
            stream: stream(),
            command: Command::Append {
                id: CommandId(2),
                expected_last: 1,
                events: StoredRecord::new(2, b"two".to_vec()).into(),
                snapshot: None,
            },
        };
        assert_eq!(
            store.execute(vec![next])[0].1,
            Ok(Completion::Done),
            "{what}"
        );
    }
}
