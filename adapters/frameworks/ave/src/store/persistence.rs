//! The two persistence strategies, chosen by a marker type.

use persevere_core::Strategy;

/// The persistence strategy of a [`PersistentActor`](crate::PersistentActor).
///
/// Not `#[non_exhaustive]`, unlike this crate's other public enums: it mirrors
/// ave-actors-store's `PersistenceType`, and code switching from that crate matches on it
/// exhaustively (`Light` and `Full` are the whole of ave's model, so a new variant would be a
/// breaking change of that promise anyway).
///
/// ```
/// use persevere_ave::store::PersistenceType;
/// fn describe(p: PersistenceType) -> &'static str {
///     match p {
///         PersistenceType::Light => "event and snapshot",
///         PersistenceType::Full => "events",
///     }
/// }
/// assert_eq!(describe(PersistenceType::Full), "events");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PersistenceType {
    /// Every persist writes the event and a snapshot of the resulting state in one atomic
    /// write; recovery loads the snapshot and replays nothing.
    Light,
    /// Only events are written, with a snapshot every
    /// [`snapshot_every`](crate::PersistentActor::snapshot_every) events; recovery loads the
    /// newest snapshot and replays the events after it.
    Full,
}

impl PersistenceType {
    /// The core's strategy for this type.
    pub fn strategy(self) -> Strategy {
        match self {
            PersistenceType::Light => Strategy::Light,
            PersistenceType::Full => Strategy::Full,
        }
    }
}

/// Maps a marker type ([`LightPersistence`], [`FullPersistence`]) to its [`PersistenceType`].
pub trait Persistence {
    /// The strategy the marker selects.
    fn get_persistence() -> PersistenceType;
}

/// Selects [`PersistenceType::Light`].
#[derive(Debug, Clone, Copy, Default)]
pub struct LightPersistence;

/// Selects [`PersistenceType::Full`].
#[derive(Debug, Clone, Copy, Default)]
pub struct FullPersistence;

impl Persistence for LightPersistence {
    fn get_persistence() -> PersistenceType {
        PersistenceType::Light
    }
}

impl Persistence for FullPersistence {
    fn get_persistence() -> PersistenceType {
        PersistenceType::Full
    }
}
