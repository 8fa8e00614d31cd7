//! What the file store repairs at open reaches the kameo layer: [`persevere_kameo::repairs`]
//! and `Journaled::repairs` name it, and a `?strict` key refuses to open a store that needs
//! repair instead.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::path::Path;

use common::file_key;
use persevere_kameo::Journaled;

/// Appends bytes that look like an interrupted write to the store's newest segment.
fn tear_the_tail(dir: &Path) {
    let mut segments: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    segments.sort();
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(segments.last().unwrap())
        .unwrap();
    file.write_all(&[0x5a; 7]).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repairs_reach_kameo_and_a_strict_key_refuses_them() {
    let dir = tempfile::tempdir().unwrap();
    let key = file_key(dir.path(), "counter");
    let mut count = Journaled::<common::Count>::open(&key, common::Count::default)
        .await
        .unwrap();
    count.persist(2).await.unwrap();
    assert!(count.repairs().is_empty());
    assert!(persevere_kameo::repairs(&key).await.unwrap().is_empty());
    // The store closes with its last handle.
    drop(count);
    persevere_kameo::release_store(&key).unwrap();
    tear_the_tail(dir.path());

    // Strict: refused, nothing changed.
    let mut strict = key.clone();
    strict.set_query(Some("strict"));
    let error = Journaled::<common::Count>::open(&strict, common::Count::default)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("needs repair"), "{error}");
    assert!(persevere_kameo::repairs(&strict).await.is_err());

    // Not strict: repaired, reported, and the events are all there.
    let repairs = persevere_kameo::repairs(&key).await.unwrap();
    assert_eq!(repairs.len(), 1, "{repairs:?}");
    assert!(repairs[0].kept_at.is_some(), "{repairs:?}");
    let count = Journaled::<common::Count>::open(&key, common::Count::default)
        .await
        .unwrap();
    assert_eq!(count.state().expect("settled").0, 2);
    assert_eq!(count.repairs(), repairs);
}

/// A memory store that reports repairs, as a file store does after setting data aside.
struct Repaired {
    memory: persevere_memory::Memory,
    repairs: Vec<persevere_core::Repair>,
}

impl persevere_core::Store for Repaired {
    fn execute(
        &mut self,
        batch: Vec<persevere_core::StreamCommand>,
    ) -> Vec<persevere_core::CommandResult> {
        self.memory.execute(batch)
    }

    fn repairs(&self) -> &[persevere_core::Repair] {
        &self.repairs
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn try_respawn_never_starts_fresh_over_data_the_store_set_aside() {
    use persevere_kameo::{Error, PersistentActor};

    persevere_kameo::register_scheme("repaired", |_, runtime| {
        let repairs = vec![
            persevere_core::Repair::new("cut a torn tail", None, vec!["lost".into()]),
            persevere_core::Repair::new("set a stray file aside", None, Vec::new()),
        ];
        let store = Repaired {
            memory: persevere_memory::Memory::new(),
            repairs,
        };
        Ok(persevere_driver::Backend::inline(runtime.clone(), store))
    });
    let lost = common::key("repaired://s/lost");
    let error = common::typed(
        common::Profile::try_respawn_persistent(lost.clone(), common::profile("a")).await,
    );
    assert_eq!(error, Error::Repaired(lost.clone()));
    assert_eq!(persevere_kameo::key_repairs(&lost).await.unwrap().len(), 2);

    // A repair naming no stream does not block a new key; an explicit spawn is obeyed.
    let other = common::key("repaired://s/other");
    let fresh = common::Profile::try_respawn_persistent(other, common::profile("b"))
        .await
        .unwrap();
    common::stop(&fresh).await;
    let spawned = common::Profile::spawn_persistent(lost, common::profile("c"))
        .await
        .unwrap();
    assert_eq!(spawned.ask(common::Visits).await.unwrap(), 0);
    common::stop(&spawned).await;
}
