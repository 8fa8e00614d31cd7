//! # persevere-tokio
//!
//! Runs persevere's async driver on [tokio](https://tokio.rs): [`Tokio`] supplies spawn,
//! spawn_blocking and a timer, and nothing else. The runtime needs its time driver
//! (`enable_time` or `enable_all`).
//!
//! ```
//! use persevere_core::{Entity, JournalConfig};
//! use persevere_driver::{Backend, Persistent};
//! use persevere_memory::Memory;
//! use persevere_tokio::Tokio;
//!
//! #[derive(Default, borsh::BorshSerialize, borsh::BorshDeserialize)]
//! struct Counter { value: u64 }
//!
//! impl Entity for Counter {
//!     type Event = u64;
//!     type Error = String;
//!     fn apply(&mut self, n: &u64) -> Result<(), String> { self.value += n; Ok(()) }
//! }
//!
//! let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
//! runtime.block_on(async {
//!     let backend = Backend::inline(Tokio::current(), Memory::new());
//!     let mut counter = Persistent::<Counter>::open(&backend, JournalConfig::new("counter"), Counter::default).await?;
//!     counter.persist(1).await?;
//!     assert_eq!(counter.state()?.value, 1);
//!     Ok::<(), persevere_driver::Error>(())
//! }).unwrap();
//! ```
#![forbid(unsafe_code)]

use std::time::Duration;

use persevere_driver::{BlockingWork, Runtime, Task};
use tokio::runtime::{Handle, RuntimeFlavor};

/// The names tokio gives the threads of a runtime unless its builder names them otherwise
/// (`tokio-rt-worker` today, `tokio-runtime-worker` before tokio 1.50).
const TOKIO_THREAD_NAMES: [&str; 2] = ["tokio-rt-worker", "tokio-runtime-worker"];

/// The tokio [`Runtime`]: tasks, blocking work and timers on one tokio runtime, or on
/// whichever runtime is current at each call ([`Tokio::ambient`]).
#[derive(Debug, Clone)]
pub struct Tokio {
    /// `None`: the runtime current at each call.
    handle: Option<Handle>,
}

impl Tokio {
    /// The runtime the calling code runs in. Panics outside a tokio runtime.
    pub fn current() -> Self {
        Self::from_handle(Handle::current())
    }

    /// The runtime behind `handle`.
    pub fn from_handle(handle: Handle) -> Self {
        Self {
            handle: Some(handle),
        }
    }

    /// The runtime current at each call, and plain threads outside any. A backend built on it
    /// is tied to no runtime: it keeps working when the application drops a runtime and builds
    /// another (tests do, one per test), and from synchronous code outside one.
    ///
    /// ```
    /// use persevere_driver::Backend;
    /// use persevere_memory::Memory;
    /// use persevere_tokio::Tokio;
    ///
    /// let backend = Backend::new(Tokio::ambient(), Memory::new()); // no runtime needed yet
    /// for _ in 0..2 {
    ///     let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    ///     runtime.block_on(async { /* the backend runs on this runtime */ });
    /// }
    /// # drop(backend);
    /// ```
    pub fn ambient() -> Self {
        Self { handle: None }
    }

    fn handle(&self) -> Option<Handle> {
        match &self.handle {
            Some(handle) => Some(handle.clone()),
            None => Handle::try_current().ok(),
        }
    }
}

impl Runtime for Tokio {
    fn spawn(&self, task: Task) {
        match self.handle() {
            Some(handle) => drop(handle.spawn(task)),
            None => {
                std::thread::spawn(move || futures::executor::block_on(task));
            }
        }
    }

    fn spawn_blocking(&self, work: BlockingWork) {
        match self.handle() {
            Some(handle) => drop(handle.spawn_blocking(work)),
            None => {
                std::thread::spawn(work);
            }
        }
    }

    /// On a thread of a multi-thread runtime, runs `work` through
    /// [`tokio::task::block_in_place`] — which first hands the worker's other tasks to another
    /// thread — and returns `true`; elsewhere returns `false` without running it.
    ///
    /// "A thread of a multi-thread runtime" is recognised by the runtime current on it being
    /// multi-thread and by the thread's name being tokio's default (`tokio-rt-worker`):
    /// tokio panics when asked to block in place on other threads of a runtime, such as the
    /// thread of `block_on`, inside a `LocalSet`, or a current-thread runtime's. A runtime
    /// whose builder renames its threads, and the future given to `block_on` (an
    /// `async fn main`), therefore send their commands to the blocking pool instead.
    ///
    /// ```
    /// use persevere_driver::Runtime;
    /// use persevere_tokio::Tokio;
    ///
    /// let multi = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    /// let in_place = multi.block_on(async {
    ///     tokio::spawn(async { Tokio::current().block_in_place(&mut || ()) }).await.unwrap()
    /// });
    /// assert!(in_place);
    /// let single = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    /// assert!(!single.block_on(async { Tokio::current().block_in_place(&mut || ()) }));
    /// ```
    fn block_in_place(&self, work: &mut dyn FnMut()) -> bool {
        let multi_thread = Handle::try_current()
            .is_ok_and(|handle| handle.runtime_flavor() == RuntimeFlavor::MultiThread);
        let tokio_thread = std::thread::current()
            .name()
            .is_some_and(|name| TOKIO_THREAD_NAMES.contains(&name));
        if !multi_thread || !tokio_thread {
            return false;
        }
        tokio::task::block_in_place(work);
        true
    }

    fn sleep(&self, duration: Duration) -> Task {
        match self.handle() {
            Some(handle) => {
                let _entered = handle.enter();
                Box::pin(tokio::time::sleep(duration))
            }
            // Outside a runtime the caller blocks on the future anyway.
            None => Box::pin(async move { std::thread::sleep(duration) }),
        }
    }
}
