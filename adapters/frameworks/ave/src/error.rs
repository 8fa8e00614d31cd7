//! The errors: ave-actors-store's own [`Error`] and [`StoreOperation`] (re-exported, so
//! `Collection`, `State` and `DbManager` implementations written against ave-actors-store
//! compile unchanged), and [`AdapterError`], this crate's typed failure of a store operation.

use thiserror::Error as ThisError;

pub use ave_actors_store::error::{Error, StoreOperation};

/// Why a persistence call of this crate failed (opening a manager, starting a store,
/// persisting, snapshotting).
///
/// It is not ave-actors-store's [`Error`]: that one is the error type of ave's storage traits
/// (`Collection`, `State`, `DbManager`) and stays what it is, so implementations of those
/// traits compile against this crate unchanged. An `AdapterError` converts into it
/// ([`From`], operation and reason kept) and into ave's actor error.
///
/// Every variant says what was being done; [`Persist`](AdapterError::Persist) carries the driver's
/// typed failure, which tells whether anything was written (see
/// [`persevere_core::PersistError`]). Converted to [`ave_actors_actor::Error::StoreOperation`]
/// (operation name from [`AdapterError::operation`], reason from `Display`) where ave expects its own
/// error.
#[derive(Debug, Clone, PartialEq, Eq, ThisError)]
#[non_exhaustive]
pub enum AdapterError {
    /// A store name or prefix that cannot name a stream.
    #[error("invalid store name {name:?}: {reason}")]
    InvalidName {
        /// The name given.
        name: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// Another live store already owns the stream (two writers would corrupt it).
    #[error("the stream {stream:?} is already owned by a live store")]
    AlreadyStarted {
        /// The stream id.
        stream: String,
    },
    /// `persist` or `snapshot` was called before `start_store` succeeded (or after the store
    /// stopped).
    #[error("no store is started for actor {path}")]
    NotStarted {
        /// The actor's path.
        path: String,
    },
    /// The store could not recover the actor's state: the stream is damaged, a key is wrong or
    /// missing, or the storage failed. The actor must not start with a fresh state.
    #[error("recovering {stream:?} failed: {source}")]
    Recover {
        /// The stream id.
        stream: String,
        /// The driver's failure.
        source: persevere_driver::Error,
    },
    /// A persist failed; `source` says whether anything was written.
    #[error("persisting to {stream:?} failed: {source}")]
    Persist {
        /// The stream id.
        stream: String,
        /// The driver's failure.
        source: persevere_driver::Error,
    },
    /// An explicit snapshot failed; the state and the log are unaffected.
    #[error("snapshot of {stream:?} failed: {source}")]
    Snapshot {
        /// The stream id.
        stream: String,
        /// The driver's failure.
        source: persevere_driver::Error,
    },
    /// The actor's own snapshot was refused: its value may differ from its stream's durable
    /// state (a write whose outcome stayed unknown, or a purge or recovery by its store came
    /// in between), and the snapshot would make that value durable. Its next persist recovers
    /// the durable state into it first; snapshot after that.
    #[error("the actor of {stream:?} may hold a state other than the durable state (a write of unknown outcome, a purge or a recovery by its store came in between): its next persist recovers the durable state first; snapshot after it")]
    StateUnknown {
        /// The stream id.
        stream: String,
    },
    /// A command of the store actor (a range read, a compaction, a purge) failed.
    #[error("{operation} on {stream:?} failed: {reason}")]
    Command {
        /// The stream id.
        stream: String,
        /// What was being done (ave-actors-store's operation name).
        operation: &'static str,
        /// Why.
        reason: String,
    },
    /// Data ave-actors-store wrote for this store could not be migrated; nothing was written
    /// and the actor does not start (never with a fresh state beside the old one).
    #[error("migrating {tables} failed: {reason}")]
    Migrate {
        /// The tables of ave-actors-store being read.
        tables: String,
        /// Why.
        reason: String,
    },
    /// An encryption key could not be built.
    #[error("invalid encryption key: {0}")]
    Key(String),
    /// A backend could not be opened.
    #[error("opening the backend failed: {0}")]
    Open(String),
    /// The actor system refused an operation the store needs (for example creating the
    /// store's child actor).
    #[error("actor system: {0}")]
    System(String),
}

impl AdapterError {
    /// A short name of what failed, in the style of ave-actors-store's operation names
    /// (`store_init`, `recover`, `persist`, `snapshot`, ...).
    pub fn operation(&self) -> &'static str {
        match self {
            AdapterError::InvalidName { .. }
            | AdapterError::AlreadyStarted { .. }
            | AdapterError::Key(_)
            | AdapterError::Open(_)
            | AdapterError::System(_) => "store_init",
            AdapterError::NotStarted { .. } => "persist",
            AdapterError::Command { operation, .. } => operation,
            AdapterError::Recover { .. } | AdapterError::Migrate { .. } => "recover",
            AdapterError::Persist { .. } => "persist",
            AdapterError::Snapshot { .. } | AdapterError::StateUnknown { .. } => "snapshot",
        }
    }
}

impl From<AdapterError> for ave_actors_actor::Error {
    fn from(error: AdapterError) -> Self {
        ave_actors_actor::Error::StoreOperation {
            operation: error.operation().to_owned(),
            reason: error.to_string(),
        }
    }
}

impl AdapterError {
    /// The [`StoreOperation`] of ave-actors-store this failure belongs to.
    pub fn store_operation(&self) -> StoreOperation {
        match self {
            AdapterError::InvalidName { .. }
            | AdapterError::AlreadyStarted { .. }
            | AdapterError::Key(_)
            | AdapterError::Open(_)
            | AdapterError::System(_) => StoreOperation::StoreInit,
            AdapterError::NotStarted { .. } | AdapterError::Persist { .. } => {
                StoreOperation::Persist
            }
            AdapterError::Recover { .. } | AdapterError::Migrate { .. } => StoreOperation::Recover,
            AdapterError::Snapshot { .. } | AdapterError::StateUnknown { .. } => {
                StoreOperation::Snapshot
            }
            AdapterError::Command { operation, .. } => match *operation {
                "compact" => StoreOperation::Compact,
                "purge" => StoreOperation::Purge,
                _ => StoreOperation::GetEventsRange,
            },
        }
    }
}

impl From<AdapterError> for Error {
    /// A manager that cannot open is [`Error::CreateStore`]; every other failure is
    /// [`Error::Store`] with its operation and the full reason.
    fn from(error: AdapterError) -> Self {
        match error {
            AdapterError::Open(reason) => Error::CreateStore { reason },
            other => Error::Store {
                operation: other.store_operation(),
                reason: other.to_string(),
            },
        }
    }
}
