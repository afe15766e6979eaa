//! The commit thread of pipelined group commit: it runs the slow part of each commit (a
//! [`Commit::later`](crate::Commit::later) job), one at a time, while the worker applies the
//! next commands, and tells the worker how each ended through the queue's own channel, so that
//! replies, counters and poisoning stay on the worker.

use crate::commit::{Job, Outcome};
use crate::shared::Shared;
use crate::sync::channel::{self, Receiver, Sender};
use crate::sync::{Arc, thread};
use crate::{StateMachine, waits};

pub(crate) struct Committer {
    /// Dropped to let the thread finish once it has run every job sent.
    jobs: Option<Sender<Job>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Committer {
    /// Starts the commit thread of the queue `shared` belongs to; `None` if the system cannot
    /// create a thread (the worker then runs commits itself).
    pub(crate) fn spawn<S: StateMachine>(shared: &Arc<Shared<S>>) -> Option<Self> {
        let (jobs, queue) = channel::unbounded();
        let shared = Arc::clone(shared);
        let thread = thread::Builder::new()
            .name(format!("{}-commit", shared.name()))
            .spawn(move || serve(&queue, &shared))
            .ok()?;
        Some(Self {
            jobs: Some(jobs),
            thread: Some(thread),
        })
    }

    /// Hands `job` to the commit thread, which runs it after those handed before.
    pub(crate) fn run(&self, job: Job) {
        if let Some(jobs) = &self.jobs {
            // The thread receives until this sender is dropped: the send cannot fail.
            let _ = jobs.send(job);
        }
    }
}

/// Runs each job and reports its outcome to the worker. The thread counts as the queue's
/// worker: a job that calls the queue and waits would wait for a commit after its own.
fn serve<S: StateMachine>(jobs: &Receiver<Job>, shared: &Shared<S>) {
    waits::mark_worker(shared.id());
    while let Ok(job) = jobs.recv() {
        shared.report_commit(Outcome::of_job(job));
    }
}

impl Drop for Committer {
    /// Lets the thread finish and waits for it: the worker drops its committer only once every
    /// job has reported.
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
