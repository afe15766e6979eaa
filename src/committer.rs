//! The commit threads of pipelined group commit: they run the slow part of each commit (a
//! [`Commit::later`](crate::Commit::later) job) while the worker applies the next commands,
//! as many at once as there are threads, and tell the worker how each ended through the
//! queue's own channel, so that replies, counters, poisoning and their order stay on the
//! worker.

use crate::commit::{Job, Outcome};
use crate::shared::Shared;
use crate::sync::channel::{self, Receiver, Sender};
use crate::sync::{Arc, thread};
use crate::{StateMachine, waits};

/// A commit's number and its job.
type Numbered = (u64, Job);

pub(crate) struct Committer {
    /// Dropped to let the threads finish once they have run every job sent.
    jobs: Option<Sender<Numbered>>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl Committer {
    /// Starts `count` commit threads for the queue `shared` belongs to; `None` if the system
    /// cannot create one (the worker then runs commits itself).
    pub(crate) fn spawn<S: StateMachine>(shared: &Arc<Shared<S>>, count: usize) -> Option<Self> {
        let (jobs, queue) = channel::unbounded();
        let mut committer = Self {
            jobs: Some(jobs),
            threads: Vec::new(),
        };
        for _ in 0..count {
            let (queue, shared) = (queue.clone(), Arc::clone(shared));
            let thread = thread::Builder::new()
                .name(format!("{}-commit", shared.name()))
                .spawn(move || serve(&queue, &shared))
                .ok()?;
            committer.threads.push(thread);
        }
        Some(committer)
    }

    /// Hands the job of the commit numbered `seq` to the first free commit thread.
    pub(crate) fn run(&self, seq: u64, job: Job) {
        if let Some(jobs) = &self.jobs {
            // The threads receive until this sender is dropped: the send cannot fail.
            let _ = jobs.send((seq, job));
        }
    }
}

/// Runs each job and reports its outcome to the worker. The thread is the queue's commit
/// node in the wait-for graph: a job that waits for the queue's output or end would wait for
/// a commit after its own, but it may wait for room, which the worker makes regardless.
fn serve<S: StateMachine>(jobs: &Receiver<Numbered>, shared: &Shared<S>) {
    waits::mark_worker(waits::commits_of(shared.id()));
    while let Ok((seq, job)) = jobs.recv() {
        shared.report_commit(seq, Outcome::of_job(job));
    }
}

impl Drop for Committer {
    /// Lets the threads finish and waits for them: the worker drops its committer only once
    /// every job has reported. (A thread that could not be created leaves the others to
    /// finish here too.)
    fn drop(&mut self) {
        drop(self.jobs.take());
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}
