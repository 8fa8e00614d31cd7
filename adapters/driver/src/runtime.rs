//! What an executor supplies to the driver: spawn, spawn_blocking and a timer.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// A boxed, sendable future with no output: a spawned task or a timer.
pub type Task = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// A blocking closure to run on the executor's blocking pool.
pub type BlockingWork = Box<dyn FnOnce() + Send + 'static>;

/// The three things the driver needs from an executor — spawn, spawn_blocking and a timer —
/// and one it may offer, [`block_in_place`](Self::block_in_place). Runtime adapters
/// (`persevere-tokio`, `persevere-smol`, `persevere-async-std`) implement it and nothing else.
///
/// ```
/// use std::time::Duration;
/// use persevere_driver::{BlockingWork, Runtime, Task};
///
/// /// Runs everything on fresh threads (for illustration only).
/// struct Threads;
///
/// impl Runtime for Threads {
///     fn spawn(&self, task: Task) {
///         std::thread::spawn(move || futures::executor::block_on(task));
///     }
///     fn spawn_blocking(&self, work: BlockingWork) {
///         std::thread::spawn(work);
///     }
///     fn sleep(&self, duration: Duration) -> Task {
///         Box::pin(async move { std::thread::sleep(duration) })
///     }
/// }
/// # let _ = Threads.sleep(Duration::ZERO);
/// ```
pub trait Runtime: Send + Sync + 'static {
    /// Runs `task` to completion in the background.
    fn spawn(&self, task: Task);
    /// Runs `work` on a thread where blocking is allowed, never on an async worker thread.
    fn spawn_blocking(&self, work: BlockingWork);
    /// A future that completes after `duration`.
    fn sleep(&self, duration: Duration) -> Task;

    /// Runs `work` on the calling thread **if this executor can let that thread block without
    /// holding up its other tasks**, and says whether it did; otherwise returns `false` at
    /// once, without running it.
    ///
    /// tokio's multi-thread runtime can (`tokio::task::block_in_place` hands the worker's other
    /// tasks to another thread first). The driver uses it for a command that finds a durable
    /// backend idle ([`Execution::InPlace`](crate::Execution::InPlace), the default): its write
    /// and sync then run without the two thread hand-offs of the blocking pool. The default
    /// implementation, right for every executor that cannot, returns `false`, and the command
    /// goes to [`spawn_blocking`](Self::spawn_blocking).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use persevere_driver::{BlockingWork, Runtime, Task};
    /// # struct Threads;
    /// # impl Runtime for Threads {
    /// #     fn spawn(&self, task: Task) { std::thread::spawn(move || futures::executor::block_on(task)); }
    /// #     fn spawn_blocking(&self, work: BlockingWork) { std::thread::spawn(work); }
    /// #     fn sleep(&self, d: Duration) -> Task { Box::pin(async move { std::thread::sleep(d) }) }
    /// # }
    /// let mut ran = false;
    /// assert!(!Threads.block_in_place(&mut || ran = true));
    /// assert!(!ran);
    /// ```
    fn block_in_place(&self, work: &mut dyn FnMut()) -> bool {
        let _ = work;
        false
    }
}

/// A shared runtime is a runtime, so an `Arc<dyn Runtime>` can be passed where one is wanted.
impl<R: Runtime + ?Sized> Runtime for std::sync::Arc<R> {
    fn spawn(&self, task: Task) {
        (**self).spawn(task);
    }

    fn spawn_blocking(&self, work: BlockingWork) {
        (**self).spawn_blocking(work);
    }

    fn sleep(&self, duration: Duration) -> Task {
        (**self).sleep(duration)
    }

    fn block_in_place(&self, work: &mut dyn FnMut()) -> bool {
        (**self).block_in_place(work)
    }
}
