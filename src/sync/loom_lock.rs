//! parking_lot's lock API over loom's std-style `Mutex` and `Condvar`.

use std::ops::{Deref, DerefMut};
use std::time::Instant;

pub(crate) struct Mutex<T> {
    inner: loom::sync::Mutex<T>,
}

/// A held lock. The `Option` lets `Condvar::wait` take the std-style guard out and put it back.
pub(crate) struct MutexGuard<'a, T> {
    lock: &'a loom::sync::Mutex<T>,
    inner: Option<loom::sync::MutexGuard<'a, T>>,
}

pub(crate) struct Condvar {
    inner: loom::sync::Condvar,
}

pub(crate) struct WaitTimeoutResult {
    timed_out: bool,
}

impl<T> Mutex<T> {
    pub(crate) fn new(value: T) -> Self {
        Self {
            inner: loom::sync::Mutex::new(value),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
        let guard = self.inner.lock().expect("not poisoned");
        MutexGuard {
            lock: &self.inner,
            inner: Some(guard),
        }
    }
}

impl<T> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.inner.as_ref().expect("guard is held")
    }
}

impl<T> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.inner.as_mut().expect("guard is held")
    }
}

impl Condvar {
    pub(crate) fn new() -> Self {
        Self {
            inner: loom::sync::Condvar::new(),
        }
    }

    pub(crate) fn wait<T>(&self, guard: &mut MutexGuard<'_, T>) {
        let held = guard.inner.take().expect("guard is held");
        guard.inner = Some(self.inner.wait(held).expect("not poisoned"));
    }

    /// loom has no clock: release the lock, let other threads run, take it back, and report
    /// that the deadline passed. The caller re-checks its condition either way.
    pub(crate) fn wait_until<T>(
        &self,
        guard: &mut MutexGuard<'_, T>,
        _deadline: Instant,
    ) -> WaitTimeoutResult {
        drop(guard.inner.take());
        loom::thread::yield_now();
        guard.inner = Some(guard.lock.lock().expect("not poisoned"));
        WaitTimeoutResult { timed_out: true }
    }

    pub(crate) fn notify_one(&self) {
        self.inner.notify_one();
    }

    pub(crate) fn notify_all(&self) {
        self.inner.notify_all();
    }
}

impl WaitTimeoutResult {
    pub(crate) fn timed_out(&self) -> bool {
        self.timed_out
    }
}
