//! Batches, `on_batch_end`, group commit and the batch and queue-time stats.

mod support;

use std::sync::mpsc;

use singular_queue::{BatchInfo, ReplyMode, SingularQueue, StateMachine, WaitError};
use support::Grenade;

/// Records every batch; can be held inside `apply` or `on_batch_end`, and made to panic there.
#[derive(Default)]
struct Batcher {
    applied: Vec<u32>,
    batches: Vec<(usize, usize)>,
    /// Held at the next `on_batch_end`: says "started", waits for the release.
    hold_batch_end: Option<(mpsc::Sender<()>, mpsc::Receiver<()>)>,
    panic_at_batch_end: bool,
}

enum Command {
    Add(u32),
    /// Say "started", then wait for the release, inside `apply`.
    Hold(mpsc::Sender<()>, mpsc::Receiver<()>),
    HoldBatchEnd(mpsc::Sender<()>, mpsc::Receiver<()>),
    PanicAtBatchEnd,
}

impl StateMachine for Batcher {
    type Command = Command;
    type Output = usize;

    fn apply(&mut self, command: Command) -> usize {
        match command {
            Command::Add(n) => self.applied.push(n),
            Command::Hold(started, release) => {
                started.send(()).unwrap();
                release.recv().unwrap();
            }
            Command::HoldBatchEnd(started, release) => {
                self.hold_batch_end = Some((started, release));
            }
            Command::PanicAtBatchEnd => self.panic_at_batch_end = true,
        }
        self.applied.len()
    }

    fn on_batch_end(&mut self, info: BatchInfo) {
        self.batches.push((info.size, info.remaining));
        if let Some((started, release)) = self.hold_batch_end.take() {
            started.send(()).unwrap();
            release.recv().unwrap();
        }
        assert!(!self.panic_at_batch_end, "commit failed");
    }
}

/// Channels for a command that holds the worker: its ends, the "started" receiver, and the
/// release sender.
fn holding(
    command: fn(mpsc::Sender<()>, mpsc::Receiver<()>) -> Command,
) -> (Command, mpsc::Receiver<()>, mpsc::Sender<()>) {
    let (started_tx, started_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel();
    (command(started_tx, release_rx), started_rx, release_tx)
}

/// Holds the worker inside `apply`.
fn hold() -> (Command, mpsc::Receiver<()>, mpsc::Sender<()>) {
    holding(Command::Hold)
}

/// Holds `queue`'s worker inside `apply` until the returned sender releases it.
fn hold_worker(queue: &SingularQueue<Batcher>) -> mpsc::Sender<()> {
    let (held, started, release) = hold();
    queue.tell(held).unwrap();
    started.recv().unwrap();
    release
}

/// Holds the worker inside the next `on_batch_end`.
fn hold_batch_end() -> (Command, mpsc::Receiver<()>, mpsc::Sender<()>) {
    holding(Command::HoldBatchEnd)
}

#[test]
fn the_worker_takes_what_is_waiting_up_to_max_batch() {
    // Replies after the batch ends, so once the last ticket is ready every batch is over.
    let queue = SingularQueue::builder(Batcher::default())
        .capacity(64)
        .max_batch(16)
        .reply_mode(ReplyMode::AfterBatch)
        .spawn()
        .unwrap();
    let release = hold_worker(&queue);
    let tickets: Vec<_> = (0..40)
        .map(|n| queue.submit(Command::Add(n)).unwrap())
        .collect();
    release.send(()).unwrap();
    for ticket in tickets {
        ticket.wait().unwrap();
    }
    let stats = queue.stats();
    let state = queue.shutdown().unwrap();
    // The held command's batch takes 15 more, then 16, then the last 9.
    assert_eq!(state.batches, [(16, 25), (16, 9), (9, 0)]);
    assert_eq!(state.applied, (0..40).collect::<Vec<_>>());
    assert_eq!((stats.batches, stats.max_batch_size), (3, 16));
    assert_eq!(stats.mean_batch_size(), 41.0 / 3.0);
}

#[test]
fn under_group_commit_a_reply_waits_for_on_batch_end() {
    let queue = SingularQueue::builder(Batcher::default())
        .reply_mode(ReplyMode::AfterBatch)
        .spawn()
        .unwrap();
    let (held, started, release) = hold_batch_end();
    let ticket = queue.submit(held).unwrap();
    started.recv().unwrap();
    // `apply` has returned, but the batch is not committed: the reply is held back.
    assert!(!ticket.is_ready());
    release.send(()).unwrap();
    assert_eq!(ticket.wait().unwrap(), 0);
    assert_eq!(queue.shutdown().unwrap().batches, [(1, 0)]);
}

#[test]
fn after_apply_a_reply_does_not_wait_for_on_batch_end() {
    let queue = SingularQueue::new(Batcher::default());
    let (held, started, release) = hold_batch_end();
    let ticket = queue.submit(held).unwrap();
    started.recv().unwrap();
    assert_eq!(
        ticket.wait().unwrap(),
        0,
        "ready while on_batch_end is still running"
    );
    release.send(()).unwrap();
    queue.shutdown().unwrap();
}

#[test]
fn a_panic_in_on_batch_end_under_group_commit_fails_every_reply_of_the_batch() {
    std::panic::set_hook(Box::new(|_| {}));
    let queue = SingularQueue::builder(Batcher::default())
        .reply_mode(ReplyMode::AfterBatch)
        .spawn()
        .unwrap();
    let release = hold_worker(&queue);
    let mut tickets: Vec<_> = (0..5)
        .map(|n| queue.submit(Command::Add(n)).unwrap())
        .collect();
    tickets.push(queue.submit(Command::PanicAtBatchEnd).unwrap());
    let behind = queue.submit(Command::Add(9)); // accepted or refused: never reported done
    release.send(()).unwrap();

    // Every command of the batch was applied; the commit failed: none is reported done, and
    // none is blamed for the panic.
    let failed = WaitError::NotCommitted("commit failed".to_owned());
    for ticket in tickets {
        assert_eq!(ticket.wait().unwrap_err(), failed);
    }
    if let Ok(ticket) = behind {
        assert!(ticket.wait().is_err());
    }
    let Err(poisoned) = queue.shutdown() else {
        panic!("a failed commit poisons the state")
    };
    assert_eq!(poisoned.message(), "commit failed");
}

#[test]
fn queue_time_is_measured_only_when_asked() {
    for track in [false, true] {
        let queue = SingularQueue::builder(Batcher::default())
            .track_queue_time(track)
            .spawn()
            .unwrap();
        for n in 0..100 {
            queue.tell(Command::Add(n)).unwrap();
        }
        queue.call(Command::Add(100)).unwrap();
        let stats = queue.stats();
        // "Not measured" reads the same in both figures: `None`.
        match (stats.mean_queue_time(), stats.max_queue_time) {
            (None, None) => assert!(!track),
            (Some(mean), Some(max)) => assert!(track && max >= mean),
            other => panic!("measured one way and not the other: {other:?}"),
        }
    }
}

#[test]
fn outputs_of_a_failed_group_commit_are_dropped_without_taking_the_worker_down() {
    std::panic::set_hook(Box::new(|_| {}));
    struct Armory {
        fail_commit: bool,
    }
    impl StateMachine for Armory {
        type Command = bool;
        type Output = Grenade;
        fn apply(&mut self, fail_commit: bool) -> Grenade {
            self.fail_commit |= fail_commit;
            Grenade
        }
        fn on_batch_end(&mut self, _: BatchInfo) {
            assert!(!self.fail_commit, "commit failed");
        }
    }
    let queue = SingularQueue::builder(Armory { fail_commit: false })
        .reply_mode(ReplyMode::AfterBatch)
        .spawn()
        .unwrap();
    let error = queue.call(true).err().expect("the commit failed");
    assert!(error.is_not_committed());
    // The worker is alive: it refuses (the state is poisoned) rather than hanging.
    assert!(queue.call(false).err().expect("poisoned").is_closed());
    let Err(poisoned) = queue.shutdown() else {
        panic!("the failed commit poisons the state")
    };
    assert_eq!(poisoned.message(), "commit failed");
}
