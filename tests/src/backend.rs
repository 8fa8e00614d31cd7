//! The storage a simulation runs on: the reference store with a crash-aware write log, or the
//! real file journal over a simulated disk that loses power at any operation (tearing the write
//! in progress at any byte) or fails one with an IO error.

use std::sync::Arc;

use persevere_core::{Command, CommandId, Completion, StorageError, Store, StreamCommand};
use persevere_file::sim::SimDisk;
use persevere_file::{FileOptions, FileStore};

use crate::rng::SimRng;
use crate::store::SimStore;

/// Which storage a simulation uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StorageKind {
    /// The reference in-memory store; a crash loses a random suffix of the unsynced writes.
    Reference,
    /// The file journal over a simulated disk.
    File,
}

/// The file journal over a simulated disk.
pub(crate) struct FileSim {
    disk: SimDisk,
    store: Option<FileStore>,
}

fn options() -> FileOptions {
    let mut options = FileOptions::default();
    // Small segments and eager compaction, so rolling and rewriting happen in short runs.
    options.segment_size = 4096;
    options.compact_min_bytes = 2048;
    options
}

impl FileSim {
    fn open(disk: SimDisk) -> Result<Self, String> {
        let store = FileStore::open_sim(disk.clone(), options()).map_err(|e| e.to_string())?;
        Ok(Self {
            disk,
            store: Some(store),
        })
    }
}

pub(crate) enum Backend {
    Reference(SimStore),
    File(FileSim),
}

/// What a storage fault did to the process.
pub(crate) enum Interrupted {
    /// Nothing: go on.
    No,
    /// The process must restart (power loss or a fenced store); the storage was reopened.
    Restarted,
    /// The storage could not be reopened: a violation.
    Unrecoverable(String),
}

impl Backend {
    pub(crate) fn new(kind: StorageKind) -> Self {
        match kind {
            StorageKind::Reference => Backend::Reference(SimStore::default()),
            StorageKind::File => match FileSim::open(SimDisk::new()) {
                Ok(file) => Backend::File(file),
                // An empty simulated disk always opens; fall back rather than panic.
                Err(_) => Backend::Reference(SimStore::default()),
            },
        }
    }

    /// Executes one command. Returns the write's index in the log (reference store) for
    /// [`sync`](Self::sync).
    pub(crate) fn execute(
        &mut self,
        stream: &Arc<str>,
        command: Command,
    ) -> (Option<usize>, Result<Completion, StorageError>) {
        match self {
            Backend::Reference(store) => store.execute(stream, command),
            Backend::File(file) => {
                let id = command.id();
                let Some(store) = file.store.as_mut() else {
                    return (None, Err(StorageError::Failed("store closed".into())));
                };
                let mut results = store.execute(vec![StreamCommand {
                    stream: Arc::clone(stream),
                    command,
                }]);
                match results.pop() {
                    Some((got, result)) if got == id => (None, result),
                    _ => (None, Err(StorageError::Failed("no result".into()))),
                }
            }
        }
    }

    /// A completion of write `index` was delivered: it and everything before it is durable.
    pub(crate) fn sync(&mut self, index: usize) {
        if let Backend::Reference(store) = self {
            store.sync(index);
        }
    }

    /// The stream's head, as another writer would read it.
    pub(crate) fn head(&mut self, stream: &Arc<str>) -> u64 {
        let read = Command::ReadEvents {
            id: CommandId(0),
            from: u64::MAX,
            limit: 1,
        };
        match self.execute(stream, read).1 {
            Ok(Completion::Events { head, .. }) => head,
            _ => 0,
        }
    }

    /// Another writer's write: durable at once.
    pub(crate) fn foreign_write(
        &mut self,
        stream: &Arc<str>,
        command: Command,
    ) -> Result<Completion, StorageError> {
        let (_, result) = self.execute(stream, command);
        if let Backend::Reference(store) = self {
            store.sync_all();
        }
        result
    }

    /// A crash chosen by the scheduler. The reference store loses a random suffix of its
    /// unsynced writes now; the file journal either restarts at once with what its files hold,
    /// or arms a power loss at one of the next disk operations (tearing a write).
    pub(crate) fn crash(&mut self, rng: &mut SimRng, keep_unsynced: Option<bool>) -> bool {
        match self {
            Backend::Reference(store) => {
                let (lo, hi) = store.cut_range();
                let cut = match keep_unsynced {
                    Some(true) => hi,
                    Some(false) => lo,
                    None => rng.between(lo as u64, hi as u64) as usize,
                };
                store.crash(cut);
                true
            }
            Backend::File(file) => {
                if keep_unsynced == Some(true) || (keep_unsynced.is_none() && rng.chance(0.5)) {
                    // A process crash: the files stay as they are.
                    file.store = None;
                    let image = file.disk.image();
                    file.disk = SimDisk::from_image(&image);
                    file.store = FileStore::open_sim(file.disk.clone(), options()).ok();
                    true
                } else {
                    let at = file.disk.ops() + rng.between(1, 4);
                    file.disk.crash_at(at);
                    false
                }
            }
        }
    }

    /// Arms an IO failure (e.g. a full disk) at one of the next disk operations.
    pub(crate) fn fail_soon(&mut self, rng: &mut SimRng) {
        if let Backend::File(file) = self {
            let at = file.disk.ops() + rng.between(1, 4);
            file.disk.fail_at(at);
        }
    }

    /// After a command: if the disk lost power or the store fenced itself, reboot from one of
    /// the images the disk may hold and reopen.
    pub(crate) fn check(&mut self, rng: &mut SimRng) -> Interrupted {
        let Backend::File(file) = self else {
            return Interrupted::No;
        };
        let image = if file.disk.crashed() {
            let images = file.disk.images();
            if images.is_empty() {
                return Interrupted::Unrecoverable("power lost with no image".into());
            }
            images[rng.below(images.len() as u64) as usize].clone()
        } else if file.store.as_ref().is_some_and(|s| s.is_fenced()) || file.store.is_none() {
            file.disk.image()
        } else {
            return Interrupted::No;
        };
        file.store = None;
        match FileSim::open(SimDisk::from_image(&image)) {
            Ok(reopened) => {
                *file = reopened;
                Interrupted::Restarted
            }
            Err(error) => Interrupted::Unrecoverable(format!("reopen failed: {error}")),
        }
    }
}
