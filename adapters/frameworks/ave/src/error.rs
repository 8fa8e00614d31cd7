//! The one error type of the crate, and its conversion to ave's actor error.

use thiserror::Error;

/// Why a persistence call failed.
///
/// Every variant says what was being done; [`Persist`](Error::Persist) carries the driver's
/// typed failure, which tells whether anything was written (see
/// [`persevere_core::PersistError`]). Converted to [`ave_actors_actor::Error::StoreOperation`]
/// (operation name from [`Error::operation`], reason from `Display`) where ave expects its own
/// error.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Error {
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

impl Error {
    /// A short name of what failed, in the style of ave-actors-store's operation names
    /// (`store_init`, `recover`, `persist`, `snapshot`, ...).
    pub fn operation(&self) -> &'static str {
        match self {
            Error::InvalidName { .. }
            | Error::AlreadyStarted { .. }
            | Error::Key(_)
            | Error::Open(_)
            | Error::System(_) => "store_init",
            Error::NotStarted { .. } => "persist",
            Error::Recover { .. } => "recover",
            Error::Persist { .. } => "persist",
            Error::Snapshot { .. } => "snapshot",
        }
    }
}

impl From<Error> for ave_actors_actor::Error {
    fn from(error: Error) -> Self {
        ave_actors_actor::Error::StoreOperation {
            operation: error.operation().to_owned(),
            reason: error.to_string(),
        }
    }
}
