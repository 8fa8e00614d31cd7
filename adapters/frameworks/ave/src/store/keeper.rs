//! The child actor that ties a store's lifetime to its actor's.

use async_trait::async_trait;
use ave_actors_actor::{
    Actor, ActorContext, ActorPath, Error as ActorError, Handler, NotPersistentActor,
};

use crate::store::registry::Registry;

/// The child `store` actor: ave stops it with its parent (or drops it when the runtime goes
/// away), and its stop or drop releases the parent's store and the stream it owns.
pub(crate) struct Keeper {
    pub(crate) registry: Registry,
    pub(crate) parent: ActorPath,
    pub(crate) id: u64,
}

impl NotPersistentActor for Keeper {}

#[async_trait]
impl Actor for Keeper {
    type Message = ();
    type Event = ();
    type Response = ();

    fn get_span(id: &str, parent: Option<tracing::Span>) -> tracing::Span {
        tracing::debug_span!(parent: parent.and_then(|span| span.id()), "store", id)
    }

    /// Releases the store before the stop is acknowledged, so the stream is free as soon as
    /// the parent's stop returns.
    async fn post_stop(&mut self, _ctx: &mut ActorContext<Self>) -> Result<(), ActorError> {
        self.registry.release(&self.parent, self.id);
        Ok(())
    }
}

#[async_trait]
impl Handler<Keeper> for Keeper {
    async fn handle_message(
        &mut self,
        _sender: ActorPath,
        _msg: (),
        _ctx: &mut ActorContext<Keeper>,
    ) -> Result<(), ActorError> {
        Ok(())
    }
}

impl Drop for Keeper {
    fn drop(&mut self) {
        tracing::debug!(actor = %self.parent, "store released");
        self.registry.release(&self.parent, self.id);
    }
}
