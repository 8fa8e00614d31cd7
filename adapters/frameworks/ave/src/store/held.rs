//! The actor as a persevere entity.

use std::io::{Read, Write};

use borsh::{BorshDeserialize, BorshSerialize};
use persevere_core::{Entity, UpcastError};

use crate::store::persistent_actor::PersistentActor;

/// An actor's state as the journal sees it: its events go through the actor's own `apply`,
/// and its snapshot is the actor's borsh encoding.
pub(crate) struct Held<A>(pub(crate) A);

impl<A> Entity for Held<A>
where
    A: PersistentActor,
{
    type Event = A::Event;
    type Error = ave_actors_actor::Error;

    const EVENT_VERSION: u32 = A::EVENT_VERSION;
    const SNAPSHOT_VERSION: u32 = A::SNAPSHOT_VERSION;

    fn apply(&mut self, event: &A::Event) -> Result<(), ave_actors_actor::Error> {
        self.0.apply(event)
    }

    fn upcast_event(version: u32, payload: &[u8]) -> Result<A::Event, UpcastError> {
        A::upcast_event(version, payload)
    }

    fn upcast_snapshot(version: u32, payload: &[u8]) -> Result<Self, UpcastError> {
        A::upcast_snapshot(version, payload).map(Held)
    }
}

impl<A: BorshSerialize> BorshSerialize for Held<A> {
    fn serialize<W: Write>(&self, writer: &mut W) -> std::io::Result<()> {
        self.0.serialize(writer)
    }
}

impl<A: BorshDeserialize> BorshDeserialize for Held<A> {
    fn deserialize_reader<R: Read>(reader: &mut R) -> std::io::Result<Self> {
        A::deserialize_reader(reader).map(Held)
    }
}

/// The actor's state lent to the journal: the actor and a spare value trade places for the
/// duration of a call (two moves, no clone), and trade back when this drops — even if the
/// call's future is dropped half-way.
pub(crate) struct Lent<'a, A> {
    actor: &'a mut A,
    held: &'a mut Held<A>,
}

impl<'a, A> Lent<'a, A> {
    pub(crate) fn new(actor: &'a mut A, spare: &'a mut Held<A>) -> Self {
        std::mem::swap(actor, &mut spare.0);
        Self { actor, held: spare }
    }

    pub(crate) fn held(&mut self) -> &mut Held<A> {
        self.held
    }
}

impl<A> Drop for Lent<'_, A> {
    fn drop(&mut self) {
        std::mem::swap(self.actor, &mut self.held.0);
    }
}
