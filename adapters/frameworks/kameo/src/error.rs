//! The one error type of the adapter.

use thiserror::Error;
use url::Url;

/// Why a persistence operation on a kameo actor failed.
///
/// A corrupt or unreadable store is always an error ([`Error::Journal`] with a recovery failure
/// inside), never a silently fresh state.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Error {
    /// The key is not a usable persistence key (see [`crate::scheme`] for the shape).
    #[error("invalid persistence key {key:?}: {reason}")]
    Key {
        /// The key as given.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No storage is registered for the key's scheme.
    #[error("no storage is registered for the scheme {scheme:?} (key {key})")]
    UnknownScheme {
        /// The scheme.
        scheme: String,
        /// The key.
        key: Url,
    },
    /// The store behind the key could not be opened.
    #[error("the store for {key} could not be opened: {reason}")]
    Storage {
        /// The key.
        key: Url,
        /// Why.
        reason: String,
    },
    /// The journal failed: recovery (a corrupt or unreadable store), a persist, or a snapshot.
    #[error("persistence of {key} failed: {source}")]
    Journal {
        /// The key.
        key: Url,
        /// The driver's typed failure.
        #[source]
        source: Box<persevere_driver::Error>,
    },
    /// Nothing is stored under the key (for `respawn_persistent`).
    #[error("nothing is stored under {0}")]
    NotFound(Url),
    /// A live actor already owns the key (for `spawn_persistent`, or an actor of another type).
    #[error("a live actor already owns {0}")]
    KeyInUse(Url),
    /// The actor was not spawned through the persistence API, so it has no key.
    #[error("the actor {0} has no persistence key")]
    NotPersistent(String),
    /// The actor stopped before it finished starting (its `on_start` failed or it panicked).
    #[error("the actor for {0} did not start")]
    Start(Url),
    /// A newer journal was opened for the same key in this process (for example by a supervised
    /// restart), so this one no longer writes.
    #[error("a newer actor took over {0}")]
    Superseded(Url),
    /// Nothing readable is stored under the key, but the store set aside data naming its
    /// stream when it opened (see [`repairs`](crate::repairs)): it may have been the key's
    /// state, so `try_respawn_persistent` does not start a fresh actor that would overwrite it.
    #[error("nothing readable is stored under {0}, but the store set aside data of it when it opened; see persevere_kameo::key_repairs, and spawn_persistent to start afresh deliberately")]
    Repaired(Url),
    /// A kameo-persistence snapshot (`index.bin`) in the key's directory could not be read or
    /// imported: nothing was started, and the file is left as it was.
    #[error("the kameo-persistence snapshot {file} of {key} could not be imported: {reason}; nothing was started and the file is untouched: restore it, or move it out of the directory to start the key afresh")]
    Import {
        /// The key.
        key: Url,
        /// The kameo-persistence file.
        file: Box<std::path::Path>,
        /// Why (it could not be read, or does not decode as the actor's snapshot type).
        reason: Box<str>,
    },
    /// The key's directory holds both persevere's state and a kameo-persistence snapshot
    /// (`index.bin`) that is not the one imported before: it was written by kameo-persistence
    /// after the import, or copied in. Nothing was started. Keep one of them: move `index.bin`
    /// out of the directory to go on with persevere's state, or move persevere's files out to
    /// import it.
    #[error("{key} holds persevere state and also a kameo-persistence snapshot {file} that was not imported; move one of them out of the directory")]
    ImportConflict {
        /// The key.
        key: Url,
        /// The kameo-persistence file.
        file: std::path::PathBuf,
    },
    /// The impl's `register_persistent` refused the actor `spawn_persistent` started (a
    /// hand-written impl keeping its own registry): the actor was stopped.
    #[error("register_persistent refused the actor of {key}: {reason}")]
    Register {
        /// The key.
        key: Url,
        /// Why.
        reason: String,
    },
    /// The actor could not be asked to save its snapshot.
    #[error("the actor for {key} could not be asked to save: {reason}")]
    Send {
        /// The key.
        key: Url,
        /// Why.
        reason: String,
    },
}

impl Error {
    /// Whether this is a recovery failure: the stored state exists but cannot be read.
    pub fn is_recovery(&self) -> bool {
        match self {
            Error::Journal { source, .. } => {
                matches!(**source, persevere_driver::Error::Recovery(_))
            }
            _ => false,
        }
    }

    pub(crate) fn journal(key: &Url, source: persevere_driver::Error) -> Self {
        Error::Journal {
            key: key.clone(),
            source: Box::new(source),
        }
    }
}
