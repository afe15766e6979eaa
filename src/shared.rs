//! The part of a queue that its handles, its owner and its worker share.

use crate::gate::Gate;
use crate::message::Message;
use crate::reply::Reply;
use crate::stats::Counters;
use crate::sync::atomic::{AtomicBool, Ordering};
use crate::sync::channel::Sender;
use crate::{StateMachine, Stats, SubmitError};

pub(crate) struct Shared<S: StateMachine> {
    tx: Sender<Message<S>>,
    gate: Gate,
    pub(crate) counters: Counters,
    /// Set by `shutdown_now`: the worker sets aside every command it receives from then on.
    stop_now: AtomicBool,
    capacity: usize,
}

impl<S: StateMachine> Shared<S> {
    pub(crate) fn new(tx: Sender<Message<S>>, capacity: usize) -> Self {
        Self {
            tx,
            gate: Gate::new(),
            counters: Counters::default(),
            stop_now: AtomicBool::new(false),
            capacity,
        }
    }

    /// Hands a command to the worker, or back to the caller if the queue is closed.
    pub(crate) fn send(
        &self,
        command: S::Command,
        reply: Option<Reply<S::Output>>,
    ) -> Result<(), SubmitError<S::Command>> {
        let Some(_pass) = self.gate.enter() else {
            return Err(self.refuse_closed(command));
        };
        let message = Message::Apply { command, reply };
        match self.tx.send(message) {
            Ok(()) => {
                self.counters.submitted.add(1);
                Ok(())
            }
            // Unreachable while the worker holds the receiver; refuse rather than lose it.
            Err(flume_error) => match flume_error.into_inner() {
                Message::Apply { command, .. } => Err(self.refuse_closed(command)),
                Message::Stop => unreachable!("submitters never send Stop"),
            },
        }
    }

    fn refuse_closed(&self, command: S::Command) -> SubmitError<S::Command> {
        self.counters.refused_closed.add(1);
        SubmitError::Closed(command)
    }

    /// Closes the gate, waits until no submitter is mid-send, then sends the worker its last
    /// message. Every command accepted before this returns is ahead of `Stop` in the channel.
    pub(crate) fn close_and_stop(&self, now: bool) {
        if now {
            self.stop_now.store(true, Ordering::Release);
        }
        self.gate.close();
        self.gate.wait_quiet();
        // Fails only if the worker is gone, and then there is nobody left to stop.
        let _ = self.tx.send(Message::Stop);
    }

    /// Refuses every later submit; used by the worker when the state is poisoned.
    pub(crate) fn close(&self) {
        self.gate.close();
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.gate.is_closed()
    }

    /// Whether `shutdown_now` asked the worker to stop applying.
    pub(crate) fn stopping_now(&self) -> bool {
        self.stop_now.load(Ordering::Acquire)
    }

    pub(crate) fn stats(&self) -> Stats {
        self.counters.snapshot(self.tx.len(), self.capacity)
    }
}
