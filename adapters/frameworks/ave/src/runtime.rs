//! The runtime the managers run their backends on: the tokio runtime of the caller.

use std::time::Duration;

use persevere_driver::{BlockingWork, Runtime, Task};
use tokio::runtime::Handle;

/// Spawns onto the tokio runtime current at each call (ave-actors is tokio-only), and onto
/// plain threads outside one. A manager built with it is not tied to the runtime it was built
/// in, so it keeps working when the application builds a new runtime.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Ambient;

impl Runtime for Ambient {
    fn spawn(&self, task: Task) {
        match Handle::try_current() {
            Ok(handle) => drop(handle.spawn(task)),
            Err(_) => {
                std::thread::spawn(move || futures::executor::block_on(task));
            }
        }
    }

    fn spawn_blocking(&self, work: BlockingWork) {
        match Handle::try_current() {
            Ok(handle) => drop(handle.spawn_blocking(work)),
            Err(_) => {
                std::thread::spawn(work);
            }
        }
    }

    fn sleep(&self, duration: Duration) -> Task {
        match Handle::try_current() {
            Ok(handle) => {
                let _entered = handle.enter();
                Box::pin(tokio::time::sleep(duration))
            }
            Err(_) => Box::pin(async move { std::thread::sleep(duration) }),
        }
    }
}
