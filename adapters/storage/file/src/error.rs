//! The one error type at the crate boundary.

use std::io;
use std::path::PathBuf;

use thiserror::Error;

/// Why a [`FileStore`](crate::FileStore) could not be opened.
///
/// Commands on an open store answer with [`persevere_core::StorageError`] instead.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum FileError {
    /// Another opener (this process or another) holds the store's directory.
    #[error("the store directory {path} is locked by another opener")]
    Locked {
        /// The store directory.
        path: PathBuf,
    },
    /// A file operation failed.
    #[error("{op} failed for {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The log is damaged before its tail: the store refuses to open rather than drop the
    /// records after the damage.
    #[error("the log is corrupt in {file} at offset {offset}: {reason}")]
    Corrupt {
        /// The damaged file.
        file: PathBuf,
        /// The byte offset of the damage in that file.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// The directory is missing, or holds no store: open refuses rather than start an empty
    /// one (a typo or an unmounted volume must not look like a fresh store). Create a store
    /// with [`FileStore::create`](crate::FileStore::create) or
    /// [`FileStore::open_or_create`](crate::FileStore::open_or_create).
    #[error("{path} is not a persevere store ({reason}); create one with FileStore::create or FileStore::open_or_create")]
    NotAStore {
        /// The directory.
        path: PathBuf,
        /// What is missing.
        reason: String,
    },
    /// [`FileStore::create`](crate::FileStore::create) found a store (or the remains of one)
    /// in the directory already: open it instead.
    #[error(
        "{path} already holds a persevere store (found {found}); open it instead of creating one"
    )]
    AlreadyAStore {
        /// The directory.
        path: PathBuf,
        /// The file that shows it.
        found: String,
    },
    /// A file of the store's naming belongs to another store (copied or moved in): it is never
    /// used nor deleted. Move it out of the directory, or restore this store's own file.
    #[error("{file} belongs to another store (store id {found:016x}, this store is {expected:016x}); move it out of the store directory")]
    Foreign {
        /// The foreign file.
        file: PathBuf,
        /// This store's id.
        expected: u64,
        /// The id the file names.
        found: u64,
    },
    /// A file was written by a newer version of persevere: upgrade this program.
    #[error("{file} was written by a newer version of persevere (format {format}); this version reads format {supported}")]
    NewerFormat {
        /// The file.
        file: PathBuf,
        /// Its format version.
        format: u16,
        /// The format this version reads.
        supported: u16,
    },
    /// A file was written by an older version of persevere, whose format this version does not
    /// read: open it with that version and export its events.
    #[error("{file} was written by an older version of persevere (format {format}); this version reads format {supported}")]
    OlderFormat {
        /// The file.
        file: PathBuf,
        /// Its format version.
        format: u16,
        /// The format this version reads.
        supported: u16,
    },
    /// A file the store needs is gone (a deleted segment or identity file, or a segment cut
    /// short): acknowledged records would be lost, so the store refuses to open. Restore the
    /// file from a backup.
    #[error("{file} is missing from the store: {reason}; restore it from a backup")]
    Missing {
        /// The missing (or cut) file.
        file: PathBuf,
        /// What shows it is missing.
        reason: String,
    },
    /// Open found something to repair (a torn tail, a leftover temporary file, an obsolete
    /// segment) and was asked to be strict ([`Recovery::Strict`](crate::Recovery::Strict)):
    /// nothing was changed. Open with [`Recovery::Repair`](crate::Recovery::Repair) to set it
    /// aside in the quarantine folder.
    #[error("{file} needs repair ({what}) and strict open changes nothing")]
    NeedsRepair {
        /// The file.
        file: PathBuf,
        /// The repair open would make.
        what: String,
    },
    /// A `file://` URL could not be understood.
    #[error("not a file store URL: {0}")]
    Url(String),
}
