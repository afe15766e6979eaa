//! `wait_until_quiet`, `model::block_on` and `call_async` at their edges, from the hostile
//! review: a panicking `on_evict`, waits from inside `on_evict`, selects, answered waits.

mod support;

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use singular_queue::{DropOldest, Handle, SingularQueue, StateMachine, WouldDeadlock, model};
use support::{Exec, Job, Op, Probe, Sum, within};

/// A Probe queue of capacity 1 under DropOldest whose worker is held in `apply`, with
/// `on_evict` given; returns the queue and the worker's release.
fn held_drop_oldest(
    on_evict: impl Fn(Op) + Send + Sync + 'static,
) -> (SingularQueue<Probe>, mpsc::Sender<()>) {
    let builder = SingularQueue::builder(Probe::default())
        .capacity(1)
        .backpressure(DropOldest)
        .on_evict(on_evict);
    support::hold_worker(builder)
}

/// A queue's handle, and the release of its held worker.
type HandleAndRelease = (Handle<Probe>, mpsc::Sender<()>);

// --- 1. wait_until_quiet ----------------------------------------------------------------

/// A panicking `on_evict` (user code, on the submitter's thread) is caught: the evicting
/// submit, whose command was accepted, returns `Ok`, the eviction is counted as done, and the
/// queue becomes quiet.
#[test]
fn a_panicking_on_evict_is_caught_and_the_queue_becomes_quiet() {
    within(Duration::from_secs(30), || {
        let (queue, release) = held_drop_oldest(|_| panic!("on_evict panics"));
        queue.tell(Op::Add(1)).unwrap(); // fills the queue
        let handle = queue.handle();
        // Evicts Add(1); on_evict panics on this thread (the submit itself was accepted).
        let evicter = thread::spawn(move || handle.tell(Op::Add(2)).is_ok());
        assert!(evicter.join().unwrap(), "the evicting submit was accepted");
        release.send(()).unwrap();
        let quiet = queue.wait_until_quiet_timeout(Duration::from_secs(3));
        let stats = queue.stats();
        assert_eq!(
            quiet,
            Ok(true),
            "the queue is quiet (nothing in flight, nobody submitting) yet the wait never ends; \
             stats: submitted {} applied {} dropped {} depth {}",
            stats.submitted,
            stats.applied,
            stats.dropped,
            stats.depth
        );
    });
}

/// `wait_until_quiet` called from `on_evict` waits for an eviction that only this very thread
/// can finish telling: refused with `WouldDeadlock`. (Deterministic: the worker is released
/// from inside `on_evict`, so it serves everything else.)
#[test]
fn waiting_until_quiet_inside_on_evict_is_refused() {
    within(Duration::from_secs(30), || {
        let me: Arc<Mutex<Option<HandleAndRelease>>> = Arc::default();
        let (results_tx, results) = mpsc::channel();
        let results_tx = Mutex::new(results_tx);
        let slot = Arc::clone(&me);
        let (queue, release) = held_drop_oldest(move |_| {
            let (handle, release) = slot.lock().unwrap().take().unwrap();
            release.send(()).unwrap(); // the worker serves the hold and the evicter's command
            let outcome = handle.wait_until_quiet_timeout(Duration::from_secs(3));
            results_tx.lock().unwrap().send(outcome).unwrap();
        });
        *me.lock().unwrap() = Some((queue.handle(), release));
        queue.tell(Op::Add(1)).unwrap(); // fills the queue
        let handle = queue.handle();
        let evicter = thread::spawn(move || handle.tell(Op::Add(2)).unwrap()); // evicts Add(1)
        let outcome = results.recv().unwrap();
        evicter.join().unwrap();
        assert_eq!(queue.wait_until_quiet(), Ok(()));
        assert_eq!(outcome, Err(WouldDeadlock));
    });
}

/// The owner of a hand-stepped queue that is not quiet is refused at once, even with nothing
/// waiting: what is left (here another thread's eviction) might need a step, and a command
/// landing later would. The rule is the documented one: on the thread that serves the queue,
/// only a quiet queue is waited for.
#[test]
fn the_owner_is_refused_whenever_the_queue_is_not_quiet() {
    within(Duration::from_secs(30), || {
        let (inside_tx, inside) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let (inside_tx, release_rx) = (Mutex::new(inside_tx), Mutex::new(release_rx));
        let mut manual = SingularQueue::builder(Sum::default())
            .capacity(1)
            .backpressure(DropOldest)
            .on_evict(move |_| {
                inside_tx.lock().unwrap().send(()).unwrap();
                release_rx.lock().unwrap().recv().unwrap();
            })
            .manual();
        manual.tell(1).unwrap();
        let handle = manual.handle();
        let evicter = thread::spawn(move || handle.tell(2).unwrap());
        inside.recv().unwrap(); // 2 is in, 1 is evicted and being told
        assert_eq!(manual.run_until_idle(), 1);
        assert_eq!(manual.stats().depth, 0, "nothing left to step");
        let outcome = manual
            .handle()
            .wait_until_quiet_timeout(Duration::from_millis(50));
        release_tx.send(()).unwrap();
        evicter.join().unwrap();
        assert_eq!(manual.handle().wait_until_quiet(), Ok(()));
        assert_eq!(outcome, Err(WouldDeadlock));
    });
}

// --- 2. model::block_on -----------------------------------------------------------------

/// A future that polls a hand-stepped queue's ticket *and* waits for another thread (a
/// select): the other thread's channel keeps the waker too, so `block_on` sleeps instead of
/// panicking, and the select completes when the other thread signals.
#[test]
fn block_on_sleeps_on_a_select_that_another_thread_completes() {
    within(Duration::from_secs(30), || {
        let manual = SingularQueue::builder(Sum::default()).manual();
        let ticket = manual.submit(1).unwrap();
        let (tx, rx) = futures::channel::oneshot::channel::<()>();
        let (polled_tx, polled) = mpsc::channel();
        let signaller = thread::spawn(move || {
            polled.recv().unwrap();
            tx.send(()).unwrap();
        });
        let mut select = futures::future::select(ticket, rx);
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            model::block_on(poll_fn(|cx| {
                let polled = Pin::new(&mut select).poll(cx);
                if polled.is_pending() {
                    let _ = polled_tx.send(());
                }
                polled.map(|either| matches!(either, futures::future::Either::Right(_)))
            }))
        }));
        signaller.join().unwrap();
        drop(manual);
        assert!(
            matches!(outcome, Ok(true)),
            "block_on panicked on a future another thread completes: {:?}",
            outcome.err().map(|p| p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string())))
        );
    });
}

/// `block_on`'s wait-for edge is recorded on the ticket's reply slot, so the reply settles
/// it: a worker that calls the manual queue right after answering is never refused, though
/// the owner, answered, has not run yet.
#[test]
fn a_worker_calling_the_owner_whose_block_on_was_answered_is_not_refused() {
    within(Duration::from_secs(60), || {
        let mut refused = 0;
        for _ in 0..50 {
            let mut manual = SingularQueue::builder(Sum::default()).manual();
            let q = SingularQueue::builder(Exec).spawn().unwrap();
            let first = q.submit(Box::new(|| "first".to_owned()) as Job).unwrap();
            let m = manual.handle();
            let second = q
                .submit(Box::new(move || match m.call(1) {
                    Ok(_) => "ok".to_owned(),
                    Err(e) => format!("refused: {e:?}"),
                }) as Job)
                .unwrap();
            assert_eq!(model::block_on(first).unwrap(), "first");
            let mut second = second;
            let answer = loop {
                manual.run_until_idle();
                if let Some(answer) = second.try_wait() {
                    break answer.unwrap();
                }
                thread::yield_now();
            };
            if answer != "ok" {
                refused += 1;
            }
            drop(q);
            drop(manual);
        }
        assert_eq!(
            refused, 0,
            "of 50 calls to the manual queue made after its owner's block_on was answered, \
             {refused} were refused as deadlocks"
        );
    });
}

// --- 3. call_async ----------------------------------------------------------------------

/// Sanity: a worker's call_async to an unrelated queue, polled with block_on, completes.
#[test]
fn call_async_from_a_worker_to_an_unrelated_queue_completes() {
    within(Duration::from_secs(30), || {
        let other = SingularQueue::new(Sum::default());
        let h = other.handle();
        let q = SingularQueue::builder(Exec).spawn().unwrap();
        let out = q
            .call(Box::new(move || format!("{:?}", model::block_on(h.call_async(5)))) as Job)
            .map_err(|e| format!("{e:?}"))
            .unwrap();
        assert_eq!(out, "Ok(5)");
    });
}

// --- held: quiet after group commit, a panicking on_batch_end, shutdown_now, OnPanic::Stop ---

struct Committer;

impl StateMachine for Committer {
    type Command = u64;
    type Output = u64;
    fn apply(&mut self, n: u64) -> u64 {
        assert!(n != 13, "thirteen");
        n
    }
    fn on_batch_end(&mut self, info: singular_queue::BatchInfo) {
        assert!(info.size < 3, "batch too big");
    }
}

#[test]
fn held_after_quiet_every_ticket_is_answered() {
    within(Duration::from_secs(60), || {
        for on_panic in [
            singular_queue::OnPanic::Continue,
            singular_queue::OnPanic::Stop,
        ] {
            let (queue, release) = held_drop_oldest(|_| ());
            let h = queue.handle();
            let extra = SingularQueue::builder(Committer)
                .capacity(8)
                .reply_mode(singular_queue::ReplyMode::AfterBatch)
                .on_panic(on_panic)
                .spawn()
                .unwrap();
            let tickets: Vec<_> = (0..20u64)
                .filter_map(|n| extra.submit(if n == 7 { 13 } else { n }).ok())
                .collect();
            extra.wait_until_quiet().unwrap();
            assert!(tickets.iter().all(|t| t.is_ready()), "{on_panic:?}");
            release.send(()).unwrap();
            h.wait_until_quiet().unwrap();
            let _ = extra.shutdown_now();
            assert_eq!(h.wait_until_quiet(), Ok(()));
        }
    });
}
