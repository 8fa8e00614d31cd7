//! One regression test per defect of ave-actors-store that this adapter must not repeat.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::Ordering;

use async_trait::async_trait;
use ave_actors_actor::{
    Actor, ActorContext, ActorPath, Error as ActorError, Handler, NotPersistentActor,
};
use common::{new_system, start, stop, value, Full, Light, Msg, Resp, Setup};
use persevere_ave::{AdapterError as Error, EncryptedKey, FileManager, MemoryManager};
use persevere_core::{PersistError, RecoveryError, Rejection};
use persevere_memory::Fault;

/// A plain actor whose only child is a counter named `counter`.
#[derive(Clone)]
struct Parent {
    setup: Setup,
}

impl NotPersistentActor for Parent {}

#[async_trait]
impl Actor for Parent {
    type Message = ();
    type Event = ();
    type Response = ();

    fn get_span(id: &str, _parent: Option<tracing::Span>) -> tracing::Span {
        tracing::info_span!("Parent", id)
    }

    async fn pre_start(&mut self, ctx: &mut ActorContext<Self>) -> Result<(), ActorError> {
        use persevere_ave::PersistentActor;
        ctx.create_child("counter", Full::initial(self.setup.clone()))
            .await
            .map(drop)
    }
}

#[async_trait]
impl Handler<Parent> for Parent {
    async fn handle_message(
        &mut self,
        _: ActorPath,
        _: (),
        _: &mut ActorContext<Self>,
    ) -> Result<(), ActorError> {
        Ok(())
    }
}

#[tokio::test]
async fn actors_with_the_same_name_under_different_parents_never_share_a_log() {
    let manager = MemoryManager::default();
    for round in 0..2 {
        let (system, runner) = new_system();
        for parent in ["a", "b"] {
            let setup = Setup::new(manager.clone());
            system
                .create_root_actor(parent, Parent { setup })
                .await
                .unwrap();
        }
        let a = system
            .get_actor::<Full>(&ActorPath::from("/user/a/counter"))
            .await
            .unwrap();
        let b = system
            .get_actor::<Full>(&ActorPath::from("/user/b/counter"))
            .await
            .unwrap();
        if round == 0 {
            a.ask(Msg::Add(1)).await.unwrap();
            a.ask(Msg::Add(2)).await.unwrap();
            b.ask(Msg::Add(10)).await.unwrap();
        }
        assert_eq!(value(&a).await, 3);
        assert_eq!(value(&b).await, 10);
        stop(system, runner).await;
    }
    let memory = manager.memory();
    assert_eq!(memory.head("/user/a/counter/counter"), 2);
    assert_eq!(memory.head("/user/b/counter/counter"), 1);
}

#[tokio::test]
async fn a_rolled_back_light_event_never_reappears_after_restart() {
    let manager = MemoryManager::default();
    let memory = manager.memory().clone();
    let (system, runner) = new_system();
    let counter = start::<_, false>(&system, "light", Setup::new(manager.clone()))
        .await
        .unwrap();
    let counter: ave_actors_actor::ActorRef<Light> = counter;
    counter.ask(Msg::Add(5)).await.unwrap();

    memory.inject(Fault::Reject); // the storage refuses the write
    assert!(counter.ask(Msg::Add(7)).await.is_err());
    memory.inject(Fault::FailBeforeWrite); // the write fails and did not land
    assert!(counter.ask(Msg::Add(8)).await.is_err());
    assert!(counter.ask(Msg::AddThenRefuse(9)).await.is_err()); // apply refuses half-way
    assert!(counter.ask(Msg::Add(common::LIMIT)).await.is_err()); // apply refuses
    assert_eq!(
        counter.ask(Msg::Get).await.unwrap(),
        Resp::Value(5, vec![5])
    );
    counter.ask(Msg::Add(1)).await.unwrap();
    stop(system, runner).await;

    let (system, runner) = new_system();
    let counter: ave_actors_actor::ActorRef<Light> =
        start(&system, "light", Setup::new(manager.clone()))
            .await
            .unwrap();
    assert_eq!(
        counter.ask(Msg::Get).await.unwrap(),
        Resp::Value(6, vec![5, 1])
    );
    assert_eq!(counter.ask(Msg::LastSeq).await.unwrap(), Resp::Seq(2));
    // Each Light snapshot was written in the same atomic append as its event: one per
    // acknowledged event, none for the rolled-back ones (older ones are pruned every few
    // events, not yet here).
    let stream = memory.stream("/user/light/counter").unwrap();
    assert_eq!(
        stream.snapshots.keys().copied().collect::<Vec<_>>(),
        vec![1, 2]
    );
    stop(system, runner).await;
}

#[tokio::test]
async fn a_write_that_landed_before_an_error_is_reported_persisted_and_applied_once() {
    for light in [false, true] {
        let manager = MemoryManager::default();
        let memory = manager.memory().clone();
        let (system, runner) = new_system();
        let setup = Setup::new(manager.clone());
        let (get, last_seq) = if light {
            let counter: ave_actors_actor::ActorRef<Light> =
                start(&system, "c", setup).await.unwrap();
            counter.ask(Msg::Add(1)).await.unwrap();
            memory.inject(Fault::FailAfterWrite);
            counter.ask(Msg::Add(2)).await.unwrap();
            (
                counter.ask(Msg::Get).await.unwrap(),
                counter.ask(Msg::LastSeq).await.unwrap(),
            )
        } else {
            let counter: ave_actors_actor::ActorRef<Full> =
                start(&system, "c", setup).await.unwrap();
            counter.ask(Msg::Add(1)).await.unwrap();
            memory.inject(Fault::FailAfterWrite);
            counter.ask(Msg::Add(2)).await.unwrap();
            (
                counter.ask(Msg::Get).await.unwrap(),
                counter.ask(Msg::LastSeq).await.unwrap(),
            )
        };
        assert_eq!(get, Resp::Value(3, vec![1, 2]), "light: {light}");
        assert_eq!(last_seq, Resp::Seq(2));
        stop(system, runner).await;
        assert_eq!(memory.head("/user/c/counter"), 2);
    }
}

#[tokio::test]
async fn a_write_whose_outcome_is_unknown_stops_the_store_instead_of_guessing() {
    let manager = MemoryManager::default();
    let memory = manager.memory().clone();
    let (system, runner) = new_system();
    let counter: ave_actors_actor::ActorRef<Full> =
        start(&system, "c", Setup::new(manager.clone()))
            .await
            .unwrap();
    counter.ask(Msg::Add(1)).await.unwrap();
    // The write lands, then every re-read fails: the outcome cannot be learnt.
    memory.inject(Fault::FailAfterWrite);
    for _ in 0..5 {
        memory.inject(Fault::FailRead);
    }
    let error = counter.ask(Msg::Add(2)).await.unwrap_err();
    assert!(error.to_string().contains("landed: None"), "{error}");
    // No retry can apply it twice: the blind retry recovers the actor from the log, which
    // holds the write, and is refused; the actor now shows it, and goes on without a restart.
    let refused = counter.ask(Msg::Add(2)).await.unwrap_err();
    assert!(refused.to_string().contains("had landed"), "{refused}");
    assert_eq!(
        counter.ask(Msg::Get).await.unwrap(),
        Resp::Value(3, vec![1, 2])
    );
    stop(system, runner).await;

    let (system, runner) = new_system();
    let counter: ave_actors_actor::ActorRef<Full> =
        start(&system, "c", Setup::new(manager)).await.unwrap();
    assert_eq!(
        counter.ask(Msg::Get).await.unwrap(),
        Resp::Value(3, vec![1, 2])
    );
    stop(system, runner).await;
}

#[tokio::test]
async fn persist_does_not_clone_the_actor() {
    let setup = Setup::new(MemoryManager::default());
    let clones = setup.clones.clone();
    let (system, runner) = new_system();
    let counter: ave_actors_actor::ActorRef<Full> = start(&system, "c", setup).await.unwrap();
    let before = clones.load(Ordering::SeqCst);
    for _ in 0..50 {
        counter.ask(Msg::Add(1)).await.unwrap(); // with a snapshot every 3 events
    }
    counter.ask(Msg::AddAll(vec![1, 2, 3])).await.unwrap();
    assert_eq!(value(&counter).await, 56);
    assert_eq!(clones.load(Ordering::SeqCst), before);
    stop(system, runner).await;
}

#[tokio::test]
async fn records_copied_to_another_stream_fail_with_a_typed_error() {
    let manager = MemoryManager::default();
    let memory = manager.memory().clone();
    let key = EncryptedKey::new(&[9; 32]).unwrap();
    let (system, runner) = new_system();
    for (name, n) in [("a", 1), ("b", 2)] {
        let counter: ave_actors_actor::ActorRef<Full> =
            start(&system, name, Setup::new(manager.clone()).key(key.clone()))
                .await
                .unwrap();
        counter.ask(Msg::Add(n)).await.unwrap();
    }
    stop(system, runner).await;

    // b's first event replaced by a's, byte for byte: same key, same seq, other stream (and
    // the snapshot the stop wrote set aside, so recovery reads the event).
    memory.with_store(|store| {
        let a = store.stream("/user/a/counter").unwrap().events[&1].clone();
        let b = store.stream_mut("/user/b/counter");
        b.events.insert(1, a);
        b.snapshots.clear();
    });
    let (system, runner) = new_system();
    let setup = Setup::new(manager.clone()).key(key.clone());
    assert!(start::<_, false>(&system, "b", setup.clone())
        .await
        .map(|_: ave_actors_actor::ActorRef<Full>| ())
        .is_err());
    match setup.start_error() {
        Some(Error::Recover {
            source: persevere_driver::Error::Recovery(RecoveryError::Open { seq: 1, .. }),
            ..
        }) => {}
        other => panic!("expected an open error, got {other:?}"),
    }

    // A wrong key is an error too, never an empty actor.
    let setup = Setup::new(manager).key(EncryptedKey::new(&[1; 32]).unwrap());
    assert!(start::<_, false>(&system, "a", setup.clone())
        .await
        .map(|_: ave_actors_actor::ActorRef<Full>| ())
        .is_err());
    assert!(matches!(
        setup.start_error(),
        Some(Error::Recover {
            source: persevere_driver::Error::Recovery(RecoveryError::Open { .. }),
            ..
        })
    ));
    stop(system, runner).await;
}

#[tokio::test]
async fn a_corrupt_record_fails_the_start_instead_of_starting_fresh() {
    let manager = MemoryManager::default();
    let (system, runner) = new_system();
    let counter: ave_actors_actor::ActorRef<Full> =
        start(&system, "c", Setup::new(manager.clone()))
            .await
            .unwrap();
    counter.ask(Msg::Add(4)).await.unwrap();
    stop(system, runner).await;
    manager.memory().with_store(|store| {
        let stream = store.stream_mut("/user/c/counter");
        // The snapshot the stop wrote is set aside, so recovery reads the event.
        stream.snapshots.clear();
        let event = stream.events.get_mut(&1).unwrap();
        let last = event.len() - 1;
        event.make_mut()[last] ^= 0x40;
    });
    let (system, runner) = new_system();
    let setup = Setup::new(manager);
    assert!(start::<_, false>(&system, "c", setup.clone())
        .await
        .map(|_: ave_actors_actor::ActorRef<Full>| ())
        .is_err());
    assert!(
        matches!(
            setup.start_error(),
            Some(Error::Recover {
                source: persevere_driver::Error::Recovery(RecoveryError::Corrupt { seq: 1, .. }),
                ..
            })
        ),
        "{:?}",
        setup.start_error()
    );
    stop(system, runner).await;
}

#[tokio::test]
async fn a_damaged_file_journal_fails_to_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let manager = FileManager::open_or_create(dir.path()).unwrap();
        let (system, runner) = new_system();
        let counter: ave_actors_actor::ActorRef<Full> =
            start(&system, "c", Setup::new(manager)).await.unwrap();
        for n in 1..=5 {
            counter.ask(Msg::Add(n)).await.unwrap();
        }
        stop(system, runner).await;
    }
    let segment = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.extension().is_some_and(|e| e == "log"))
        .unwrap();
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes[40] ^= 0xff; // inside the first frame, with intact frames after it
    std::fs::write(&segment, bytes).unwrap();
    match FileManager::open(dir.path()) {
        Err(Error::Open(reason)) => assert!(reason.contains("corrupt"), "{reason}"),
        other => panic!("expected a corruption error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_live_stream_has_one_store() {
    let manager = MemoryManager::default();
    // Two systems, one manager, one actor path.
    let (one, one_runner) = new_system();
    let (two, two_runner) = new_system();
    let first: ave_actors_actor::ActorRef<Full> =
        start(&one, "c", Setup::new(manager.clone())).await.unwrap();
    let setup = Setup::new(manager.clone());
    assert!(start::<_, false>(&two, "c", setup.clone())
        .await
        .map(|_: ave_actors_actor::ActorRef<Full>| ())
        .is_err());
    assert!(matches!(
        setup.start_error(),
        Some(Error::AlreadyStarted { .. })
    ));

    // Two actors, one prefix.
    let setup = Setup::new(manager.clone()).prefix("shared");
    let _x: ave_actors_actor::ActorRef<Full> = start(&one, "x", setup.clone()).await.unwrap();
    let setup = Setup::new(manager.clone()).prefix("shared");
    assert!(start::<_, false>(&one, "y", setup.clone())
        .await
        .map(|_: ave_actors_actor::ActorRef<Full>| ())
        .is_err());
    assert!(matches!(
        setup.start_error(),
        Some(Error::AlreadyStarted { .. })
    ));

    // Once the first owner stops, the stream is free again.
    first.ask(Msg::Add(3)).await.unwrap();
    first.ask_stop().await.unwrap();
    let second: ave_actors_actor::ActorRef<Full> =
        start(&two, "c", Setup::new(manager.clone())).await.unwrap();
    assert_eq!(value(&second).await, 3);
    stop(one, one_runner).await;
    stop(two, two_runner).await;
}

#[test]
fn persist_errors_keep_their_type() {
    let error = Error::Persist {
        stream: "/user/c/counter".into(),
        source: persevere_driver::Error::Persist(PersistError::Rejected(Rejection::Empty)),
    };
    let actor: ActorError = error.clone().into();
    assert!(matches!(
        actor,
        ActorError::StoreOperation { ref operation, ref reason }
            if operation == "persist" && reason == &error.to_string()
    ));
}
