//! Restart after a panic (`Builder::restart_on_panic`): the old state stops and is dropped in
//! a stated order around the factory, the new one starts, and every command behind the panic
//! is applied to it; outputs held for a commit that will never come fail as not committed.

mod support;

use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use singular_queue::{BatchInfo, CallError, ReplyMode, SingularQueue, StateMachine, WaitError};
use support::within;

/// What happened, in order, across generations of the state.
type Events = Arc<Mutex<Vec<String>>>;

/// One generation of a state that records its life; `apply` panics on 13 after recording it.
struct Life {
    generation: u32,
    applied: Vec<u64>,
    events: Events,
}

impl Life {
    fn new(generation: u32, events: &Events) -> Self {
        Self {
            generation,
            applied: Vec::new(),
            events: Arc::clone(events),
        }
    }

    fn record(&self, what: &str) {
        let event = format!("{what} {}", self.generation);
        self.events.lock().unwrap().push(event);
    }

    /// The factory: the next generation, made from this one.
    fn next(&mut self) -> Self {
        self.record("fresh from");
        Self::new(self.generation + 1, &self.events)
    }
}

impl StateMachine for Life {
    type Command = u64;
    type Output = u64;

    fn on_start(&mut self) {
        self.record("start");
    }

    fn apply(&mut self, command: u64) -> u64 {
        self.applied.push(command);
        if command == 13 {
            panic!("thirteen");
        }
        command
    }

    fn on_batch_end(&mut self, info: BatchInfo) {
        self.record(&format!("commit {} in", info.size));
    }

    fn on_stop(&mut self) {
        self.record("stop");
    }
}

impl Drop for Life {
    fn drop(&mut self) {
        self.record("drop");
    }
}

fn taken(events: &Events) -> Vec<String> {
    std::mem::take(&mut *events.lock().unwrap())
}

/// One batch of 1, 2, 13, 3, 4 on a hand-stepped queue, exactly: the panic's caller is told;
/// the old state stops, the factory runs, the old state is dropped, the new one starts and
/// is published; 3 and 4 are applied to the new state, whose commit covers them alone.
#[test]
fn a_restart_stops_the_old_state_then_starts_the_new_and_applies_what_was_behind() {
    support::quiet_panics();
    let events = Events::default();
    let (builder, view) = SingularQueue::builder(Life::new(0, &events))
        .restart_on_panic(Life::next)
        .publish(|life: &Life| (life.generation, life.applied.clone()));
    let mut queue = builder.manual();
    let tickets: Vec<_> = [1, 2, 13, 3, 4]
        .into_iter()
        .map(|command| queue.submit(command).unwrap())
        .collect();
    assert_eq!(queue.step(), 5, "one batch");
    let outcomes: Vec<_> = tickets.into_iter().map(|ticket| ticket.wait()).collect();
    assert_eq!(
        outcomes[..2],
        [Ok(1), Ok(2)],
        "applied, and answered at once"
    );
    assert_eq!(outcomes[2], Err(WaitError::Panicked("thirteen".into())));
    assert_eq!(outcomes[3..], [Ok(3), Ok(4)]);
    assert_eq!(
        taken(&events),
        [
            "start 0",
            "stop 0",
            "fresh from 0",
            "drop 0",
            "start 1",
            "commit 2 in 1"
        ]
    );
    assert_eq!(*view.latest(), (1, vec![3, 4]), "the new state, published");
    let stats = queue.stats();
    assert_eq!((stats.applied, stats.panicked, stats.restarts), (4, 1, 1));
    let last = queue.shutdown().unwrap();
    assert_eq!((last.generation, &last.applied[..]), (1, &[3, 4][..]));
    assert_eq!(taken(&events), ["stop 1"]);
}

/// Under `AfterBatch`, the outputs held for the old state's commit, which never runs, fail as
/// not committed; the commands behind the panic, in the same `tell_many` too, are applied to
/// the new state and answered after its commit.
#[test]
fn outputs_held_for_the_old_states_commit_fail_as_not_committed() {
    support::quiet_panics();
    let events = Events::default();
    let mut queue = SingularQueue::builder(Life::new(0, &events))
        .reply_mode(ReplyMode::AfterBatch)
        .restart_on_panic(Life::next)
        .manual();
    let held = queue.submit(1).unwrap();
    queue.tell_many(vec![2, 13, 3]).unwrap();
    let behind = queue.submit(4).unwrap();
    queue.step();
    match held.wait() {
        Err(WaitError::NotCommitted(message)) => {
            assert!(message.contains("restarted"), "{message}");
            assert!(message.contains("thirteen"), "{message}");
        }
        other => panic!("expected NotCommitted, got {other:?}"),
    }
    assert_eq!(behind.wait(), Ok(4));
    assert!(!taken(&events).contains(&"commit 3 in 0".to_owned()));
    let last = queue.shutdown().unwrap();
    assert_eq!(last.applied, [3, 4]);
}

/// A panic in the factory poisons the queue with the old state: the commands behind it are
/// not applied, and shutdown names both panics.
#[test]
fn a_factory_that_panics_poisons_the_queue_with_the_old_state() {
    support::quiet_panics();
    let events = Events::default();
    let mut queue = SingularQueue::builder(Life::new(0, &events))
        .restart_on_panic(|_: &mut Life| panic!("no snapshot"))
        .manual();
    queue.tell(13).unwrap();
    let behind = queue.submit(5).unwrap();
    queue.run_until_idle();
    assert_eq!(behind.wait(), Err(WaitError::NotApplied));
    assert!(queue.tell(6).is_err(), "closed");
    let Err(poisoned) = queue.shutdown() else {
        panic!("expected a poisoned state")
    };
    assert!(
        poisoned
            .message()
            .contains("the restart after a panic (thirteen) failed: no snapshot")
    );
    assert_eq!(poisoned.unapplied(), [5]);
    assert_eq!(poisoned.into_inner().generation, 0);
}

/// A panic in the new state's `on_start` poisons the queue, with the new state.
#[test]
fn a_new_state_that_fails_to_start_poisons_the_queue() {
    support::quiet_panics();
    struct Fragile(bool);
    impl StateMachine for Fragile {
        type Command = u64;
        type Output = ();
        fn on_start(&mut self) {
            assert!(!self.0, "cannot start");
        }
        fn apply(&mut self, command: u64) {
            assert_ne!(command, 13);
        }
    }
    let mut queue = SingularQueue::builder(Fragile(false))
        .restart_on_panic(|_: &mut Fragile| Fragile(true))
        .manual();
    queue.tell(13).unwrap();
    queue.tell(1).unwrap();
    queue.run_until_idle();
    let Err(poisoned) = queue.shutdown() else {
        panic!("expected a poisoned state")
    };
    assert!(poisoned.message().contains("cannot start"));
    assert!(poisoned.into_inner().0, "the new state");
}

/// `on_panic` set after `restart_on_panic` replaces it.
#[test]
fn on_panic_replaces_a_restart_set_before_it() {
    support::quiet_panics();
    let events = Events::default();
    let mut queue = SingularQueue::builder(Life::new(0, &events))
        .restart_on_panic(Life::next)
        .on_panic(singular_queue::OnPanic::Continue)
        .manual();
    queue.tell(13).unwrap();
    queue.tell(1).unwrap();
    queue.run_until_idle();
    assert_eq!(queue.stats().restarts, 0);
    assert_eq!(queue.shutdown().unwrap().applied, [13, 1]);
}

/// Counts what was applied since the last commit, and what was committed: the factory keeps
/// only what was committed, as a state rebuilt from a log would.
#[derive(Default)]
struct Ledger {
    uncommitted: u64,
    committed: u64,
}

impl StateMachine for Ledger {
    type Command = u64;
    type Output = ();

    fn apply(&mut self, command: u64) {
        self.uncommitted += 1;
        assert!(command % 97 != 0, "a poison pill");
    }

    fn on_batch_end(&mut self, _: BatchInfo) {
        self.committed += std::mem::take(&mut self.uncommitted);
    }
}

/// Six clients call 3 000 commands each under `AfterBatch`, about one in 97 panicking and
/// restarting the state from what was committed. Every call ends `Ok`, `Panicked` or
/// `NotCommitted`; the panics are exactly the poison pills; and the last state has committed
/// exactly the commands whose callers were told `Ok`: nothing answered is lost, and nothing
/// lost was answered.
#[test]
fn under_load_exactly_the_commands_answered_ok_are_committed() {
    support::quiet_panics();
    within(Duration::from_secs(60), || {
        const CLIENTS: u64 = 6;
        const EACH: u64 = 3_000;
        let queue = SingularQueue::builder(Ledger::default())
            .capacity(16)
            .reply_mode(ReplyMode::AfterBatch)
            .restart_on_panic(|old: &mut Ledger| Ledger {
                uncommitted: 0,
                committed: old.committed,
            })
            .spawn()
            .unwrap();
        let clients: Vec<_> = (0..CLIENTS)
            .map(|client| {
                let handle = queue.handle();
                thread::spawn(move || {
                    let (mut ok, mut panicked, mut not_committed) = (0, 0, 0);
                    for i in 0..EACH {
                        let command = client * EACH + i + 1;
                        match handle.call(command) {
                            Ok(()) => ok += 1,
                            Err(CallError::Panicked(_)) => {
                                assert_eq!(command % 97, 0);
                                panicked += 1;
                            }
                            Err(CallError::NotCommitted(_)) => not_committed += 1,
                            Err(other) => panic!("{other:?}"),
                        }
                    }
                    (ok, panicked, not_committed)
                })
            })
            .collect();
        let (mut ok, mut panicked, mut not_committed) = (0, 0, 0);
        for client in clients {
            let (o, p, n) = client.join().unwrap();
            (ok, panicked, not_committed) = (ok + o, panicked + p, not_committed + n);
        }
        let pills = (1..=CLIENTS * EACH).filter(|c| c % 97 == 0).count() as u64;
        assert_eq!(panicked, pills);
        assert_eq!(ok + panicked + not_committed, CLIENTS * EACH);
        let stats = queue.stats();
        assert_eq!(stats.restarts, pills);
        assert_eq!(stats.applied, ok + not_committed);
        assert_eq!(queue.shutdown().unwrap().committed, ok);
    });
}
