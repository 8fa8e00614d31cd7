//! How the kit opens stores, and the commands it sends them.

use std::sync::Arc;

use persevere_core::{
    Command, CommandId, CommandResult, Completion, StorageError, Store, StoredRecord, StreamCommand,
};

/// Opens stores for the cases.
pub(crate) trait Opener {
    fn fresh(&mut self) -> Box<dyn Store>;
    fn reopen(&mut self) -> Option<Box<dyn Store>>;
    fn can_reopen(&self) -> bool;
}

/// A backend with no location to reopen: every store is new.
pub(crate) struct Single<F>(pub(crate) F);

impl<F: FnMut() -> Box<dyn Store>> Opener for Single<F> {
    fn fresh(&mut self) -> Box<dyn Store> {
        (self.0)()
    }
    fn reopen(&mut self) -> Option<Box<dyn Store>> {
        None
    }
    fn can_reopen(&self) -> bool {
        false
    }
}

/// A backend whose location can be opened again.
pub(crate) struct Reopenable<L, F, O> {
    fresh: F,
    open: O,
    location: Option<L>,
}

impl<L, F, O> Reopenable<L, F, O> {
    pub(crate) fn new(fresh: F, open: O) -> Self {
        Self {
            fresh,
            open,
            location: None,
        }
    }
}

impl<L, S, F, O> Opener for Reopenable<L, F, O>
where
    S: Store,
    F: FnMut() -> L,
    O: FnMut(&L) -> S,
{
    fn fresh(&mut self) -> Box<dyn Store> {
        // Drop the previous location before making the next one.
        self.location = None;
        let location = (self.fresh)();
        let store = (self.open)(&location);
        self.location = Some(location);
        Box::new(store)
    }
    fn reopen(&mut self) -> Option<Box<dyn Store>> {
        let location = self.location.as_ref()?;
        Some(Box::new((self.open)(location)))
    }
    fn can_reopen(&self) -> bool {
        true
    }
}

/// The bytes the kit stores as event `seq` of `stream`: distinct for every stream and seq, so
/// a read shows where a record came from.
pub(crate) fn event(stream: &str, seq: u64) -> StoredRecord {
    StoredRecord {
        seq,
        bytes: format!("event {seq} of {stream:?}").into_bytes().into(),
    }
}

/// The bytes of snapshot `seq` of `stream`, version `tag`.
pub(crate) fn snapshot(stream: &str, seq: u64, tag: &str) -> StoredRecord {
    StoredRecord {
        seq,
        bytes: format!("snapshot {seq} of {stream:?} ({tag})")
            .into_bytes()
            .into(),
    }
}

/// A store under test, with helpers that build and send commands.
pub(crate) struct Kit {
    pub(crate) store: Box<dyn Store>,
    next_id: u64,
}

/// What a read returned: the records and the head.
pub(crate) struct Read {
    pub(crate) records: Vec<StoredRecord>,
    pub(crate) head: u64,
}

impl Read {
    pub(crate) fn seqs(&self) -> Vec<u64> {
        self.records.iter().map(|r| r.seq).collect()
    }
}

impl Kit {
    pub(crate) fn new(store: Box<dyn Store>) -> Self {
        Self { store, next_id: 0 }
    }

    pub(crate) fn id(&mut self) -> CommandId {
        self.next_id += 1;
        CommandId(self.next_id)
    }

    /// Executes a batch; checks one result per command, in order.
    pub(crate) fn batch(
        &mut self,
        commands: Vec<(&str, Command)>,
    ) -> Result<Vec<Result<Completion, StorageError>>, String> {
        let ids: Vec<CommandId> = commands.iter().map(|(_, c)| c.id()).collect();
        let batch = commands
            .into_iter()
            .map(|(stream, command)| StreamCommand {
                stream: Arc::from(stream),
                command,
            })
            .collect();
        let results: Vec<CommandResult> = self.store.execute(batch);
        let got: Vec<CommandId> = results.iter().map(|(id, _)| *id).collect();
        if got != ids {
            return Err(format!(
                "results do not answer the batch in order: ids {got:?}, expected {ids:?}"
            ));
        }
        Ok(results.into_iter().map(|(_, r)| r).collect())
    }

    pub(crate) fn one(
        &mut self,
        stream: &str,
        command: Command,
    ) -> Result<Result<Completion, StorageError>, String> {
        let mut results = self.batch(vec![(stream, command)])?;
        results
            .pop()
            .ok_or_else(|| "no result for a batch of one".to_owned())
    }

    pub(crate) fn append_cmd(
        &mut self,
        stream: &str,
        expected_last: u64,
        seqs: std::ops::RangeInclusive<u64>,
    ) -> Command {
        Command::Append {
            id: self.id(),
            expected_last,
            events: seqs.map(|seq| event(stream, seq)).collect(),
            snapshot: None,
        }
    }

    /// Appends events `seqs` after `expected_last`.
    pub(crate) fn append(
        &mut self,
        stream: &str,
        expected_last: u64,
        seqs: std::ops::RangeInclusive<u64>,
    ) -> Result<Result<Completion, StorageError>, String> {
        let command = self.append_cmd(stream, expected_last, seqs);
        self.one(stream, command)
    }

    /// Appends and requires success.
    pub(crate) fn must_append(
        &mut self,
        stream: &str,
        expected_last: u64,
        seqs: std::ops::RangeInclusive<u64>,
    ) -> Result<(), String> {
        let range = format!("{seqs:?}");
        match self.append(stream, expected_last, seqs)? {
            Ok(Completion::Done) => Ok(()),
            other => Err(format!(
                "append of {range} after {expected_last} to {stream:?} answered {other:?}"
            )),
        }
    }

    pub(crate) fn read_cmd(&mut self, from: u64, limit: usize) -> Command {
        Command::ReadEvents {
            id: self.id(),
            from,
            limit,
        }
    }

    /// Reads up to `limit` events from `from`.
    pub(crate) fn read(&mut self, stream: &str, from: u64, limit: usize) -> Result<Read, String> {
        let command = self.read_cmd(from, limit);
        match self.one(stream, command)? {
            Ok(Completion::Events { records, head }) => Ok(Read { records, head }),
            other => Err(format!("read of {stream:?} from {from} answered {other:?}")),
        }
    }

    /// Reads every event, checking the bytes are the kit's.
    pub(crate) fn read_all(&mut self, stream: &str) -> Result<Read, String> {
        let read = self.read(stream, 1, usize::MAX)?;
        for record in &read.records {
            if record != &event(stream, record.seq) {
                return Err(format!(
                    "event {} of {stream:?} holds foreign or damaged bytes: {:?}",
                    record.seq,
                    String::from_utf8_lossy(&record.bytes)
                ));
            }
        }
        Ok(read)
    }

    /// The head reported by a read.
    pub(crate) fn head(&mut self, stream: &str) -> Result<u64, String> {
        Ok(self.read(stream, u64::MAX, 1)?.head)
    }

    pub(crate) fn load(
        &mut self,
        stream: &str,
        before: Option<u64>,
    ) -> Result<Option<StoredRecord>, String> {
        let id = self.id();
        match self.one(stream, Command::LoadSnapshot { id, before })? {
            Ok(Completion::Snapshot(found)) => Ok(found),
            other => Err(format!(
                "snapshot load of {stream:?} before {before:?} answered {other:?}"
            )),
        }
    }

    pub(crate) fn load_seq(
        &mut self,
        stream: &str,
        before: Option<u64>,
    ) -> Result<Option<u64>, String> {
        Ok(self.load(stream, before)?.map(|s| s.seq))
    }

    /// Requires a write command to succeed.
    pub(crate) fn done(&mut self, stream: &str, command: Command) -> Result<(), String> {
        let what = format!("{command:?}");
        match self.one(stream, command)? {
            Ok(Completion::Done) => Ok(()),
            other => Err(format!("{what} on {stream:?} answered {other:?}")),
        }
    }

    pub(crate) fn save(&mut self, stream: &str, seq: u64, tag: &str) -> Result<(), String> {
        let id = self.id();
        let snapshot = snapshot(stream, seq, tag);
        self.done(stream, Command::SaveSnapshot { id, snapshot })
    }

    pub(crate) fn delete_events(&mut self, stream: &str, up_to: u64) -> Result<(), String> {
        let id = self.id();
        self.done(stream, Command::DeleteEvents { id, up_to })
    }

    pub(crate) fn keep_snapshots(&mut self, stream: &str, keep: usize) -> Result<(), String> {
        let id = self.id();
        self.done(stream, Command::DeleteSnapshots { id, keep })
    }
}
