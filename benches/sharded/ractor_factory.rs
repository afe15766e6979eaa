//! Baseline: a [`ractor`] factory with key-persistent routing, the actor-framework way to get
//! "N workers, each job applied by the worker its key hashes to".
//!
//! Every job passes through the one factory actor: client `cast` → factory mailbox → the
//! factory routes it (SipHash of the key, plus a scan of every worker's pending keys) → the
//! worker's mailbox → the worker applies it and casts `Finished` back to the factory, which only
//! then sends that worker its next job. A worker holds at most one job at a time; its backlog
//! waits in the factory's state.

use std::hint::black_box;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ractor::factory::queues::DefaultQueue;
use ractor::factory::routing::KeyPersistentRouting;
use ractor::factory::{
    Factory, FactoryArguments, FactoryRef, Job, Worker, WorkerBuilder, WorkerId, worker_builder,
};
use ractor::{Actor, ActorProcessingErr};

/// The factory's job key and payload are both `u64`.
type Ref = FactoryRef<u64, u64>;

/// Counts applied jobs across all workers and fires `done` when the count reaches `total`.
struct Progress {
    /// Jobs applied so far, by every worker together.
    applied: AtomicU64,
    /// Jobs the run sends in all.
    total: u64,
    /// Fired once, by the worker that applies the last job.
    done: mpsc::Sender<()>,
}

/// A factory worker whose state is one `W`.
struct Applier<W> {
    /// Shared completion counter.
    progress: Arc<Progress>,
    /// The state type; the state itself lives in the worker's actor state.
    _work: PhantomData<fn() -> W>,
}

impl<W: super::Work> Worker for Applier<W> {
    type Key = u64;
    type Message = u64;
    type State = W;
    type Arguments = ();

    async fn pre_start(&self, _: WorkerId, _: &Ref, (): ()) -> Result<W, ActorProcessingErr> {
        Ok(W::default())
    }

    async fn handle(
        &self,
        _: WorkerId,
        _: &Ref,
        job: Job<u64, u64>,
        state: &mut W,
    ) -> Result<u64, ActorProcessingErr> {
        black_box(state.apply(job.msg));
        let p = &self.progress;
        if p.applied.fetch_add(1, Ordering::AcqRel) + 1 == p.total {
            let _ = p.done.send(());
        }
        Ok(job.key)
    }
}

/// Runs `clients` OS threads, each casting `per_client` jobs to a ractor factory of `workers`
/// workers with key-persistent routing; job `j` of client `c` has key
/// `c * 1_000_003 + j % 1024` and payload `j`. Returns the time from just before the clients
/// start until every job has been applied.
pub(crate) fn run<W: super::Work>(workers: usize, clients: usize, per_client: u64) -> Duration {
    let total = clients as u64 * per_client;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let (done, finished) = mpsc::channel();
    let progress = Arc::new(Progress {
        applied: AtomicU64::new(0),
        total,
        done,
    });
    let for_workers = Arc::clone(&progress);
    let builder = worker_builder(move |_| {
        let progress = Arc::clone(&for_workers);
        let worker = Applier::<W> {
            progress,
            _work: PhantomData,
        };
        (worker, ())
    });
    let arguments = FactoryArguments::builder()
        .worker_builder(Box::new(builder) as Box<dyn WorkerBuilder<Applier<W>, ()>>)
        .queue(DefaultQueue::default())
        .router(KeyPersistentRouting::default())
        .num_initial_workers(workers)
        .build();
    let factory = Factory::<
        u64,
        u64,
        (),
        Applier<W>,
        KeyPersistentRouting<u64, u64>,
        DefaultQueue<u64, u64>,
    >::default();
    let (factory, handle) = rt
        .block_on(Actor::spawn(None, factory, arguments))
        .expect("spawn factory");

    let start = Instant::now();
    std::thread::scope(|s| {
        for c in 0..clients {
            let factory = &factory;
            s.spawn(move || {
                for j in 0..per_client {
                    let key = c as u64 * 1_000_003 + j % 1024;
                    factory.dispatch(key, j).expect("factory alive");
                }
            });
        }
    });
    if total > 0 {
        finished.recv().expect("a worker signals completion");
    }
    let elapsed = start.elapsed();

    factory.stop(None);
    rt.block_on(handle).expect("factory stops cleanly");
    rt.shutdown_timeout(Duration::from_secs(5));
    assert_eq!(progress.applied.load(Ordering::Acquire), total);
    elapsed
}
