//! The shared in-memory store with fault injection.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use persevere_core::memory::{MemoryStore, StreamData};
use persevere_core::{Command, CommandResult, StorageError, Store, StreamCommand};

use crate::fault::Fault;

#[derive(Default)]
struct Inner {
    store: MemoryStore,
    faults: VecDeque<(Option<String>, Fault)>,
    latency: Option<Duration>,
    batches: u64,
    commands: u64,
    /// Why the store refuses every command, after a [`Fault::Fence`].
    fenced: Option<String>,
    /// Reopens still to fail.
    failing_reopens: u32,
    /// Successful reopens.
    reopens: u64,
}

/// An in-memory [`Store`]: a cloneable handle, every clone sees the same streams.
///
/// Each [`Store::execute`] call holds the store's lock for the whole batch, so a batch is
/// atomic with respect to other handles. Faults queued with [`inject`](Self::inject) are
/// consumed by the first command they apply to.
#[derive(Clone, Default)]
pub struct Memory {
    inner: Arc<Mutex<Inner>>,
}

impl std::fmt::Debug for Memory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.lock();
        f.debug_struct("Memory")
            .field("batches", &inner.batches)
            .field("commands", &inner.commands)
            .field("faults", &inner.faults.len())
            .finish()
    }
}

impl Memory {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// A store holding `store`'s streams (for example, a prepared log to recover from).
    pub fn from_store(store: MemoryStore) -> Self {
        let memory = Self::new();
        memory.lock().store = store;
        memory
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `fault` for the next command of any stream it applies to.
    pub fn inject(&self, fault: Fault) {
        self.lock().faults.push_back((None, fault));
    }

    /// Queues `fault` for the next command of `stream` it applies to.
    pub fn inject_for(&self, stream: &str, fault: Fault) {
        self.lock()
            .faults
            .push_back((Some(stream.to_owned()), fault));
    }

    /// Makes every batch take at least `latency` (a stand-in for an fsync), or removes it.
    /// The delay blocks the calling thread: use it only with a driver that executes the store
    /// on a blocking pool.
    pub fn set_latency(&self, latency: Option<Duration>) {
        self.lock().latency = latency;
    }

    /// A copy of `stream`'s records, if it was ever written.
    pub fn stream(&self, stream: &str) -> Option<StreamData> {
        self.lock().store.stream(stream).cloned()
    }

    /// The highest seq ever appended to `stream` (0 if none).
    pub fn head(&self, stream: &str) -> u64 {
        self.lock().store.stream(stream).map_or(0, |s| s.head)
    }

    /// Runs `f` on the underlying store, to inspect or tamper with it.
    pub fn with_store<R>(&self, f: impl FnOnce(&mut MemoryStore) -> R) -> R {
        f(&mut self.lock().store)
    }

    /// Makes the next `n` calls of [`Store::reopen`] fail (the store stays fenced).
    ///
    /// ```
    /// use persevere_core::{Command, CommandId, Store, StreamCommand};
    /// use persevere_memory::{Fault, Memory};
    ///
    /// let memory = Memory::new();
    /// let mut store = memory.clone();
    /// let read = || vec![StreamCommand {
    ///     stream: "a".into(),
    ///     command: Command::ReadEvents { id: CommandId(1), from: 1, limit: 1 },
    /// }];
    /// memory.inject(Fault::Fence);
    /// memory.fail_reopens(1);
    /// let append = StreamCommand {
    ///     stream: "a".into(),
    ///     command: Command::Append { id: CommandId(2), expected_last: 0, events: vec![].into(), snapshot: None },
    /// };
    /// assert!(store.execute(vec![append])[0].1.is_err());
    /// assert!(store.fenced().is_some() && store.execute(read())[0].1.is_err());
    /// assert!(store.reopen().is_err());
    /// assert!(store.reopen().is_ok());
    /// assert!(store.execute(read())[0].1.is_ok());
    /// assert_eq!(memory.reopens(), 1);
    /// ```
    pub fn fail_reopens(&self, n: u32) {
        self.lock().failing_reopens = n;
    }

    /// How many times [`Store::reopen`] lifted a fence.
    pub fn reopens(&self) -> u64 {
        self.lock().reopens
    }

    /// How many batches ([`Store::execute`] calls) and commands were executed.
    pub fn executed(&self) -> (u64, u64) {
        let inner = self.lock();
        (inner.batches, inner.commands)
    }
}

impl Inner {
    fn take_fault(&mut self, stream: &str, command: &Command) -> Option<Fault> {
        if self.faults.is_empty() {
            return None;
        }
        let position = self.faults.iter().position(|(target, fault)| {
            target.as_deref().is_none_or(|t| t == stream)
                && fault.targets_writes() == command.is_write()
        })?;
        self.faults.remove(position).map(|(_, fault)| fault)
    }

    fn run(&mut self, stream: &str, command: Command) -> CommandResult {
        let id = command.id();
        let injected = |what: &str| format!("injected fault: {what}");
        if let Some(reason) = &self.fenced {
            return (id, Err(StorageError::Failed(format!("fenced: {reason}"))));
        }
        match self.take_fault(stream, &command) {
            None => self.store.execute(stream, command),
            Some(Fault::Reject) => (id, Err(StorageError::Rejected(injected("rejected")))),
            Some(Fault::FailBeforeWrite) | Some(Fault::FailRead) => {
                (id, Err(StorageError::Failed(injected("not executed"))))
            }
            Some(Fault::Fence) => {
                self.fenced = Some(injected("fenced"));
                (id, Err(StorageError::Failed(injected("fenced"))))
            }
            Some(Fault::FailAfterWrite) => {
                let _ = self.store.execute(stream, command);
                (id, Err(StorageError::Failed(injected("executed"))))
            }
            Some(Fault::Conflict) => {
                let rogue = self.store.stream_mut(stream);
                let seq = rogue.head + 1;
                rogue.events.insert(seq, b"another writer".to_vec().into());
                rogue.head = seq;
                self.store.execute(stream, command)
            }
        }
    }
}

impl Store for Memory {
    fn execute(&mut self, batch: Vec<StreamCommand>) -> Vec<CommandResult> {
        let mut inner = self.lock();
        inner.batches += 1;
        inner.commands += batch.len() as u64;
        if let Some(latency) = inner.latency {
            std::thread::sleep(latency);
        }
        let mut results = Vec::with_capacity(batch.len());
        for StreamCommand { stream, command } in batch {
            results.push(inner.run(&stream, command));
        }
        results
    }

    fn execute_one(&mut self, stream: &Arc<str>, command: Command) -> CommandResult {
        let mut inner = self.lock();
        inner.batches += 1;
        inner.commands += 1;
        if let Some(latency) = inner.latency {
            std::thread::sleep(latency);
        }
        inner.run(stream, command)
    }

    fn fenced(&self) -> Option<String> {
        self.lock().fenced.clone()
    }

    fn reopen(&mut self) -> Result<(), StorageError> {
        let mut inner = self.lock();
        if inner.failing_reopens > 0 {
            inner.failing_reopens -= 1;
            return Err(StorageError::Failed("injected fault: reopen failed".into()));
        }
        if inner.fenced.take().is_some() {
            inner.reopens += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use persevere_core::{CommandId, Completion, StoredRecord};

    use super::*;

    fn append(stream: &str, expected_last: u64) -> StreamCommand {
        StreamCommand {
            stream: stream.into(),
            command: Command::Append {
                id: CommandId(expected_last + 1),
                expected_last,
                events: StoredRecord {
                    seq: expected_last + 1,
                    bytes: vec![7].into(),
                }
                .into(),
                snapshot: None,
            },
        }
    }

    #[test]
    fn a_fenced_store_refuses_everything_until_reopened() {
        let memory = Memory::new();
        let mut store = memory.clone();
        memory.inject(Fault::Fence);
        memory.fail_reopens(1);
        let results = store.execute(vec![append("a", 0), append("b", 0)]);
        assert!(results.iter().all(|(_, r)| r.is_err()));
        assert!(store.fenced().is_some());
        assert!(store.execute(vec![append("a", 0)])[0].1.is_err());
        assert!(store.reopen().is_err());
        assert_eq!(store.reopen(), Ok(()));
        assert_eq!((store.fenced(), memory.reopens()), (None, 1));
        assert_eq!(
            store.execute(vec![append("a", 0)])[0].1,
            Ok(Completion::Done)
        );
        assert_eq!((memory.head("a"), memory.head("b")), (1, 0));
    }

    #[test]
    fn faults_apply_to_their_stream_and_kind() {
        let memory = Memory::new();
        let mut store = memory.clone();
        memory.inject_for("b", Fault::Reject);
        memory.inject(Fault::FailRead);
        let results = store.execute(vec![append("a", 0), append("b", 0)]);
        assert_eq!(results[0].1, Ok(Completion::Done));
        assert!(matches!(results[1].1, Err(StorageError::Rejected(_))));
        assert_eq!(memory.head("b"), 0);
        let read = StreamCommand {
            stream: "a".into(),
            command: Command::ReadEvents {
                id: CommandId(9),
                from: 1,
                limit: 10,
            },
        };
        let results = store.execute(vec![read.clone()]);
        assert!(matches!(results[0].1, Err(StorageError::Failed(_))));
        let results = store.execute(vec![read]);
        assert!(matches!(
            results[0].1,
            Ok(Completion::Events { head: 1, .. })
        ));
        assert_eq!(memory.executed(), (3, 4));
    }

    #[test]
    fn a_failed_write_may_have_landed_and_a_conflict_writes_nothing_of_ours() {
        let memory = Memory::new();
        let mut store = memory.clone();
        memory.inject(Fault::FailAfterWrite);
        let results = store.execute(vec![append("a", 0)]);
        assert!(matches!(results[0].1, Err(StorageError::Failed(_))));
        assert_eq!(memory.head("a"), 1);
        memory.inject(Fault::Conflict);
        let results = store.execute(vec![append("a", 1)]);
        assert_eq!(
            results[0].1,
            Err(StorageError::Conflict {
                expected: 1,
                actual: 2
            })
        );
        let events = memory.stream("a").map(|s| s.events).unwrap_or_default();
        assert_eq!(
            events.get(&2).map(|b| b.as_slice()),
            Some(&b"another writer"[..])
        );
    }
}
