//! A simulated disk for tests (feature `sim`): it tracks what is durable apart from what was merely written,
//! and can lose power (or fail an operation) at any numbered operation.
//!
//! Every mutating operation — create, write, fsync, truncate, rename, remove, directory sync —
//! is a numbered point. Losing power at point `n` means operation `n` does not complete; the
//! disk images a reboot may then find are:
//!
//! 1. the durable directory entries with each file's durable (fsync'd) content — an entry
//!    of a sub-directory (`quarantine/x`) is durable once that sub-directory's entries were
//!    synced (`Vfs::sync_subdir`) and its own entry was (by a sync of the directory after
//!    its creation); a sync of the directory covers its own entries only;
//! 2. the current directory entries (metadata flushed, data not) with durable content;
//! 3. if operation `n` is a write: the current entries, with that write torn after every byte
//!    count `0..=len` on top of the file's current content.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::vfs::{Vfs, VfsFile};

/// A disk image: file name → content.
pub type Image = BTreeMap<String, Vec<u8>>;

#[derive(Debug, Clone, Default)]
struct Inode {
    durable: Vec<u8>,
    current: Vec<u8>,
}

#[derive(Debug, Default)]
struct Disk {
    inodes: Vec<Inode>,
    dir: BTreeMap<String, usize>,
    durable_dir: BTreeMap<String, usize>,
    /// Sub-directories, and those whose own entry is durable.
    subdirs: BTreeSet<String>,
    durable_subdirs: BTreeSet<String>,
    ops: u64,
    crash_at: Option<u64>,
    fail_at: Option<u64>,
    panic_at: Option<u64>,
    crashed: bool,
    images: Vec<Image>,
}

fn lost() -> io::Error {
    io::Error::other("simulated power loss")
}

fn write_into(content: &mut Vec<u8>, data: &[u8], offset: usize) {
    if content.len() < offset + data.len() {
        content.resize(offset + data.len(), 0);
    }
    content[offset..offset + data.len()].copy_from_slice(data);
}

/// The sub-directory a flat name lies in, if any.
fn parent(name: &str) -> Option<&str> {
    name.rsplit_once('/').map(|(dir, _)| dir)
}

impl Disk {
    /// The files of `dir` in sub-directories `subdirs` (or at the top), with durable content.
    fn image_of(&self, dir: &BTreeMap<String, usize>, subdirs: &BTreeSet<String>) -> Image {
        dir.iter()
            .filter(|(name, _)| parent(name).is_none_or(|p| subdirs.contains(p)))
            .map(|(name, &ino)| (name.clone(), self.inodes[ino].durable.clone()))
            .collect()
    }

    /// Makes the entries `in_scope` selects durable as they are now.
    fn sync_entries(&mut self, in_scope: impl Fn(&str) -> bool) {
        self.durable_dir.retain(|name, _| !in_scope(name));
        for (name, &ino) in &self.dir {
            if in_scope(name) {
                self.durable_dir.insert(name.clone(), ino);
            }
        }
    }

    /// Counts an operation; loses power or fails it if it is the chosen one.
    fn tick(&mut self, write: Option<(usize, &[u8], usize)>) -> io::Result<()> {
        if self.crashed {
            return Err(lost());
        }
        self.ops += 1;
        if self.panic_at == Some(self.ops) {
            self.panic_at = None;
            panic!("simulated panic at operation {}", self.ops);
        }
        if self.fail_at == Some(self.ops) {
            return Err(io::Error::other(
                "simulated failure: no space left on device",
            ));
        }
        if self.crash_at == Some(self.ops) {
            self.crashed = true;
            let mut images = vec![
                self.image_of(&self.durable_dir, &self.durable_subdirs),
                self.image_of(&self.dir, &self.subdirs),
            ];
            if let Some((ino, data, offset)) = write {
                let name = self
                    .dir
                    .iter()
                    .find(|(_, &i)| i == ino)
                    .map(|(n, _)| n.clone());
                if let Some(name) = name {
                    for cut in 0..=data.len() {
                        let mut content = self.inodes[ino].current.clone();
                        write_into(&mut content, &data[..cut], offset);
                        let mut image = self.image_of(&self.dir, &self.subdirs);
                        image.insert(name.clone(), content);
                        images.push(image);
                    }
                }
            }
            images.sort();
            images.dedup();
            self.images = images;
            return Err(lost());
        }
        Ok(())
    }
}

/// A simulated disk; clones share it.
#[derive(Debug, Clone, Default)]
pub struct SimDisk(Arc<Mutex<Disk>>);

impl SimDisk {
    /// An empty disk.
    pub fn new() -> Self {
        Self::default()
    }

    /// A disk holding `image`, all of it durable.
    pub fn from_image(image: &Image) -> Self {
        let disk = Self::new();
        {
            let mut d = disk.lock();
            for (name, content) in image {
                let ino = d.inodes.len();
                d.inodes.push(Inode {
                    durable: content.clone(),
                    current: content.clone(),
                });
                d.dir.insert(name.clone(), ino);
                if let Some(p) = parent(name) {
                    d.subdirs.insert(p.to_owned());
                }
            }
            d.durable_dir = d.dir.clone();
            d.durable_subdirs = d.subdirs.clone();
        }
        disk
    }

    fn lock(&self) -> MutexGuard<'_, Disk> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Loses power at operation `n` (counting from 1).
    pub fn crash_at(&self, n: u64) {
        self.lock().crash_at = Some(n);
    }

    /// Panics at operation `n` (once): a bug inside `execute`.
    pub fn panic_at(&self, n: u64) {
        self.lock().panic_at = Some(n);
    }

    /// Fails operation `n` (counting from 1) with an IO error; the disk goes on working.
    pub fn fail_at(&self, n: u64) {
        self.lock().fail_at = Some(n);
    }

    /// Operations so far.
    pub fn ops(&self) -> u64 {
        self.lock().ops
    }

    /// Whether power was lost.
    pub fn crashed(&self) -> bool {
        self.lock().crashed
    }

    /// The images a reboot may find after the power loss.
    pub fn images(&self) -> Vec<Image> {
        self.lock().images.clone()
    }

    /// The current content of every file, as if all of it were durable.
    pub fn image(&self) -> Image {
        let d = self.lock();
        d.dir
            .iter()
            .map(|(name, &ino)| (name.clone(), d.inodes[ino].current.clone()))
            .collect()
    }
}

impl Vfs for SimDisk {
    fn path(&self, name: &str) -> PathBuf {
        PathBuf::from("sim").join(name)
    }

    fn list(&self) -> io::Result<Vec<String>> {
        let d = self.lock();
        if d.crashed {
            return Err(lost());
        }
        Ok(d.dir.keys().cloned().collect())
    }

    fn open(&self, name: &str, create: bool) -> io::Result<Box<dyn VfsFile>> {
        let mut d = self.lock();
        if d.crashed {
            return Err(lost());
        }
        let ino = match d.dir.get(name) {
            Some(&ino) => ino,
            None if parent(name).is_some_and(|p| !d.subdirs.contains(p)) => {
                return Err(io::Error::new(io::ErrorKind::NotFound, name.to_owned()))
            }
            None if create => {
                d.tick(None)?;
                let ino = d.inodes.len();
                d.inodes.push(Inode::default());
                d.dir.insert(name.to_owned(), ino);
                ino
            }
            None => return Err(io::Error::new(io::ErrorKind::NotFound, name.to_owned())),
        };
        Ok(Box::new(SimFile {
            disk: self.clone(),
            ino,
        }))
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let mut d = self.lock();
        d.tick(None)?;
        if parent(to).is_some_and(|p| !d.subdirs.contains(p)) {
            return Err(io::Error::new(io::ErrorKind::NotFound, to.to_owned()));
        }
        let ino = d
            .dir
            .remove(from)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, from.to_owned()))?;
        d.dir.insert(to.to_owned(), ino);
        Ok(())
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        let mut d = self.lock();
        d.tick(None)?;
        d.dir
            .remove(name)
            .map(|_| ())
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, name.to_owned()))
    }

    fn sync_dir(&self) -> io::Result<()> {
        let mut d = self.lock();
        d.tick(None)?;
        d.sync_entries(|name| parent(name).is_none());
        d.durable_subdirs = d.subdirs.clone();
        Ok(())
    }

    fn create_dir(&self, name: &str) -> io::Result<()> {
        // Names are flat keys (`quarantine/x`); the sub-directory is a name whose own entry
        // becomes durable with the directory's.
        let mut d = self.lock();
        if d.crashed {
            return Err(lost());
        }
        if !d.subdirs.contains(name) {
            d.tick(None)?;
            d.subdirs.insert(name.to_owned());
        }
        Ok(())
    }

    fn sync_subdir(&self, name: &str) -> io::Result<()> {
        let mut d = self.lock();
        d.tick(None)?;
        if !d.subdirs.contains(name) {
            return Err(io::Error::new(io::ErrorKind::NotFound, name.to_owned()));
        }
        d.sync_entries(|entry| parent(entry) == Some(name));
        Ok(())
    }

    fn file_id(&self, name: &str) -> io::Result<(u64, u64)> {
        let d = self.lock();
        if d.crashed {
            return Err(lost());
        }
        d.dir
            .get(name)
            .map(|&ino| (0, ino as u64))
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, name.to_owned()))
    }
}

struct SimFile {
    disk: SimDisk,
    ino: usize,
}

impl VfsFile for SimFile {
    fn len(&self) -> io::Result<u64> {
        let d = self.disk.lock();
        if d.crashed {
            return Err(lost());
        }
        Ok(d.inodes[self.ino].current.len() as u64)
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let d = self.disk.lock();
        if d.crashed {
            return Err(lost());
        }
        let offset = offset as usize;
        let src = d.inodes[self.ino]
            .current
            .get(offset..offset + buf.len())
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "short read"))?;
        buf.copy_from_slice(src);
        Ok(())
    }

    fn write_at(&mut self, data: &[u8], offset: u64) -> io::Result<()> {
        let mut d = self.disk.lock();
        d.tick(Some((self.ino, data, offset as usize)))?;
        write_into(&mut d.inodes[self.ino].current, data, offset as usize);
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        let mut d = self.disk.lock();
        d.tick(None)?;
        let inode = &mut d.inodes[self.ino];
        inode.durable = inode.current.clone();
        Ok(())
    }

    fn id(&self) -> io::Result<(u64, u64)> {
        Ok((0, self.ino as u64))
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        let mut d = self.disk.lock();
        d.tick(None)?;
        d.inodes[self.ino].current.resize(len as usize, 0);
        Ok(())
    }
}
