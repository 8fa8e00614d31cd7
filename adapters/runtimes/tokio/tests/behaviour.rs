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
        count.state().0
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
