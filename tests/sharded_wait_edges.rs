//! Wait-for edges around a snapshot's cut that a hostile review found too broad: each test
//! fails if a wait that would end is refused as a deadlock. Where a test must know that a
//! thread is blocked (no event announces it), it waits until the thread is asleep in the
//! kernel.

// Test plumbing: channels and shared slots, typed in place.
#![allow(clippy::type_complexity)]

mod support;

/// The cut waited for the other shards' commit threads too, though reaching a marker never
/// waits for a commit: a commit job (allowed to call another queue) calling a shard at the cut
/// was refused. The cut's edges now lead to the shards' workers only.
mod commit_job {
    use std::sync::mpsc;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::support::{current_tid, within};
    use singular_queue::{BatchInfo, Commit, Route, Router, Sharded, ShardedHandle, StateMachine};

    enum Op {
        Add(u64),
        Hold(mpsc::Sender<()>, mpsc::Receiver<()>),
        /// The next commit's job waits for `go`, then calls `Add(1)` on shard `to`.
        ArmJob(
            ShardedHandle<St>,
            usize,
            mpsc::Receiver<()>,
            mpsc::Sender<u32>,
        ),
    }
    struct Cmd(usize, Op);

    type JobResult = Arc<Mutex<Option<Result<u64, String>>>>;

    #[derive(Default)]
    struct St {
        sum: u64,
        armed: Option<(
            ShardedHandle<St>,
            usize,
            mpsc::Receiver<()>,
            mpsc::Sender<u32>,
        )>,
        job_result: JobResult,
    }

    impl StateMachine for St {
        type Command = Cmd;
        type Output = u64;
        fn apply(&mut self, Cmd(_, op): Cmd) -> u64 {
            match op {
                Op::Add(n) => self.sum += n,
                Op::Hold(started, release) => {
                    started.send(()).unwrap();
                    release.recv().unwrap();
                }
                Op::ArmJob(h, to, go, tid) => self.armed = Some((h, to, go, tid)),
            }
            self.sum
        }
        fn start_commit(&mut self, _: BatchInfo) -> Commit {
            let Some((handle, to, go, tid)) = self.armed.take() else {
                return Commit::done(Ok(()));
            };
            let result = Arc::clone(&self.job_result);
            Commit::later(move || {
                tid.send(current_tid()).unwrap();
                go.recv().unwrap();
                let r = handle.call(Cmd(to, Op::Add(1))).map_err(|e| e.to_string());
                *result.lock().unwrap() = Some(r);
                Ok(())
            })
        }
    }

    struct Explicit;
    impl Router<Cmd> for Explicit {
        fn route(&self, c: &Cmd, _: usize) -> Route {
            Route::Shard(c.0)
        }
    }

    fn hold(handle: &ShardedHandle<St>, shard: usize) -> mpsc::Sender<()> {
        let (started_tx, started) = mpsc::channel();
        let (release, release_rx) = mpsc::channel();
        handle
            .tell(Cmd(shard, Op::Hold(started_tx, release_rx)))
            .unwrap();
        started.recv().unwrap();
        release
    }

    /// PROMISE: a `Deadlock` refusal means the wait would never end. Here the commit job's call
    /// would have been served as soon as shard 0 finished its (finite) `apply`: shard 1 waits at
    /// the cut only for shard 0's worker, which never waits for its own commit thread.
    #[test]
    fn a_commit_job_calling_a_shard_at_the_cut_is_served() {
        within(Duration::from_secs(20), || {
            let job_result = JobResult::default();
            let jr = Arc::clone(&job_result);
            let sharded = Sharded::builder(2, Explicit, move |_| St {
                job_result: Arc::clone(&jr),
                ..St::default()
            })
            .spawn()
            .unwrap();
            // Shard 0: a commit job that will call shard 1 once told to go.
            let (go, go_rx) = mpsc::channel();
            let (tid_tx, tid_rx) = mpsc::channel();
            sharded
                .call(Cmd(0, Op::ArmJob(sharded.handle(), 1, go_rx, tid_tx)))
                .ok()
                .unwrap();
            let job_tid = tid_rx.recv().unwrap();
            // Shard 0's worker busy in a finite apply.
            let release = hold(&sharded, 0);
            // A snapshot: shard 1 reaches its marker and waits at the cut for shard 0.
            let snapshotter =
                super::support::snapshot_in_the_background(sharded.handle(), |s: &St| s.sum);
            // The commit job calls shard 1.
            go.send(()).unwrap();
            // Either its call is refused at once, or it sleeps waiting for the reply.
            super::support::wait_for(
                "the job's call refused or waiting",
                Duration::from_secs(5),
                || {
                    job_result.lock().unwrap().is_some()
                        || super::support::thread_state(job_tid) == Some('S')
                },
            );
            release.send(()).unwrap();
            let snapshot = snapshotter.join().unwrap();
            sharded.wait_until_quiet().unwrap();
            drop(sharded);
            let job = job_result.lock().unwrap().take();
            eprintln!("snapshot {snapshot:?}, job's call {job:?}");
            assert!(snapshot.is_ok(), "{snapshot:?}");
            assert!(matches!(job, Some(Ok(_))), "the job's call: {job:?}");
        });
    }
}

/// A snapshot taken on a worker (inside another queue's `apply`) kept an edge to every shard
/// until the last result was in: a shard that had computed and gone on was refused a call to
/// that queue. The caller now only checks up front, and each wait for a result records its
/// own edge, settled as the result comes.
mod snapshotting_worker {
    use std::sync::mpsc;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::support::{current_tid, thread_state, wait_for, within};
    use singular_queue::{
        CallError, Handle, Route, Router, Sharded, ShardedHandle, SingularQueue, StateMachine,
    };

    /// Shard state: `Call` calls the other queue from `apply`.
    #[derive(Default)]
    struct Shard(usize);
    enum Op {
        Tid(mpsc::Sender<u32>),
        Call(Handle<Other>),
    }
    struct Cmd(usize, Op);
    impl StateMachine for Shard {
        type Command = Cmd;
        type Output = Result<(), String>;
        fn apply(&mut self, Cmd(_, op): Cmd) -> Result<(), String> {
            match op {
                Op::Tid(tx) => {
                    tx.send(current_tid()).unwrap();
                    Ok(())
                }
                Op::Call(other) => other
                    .call(Ask::Nothing)
                    .map(drop)
                    .map_err(|e: CallError<Ask>| e.to_string()),
            }
        }
    }
    struct Explicit;
    impl Router<Cmd> for Explicit {
        fn route(&self, c: &Cmd, _: usize) -> Route {
            Route::Shard(c.0)
        }
    }

    /// An unrelated queue whose `apply` takes a snapshot of the shards.
    struct Other;
    enum Ask {
        Nothing,
        Snapshot(
            ShardedHandle<Shard>,
            Arc<Mutex<Option<mpsc::Sender<()>>>>,
            Arc<Mutex<Option<mpsc::Receiver<()>>>>,
        ),
    }
    impl StateMachine for Other {
        type Command = Ask;
        type Output = bool;
        fn apply(&mut self, ask: Ask) -> bool {
            match ask {
                Ask::Nothing => true,
                Ask::Snapshot(handle, shard0_done, shard1_go) => handle
                    .snapshot(move |s: &Shard| {
                        if s.0 == 0 {
                            // Shard 0 has computed: it goes on past the cut.
                            shard0_done
                                .lock()
                                .unwrap()
                                .take()
                                .unwrap()
                                .send(())
                                .unwrap();
                        } else {
                            // Shard 1's f is slow: it takes until the test says go.
                            let go = shard1_go.lock().unwrap().take().unwrap();
                            go.recv().unwrap();
                        }
                    })
                    .is_ok(),
            }
        }
    }

    /// PROMISE: `CallError::Deadlock` only for a wait that would never end.
    #[test]
    fn a_shard_past_the_cut_may_call_the_snapshotting_worker() {
        within(Duration::from_secs(20), || {
            let sharded = Sharded::new(2, Explicit, Shard);
            let other = SingularQueue::new(Other);
            let (tid_tx, tid_rx) = mpsc::channel();
            sharded.call(Cmd(0, Op::Tid(tid_tx))).ok().unwrap().unwrap();
            let tid0 = tid_rx.recv().unwrap();
            let (done_tx, done) = mpsc::channel();
            let (go, go_rx) = mpsc::channel();
            let snapshot = other
                .submit(Ask::Snapshot(
                    sharded.handle(),
                    Arc::new(Mutex::new(Some(done_tx))),
                    Arc::new(Mutex::new(Some(go_rx))),
                ))
                .ok()
                .unwrap();
            done.recv().unwrap(); // shard 0's part of the snapshot is done; shard 1's f runs
            // Shard 0 calls the other queue, which is busy finishing its snapshot (a finite wait).
            let call = sharded
                .submit(Cmd(0, Op::Call(other.handle())))
                .ok()
                .unwrap();
            // Refused at once, or asleep waiting for the other queue.
            wait_for(
                "shard 0's call refused or waiting",
                Duration::from_secs(5),
                || call.is_ready() || thread_state(tid0) == Some('S'),
            );
            go.send(()).unwrap();
            assert_eq!(snapshot.wait(), Ok(true));
            assert_eq!(call.wait(), Ok(Ok(())), "shard 0's call");
            drop(other);
            drop(sharded);
        });
    }
}
