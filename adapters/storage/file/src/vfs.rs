//! The file operations the store performs, behind a small trait so tests can run the store over
//! a simulated disk that loses power.

use std::cell::OnceCell;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// A directory of files, named relative to it.
pub(crate) trait Vfs: Send + Sync {
    /// The full path of `name`, for error messages.
    fn path(&self, name: &str) -> PathBuf;
    /// The names of the directory's entries.
    fn list(&self) -> io::Result<Vec<String>>;
    /// Opens `name` for reading and writing, creating it (empty) if `create` and absent.
    fn open(&self, name: &str, create: bool) -> io::Result<Box<dyn VfsFile>>;
    /// Atomically renames `from` to `to`, replacing `to`.
    fn rename(&self, from: &str, to: &str) -> io::Result<()>;
    /// Removes `name`.
    fn remove(&self, name: &str) -> io::Result<()>;
    /// Makes the directory's entries (creations, renames, removals) durable — its own, not
    /// those of its sub-directories.
    fn sync_dir(&self) -> io::Result<()>;
    /// Creates the sub-directory `name` if absent (the quarantine folder); its entry is
    /// durable after the next [`sync_dir`](Self::sync_dir).
    fn create_dir(&self, name: &str) -> io::Result<()>;
    /// Makes the entries of the sub-directory `name` (files created or renamed into it)
    /// durable.
    fn sync_subdir(&self, name: &str) -> io::Result<()>;
    /// The identity (device, inode) of the file the name `name` leads to now.
    fn file_id(&self, name: &str) -> io::Result<(u64, u64)>;
}

/// An open file.
pub(crate) trait VfsFile: Send {
    /// The file's length.
    fn len(&self) -> io::Result<u64>;
    /// Fills `buf` from `offset`; fails if the file is shorter.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    /// Writes all of `data` at `offset`.
    fn write_at(&mut self, data: &[u8], offset: u64) -> io::Result<()>;
    /// Makes the file's data durable (fdatasync).
    fn sync(&mut self) -> io::Result<()>;
    /// Sets the file's length.
    fn truncate(&mut self, len: u64) -> io::Result<()>;
    /// The identity (device, inode) of the open file.
    fn id(&self) -> io::Result<(u64, u64)>;
}

/// The real file system: one locked directory.
#[derive(Debug)]
pub(crate) struct RealFs {
    dir: PathBuf,
    /// The directory, open: synced after entry changes, and `flock`ed (see the `lock` module).
    handle: File,
}

/// Whether [`RealFs::open`] may create the directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DirMode {
    /// The directory must exist.
    Existing,
    /// Create it (and its parents) if absent.
    CreateIfAbsent,
}

impl RealFs {
    /// Opens and locks `dir` (creating it first if `mode` allows and it is absent).
    pub fn open(dir: &Path, mode: DirMode) -> Result<Self, crate::FileError> {
        if !dir.is_dir() {
            if mode == DirMode::Existing {
                return Err(crate::FileError::NotAStore {
                    path: dir.to_owned(),
                    reason: "the directory does not exist".into(),
                });
            }
            std::fs::create_dir_all(dir).map_err(|source| crate::FileError::Io {
                op: "creating the store directory",
                path: dir.to_owned(),
                source,
            })?;
            // Make the new directory's own entry durable, or a power loss could take it (and
            // every acknowledged write in it) away.
            let parent = match dir.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            File::open(parent)
                .and_then(|p| p.sync_all())
                .map_err(|source| crate::FileError::Io {
                    op: "syncing the parent of the store directory",
                    path: parent.to_owned(),
                    source,
                })?;
        }
        let handle = File::open(dir).map_err(|source| crate::FileError::Io {
            op: "opening the store directory",
            path: dir.to_owned(),
            source,
        })?;
        crate::lock::acquire(dir, &handle)?;
        Ok(Self {
            dir: dir.to_owned(),
            handle,
        })
    }
}

fn stat_id(stat: &rustix::fs::Stat) -> (u64, u64) {
    #[allow(clippy::useless_conversion, clippy::unnecessary_cast)]
    (stat.st_dev as u64, stat.st_ino as u64)
}

impl Vfs for RealFs {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn list(&self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            if let Ok(name) = entry?.file_name().into_string() {
                names.push(name);
            }
        }
        Ok(names)
    }

    fn open(&self, name: &str, create: bool) -> io::Result<Box<dyn VfsFile>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .truncate(false)
            .open(self.dir.join(name))?;
        Ok(Box::new(RealFile {
            file,
            id: OnceCell::new(),
        }))
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        std::fs::rename(self.dir.join(from), self.dir.join(to))
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        std::fs::remove_file(self.dir.join(name))
    }

    fn sync_dir(&self) -> io::Result<()> {
        self.handle.sync_all()
    }

    fn create_dir(&self, name: &str) -> io::Result<()> {
        match std::fs::create_dir(self.dir.join(name)) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            other => other,
        }
    }

    fn sync_subdir(&self, name: &str) -> io::Result<()> {
        File::open(self.dir.join(name))?.sync_all()
    }

    fn file_id(&self, name: &str) -> io::Result<(u64, u64)> {
        // Looked up in the directory this store holds open (and locked): one path component
        // to resolve, on every batch.
        let stat = rustix::fs::statat(&self.handle, name, rustix::fs::AtFlags::empty())?;
        Ok(stat_id(&stat))
    }
}

/// An open file, with its identity read once: the device and inode of an open descriptor never
/// change, so the store's check that a path still leads to its active segment costs one `stat`
/// of the path per batch, not a `stat` and an `fstat`.
struct RealFile {
    file: File,
    id: OnceCell<(u64, u64)>,
}

impl VfsFile for RealFile {
    fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.file.read_exact_at(buf, offset)
    }

    fn write_at(&mut self, data: &[u8], offset: u64) -> io::Result<()> {
        self.file.write_all_at(data, offset)
    }

    fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }

    fn id(&self) -> io::Result<(u64, u64)> {
        if let Some(id) = self.id.get() {
            return Ok(*id);
        }
        let id = stat_id(&rustix::fs::fstat(&self.file)?);
        Ok(*self.id.get_or_init(|| id))
    }
}
