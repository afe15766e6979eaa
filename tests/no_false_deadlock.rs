//! Found in review: a wait-for edge outlives the wait it records. Once B's worker has completed A's
//! call, A's worker still shows "A waits for B" until it is scheduled again and drops its
//! `Waiting`; if B's worker meanwhile calls A, that call is refused as a Deadlock although A
//! is about to serve it. No cycle exists: the error misnames the command's fate.

mod support;

use std::sync::mpsc;
use std::time::Duration;

use singular_queue::SingularQueue;
use support::{Exec, within};

fn show<T>(r: Result<String, singular_queue::CallError<T>>) -> String {
    match r {
        Ok(s) => s,
        Err(e) => format!("{e:?}"),
    }
}

/// A's worker calls B (command 1). Right behind command 1 in B's queue sits command 2, which
/// calls A. B's worker replies to command 1, so A's wait is over, then applies command 2: A
/// is not waiting for anything any more, so the call must be served, never refused.
#[test]
fn a_worker_whose_call_was_answered_is_not_reported_as_waiting() {
    within(Duration::from_secs(120), || {
        let a = SingularQueue::new(Exec);
        let b = SingularQueue::new(Exec);
        let rounds = 2000;
        let mut refused = 0;
        for _ in 0..rounds {
            let (ha, hb) = (a.handle(), b.handle());
            let (gate_tx, gate_rx) = mpsc::channel::<()>();
            let (sent_tx, sent_rx) = mpsc::channel::<()>();
            // Hold B until both of its commands are queued.
            hb.tell(Box::new(move || {
                let _ = gate_rx.recv();
                String::new()
            }))
            .unwrap();
            let hb_in_a = hb.clone();
            ha.tell(Box::new(move || {
                let t = hb_in_a.submit(Box::new(|| "one".to_owned())).unwrap();
                sent_tx.send(()).unwrap();
                // Waits on B's ticket (edge A→B) until B's worker answers command 1.
                t.wait().unwrap_or_else(|e| format!("{e:?}"))
            }))
            .unwrap();
            sent_rx.recv().unwrap();
            let (out_tx, out_rx) = mpsc::channel::<String>();
            let ha_in_b = ha.clone();
            hb.tell(Box::new(move || {
                let outcome = show(ha_in_b.call(Box::new(|| "a".to_owned())));
                out_tx.send(outcome.clone()).unwrap();
                outcome
            }))
            .unwrap();
            gate_tx.send(()).unwrap();
            match out_rx.recv().unwrap().as_str() {
                "a" => {}
                "Deadlock(..)" => refused += 1,
                other => panic!("unexpected {other}"),
            }
        }
        assert_eq!(
            refused, 0,
            "{refused} of {rounds} calls refused as Deadlock with no cycle"
        );
        drop((a, b));
    });
}
