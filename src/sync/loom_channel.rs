//! An unbounded channel on loom's primitives, with the semantics of the flume calls the crate
//! uses: `send`, `try_send`, `recv`, `try_recv`, the receiver's `is_empty`, cloning
//! either end, and disconnection when the last sender or the last receiver is dropped. The
//! queue's bound is its own (see `vacancies`), so the channel never refuses for room.

use std::collections::VecDeque;

use super::loom_lock::{Condvar, Mutex};
use loom::sync::Arc;

pub(crate) struct Sender<T> {
    chan: Arc<Chan<T>>,
}

pub(crate) struct Receiver<T> {
    chan: Arc<Chan<T>>,
}

struct Chan<T> {
    state: Mutex<State<T>>,
    /// Signalled when a message arrives or the last sender leaves.
    not_empty: Condvar,
}

struct State<T> {
    queue: VecDeque<T>,
    senders: usize,
    receivers: usize,
}

pub(crate) fn unbounded<T>() -> (Sender<T>, Receiver<T>) {
    let chan = Arc::new(Chan {
        state: Mutex::new(State {
            queue: VecDeque::new(),
            senders: 1,
            receivers: 1,
        }),
        not_empty: Condvar::new(),
    });
    let receiver = Receiver {
        chan: Arc::clone(&chan),
    };
    (Sender { chan }, receiver)
}

pub(crate) struct SendError<T>(#[allow(dead_code)] pub(crate) T);

pub(crate) enum TrySendError<T> {
    Disconnected(T),
}

impl<T> TrySendError<T> {
    pub(crate) fn into_inner(self) -> T {
        let TrySendError::Disconnected(message) = self;
        message
    }
}

pub(crate) enum TryRecvError {
    Empty,
    Disconnected,
}

pub(crate) struct RecvError;

impl<T> Sender<T> {
    pub(crate) fn send(&self, message: T) -> Result<(), SendError<T>> {
        let mut state = self.chan.state.lock();
        if state.receivers == 0 {
            return Err(SendError(message));
        }
        self.chan.push(&mut state, message);
        Ok(())
    }

    pub(crate) fn try_send(&self, message: T) -> Result<(), TrySendError<T>> {
        let mut state = self.chan.state.lock();
        if state.receivers == 0 {
            return Err(TrySendError::Disconnected(message));
        }
        self.chan.push(&mut state, message);
        Ok(())
    }
}

impl<T> Receiver<T> {
    pub(crate) fn recv(&self) -> Result<T, RecvError> {
        let mut state = self.chan.state.lock();
        loop {
            if let Some(message) = self.chan.pop(&mut state) {
                return Ok(message);
            }
            if state.senders == 0 {
                return Err(RecvError);
            }
            self.chan.not_empty.wait(&mut state);
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.chan.state.lock().queue.is_empty()
    }

    pub(crate) fn try_recv(&self) -> Result<T, TryRecvError> {
        let mut state = self.chan.state.lock();
        match self.chan.pop(&mut state) {
            Some(message) => Ok(message),
            None if state.senders == 0 => Err(TryRecvError::Disconnected),
            None => Err(TryRecvError::Empty),
        }
    }
}

impl<T> Chan<T> {
    fn push(&self, state: &mut State<T>, message: T) {
        state.queue.push_back(message);
        self.not_empty.notify_one();
    }

    fn pop(&self, state: &mut State<T>) -> Option<T> {
        state.queue.pop_front()
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.chan.state.lock().senders += 1;
        Self {
            chan: Arc::clone(&self.chan),
        }
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        self.chan.state.lock().receivers += 1;
        Self {
            chan: Arc::clone(&self.chan),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let mut state = self.chan.state.lock();
        state.senders -= 1;
        if state.senders == 0 {
            self.chan.not_empty.notify_all();
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.chan.state.lock().receivers -= 1;
    }
}
