//! The worker thread: the only code that ever touches the state machine.

use crate::message::Message;
use crate::on_panic::{self, OnPanic};
use crate::reentrancy;
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
        reentrancy::mark_worker(&*self.shared);
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
        let result = match on_panic::catch(|| state.apply(command)) {
            Ok(output) => {
                self.shared.counters.applied.add(1);
                Ok(output)
            }
            Err(message) => {
                self.shared.counters.panicked.add(1);
                if self.on_panic == OnPanic::Stop {
                    self.poison(message.clone());
                }
                Err(WaitError::Panicked(message))
            }
        };
        // Handing over the output, or dropping it when nobody waits, runs the output's `Drop`:
        // user code again. The command was applied either way; a panic here is ignored.
        let _ = on_panic::catch(move || match reply {
            Some(reply) => reply.send(result),
            None => drop(result),
        });
    }

    /// Keeps an accepted command for the owner; dropping its reply tells the waiter.
    fn set_aside(&mut self, command: S::Command, reply: Option<Reply<S::Output>>) {
        self.shared.counters.not_applied.add(1);
        self.unapplied.push(command);
        drop(reply);
    }

    fn run_hook(&mut self, hook: fn(&mut S)) {
        let state = &mut self.state;
        if let Err(message) = on_panic::catch(|| hook(state)) {
            self.poison(message);
        }
    }

    fn poison(&mut self, message: String) {
        self.poison.get_or_insert(message);
        self.shared.close();
    }
}
