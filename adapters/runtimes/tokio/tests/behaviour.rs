//! The driver's behaviour suite on tokio, current-thread and multi-thread.

mod current_thread {
    mod suite {
        persevere_driver::behaviour_suite!(
            |future| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a tokio runtime")
                    .block_on(future)
            },
            persevere_tokio::Tokio::current()
        );
    }
}

mod multi_thread {
    mod suite {
        persevere_driver::behaviour_suite!(
            |future| {
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("a tokio runtime")
                    .block_on(future)
            },
            persevere_tokio::Tokio::current()
        );
    }
}
