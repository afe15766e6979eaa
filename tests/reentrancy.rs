//! The worker using its own queue must not wait for itself (hazard 5).

use std::time::Duration;

use singular_queue::{Block, CallError, Handle, SingularQueue, StateMachine, SubmitError};

/// A state machine that submits to its own queue from inside `apply`.
#[derive(Default)]
struct Selfish {
    me: Option<Handle<Selfish>>,
    added: Vec<u32>,
}

enum Command {
    Adopt(Handle<Selfish>),
    Add(u32),
    /// `call`, `try_call` and `call_timeout` its own queue.
    CallSelf,
    /// `tell` its own queue twice: the first fits, the second finds it full.
    TellSelfTwice,
}

#[derive(Debug, PartialEq)]
enum Output {
    Done,
    Calls(Vec<Option<u32>>),
    Tells(Vec<Result<(), Option<u32>>>),
}

impl StateMachine for Selfish {
    type Command = Command;
    type Output = Output;

    fn apply(&mut self, command: Command) -> Output {
        let me = self.me.clone();
        match command {
            Command::Adopt(handle) => self.me = Some(handle),
            Command::Add(n) => self.added.push(n),
            Command::CallSelf => {
                let me = me.unwrap();
                let calls = [
                    me.call(Command::Add(1)),
                    me.try_call(Command::Add(2)),
                    me.call_timeout(Command::Add(3), Duration::from_secs(60)),
                ];
                return Output::Calls(calls.into_iter().map(refused_number).collect());
            }
            Command::TellSelfTwice => {
                let me = me.unwrap();
                let tells = [me.tell(Command::Add(4)), me.tell(Command::Add(5))];
                return Output::Tells(
                    tells
                        .into_iter()
                        .map(|r| r.map_err(deadlocked_number))
                        .collect(),
                );
            }
        }
        Output::Done
    }
}

/// The number inside a command refused as re-entrant.
fn refused_number(result: Result<Output, CallError<Command>>) -> Option<u32> {
    let error = result.expect_err("a call from the worker is refused");
    assert!(error.is_reentrant(), "{error:?}");
    match error.into_inner() {
        Some(Command::Add(n)) => Some(n),
        _ => None,
    }
}

/// The number inside a command refused because waiting for room would deadlock.
fn deadlocked_number(error: SubmitError<Command>) -> Option<u32> {
    assert!(error.is_deadlock(), "{error:?}");
    match error.into_inner() {
        Command::Add(n) => Some(n),
        _ => None,
    }
}

fn selfish_queue() -> SingularQueue<Selfish> {
    let queue = SingularQueue::builder(Selfish::default())
        .capacity(1)
        .backpressure(Block)
        .spawn()
        .unwrap();
    queue.call(Command::Adopt(queue.handle())).unwrap();
    queue
}

#[test]
fn calling_its_own_queue_from_apply_is_refused_with_the_command_back() {
    let queue = selfish_queue();
    let output = queue.call(Command::CallSelf).unwrap();
    assert_eq!(output, Output::Calls(vec![Some(1), Some(2), Some(3)]));
    assert_eq!(queue.stats().rejected, 3);
    // A call from any other thread still works.
    assert_eq!(queue.call(Command::Add(9)).unwrap(), Output::Done);
    let state = queue.shutdown().unwrap();
    assert_eq!(state.added, [9]);
}

#[test]
fn a_blocking_tell_from_apply_on_a_full_queue_fails_instead_of_waiting() {
    let queue = selfish_queue();
    let output = queue.call(Command::TellSelfTwice).unwrap();
    assert_eq!(output, Output::Tells(vec![Ok(()), Err(Some(5))]));
    let state = queue.shutdown().unwrap();
    assert_eq!(
        state.added,
        [4],
        "the tell that fitted was applied after the outer command"
    );
}

/// Calls its own queue from `on_batch_end`, a hook, once armed.
#[derive(Default)]
struct HookCaller {
    me: Option<Handle<HookCaller>>,
    armed: bool,
    refused: Vec<bool>,
}

impl StateMachine for HookCaller {
    type Command = Option<Handle<HookCaller>>;
    type Output = ();

    fn apply(&mut self, me: Option<Handle<HookCaller>>) {
        self.armed = me.is_some();
        self.me = me;
    }

    fn on_batch_end(&mut self, _: singular_queue::BatchInfo) {
        if let (true, Some(me)) = (self.armed, &self.me) {
            let refused = me.call(None).err().is_some_and(|e| e.is_reentrant());
            self.refused.push(refused);
            self.armed = false;
        }
    }
}

#[test]
fn calling_its_own_queue_from_a_hook_is_refused() {
    // Replies after each batch ends, so the hook has run when the call returns.
    let queue = SingularQueue::builder(HookCaller::default())
        .reply_mode(singular_queue::ReplyMode::AfterBatch)
        .spawn()
        .unwrap();
    queue.call(Some(queue.handle())).unwrap();
    let state = queue.shutdown().unwrap();
    assert_eq!(state.refused, [true]);
}
