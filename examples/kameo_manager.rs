//! kameo-persistence's quick start on persevere: a manager actor whose sub-actors are restored
//! from their keys, across restarts.
//!
//! Each run restores the manager from DATA_DIR (default: `manager-data`), or creates it when
//! nothing is stored, restores its sub-actors, adds one more sub-actor, saves the manager and
//! prints `sub-actors = N` last: every run prints one more than the one before.
//!
//! As in kameo-persistence, each key is a directory of its own: the manager's is
//! `DATA_DIR/manager/`, and its sub-actors' keys are nested in it
//! (`DATA_DIR/manager/sub-actors/sub-N`). A directory kameo-persistence wrote is read as it is:
//! its `index.bin` snapshots are imported on first open.
//!
//! Run with `cargo run --example kameo_manager -- [DATA_DIR]`.

use std::collections::HashMap;

use kameo::prelude::*;
use persevere_kameo::PersistentActor;
use serde::{Deserialize, Serialize};
use url::Url;

/// The manager: its data and its live sub-actors.
#[derive(Debug, Clone, PersistentActor)]
pub struct ManagerActor {
    /// The manager's own data.
    pub data: String,
    /// The sub-actors by name.
    pub sub_actors: HashMap<String, ActorRef<SubActor>>,
}

/// What the manager is started from, and what its snapshot holds: its data and its
/// sub-actors' keys.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ManagerActorArgs {
    /// The manager's own data.
    pub data: String,
    /// The sub-actors' keys by name.
    pub sub_actors: HashMap<String, Url>,
}

impl From<&ManagerActor> for ManagerActorArgs {
    fn from(actor: &ManagerActor) -> Self {
        Self {
            data: actor.data.clone(),
            sub_actors: actor
                .sub_actors
                .iter()
                .filter_map(|(name, actor_ref)| {
                    PersistentActor::persistence_key(actor_ref).map(|url| (name.clone(), url))
                })
                .collect(),
        }
    }
}

impl Actor for ManagerActor {
    type Args = ManagerActorArgs;
    type Error = anyhow::Error;

    async fn on_start(args: Self::Args, _actor_ref: ActorRef<Self>) -> Result<Self, Self::Error> {
        let mut sub_actors = HashMap::new();
        for (name, url) in args.sub_actors {
            sub_actors.insert(name, SubActor::respawn_persistent(url).await?);
        }
        Ok(Self {
            data: args.data,
            sub_actors,
        })
    }
}

/// A sub-actor, restored from its own key.
#[derive(Debug, Clone, Actor, Serialize, Deserialize, PersistentActor)]
pub struct SubActor {
    /// Its configuration.
    pub config: String,
}

impl From<&SubActor> for SubActor {
    fn from(actor: &SubActor) -> Self {
        actor.clone()
    }
}

/// Spawns a sub-actor under `key`, keeps it, and saves the manager.
struct AddSubActor {
    name: String,
    key: Url,
    config: String,
}

impl Message<AddSubActor> for ManagerActor {
    type Reply = anyhow::Result<()>;

    async fn handle(
        &mut self,
        msg: AddSubActor,
        ctx: &mut Context<Self, Self::Reply>,
    ) -> Self::Reply {
        let config = msg.config;
        let sub = SubActor::spawn_persistent(msg.key, SubActor { config }).await?;
        self.sub_actors.insert(msg.name, sub);
        self.save_snapshot(ctx.actor_ref()).await?;
        Ok(())
    }
}

/// The sub-actors' names and configurations.
struct Describe;

impl Message<Describe> for ManagerActor {
    type Reply = Vec<(String, ActorRef<SubActor>)>;

    async fn handle(&mut self, _: Describe, _: &mut Context<Self, Self::Reply>) -> Self::Reply {
        let mut subs: Vec<_> = self
            .sub_actors
            .iter()
            .map(|(name, sub)| (name.clone(), sub.clone()))
            .collect();
        subs.sort_by(|a, b| a.0.cmp(&b.0));
        subs
    }
}

/// The sub-actor's configuration.
struct Config;

impl Message<Config> for SubActor {
    type Reply = String;

    async fn handle(&mut self, _: Config, _: &mut Context<Self, Self::Reply>) -> String {
        self.config.clone()
    }
}

fn main() -> anyhow::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "manager-data".to_owned());
    std::fs::create_dir_all(&dir)?;
    let dir = std::fs::canonicalize(&dir)?;
    let store = Url::from_directory_path(&dir)
        .map_err(|()| anyhow::anyhow!("the data directory is not absolute"))?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let args = ManagerActorArgs {
            data: "manager".into(),
            sub_actors: HashMap::new(),
        };
        let manager_key = store.join("manager/")?;
        let manager = ManagerActor::try_respawn_persistent(manager_key.clone(), args).await?;
        let subs = manager.ask(Describe).await?;
        for (name, sub) in &subs {
            println!("restored {name}: {}", sub.ask(Config).await?);
        }

        let n = subs.len() + 1;
        let name = format!("sub-{n}");
        let key = manager_key.join("sub-actors/")?.join(&name)?;
        let config = format!("config of run {n}");
        manager
            .ask(AddSubActor { name, key, config })
            .await
            .map_err(|e| anyhow::anyhow!("adding a sub-actor failed: {e}"))?;

        let subs = manager.ask(Describe).await?;
        for (_, sub) in &subs {
            sub.stop_gracefully().await?;
            sub.wait_for_shutdown().await;
        }
        manager.stop_gracefully().await?;
        manager.wait_for_shutdown().await;
        println!("sub-actors = {}", subs.len());
        Ok(())
    })
}
