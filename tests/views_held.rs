//! The hostile review's attacks on published views that held, kept as regression tests:
//! calls into the queue from the view's function, the owner dropped there, pipelined commits,
//! sharded views, `shutdown_now`, `close`, eviction, readers holding views and views dropped
//! on readers.

mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::Duration;

use singular_queue::{
    Block, Commit, DropOldest, Handle, OnPanic, ReplyMode, Sharded, SingularQueue, StateMachine,
    View, WaitError, by_key,
};
use support::within;

#[derive(Debug, Default)]
struct Total {
    total: u64,
    later: bool,
}

impl StateMachine for Total {
    type Command = u64;
    type Output = u64;
    fn apply(&mut self, add: u64) -> u64 {
        self.total += add;
        self.total
    }
    fn start_commit(&mut self, info: singular_queue::BatchInfo) -> Commit {
        if self.later {
            Commit::later(|| {
                thread::yield_now();
                Ok(())
            })
        } else {
            Commit::done(self.try_on_batch_end(info))
        }
    }
}

type Slot = Arc<OnceLock<Handle<Total>>>;

/// The view's function calls back into its own queue every way it can: each is refused or
/// returns, never hangs, and the queue still serves and shuts down cleanly.
#[test]
fn a_view_function_that_calls_its_own_queue_is_refused_not_hung() {
    within(Duration::from_secs(30), || {
        let slot: Slot = Arc::new(OnceLock::new());
        let seen = Arc::new(Mutex::new(Vec::<String>::new()));
        let (s, log) = (Arc::clone(&slot), Arc::clone(&seen));
        let once = AtomicBool::new(false);
        let (builder, view) = SingularQueue::builder(Total::default())
            .capacity(1)
            .backpressure(Block)
            .publish(move |t: &Total| {
                if let Some(h) = s
                    .get()
                    .filter(|_| t.total == 5 && !once.swap(true, Ordering::SeqCst))
                {
                    let note = |what: String| log.lock().unwrap().push(what);
                    note(format!("call {:?}", h.call(0).map_err(|e| e.to_string())));
                    note(format!("tell {:?}", h.tell(0).is_ok()));
                    note(format!("tell2 {:?}", h.tell(0).map_err(|e| e.to_string())));
                    note(format!("read {:?}", h.read(|t: &Total| t.total).is_ok()));
                    note(format!("quiet {:?}", h.wait_until_quiet().is_ok()));
                    if let Ok(ticket) = h.submit(0) {
                        note(format!("wait {:?}", ticket.wait()));
                    }
                }
                t.total
            });
        let queue = builder.spawn().unwrap();
        slot.set(queue.handle()).ok().unwrap();
        queue.tell(5).unwrap();
        queue.wait_until_quiet().unwrap();
        let state = queue.shutdown().unwrap();
        assert_eq!(state.total, 5);
        assert_eq!(*view.latest(), 5);
        assert_eq!(
            *seen.lock().unwrap(),
            [
                "call Err(\"calling a queue from its own worker thread\")",
                "tell true", // the one place was free
                "tell2 Err(\"waiting would deadlock: the queue waits for this thread\")",
                "read false",
                "quiet false",
            ]
        );
    });
}

/// The owner dropped inside the view's function: the queue finishes on its own, serving what
/// was accepted.
#[test]
fn dropping_the_owner_inside_the_view_function_finishes_the_queue() {
    within(Duration::from_secs(30), || {
        let owner: Arc<Mutex<Option<SingularQueue<Total>>>> = Arc::new(Mutex::new(None));
        let o = Arc::clone(&owner);
        let (builder, view) = SingularQueue::builder(Total::default()).publish(move |t: &Total| {
            if t.total >= 3 {
                let taken = o.lock().unwrap().take();
                drop(taken);
            }
            t.total
        });
        let queue = builder.spawn().unwrap();
        let handle = queue.handle();
        *owner.lock().unwrap() = Some(queue);
        let tickets: Vec<_> = (0..10).map(|_| handle.submit(1)).collect();
        let mut applied = 0;
        for t in tickets {
            match t {
                Ok(t) => {
                    assert!(t.wait().is_ok());
                    applied += 1;
                }
                Err(e) => assert!(e.is_closed()),
            }
        }
        model_block_on_closed(&handle);
        assert_eq!(*view.latest(), applied);
    });
}

fn model_block_on_closed(handle: &Handle<Total>) {
    singular_queue::model::block_on(handle.closed());
}

/// A panic in the view's function after `on_start`, with commands already waiting: they are
/// told `NotApplied`, and shutdown names the panic.
#[test]
fn a_panic_in_the_view_function_after_on_start_poisons_and_tells_everyone() {
    support::quiet_panics();
    within(Duration::from_secs(30), || {
        let started = Arc::new(AtomicBool::new(false));
        let s = Arc::clone(&started);
        let (builder, view) = SingularQueue::builder(Total::default()).publish(move |t: &Total| {
            if s.swap(true, Ordering::SeqCst) {
                panic!("second view");
            }
            t.total
        });
        // The builder's computation is not a publication by the worker: reset.
        started.store(false, Ordering::SeqCst);
        let builder = builder.publish(|_: &Total| ()).0;
        let queue = builder.spawn().unwrap();
        let h = queue.handle();
        let mut results = Vec::new();
        for _ in 0..5 {
            match h.submit(1) {
                Ok(t) => results.push(t.wait()),
                Err(e) => assert!(e.is_closed()),
            }
        }
        // The first command's batch is the one whose view panicked: applied.
        assert_eq!(results[0], Ok(1));
        for r in &results[1..] {
            assert_eq!(*r, Err(WaitError::NotApplied));
        }
        queue.wait_until_quiet().unwrap();
        let stats = queue.stats();
        assert_eq!(stats.submitted, stats.applied + stats.not_applied);
        assert_eq!(stats.applied, 1);
        let p = queue.shutdown().unwrap_err();
        assert!(p.message().contains("second view"));
        assert_eq!(*view.latest(), 0);
    });
}

/// Pipelined commit, two commit threads, `AfterBatch`: a caller's command is in the view when
/// its call returns; views go forward for a reader.
#[test]
fn read_your_writes_under_pipelined_commit() {
    within(Duration::from_secs(60), || {
        let (builder, view) = SingularQueue::builder(Total {
            total: 0,
            later: true,
        })
        .reply_mode(ReplyMode::AfterBatch)
        .commit_threads(2)
        .max_batch(3)
        .capacity(4)
        .publish(|t: &Total| t.total);
        let queue = builder.spawn().unwrap();
        let done = Arc::new(AtomicBool::new(false));
        let reader = {
            let (view, done) = (view.clone(), Arc::clone(&done));
            thread::spawn(move || {
                let mut last = 0;
                while !done.load(Ordering::SeqCst) {
                    let v = *view.latest();
                    assert!(v >= last);
                    last = v;
                }
            })
        };
        let clients: Vec<_> = (0..4)
            .map(|_| {
                let (h, view) = (queue.handle(), view.clone());
                thread::spawn(move || {
                    for _ in 0..2_000 {
                        let mine = h.call(1).unwrap();
                        assert!(*view.latest() >= mine);
                    }
                })
            })
            .collect();
        for c in clients {
            c.join().unwrap();
        }
        done.store(true, Ordering::SeqCst);
        reader.join().unwrap();
        assert_eq!(queue.shutdown().unwrap().total, 8_000);
    });
}

/// Views of a sharded queue's shards, published through `configure`, under `AfterBatch`.
#[test]
fn views_of_shards_hold_the_callers_write() {
    within(Duration::from_secs(60), || {
        let views: Arc<Mutex<Vec<View<u64>>>> = Arc::new(Mutex::new(Vec::new()));
        let v = Arc::clone(&views);
        let sharded = Sharded::builder(2, by_key(|c: &u64| *c), |_| Total::default())
            .configure(move |_, b| {
                let (b, view) = b
                    .reply_mode(ReplyMode::AfterBatch)
                    .publish(|t: &Total| t.total);
                v.lock().unwrap().push(view);
                b
            })
            .spawn()
            .unwrap();
        let views = views.lock().unwrap().clone();
        for i in 0..200u64 {
            let singular_queue::Route::Shard(shard) = sharded.route(&i) else {
                unreachable!()
            };
            let mine = sharded.call(i).unwrap();
            assert!(*views[shard].latest() >= mine);
        }
        let totals: u64 = sharded
            .shutdown()
            .into_iter()
            .map(|s| s.unwrap().total)
            .sum();
        assert_eq!(totals, (0..200).sum::<u64>());
    });
}

/// `shutdown_now`, `close` from a handle and `DropOldest` evictions: views stay whole and
/// match the state handed back.
#[test]
fn views_after_shutdown_now_close_and_evictions_match_the_state() {
    within(Duration::from_secs(30), || {
        let (builder, view) = SingularQueue::builder(Total::default()).publish(|t: &Total| t.total);
        let (queue, _) = (builder.spawn().unwrap(), ());
        for _ in 0..100 {
            queue.tell(1).unwrap();
        }
        let (state, unapplied) = queue.shutdown_now().unwrap();
        assert_eq!(*view.latest(), state.total);
        assert_eq!(state.total + unapplied.len() as u64, 100);

        let (builder, view) = SingularQueue::builder(Total::default())
            .capacity(2)
            .backpressure(DropOldest)
            .publish(|t: &Total| t.total);
        let mut queue = builder.manual();
        for _ in 0..10 {
            queue.tell(1).unwrap();
        }
        queue.handle().close();
        queue.run_until_idle();
        assert_eq!(*view.latest(), 2);
        assert_eq!(queue.stats().dropped, 8);
        assert_eq!(queue.shutdown().unwrap().total, 2);
    });
}

/// A reader that keeps every view it reads: nothing is reused from under it, and the worker
/// allocates a fresh view per publication; all are freed once dropped.
#[test]
fn a_reader_holding_views_forever_keeps_them_whole() {
    static LIVE: AtomicU64 = AtomicU64::new(0);
    struct Live(u64);
    impl Drop for Live {
        fn drop(&mut self) {
            LIVE.fetch_sub(1, Ordering::SeqCst);
        }
    }
    let (builder, view) = SingularQueue::builder(Total::default()).publish(|t: &Total| {
        LIVE.fetch_add(1, Ordering::SeqCst);
        Live(t.total)
    });
    let mut queue = builder.manual();
    let mut held = Vec::new();
    for i in 1..=100 {
        queue.tell(1).unwrap();
        queue.step();
        held.push(view.latest());
        assert_eq!(held.last().unwrap().0, i);
    }
    for (i, v) in held.iter().enumerate() {
        assert_eq!(v.0, i as u64 + 1);
    }
    drop(held);
    drop(queue);
    drop(view);
    assert_eq!(LIVE.load(Ordering::SeqCst), 0);
}

/// A view's `Drop` on a reader thread that calls and waits on the queue, and reads the view.
#[test]
fn a_views_drop_on_a_reader_may_call_the_queue() {
    within(Duration::from_secs(30), || {
        static SLOT: OnceLock<(Handle<Total>, View<Caller>)> = OnceLock::new();
        struct Caller(#[allow(dead_code)] u64);
        impl Drop for Caller {
            fn drop(&mut self) {
                if let Some((h, v)) = SLOT.get() {
                    let _ = v.latest();
                    let _ = h.call(0);
                    let _ = h.wait_until_quiet();
                }
            }
        }
        let (builder, view) = SingularQueue::builder(Total::default())
            .on_panic(OnPanic::Continue)
            .publish(|t: &Total| Caller(t.total));
        let queue = builder.spawn().unwrap();
        let _ = SLOT.set((queue.handle(), view.clone()));
        let readers: Vec<_> = (0..4)
            .map(|_| {
                let (h, v) = (queue.handle(), view.clone());
                thread::spawn(move || {
                    for _ in 0..200 {
                        let held = v.latest();
                        h.tell(1).unwrap();
                        drop(held);
                    }
                })
            })
            .collect();
        for r in readers {
            r.join().unwrap();
        }
        queue.wait_until_quiet().unwrap();
        assert!(queue.shutdown().is_ok());
    });
}
