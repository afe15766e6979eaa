//! Review probes: Stats accounting under DropOldest + panics + shutdown_now, sampled under
//! load; and an orphaned queue's accounting once its worker finished alone.

mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::Duration;

use singular_queue::{Block, DropOldest, OnPanic, SingularQueue, StateMachine, Stats};
use support::{quiet_panics, within};

struct Flaky;

impl StateMachine for Flaky {
    type Command = u64;
    type Output = u64;
    fn apply(&mut self, n: u64) -> u64 {
        assert!(n % 97 != 0, "flaky");
        n
    }
}

fn check(s: &Stats) -> bool {
    s.applied + s.panicked + s.dropped + s.not_applied <= s.submitted
}

#[test]
fn drop_oldest_panics_and_shutdown_now_account_for_every_command() {
    quiet_panics();
    within(Duration::from_secs(120), || {
        for on_panic in [OnPanic::Continue, OnPanic::Stop] {
            for _ in 0..20 {
                let queue = SingularQueue::builder(Flaky)
                    .capacity(4)
                    .backpressure(DropOldest)
                    .on_panic(on_panic)
                    .spawn()
                    .unwrap();
                let stop = Arc::new(AtomicBool::new(false));
                let bad = Arc::new(Mutex::new(Vec::new()));
                let sampler = {
                    let h = queue.handle();
                    let (stop, bad) = (Arc::clone(&stop), Arc::clone(&bad));
                    thread::spawn(move || {
                        while !stop.load(Ordering::Relaxed) {
                            let s = h.stats();
                            if !check(&s) {
                                bad.lock().unwrap().push(s);
                            }
                        }
                    })
                };
                let accepted = Arc::new(AtomicU64::new(0));
                // Each submitter says when it is well under way; the shutdown lands then.
                let (under_way_tx, under_way) = mpsc::channel();
                let subs: Vec<_> = (0..3)
                    .map(|t| {
                        let h = queue.handle();
                        let under_way = under_way_tx.clone();
                        let accepted = Arc::clone(&accepted);
                        thread::spawn(move || {
                            for k in 0..3000u64 {
                                if k == 100 {
                                    under_way.send(()).unwrap();
                                }
                                let r = if k % 3 == 0 {
                                    h.submit(t * 10_000 + k + 1).map(drop)
                                } else {
                                    h.tell(t * 10_000 + k + 1)
                                };
                                match r {
                                    Ok(()) => {
                                        accepted.fetch_add(1, Ordering::Relaxed);
                                    }
                                    Err(e) => assert!(e.is_closed(), "{e:?}"),
                                }
                            }
                        })
                    })
                    .collect();
                let h = queue.handle();
                for _ in 0..3 {
                    under_way.recv().unwrap();
                }
                let unapplied = match queue.shutdown_now() {
                    Ok((_, unapplied)) => unapplied.len() as u64,
                    Err(poisoned) => poisoned.into_parts().1.len() as u64,
                };
                for s in subs {
                    s.join().unwrap();
                }
                stop.store(true, Ordering::Relaxed);
                sampler.join().unwrap();
                let s = h.stats();
                assert!(
                    bad.lock().unwrap().is_empty(),
                    "overcounted: {:?}",
                    bad.lock().unwrap()[0]
                );
                assert_eq!(s.submitted, accepted.load(Ordering::Relaxed));
                assert_eq!(
                    s.submitted,
                    s.applied + s.panicked + s.dropped + s.not_applied,
                    "{s:?}"
                );
                assert_eq!(s.not_applied, unapplied, "{s:?}");
            }
        }
    });
}

struct Owned {
    gone: mpsc::Sender<()>,
    applied: u64,
    slot: Arc<Mutex<Option<SingularQueue<Owned>>>>,
}

impl StateMachine for Owned {
    type Command = u64;
    type Output = u64;
    fn apply(&mut self, n: u64) -> u64 {
        if n == 0 {
            drop(self.slot.lock().unwrap().take()); // orphans the queue
        }
        self.applied += 1;
        n
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        let _ = self.gone.send(());
    }
}

#[test]
fn an_orphaned_queue_with_blocked_submitters_accounts_for_every_command() {
    within(Duration::from_secs(120), || {
        let mut orphaned = 0;
        for _ in 0..50 {
            let (gone_tx, gone_rx) = mpsc::channel();
            let slot = Arc::new(Mutex::new(None));
            let queue = SingularQueue::builder(Owned {
                gone: gone_tx,
                applied: 0,
                slot: Arc::clone(&slot),
            })
            .capacity(2)
            .backpressure(Block)
            .spawn()
            .unwrap();
            let h = queue.handle();
            *slot.lock().unwrap() = Some(queue);
            let accepted = Arc::new(AtomicU64::new(0));
            // Each submitter says when it is well under way; the owner is dropped then.
            let (under_way_tx, under_way) = mpsc::channel();
            let subs: Vec<_> = (0..4)
                .map(|_| {
                    let h = h.clone();
                    let accepted = Arc::clone(&accepted);
                    let under_way = under_way_tx.clone();
                    thread::spawn(move || {
                        for k in 1..500u64 {
                            if k == 10 {
                                under_way.send(()).unwrap();
                            }
                            match h.call(k) {
                                Ok(_) => {
                                    accepted.fetch_add(1, Ordering::Relaxed);
                                }
                                Err(e) => {
                                    assert!(e.is_closed(), "{e:?}");
                                    break;
                                }
                            }
                        }
                    })
                })
                .collect();
            for _ in 0..4 {
                under_way.recv().unwrap();
            }
            let _ = h.tell(0);
            for s in subs {
                s.join().unwrap();
            }
            if h.is_closed() {
                orphaned += 1;
                gone_rx
                    .recv_timeout(Duration::from_secs(10))
                    .expect("orphaned worker exited");
                let s = h.stats();
                assert_eq!(
                    s.submitted,
                    s.applied + s.panicked + s.dropped + s.not_applied
                );
                assert_eq!(s.applied, accepted.load(Ordering::Relaxed) + 1, "{s:?}");
            } else {
                // Take the owner out first: dropping it under the slot's lock would wait for
                // a worker that is about to take that lock in `apply(0)` (a wait in the test's
                // own code, which no wait-for check can see).
                let owner = slot.lock().unwrap().take();
                drop(owner);
            }
        }
        eprintln!("orphaned mid-load in {orphaned} of 50");
        assert!(orphaned > 0);
    });
}
