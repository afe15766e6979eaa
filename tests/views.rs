//! Published views (`Builder::publish`, `View`): whole, in the worker's order, holding a
//! caller's own command under `AfterBatch`, never a poisoned state, and nothing leaked or
//! dropped under the view's lock.

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::Duration;

use singular_queue::{OnPanic, ReplyMode, SingularQueue, StateMachine, View, WaitError};
use support::within;

/// A counter per client and their sum, which every command moves together: a view whose sum
/// differs from the counters' is torn.
struct Tally {
    per_client: Vec<u64>,
    total: u64,
}

impl Tally {
    fn new(clients: usize) -> Self {
        Self {
            per_client: vec![0; clients],
            total: 0,
        }
    }

    fn view(&self) -> (Vec<u64>, u64) {
        (self.per_client.clone(), self.total)
    }
}

impl StateMachine for Tally {
    type Command = usize;
    type Output = u64;

    fn apply(&mut self, client: usize) -> u64 {
        self.per_client[client] += 1;
        self.total += 1;
        self.per_client[client]
    }
}

/// Six clients call and tell 4 000 commands each into a queue of capacity 8 while two readers
/// read the view without pause. Every view is whole; each reader's totals never go down;
/// each caller finds its own command in the view its call returns to (`AfterBatch`); the last
/// view counts every command exactly.
#[test]
fn views_under_load_are_whole_in_order_and_hold_each_callers_own_command() {
    within(Duration::from_secs(120), || {
        const CLIENTS: usize = 6;
        const EACH: u64 = 4_000;
        let (builder, view) = SingularQueue::builder(Tally::new(CLIENTS))
            .capacity(8)
            .reply_mode(ReplyMode::AfterBatch)
            .publish(Tally::view);
        let queue = builder.spawn().unwrap();
        let done = Arc::new(AtomicBool::new(false));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let (view, done) = (view.clone(), Arc::clone(&done));
                thread::spawn(move || read_until_done(&view, &done))
            })
            .collect();
        let clients: Vec<_> = (0..CLIENTS)
            .map(|client| {
                let (handle, view) = (queue.handle(), view.clone());
                thread::spawn(move || {
                    for i in 1..=EACH {
                        if i % 3 == 0 {
                            handle.tell(client).unwrap();
                            continue;
                        }
                        let mine = handle.call(client).unwrap();
                        assert_eq!(mine, i, "applied out of order");
                        let seen = view.latest().0[client];
                        assert!(seen >= mine, "client {client}: view {seen} < own {mine}");
                    }
                })
            })
            .collect();
        for client in clients {
            client.join().unwrap();
        }
        queue.wait_until_quiet().unwrap();
        done.store(true, Ordering::SeqCst);
        let reads: usize = readers.into_iter().map(|r| r.join().unwrap()).sum();
        assert!(reads > 0);
        let (per_client, total) = (*view.latest()).clone();
        assert_eq!(per_client, vec![EACH; CLIENTS]);
        assert_eq!(total, EACH * CLIENTS as u64);
        assert_eq!(queue.shutdown().unwrap().total, total);
    });
}

/// Reads `view` until `done`, checking each view is whole and no older than the one before;
/// returns how many views it read.
fn read_until_done(view: &View<(Vec<u64>, u64)>, done: &AtomicBool) -> usize {
    let mut last = 0;
    let mut reads = 0;
    while !done.load(Ordering::SeqCst) {
        let latest = view.latest();
        assert_eq!(latest.0.iter().sum::<u64>(), latest.1, "a torn view");
        assert!(latest.1 >= last, "went back from {last} to {}", latest.1);
        last = latest.1;
        reads += 1;
        // Reading on, but letting the worker and the clients run on a busy machine.
        thread::yield_now();
    }
    reads
}

/// A state that `on_start` changes, adding each command; panics on 13 half-way through.
#[derive(Debug, Default)]
struct Pair {
    left: u64,
    right: u64,
}

impl StateMachine for Pair {
    type Command = u64;
    type Output = ();

    fn on_start(&mut self) {
        self.left = 100;
        self.right = 100;
    }

    fn apply(&mut self, add: u64) {
        self.left += add;
        assert_ne!(add, 13, "half-way through");
        self.right += add;
    }
}

fn pair(pair: &Pair) -> (u64, u64) {
    (pair.left, pair.right)
}

/// On a hand-stepped queue, exactly: the view is the state as built, then after `on_start`,
/// then after each batch (not each command); a second view is published alongside.
#[test]
fn a_view_is_the_state_as_built_then_after_on_start_then_after_each_batch() {
    let (builder, view) = SingularQueue::builder(Pair::default())
        .max_batch(2)
        .publish(pair);
    let (builder, sum) = builder.publish(|pair: &Pair| pair.left + pair.right);
    assert_eq!(*view.latest(), (0, 0));
    let mut queue = builder.manual();
    assert_eq!(*view.latest(), (100, 100));
    for add in [1, 2, 3] {
        queue.tell(add).unwrap();
    }
    assert_eq!(queue.step(), 2);
    assert_eq!(*view.latest(), (103, 103), "after the batch of 1 and 2");
    assert_eq!(*sum.latest(), 206);
    assert_eq!(queue.step(), 1);
    assert_eq!(*view.latest(), (106, 106));
    assert_eq!(queue.shutdown().unwrap().left, 106);
    assert_eq!(*sum.latest(), 212, "a view outlives its queue");
}

/// A command that panics half-way poisons the state: the view stays the one before that
/// batch, whole, although the batch applied a command before the panic.
#[test]
fn a_poisoned_state_is_never_published() {
    support::quiet_panics();
    let (builder, view) = SingularQueue::builder(Pair::default()).publish(pair);
    let mut queue = builder.manual();
    queue.tell(1).unwrap();
    queue.step();
    assert_eq!(*view.latest(), (101, 101));
    let (two, panics) = (queue.submit(2).unwrap(), queue.submit(13).unwrap());
    queue.tell(4).unwrap();
    queue.step();
    assert_eq!(two.wait(), Ok(()));
    assert!(matches!(panics.wait(), Err(WaitError::Panicked(_))));
    assert_eq!(
        *view.latest(),
        (101, 101),
        "the poisoned batch is not published"
    );
    let poisoned = queue.shutdown().unwrap_err();
    assert_eq!(poisoned.unapplied(), [4]);
    assert_eq!(*view.latest(), (101, 101));
}

/// Under `OnPanic::Continue` the state is declared whole after a panic: publishing goes on.
#[test]
fn under_continue_views_go_on_after_a_panic() {
    support::quiet_panics();
    let (builder, view) = SingularQueue::builder(Pair::default())
        .on_panic(OnPanic::Continue)
        .publish(|pair: &Pair| pair.right);
    let mut queue = builder.manual();
    queue.tell(13).unwrap();
    queue.tell(1).unwrap();
    queue.run_until_idle();
    assert_eq!(*view.latest(), 101);
}

/// A panic in the view's function poisons the queue, as a panic in a hook does: commands
/// behind it are not applied, and shutdown names the panic.
#[test]
fn a_panic_in_the_views_function_poisons_the_queue() {
    support::quiet_panics();
    let (builder, view) = SingularQueue::builder(Pair::default())
        .max_batch(1)
        .publish(|pair: &Pair| {
            assert!(pair.left < 105, "the view cannot be made");
            pair.left
        });
    let mut queue = builder.manual();
    let applied = queue.submit(5).unwrap();
    let behind = queue.submit(1).unwrap();
    queue.step();
    assert_eq!(applied.wait(), Ok(()), "its command was applied");
    assert_eq!(*view.latest(), 100, "the last view made stays");
    assert!(queue.tell(1).is_err(), "the queue is closed");
    queue.run_until_idle();
    assert_eq!(behind.wait(), Err(WaitError::NotApplied));
    let poisoned = queue.shutdown().unwrap_err();
    assert!(poisoned.message().contains("the view cannot be made"));
}

/// Counts live views; each one's `Drop` reads the view it belongs to, so a view dropped
/// under the view's lock would deadlock.
struct Counted(u64);

static LIVE: AtomicUsize = AtomicUsize::new(0);
static THE_VIEW: OnceLock<View<Counted>> = OnceLock::new();

impl Counted {
    fn new(value: u64) -> Self {
        LIVE.fetch_add(1, Ordering::SeqCst);
        Self(value)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        if let Some(view) = THE_VIEW.get() {
            let _ = view.latest();
        }
        LIVE.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A thousand publications with nobody holding a view keep at most two alive (the latest and
/// the spare the worker reuses); a view a reader holds stays as it was; every view is
/// dropped once the queue and the views are gone; and no view's `Drop` runs under the lock.
#[test]
fn views_are_reused_kept_while_held_and_never_leaked() {
    within(Duration::from_secs(30), || {
        let (builder, view) =
            SingularQueue::builder(Pair::default()).publish(|pair: &Pair| Counted::new(pair.left));
        assert!(THE_VIEW.set(view.clone()).is_ok());
        let mut queue = builder.manual();
        let held = view.latest();
        for i in 1..=1_000 {
            queue.tell(1).unwrap();
            queue.step();
            assert_eq!(view.latest().0, 100 + i);
            assert!(
                LIVE.load(Ordering::SeqCst) <= 3,
                "the held one, the latest, the spare"
            );
        }
        assert_eq!(held.0, 100, "a held view does not change");
        drop(held);
        queue.tell(1).unwrap();
        queue.step();
        assert!(LIVE.load(Ordering::SeqCst) <= 2);
        drop(queue);
        drop(view);
        assert_eq!(
            LIVE.load(Ordering::SeqCst),
            1,
            "only the static's latest view is left"
        );
    });
}
