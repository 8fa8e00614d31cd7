//! Blocking on the client's futures from any thread.

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;
use std::time::{Duration, Instant};

struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// The instant `after` from now; a duration too long to represent ends in about 136 years.
pub(crate) fn deadline_after(after: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(after)
        .or_else(|| now.checked_add(Duration::from_secs(u64::from(u32::MAX))))
        .unwrap_or(now)
}

/// Runs `future` on the calling thread until it completes or `deadline` passes, parking the
/// thread while the future waits: `None` when the deadline passed first (the future is dropped
/// unfinished). This is how the store bounds every wait on the server — a silent host or
/// network never holds a caller forever.
///
/// Unlike `futures::executor::block_on`, it does not refuse to run inside another executor's
/// `block_on` (a store opened or executed inline by a caller that blocks on `futures`): the
/// client's futures only wait on the connection thread (and `async-io`'s reactor), which never
/// need this thread.
pub(crate) fn block_on_until<F: Future>(future: F, deadline: Instant) -> Option<F::Output> {
    let mut future = std::pin::pin!(future);
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return Some(output);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        std::thread::park_timeout(left);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_future_that_never_completes_is_given_up_at_the_deadline() {
        let deadline = Instant::now() + Duration::from_millis(20);
        assert_eq!(block_on_until(std::future::pending::<()>(), deadline), None);
        assert!(Instant::now() >= deadline);
        assert_eq!(block_on_until(async { 7 }, deadline), Some(7));
        assert!(deadline_after(Duration::MAX) > Instant::now());
    }
}
