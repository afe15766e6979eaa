//! Found in the second review: a submitter held the queue's gate pass while `on_evict` (user
//! code, allowed to forward to a dead-letter queue with `call`, as tests/nested_waits.rs does)
//! ran. A worker that waits for the gate to go quiet (`close_and_stop` when it drops or shuts
//! down another queue, `finish_alone` when orphaned) waited for that submitter, which waited
//! for it: a cycle through the gate that the wait-for graph cannot see. Now `on_evict` runs
//! after the submitter has left the gate.

mod support;

use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::Duration;

use singular_queue::{Builder, DropOldest, SingularQueue};
use support::{Exec, Job, current_tid, thread_state, wait_for, within};

fn job(s: &'static str) -> Job {
    Box::new(move || s.to_owned())
}

/// A dead-letter queue A, and the builder of a `DropOldest` queue B whose `on_evict` forwards
/// each evicted job to A with `call`. The callback says when it starts (the first receiver)
/// and forwards only once told to (the sender).
fn dead_letters() -> (
    SingularQueue<Exec>,
    Builder<Exec>,
    mpsc::Receiver<()>,
    mpsc::Sender<()>,
) {
    let a = SingularQueue::new(Exec);
    let to_a = a.handle();
    let (in_evict_tx, in_evict) = mpsc::channel();
    let (go, go_rx) = mpsc::channel();
    let (in_evict_tx, go_rx) = (Mutex::new(in_evict_tx), Mutex::new(go_rx));
    let b = SingularQueue::builder(Exec)
        .backpressure(DropOldest)
        .on_evict(move |evicted: Job| {
            in_evict_tx.lock().unwrap().send(()).unwrap();
            go_rx.lock().unwrap().recv().unwrap();
            let _ = to_a.call(evicted);
        });
    (a, b, in_evict, go)
}

/// B forwards evicted commands to a dead-letter queue A with `call`. A thread's submit to B
/// evicts, and its `on_evict` is running (inside B's gate) when A's worker drops B's owner.
/// A's worker: edge A→B, `close_and_stop` → `gate.wait_quiet()` waits for the submitter.
/// The submitter's `on_evict` calls A: queued behind the drop. A waits for the submitter,
/// the submitter waits for A. Deterministic; it hung every run before the fix.
#[test]
fn dropping_a_queue_on_a_worker_never_waits_for_an_on_evict_that_calls_that_worker() {
    within(Duration::from_secs(10), || {
        let (a, b, in_evict_rx, go_tx) = dead_letters();
        let b = b.capacity(1).spawn().unwrap();
        let hb = b.handle();
        // Hold B's worker, fill its one slot.
        let (started_tx, started_rx) = mpsc::channel::<()>();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        hb.tell(Box::new(move || {
            started_tx.send(()).unwrap();
            release_rx.recv().unwrap();
            "held".to_owned()
        }))
        .unwrap();
        started_rx.recv().unwrap();
        hb.tell(job("x")).unwrap();
        // A plain thread submits y: evicts x, runs on_evict inside B's gate.
        let hb2 = hb.clone();
        let submitter = thread::spawn(move || hb2.tell(job("y")).is_ok());
        in_evict_rx.recv().unwrap();
        release_tx.send(()).unwrap();

        // A's worker drops B's owner (A owns B: a pipeline stage).
        let b_slot = Arc::new(Mutex::new(Some(b)));
        let b_in_a = Arc::clone(&b_slot);
        let (dropping_tx, dropping_rx) = mpsc::channel::<()>();
        a.tell(Box::new(move || {
            dropping_tx.send(()).unwrap();
            drop(b_in_a.lock().unwrap().take());
            "dropped b".to_owned()
        }))
        .unwrap();
        dropping_rx.recv().unwrap();
        // Now on_evict forwards x to A.
        go_tx.send(()).unwrap();
        assert!(submitter.join().unwrap());
        assert_eq!(a.call(job("after")).unwrap(), "after");
        drop((hb, a));
    });
}

/// Orphaned B's worker, in `finish_alone`, waits for its gate to go quiet. The submitter inside
/// B's gate (in `on_evict`) forwards to A with `call`; A's worker waits on a ticket of B's whose
/// command is still in B's channel, which B serves only after the gate is quiet.
/// Cycle: B(worker, wait_quiet) → submitter (gate) → A → B (ticket). It hung every run
/// before the fix.
#[test]
fn an_orphaned_worker_never_waits_for_an_on_evict_that_calls_a_worker_waiting_on_it() {
    within(Duration::from_secs(10), || {
        let (a, b, in_evict_rx, go_tx) = dead_letters();
        let b = b.capacity(2).max_batch(1).spawn().unwrap();
        let hb = b.handle();
        let b_slot = Arc::new(Mutex::new(None::<SingularQueue<Exec>>));
        // H: held, then drops B's owner on B's own worker (orphans B).
        let (started_tx, started_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let b_in_b = Arc::clone(&b_slot);
        hb.tell(Box::new(move || {
            started_tx.send(current_tid()).unwrap();
            release_rx.recv().unwrap();
            drop(b_in_b.lock().unwrap().take());
            "held".to_owned()
        }))
        .unwrap();
        let b_worker = started_rx.recv().unwrap();
        *b_slot.lock().unwrap() = Some(b);
        hb.tell(job("x")).unwrap(); // evicted later
        let tz = hb.submit(job("z")).unwrap(); // stays; served by finish_alone
        // A's worker waits on z's ticket (edge A→B).
        let (a_waiting_tx, a_waiting_rx) = mpsc::channel::<()>();
        let (z_tx, z_rx) = mpsc::channel::<String>();
        a.tell(Box::new(move || {
            a_waiting_tx.send(()).unwrap();
            let z = format!("{:?}", tz.wait());
            z_tx.send(z.clone()).unwrap();
            z
        }))
        .unwrap();
        a_waiting_rx.recv().unwrap();
        // A plain thread submits y: evicts x, on_evict runs inside B's gate.
        let hb2 = hb.clone();
        let submitter = thread::spawn(move || hb2.tell(job("y")).is_ok());
        in_evict_rx.recv().unwrap();
        // B's worker drops its own owner: orphaned, finishes alone, waits for the gate.
        release_tx.send(()).unwrap();
        // Once B's worker is no longer running it is either asleep waiting for its gate to go
        // quiet (the old hang) or gone, having finished alone: only then may `on_evict` go on.
        wait_for("B's worker blocked or gone", Duration::from_secs(5), || {
            thread_state(b_worker) != Some('R')
        });
        go_tx.send(()).unwrap(); // on_evict calls A, which waits for z
        assert_eq!(z_rx.recv().unwrap(), "Ok(\"z\")");
        let _ = submitter.join().unwrap();
        drop((hb, a));
    });
}
