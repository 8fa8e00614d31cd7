//! An actor's store, shared by the actor (its persists) and the tasks that serve it (its
//! `store` child's commands, the stop snapshot).
//!
//! An async lock, because a persist holds the store across the write. The actor takes it on
//! every persist, so its way in is two atomic operations when nobody else waits; the others
//! take turns before it: while one of them waits for the store or holds it, the actor's next
//! [`lock`](Shared::lock) waits until it is done. So a command of the child is served at the
//! actor's next release, even while the actor persists in a loop.

use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::lock::{Mutex, MutexGuard};
use tokio::sync::Notify;

/// A value (an actor's [`Slot`](crate::store::slot::Slot)) shared by an actor and other tasks.
pub(crate) struct Shared<T> {
    slot: Mutex<T>,
    /// Tasks other than the actor waiting for the store or holding it.
    others: AtomicUsize,
    /// Told when one of them is done.
    done: Notify,
}

impl<T> Shared<T> {
    pub(crate) fn new(slot: T) -> Self {
        Self {
            slot: Mutex::new(slot),
            others: AtomicUsize::new(0),
            done: Notify::new(),
        }
    }

    /// Locks the store for the actor: at once when nobody else waits for it or holds it (the
    /// common case), else after them.
    pub(crate) async fn lock(&self) -> MutexGuard<'_, T> {
        match self.try_lock() {
            Some(guard) => guard,
            None => self.lock_after_others().await,
        }
    }

    /// The actor's [`lock`](Self::lock) when it needs no wait: on the hot path, a caller
    /// tries this first and makes the future of [`lock_after_others`](Self::lock_after_others)
    /// only when it fails.
    #[inline]
    pub(crate) fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        if self.others.load(Ordering::Acquire) == 0 {
            self.slot.try_lock()
        } else {
            None
        }
    }

    /// The actor's lock when [`try_lock`](Self::try_lock) failed: after every other task
    /// counted, then as the lock comes free. Boxed, so that the futures of its callers hold only
    /// the common path.
    pub(crate) fn lock_after_others(&self) -> Pin<Box<impl Future<Output = MutexGuard<'_, T>>>> {
        Box::pin(async move {
            loop {
                let mut done = pin!(self.done.notified());
                // Registered before the count is read, so that an end in between is not missed.
                done.as_mut().enable();
                if self.others.load(Ordering::Acquire) == 0 {
                    return self.slot.lock().await;
                }
                done.await;
            }
        })
    }

    /// Locks the store for a task other than the actor, ahead of the actor's next lock.
    pub(crate) async fn lock_other(&self) -> OtherGuard<'_, T> {
        let turn = Turn::take(self);
        let guard = self.slot.lock().await;
        OtherGuard { guard, _turn: turn }
    }
}

/// The store, locked by a task other than the actor ([`Shared::lock_other`]).
pub(crate) struct OtherGuard<'a, T> {
    // Released before the turn ends (fields drop in order), so that the actor finds it free.
    guard: MutexGuard<'a, T>,
    _turn: Turn<'a, T>,
}

impl<T> Deref for OtherGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T> DerefMut for OtherGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.guard
    }
}

/// A task other than the actor counted among those the actor waits for, from before it waits
/// for the store until it released it (or stopped waiting: a dropped wait ends its turn too).
struct Turn<'a, T>(&'a Shared<T>);

impl<'a, T> Turn<'a, T> {
    fn take(shared: &'a Shared<T>) -> Self {
        shared.others.fetch_add(1, Ordering::AcqRel);
        Self(shared)
    }
}

impl<T> Drop for Turn<'_, T> {
    fn drop(&mut self) {
        self.0.others.fetch_sub(1, Ordering::AcqRel);
        self.0.done.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll, Waker};

    use super::*;

    /// Polls `future` once.
    fn poll<F: Future>(future: Pin<&mut F>) -> Poll<F::Output> {
        future.poll(&mut Context::from_waker(Waker::noop()))
    }

    #[test]
    fn a_waiting_other_goes_before_the_actors_next_lock() {
        let shared = Shared::new(0);
        let mut actor = poll(pin!(shared.lock())).into_ready();
        let mut other = pin!(shared.lock_other());
        assert!(poll(other.as_mut()).is_pending(), "the actor holds it");
        *actor += 1;
        drop(actor);
        // Free, but the other waits: the actor's next lock waits for it.
        let mut next = pin!(shared.lock());
        assert!(poll(next.as_mut()).is_pending());
        let Poll::Ready(mut served) = poll(other.as_mut()) else {
            panic!("the other was not served at the actor's release");
        };
        assert!(poll(next.as_mut()).is_pending(), "the other holds it");
        assert_eq!(*served, 1);
        *served += 1;
        drop(served);
        let Poll::Ready(guard) = poll(next.as_mut()) else {
            panic!("the actor did not get it back when the other was done");
        };
        assert_eq!(*guard, 2);
    }

    #[test]
    fn an_other_that_stops_waiting_lets_the_actor_in() {
        let shared = Shared::new(0);
        let actor = poll(pin!(shared.lock())).into_ready();
        {
            let mut other = pin!(shared.lock_other());
            assert!(poll(other.as_mut()).is_pending());
            drop(actor);
        }
        // The other's wait was dropped before it was served: nobody is ahead of the actor.
        assert!(poll(pin!(shared.lock())).is_ready());
    }

    trait IntoReady<T> {
        fn into_ready(self) -> T;
    }

    impl<T> IntoReady<T> for Poll<T> {
        fn into_ready(self) -> T {
            match self {
                Poll::Ready(value) => value,
                Poll::Pending => panic!("not ready"),
            }
        }
    }
}
