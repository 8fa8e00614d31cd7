//! The driver's behaviour suite on tokio, current-thread and multi-thread, and on the runtime
//! current at each call.

fn current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn multi_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

mod current_thread {
    mod suite {
        persevere_driver::behaviour_suite!(
            |future| crate::current_thread_runtime().block_on(future),
            persevere_tokio::Tokio::current()
        );
    }
}

mod multi_thread {
    mod suite {
        persevere_driver::behaviour_suite!(
            |future| crate::multi_thread_runtime().block_on(future),
            persevere_tokio::Tokio::current()
        );
    }
}

mod ambient {
    mod suite {
        persevere_driver::behaviour_suite!(
            |future| crate::multi_thread_runtime().block_on(future),
            persevere_tokio::Tokio::ambient()
        );
    }

    use persevere_core::{Entity, JournalConfig};
    use persevere_driver::{Backend, Persistent};
    use persevere_memory::Memory;
    use persevere_tokio::Tokio;

    #[derive(Default, borsh::BorshSerialize, borsh::BorshDeserialize)]
    struct Count(u64);

    impl Entity for Count {
        type Event = u64;
        type Error = String;
        fn apply(&mut self, n: &u64) -> Result<(), String> {
            self.0 += n;
            Ok(())
        }
    }

    async fn add_one(backend: &Backend) -> u64 {
        let mut count = Persistent::<Count>::open(backend, JournalConfig::new("c"), Count::default)
            .await
            .expect("opens");
        count.persist(1).await.expect("persists");
        count.state().expect("settled").0
    }

    /// One backend outlives the runtimes it ran on, and works outside any.
    #[test]
    fn a_backend_outlives_its_runtimes() {
        let backend = Backend::new(Tokio::ambient(), Memory::new());
        for expected in 1..=2 {
            let runtime = crate::current_thread_runtime();
            assert_eq!(runtime.block_on(add_one(&backend)), expected);
        }
        assert_eq!(futures::executor::block_on(add_one(&backend)), 3);
    }
}

/// A runtime that has shut down refuses blocking work: the backend's commit task is dropped
/// unrun. Its command fails instead of hanging, and the backend, tied to no runtime, serves
/// the next command.
mod shutdown {
    use persevere_core::{Command, CommandId, StorageError};
    use persevere_driver::Backend;
    use persevere_memory::Memory;
    use persevere_tokio::Tokio;

    fn read(id: u64) -> Command {
        Command::ReadEvents {
            id: CommandId(id),
            from: 1,
            limit: 1,
        }
    }

    #[test]
    fn a_shut_down_runtime_fails_the_command_instead_of_hanging() {
        let runtime = crate::multi_thread_runtime();
        let backend = Backend::new(Tokio::from_handle(runtime.handle().clone()), Memory::new());
        assert!(runtime
            .block_on(backend.execute("s".into(), read(1)))
            .is_ok());
        runtime.shutdown_background();
        for id in 2..=3 {
            let outcome = futures::executor::block_on(backend.execute("s".into(), read(id)));
            assert!(
                matches!(&outcome, Err(StorageError::Failed(reason)) if reason.contains("commit task")),
                "{outcome:?}"
            );
        }
    }

    #[test]
    fn an_ambient_backend_survives_a_runtime_shutting_down() {
        let backend = Backend::new(Tokio::ambient(), Memory::new());
        let runtime = crate::current_thread_runtime();
        let handle = runtime.handle().clone();
        runtime.shutdown_background();
        // Inside the shut-down runtime's context, `Tokio::ambient` finds it and tokio drops the
        // blocking work.
        let outcome = {
            let _entered = handle.enter();
            futures::executor::block_on(backend.execute("s".into(), read(1)))
        };
        assert!(
            matches!(outcome, Err(StorageError::Failed(_))),
            "{outcome:?}"
        );
        // Outside it, the backend runs on plain threads again.
        assert!(futures::executor::block_on(backend.execute("s".into(), read(2))).is_ok());
    }
}

/// A long recovery lets the other tasks of a current-thread runtime run between its pages.
mod long_recovery {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    use persevere_core::{Entity, JournalConfig};
    use persevere_driver::{Backend, Persistent};
    use persevere_memory::Memory;
    use persevere_tokio::Tokio;

    #[derive(Default, borsh::BorshSerialize, borsh::BorshDeserialize)]
    struct Count(u64);

    impl Entity for Count {
        type Event = u64;
        type Error = String;
        fn apply(&mut self, n: &u64) -> Result<(), String> {
            self.0 += n;
            Ok(())
        }
    }

    const PAGE: usize = 50;
    const PAGES: u64 = 20;

    /// Recovers `config`'s counter from `backend` while another task counts every turn it
    /// gets; returns the recovered value and how many turns the task had meanwhile.
    async fn recover_while_ticking(backend: &Backend, config: JournalConfig) -> (u64, u64) {
        let ticks = Arc::new(AtomicU64::new(0));
        let ticker = {
            let ticks = Arc::clone(&ticks);
            tokio::spawn(async move {
                loop {
                    ticks.fetch_add(1, Ordering::Relaxed);
                    tokio::task::yield_now().await;
                }
            })
        };
        let recovered = Persistent::<Count>::open(backend, config, Count::default)
            .await
            .expect("recovers");
        // Read before this task yields again: every tick happened during the replay.
        let during = ticks.load(Ordering::Relaxed);
        ticker.abort();
        (recovered.state().expect("settled").0, during)
    }

    #[test]
    fn a_concurrent_task_ticks_between_the_pages_of_a_replay() {
        let runtime = crate::current_thread_runtime();
        runtime.block_on(async {
            let backend = Backend::inline(Tokio::current(), Memory::new());
            let config = || {
                JournalConfig::new("long")
                    .snapshot_every(None)
                    .read_batch(PAGE)
            };
            let mut count = Persistent::<Count>::open(&backend, config(), Count::default)
                .await
                .expect("opens");
            for _ in 0..PAGES {
                count.persist_all(vec![1; PAGE]).await.expect("persists");
            }
            drop(count);

            let (recovered, during) = recover_while_ticking(&backend, config()).await;
            assert_eq!(recovered, PAGES * PAGE as u64);
            assert!(
                during >= PAGES - 1,
                "the ticker ran {during} times during a replay of {PAGES} pages"
            );
        });
    }

    /// One page of eight slices is applied a slice at a time, and the executor runs another
    /// task between slices: counted by interleavings, not by time.
    #[test]
    fn a_concurrent_task_ticks_within_one_long_page() {
        const EVENTS: u64 = 8 * persevere_driver::REPLAY_SLICE as u64;
        let runtime = crate::current_thread_runtime();
        runtime.block_on(async {
            let backend = Backend::inline(Tokio::current(), Memory::new());
            let config = || {
                JournalConfig::new("one-page")
                    .snapshot_every(None)
                    .read_batch(EVENTS as usize)
            };
            let mut count = Persistent::<Count>::open(&backend, config(), Count::default)
                .await
                .expect("opens");
            for _ in 0..EVENTS / 512 {
                count.persist_all(vec![1; 512]).await.expect("persists");
            }
            drop(count);

            let (recovered, during) = recover_while_ticking(&backend, config()).await;
            assert_eq!(recovered, EVENTS);
            let boundaries = EVENTS / persevere_driver::REPLAY_SLICE as u64 - 1;
            assert!(
                during >= boundaries,
                "the ticker ran {during} times during a one-page replay of {EVENTS} events \
                 ({boundaries} slice boundaries)"
            );
        });
    }
}
