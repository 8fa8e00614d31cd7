//! What a persistent entity must provide: how an event changes its state, and how old record
//! versions are read.

use std::fmt;

use thiserror::Error;

/// Why an upcaster could not turn an old payload into the current type.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum UpcastError {
    /// No upcaster knows this version.
    #[error("no upcaster for type version {0}")]
    UnknownVersion(u32),
    /// The old payload could not be read.
    #[error("upcasting version {version} failed: {reason}")]
    Invalid {
        /// The version of the stored payload.
        version: u32,
        /// What went wrong.
        reason: String,
    },
}

/// The in-memory state of one persistent entity, changed only by events.
///
/// `apply` may refuse an event by returning `Err`; it **must leave the state unchanged** when it
/// does. A refused event is never written. Recovery replays stored events through the same
/// `apply`, so it must be deterministic.
///
/// Schema evolution: every record carries the type version it was written with
/// ([`EVENT_VERSION`](Entity::EVENT_VERSION), [`SNAPSHOT_VERSION`](Entity::SNAPSHOT_VERSION)).
/// A record with another version is handed to [`upcast_event`](Entity::upcast_event) or
/// [`upcast_snapshot`](Entity::upcast_snapshot), which decode the old form and convert it.
///
/// ```
/// use persevere_core::{Entity, UpcastError};
/// use borsh::{BorshDeserialize, BorshSerialize};
///
/// #[derive(Default, BorshSerialize, BorshDeserialize)]
/// struct Account { balance: i64 }
///
/// #[derive(BorshSerialize, BorshDeserialize)]
/// enum Tx { Deposit(i64), Withdraw(i64) }
///
/// impl Entity for Account {
///     type Event = Tx;
///     type Error = String;
///     const EVENT_VERSION: u32 = 2; // version 1 stored deposits as bare `i32`s
///
///     fn apply(&mut self, tx: &Tx) -> Result<(), String> {
///         match *tx {
///             Tx::Deposit(n) => self.balance += n,
///             Tx::Withdraw(n) if n > self.balance => return Err("insufficient funds".into()),
///             Tx::Withdraw(n) => self.balance -= n,
///         }
///         Ok(())
///     }
///
///     fn upcast_event(version: u32, payload: &[u8]) -> Result<Tx, UpcastError> {
///         match version {
///             1 => borsh::from_slice::<i32>(payload)
///                 .map(|n| Tx::Deposit(n.into()))
///                 .map_err(|e| UpcastError::Invalid { version, reason: e.to_string() }),
///             _ => Err(UpcastError::UnknownVersion(version)),
///         }
///     }
/// }
/// ```
pub trait Entity {
    /// The events that change this entity.
    type Event;
    /// Why `apply` refuses an event. A refusal reaches the caller as
    /// [`Rejection::Refused`](crate::Rejection::Refused), whose [`Refusal`](crate::Refusal)
    /// gives this very value back ([`Refusal::downcast_ref`](crate::Refusal::downcast_ref)).
    type Error: fmt::Display + Send + Sync + 'static;

    /// The type version written with every new event.
    const EVENT_VERSION: u32 = 1;
    /// The type version written with every new snapshot.
    const SNAPSHOT_VERSION: u32 = 1;

    /// Applies one event. On `Err` the state must be unchanged.
    fn apply(&mut self, event: &Self::Event) -> Result<(), Self::Error>;

    /// Reads an event payload written with an older (or unknown) `version`.
    fn upcast_event(version: u32, payload: &[u8]) -> Result<Self::Event, UpcastError> {
        let _ = payload;
        Err(UpcastError::UnknownVersion(version))
    }

    /// Reads a snapshot payload written with an older (or unknown) `version`.
    fn upcast_snapshot(version: u32, payload: &[u8]) -> Result<Self, UpcastError>
    where
        Self: Sized,
    {
        let _ = payload;
        Err(UpcastError::UnknownVersion(version))
    }
}
