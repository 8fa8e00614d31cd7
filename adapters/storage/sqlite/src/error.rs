//! The one error type at the crate boundary.

use std::io;
use std::path::PathBuf;

use thiserror::Error;

/// Why a [`SqliteStore`](crate::SqliteStore) could not be opened (or reopened).
///
/// Every message names the database file and says what to do. Commands on an open store answer
/// with [`persevere_core::StorageError`] instead.
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let missing = dir.path().join("absent.db");
/// let error = persevere_sqlite::SqliteStore::open(&missing).unwrap_err();
/// assert!(matches!(error, persevere_sqlite::SqliteError::NotFound { .. }));
/// assert!(error.to_string().contains("absent.db"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SqliteError {
    /// [`OpenMode::Open`](crate::OpenMode::Open) and the database file does not exist.
    #[error("the SQLite store {path} does not exist: create it (OpenMode::Create or OpenOrCreate) or fix the path")]
    NotFound {
        /// The database file.
        path: PathBuf,
    },
    /// [`OpenMode::Create`](crate::OpenMode::Create) and the database file already exists.
    #[error(
        "the SQLite store {path} already exists: open it (OpenMode::Open) or choose another path"
    )]
    AlreadyExists {
        /// The database file.
        path: PathBuf,
    },
    /// Another opener (this process or another) owns the store.
    #[error("the SQLite store {path} is in use by another opener (its lock file {lock} is held): stop the other process or open another database")]
    Locked {
        /// The database file.
        path: PathBuf,
        /// The lock file beside it.
        lock: PathBuf,
    },
    /// The file is damaged: not readable as a SQLite database, or its integrity check failed.
    #[error("the SQLite store {path} is corrupt ({reason}): restore it from a backup; nothing was changed")]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// What SQLite reported.
        reason: String,
    },
    /// The database belongs to something else (another application id, or tables that are not
    /// persevere's).
    #[error("{path} is not a persevere SQLite store ({reason}): point the store at its own database file")]
    Foreign {
        /// The database file.
        path: PathBuf,
        /// Why it is not ours.
        reason: String,
    },
    /// The database was written by a newer persevere whose schema this version does not know.
    #[error("the SQLite store {path} has schema version {found}, newer than the {supported} this version of persevere-sqlite knows: upgrade persevere-sqlite")]
    NewerSchema {
        /// The database file.
        path: PathBuf,
        /// The schema version found.
        found: i64,
        /// The newest schema version this crate knows.
        supported: i64,
    },
    /// A file operation failed.
    #[error("{op} failed for {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// SQLite failed.
    #[error("{op} failed for the SQLite store {path}: {source}")]
    Sqlite {
        /// What was being done.
        op: &'static str,
        /// The database file.
        path: PathBuf,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// A `sqlite://` URL could not be understood.
    #[error("not a SQLite store URL: {0} (expected sqlite:///absolute/path.db or sqlite://relative/path.db)")]
    Url(String),
}
