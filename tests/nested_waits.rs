//! Found in review: the wait-for graph loses a worker's outer edge when a nested wait on the same
//! worker thread (user code run during the wait: `on_evict`, a policy) ends.

mod support;

use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use singular_queue::{DropOldest, Handle, SingularQueue};
use support::{Exec, Job, within};

fn exec() -> SingularQueue<Exec> {
    SingularQueue::new(Exec)
}

/// A's worker calls B (edge A→B). B is full under DropOldest; the eviction runs B's
/// `on_evict` on A's worker, which forwards the evicted job to a dead-letter queue C with a
/// `call` (edge A→C). When that inner call returns, `Waiting::drop` retains
/// `from != A`, deleting A→B too, while A still waits for B's reply. B's worker then calls A:
/// the graph shows no A→B, the call is accepted, and A and B wait for each other forever.
#[test]
fn a_nested_wait_in_on_evict_does_not_erase_the_outer_call_edge() {
    within(Duration::from_secs(20), || {
        let dead_letters = exec();
        let to_dead = dead_letters.handle();
        let (forwarded_tx, forwarded_rx) = mpsc::channel::<String>();
        let forwarded_tx = Mutex::new(forwarded_tx);
        let b = SingularQueue::builder(Exec)
            .capacity(1)
            .backpressure(DropOldest)
            .on_evict(move |job: Job| {
                // A dead-letter queue: forward what was evicted, and wait for it to land.
                let landed = to_dead.call(job).unwrap_or_else(|e| format!("dead: {e:?}"));
                forwarded_tx.lock().unwrap().send(landed).unwrap();
            })
            .spawn()
            .unwrap();
        let a = exec();
        let (hb, ha): (Handle<Exec>, Handle<Exec>) = (b.handle(), a.handle());

        // Hold B's worker, and fill B's one slot.
        let (started_tx, started_rx) = mpsc::channel::<()>();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        hb.tell(Box::new(move || {
            started_tx.send(()).unwrap();
            release_rx.recv().unwrap();
            "held".to_owned()
        }))
        .unwrap();
        started_rx.recv().unwrap();
        hb.tell(Box::new(|| "x".to_owned())).unwrap();

        // On B's worker, later: call A, whose worker is waiting for B. Must be refused.
        let (inner_tx, inner_rx) = mpsc::channel::<String>();
        let ha_in_b = ha.clone();
        let y: Job = Box::new(move || {
            let outcome = match ha_in_b.call(Box::new(|| "a".to_owned())) {
                Ok(output) => format!("Ok({output})"),
                Err(e) => format!("{e:?}"),
            };
            inner_tx.send(outcome.clone()).unwrap();
            outcome
        });
        // On A's worker: call B with y; the submit evicts "x" and runs on_evict right here.
        let (outer_tx, outer_rx) = mpsc::channel::<String>();
        let hb_in_a = hb.clone();
        let y = Arc::new(Mutex::new(Some(y)));
        ha.tell(Box::new(move || {
            let y = y.lock().unwrap().take().unwrap();
            let outcome = match hb_in_a.call(y) {
                Ok(output) => format!("Ok({output})"),
                Err(e) => format!("{e:?}"),
            };
            outer_tx.send(outcome).unwrap();
            String::new()
        }))
        .unwrap();
        assert_eq!(forwarded_rx.recv().unwrap(), "x", "on_evict forwarded x");
        release_tx.send(()).unwrap();

        let inner = inner_rx
            .recv_timeout(Duration::from_secs(5))
            .expect("B's worker calling A (which waits for B) hung: the A→B edge was erased");
        assert_eq!(inner, "Deadlock(..)");
        assert_eq!(outer_rx.recv().unwrap(), "Ok(Deadlock(..))");
        drop((ha, hb));
        drop((a, b, dead_letters));
    });
}
