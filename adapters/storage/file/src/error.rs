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
    /// A `file://` URL could not be understood.
    #[error("not a file store URL: {0}")]
    Url(String),
}
