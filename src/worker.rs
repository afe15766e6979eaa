//! The worker thread: the only code that ever touches the state machine.

use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::message::Message;
use crate::on_panic::{self, OnPanic};
use crate::reply::Reply;
use crate::shared::Shared;
use crate::sync::Arc;
use crate::sync::channel::Receiver;
use crate::{StateMachine, WaitError};

pub(crate) struct Worker<S: StateMachine> {
    state: S,
    rx: Receiver<Message<S>>,
    shared: Arc<Shared<S>>,
    on_panic: OnPanic,
    /// The message of the panic that poisoned the state, once one has.
    poison: Option<String>,
    /// Accepted commands set aside without being applied, in order.
    unapplied: Vec<S::Command>,
}

/// What the worker thread returns to the shutdown that joins it.
pub(crate) struct Exit<S: StateMachine> {
    pub(crate) state: S,
    pub(crate) unapplied: Vec<S::Command>,
    pub(crate) poison: Option<String>,
}

impl<S: StateMachine> Worker<S> {
    pub(crate) fn new(
        state: S,
        rx: Receiver<Message<S>>,
        shared: Arc<Shared<S>>,
        on_panic: OnPanic,
    ) -> Self {
        Self {
            state,
            rx,
            shared,
            on_panic,
            poison: None,
            unapplied: Vec::new(),
        }
    }

    /// Runs until the shutdown's `Stop` message, then hands everything back.
    pub(crate) fn run(mut self) -> Exit<S> {
        self.run_hook(S::on_start);
        while let Ok(Message::Apply { command, reply }) = self.rx.recv() {
            if self.poison.is_some() || self.shared.stopping_now() {
                self.set_aside(command, reply);
            } else {
                self.apply(command, reply);
            }
        }
        if self.poison.is_none() {
            self.run_hook(S::on_stop);
        }
        Exit {
            state: self.state,
            unapplied: self.unapplied,
            poison: self.poison,
        }
    }

    fn apply(&mut self, command: S::Command, reply: Option<Reply<S::Output>>) {
        let state = &mut self.state;
        match catch_unwind(AssertUnwindSafe(|| state.apply(command))) {
            Ok(output) => {
                self.shared.counters.applied.add(1);
                if let Some(reply) = reply {
                    reply.send(Ok(output));
                }
            }
            Err(payload) => {
                self.shared.counters.panicked.add(1);
                let message = on_panic::message(&*payload);
                if self.on_panic == OnPanic::Stop {
                    self.poison(message.clone());
                }
                if let Some(reply) = reply {
                    reply.send(Err(WaitError::Panicked(message)));
                }
            }
        }
    }

    /// Keeps an accepted command for the owner; dropping its reply tells the waiter.
    fn set_aside(&mut self, command: S::Command, reply: Option<Reply<S::Output>>) {
        self.shared.counters.not_applied.add(1);
        self.unapplied.push(command);
        drop(reply);
    }

    fn run_hook(&mut self, hook: fn(&mut S)) {
        let state = &mut self.state;
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| hook(state))) {
            self.poison(on_panic::message(&*payload));
        }
    }

    fn poison(&mut self, message: String) {
        self.poison.get_or_insert(message);
        self.shared.close();
    }
}
