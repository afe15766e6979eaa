//! The worker's choice between lanes. A queue without a priority lane reads its one channel.
//! With one, the worker takes a waiting priority command first, but after `max_burst` of them
//! in a row it takes a normal one if one waits, so the normal lane cannot starve; each lane
//! stays FIFO.
//!
//! A read, a snapshot's marker and a `Stop` travel in the normal lane but hold no place
//! there, and each must come after every command accepted before it, in either lane. So the
//! worker holds such a message back until it has taken (or seen evicted) as many priority
//! commands as had been accepted when it reached the message; those are in the priority
//! channel, or landing there (counted before they are sent).
//!
//! Asleep, the worker waits on the normal channel alone: a priority submit rings a doorbell
//! there if it finds the worker asleep ([`Shared::going_to_sleep`]).

use crate::StateMachine;
use crate::message::Message;
use crate::shared::{LaneId, Shared};
use crate::sync::channel::{Receiver, TryRecvError};
use crate::sync::yield_now;

pub(super) struct Lanes<S: StateMachine> {
    normal: Receiver<Message<S>>,
    priority: Option<Receiver<Message<S>>>,
    /// Priority messages taken since the last normal command.
    burst: usize,
    max_burst: usize,
    /// A message of the normal lane held back, and how many priority commands must be gone
    /// (taken or evicted) before it.
    held: Option<(Message<S>, u64)>,
}

/// A message and the lane it came from.
pub(super) type Taken<S> = (LaneId, Message<S>);

impl<S: StateMachine> Lanes<S> {
    pub(super) fn new(shared: &Shared<S>, max_burst: usize) -> Self {
        let (normal, priority) = shared.receivers();
        Self {
            normal,
            priority,
            burst: 0,
            max_burst,
            held: None,
        }
    }

    /// The next message to take, without waiting.
    pub(super) fn try_next(&mut self, shared: &Shared<S>) -> Result<Taken<S>, TryRecvError> {
        if self.priority.is_none() {
            return self
                .normal
                .try_recv()
                .map(|message| (LaneId::Normal, message));
        }
        if let Some((_, before)) = &self.held {
            if shared.priority_gone() < *before {
                return self.take_priority();
            }
            let (message, _) = self.held.take().expect("just looked");
            return Ok((LaneId::Normal, message));
        }
        if self.burst < self.max_burst {
            if let Ok(taken) = self.take_priority() {
                return Ok(taken);
            }
        }
        match self.normal.try_recv() {
            Ok(message) => self.normal_message(message, shared),
            // Nothing normal waits: priority commands may come in any number.
            Err(empty) => self.take_priority().map_err(|_| empty),
        }
    }

    /// The next message to take if any is waiting: `None` only when none is. A message held
    /// back behind priority commands still landing is waiting: this yields until they land
    /// (each is counted just before its send), rather than report an empty queue while
    /// commands wait behind it (found by review: a hand-stepped queue's `run_until_idle`
    /// returned with commands accepted).
    pub(super) fn next_waiting(&mut self, shared: &Shared<S>) -> Option<Taken<S>> {
        loop {
            match self.try_next(shared) {
                Ok(taken) => return Some(taken),
                Err(_) if self.holding() => yield_now(),
                Err(_) => return None,
            }
        }
    }

    /// A message received from the normal lane: passed on, or held back behind the priority
    /// commands accepted before it (then the next message is chosen instead).
    pub(super) fn normal_message(
        &mut self,
        message: Message<S>,
        shared: &Shared<S>,
    ) -> Result<Taken<S>, TryRecvError> {
        if self.priority.is_some() && message.comes_after_priority() {
            self.held = Some((message, shared.priority_accepted()));
            return self.try_next(shared);
        }
        if message.places() > 0 {
            self.burst = 0;
        }
        Ok((LaneId::Normal, message))
    }

    fn take_priority(&mut self) -> Result<Taken<S>, TryRecvError> {
        let priority = self.priority.as_ref().expect("a priority lane");
        let message = priority.try_recv()?;
        self.burst = self.burst.saturating_add(1);
        Ok((LaneId::Priority, message))
    }

    /// Whether a message is held back: the priority commands it waits for are landing, so the
    /// worker must not sleep on the normal lane.
    pub(super) fn holding(&self) -> bool {
        self.held.is_some()
    }

    /// Waits on the normal lane; `None` if it disconnected.
    pub(super) fn recv_normal(&self) -> Option<Message<S>> {
        self.normal.recv().ok()
    }
}
