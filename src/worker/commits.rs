//! The worker's side of group commit. The commands applied since the last commit started form
//! a group; when a batch ends and no commit is running, the group's commit starts
//! ([`StateMachine::start_commit`]). A commit done there settles its group at once; one that
//! leaves a job ([`Commit::later`](crate::Commit::later)) goes to the commit thread, and its
//! group waits, replies held, while the worker applies the next batches, which form the next
//! group. The thread's report comes back through the channel
//! ([`Message::Committed`](crate::message::Message)). Only the worker touches groups, replies
//! and counters; the commit thread only runs jobs.

use std::mem;

use super::{Worker, deliver};
use crate::commit::Outcome;
use crate::committer::Committer;
use crate::on_panic;
use crate::reply::Reply;
use crate::sync::Instant;
use crate::{BatchInfo, BatchTimes, OnCommitError, StateMachine, WaitError};

/// Commands applied since the last commit started: what the next commit covers. Counted as
/// each command is run, so that a restart can abandon the group in the middle of a batch.
pub(super) struct Group<O> {
    /// Outputs held back under `AfterBatch` until the commit succeeds.
    replies: Vec<(Reply<O>, O)>,
    /// Commands taken out of the channel (applied, panicked or set aside).
    pub(super) taken: usize,
    /// Commands `apply` ran on (returning or panicking).
    pub(super) applied: usize,
}

impl<O> Default for Group<O> {
    fn default() -> Self {
        Self {
            replies: Vec::new(),
            taken: 0,
            applied: 0,
        }
    }
}

impl<O> Group<O> {
    /// Holds an output back until the group's commit.
    pub(super) fn hold(&mut self, reply: Reply<O>, output: O) {
        self.replies.push((reply, output));
    }
}

/// A group whose commit has started.
pub(super) struct Committing<O> {
    seq: u64,
    group: Group<O>,
    /// When the commit started, if the observer measures it.
    started: Option<Instant>,
    /// How the commit ended, once it has: the group is settled when every group before it
    /// is.
    outcome: Option<Outcome>,
}

/// Where a commit's job runs.
pub(super) enum CommitThread {
    /// On a thread of its own, not started until a first job comes.
    NotYet,
    Running(Committer),
    /// On the worker (a hand-stepped queue, or no thread could be created).
    Inline,
}

impl<S: StateMachine> Worker<S> {
    /// Runs every commit's job on the worker itself: a hand-stepped queue's, so that a step
    /// is a whole batch, committed.
    pub(crate) fn commit_inline(&mut self) {
        self.commit_thread = CommitThread::Inline;
    }

    /// Ends a batch of `taken` commands, `applied` of which ran: they join the group, and its
    /// commit starts unless as many are running as there are commit threads (then it starts
    /// when one has ended).
    pub(super) fn end_batch(&mut self, taken: usize, remaining: usize) {
        if taken > 0 {
            // Before the commit, which releases the outputs held under `AfterBatch`: a caller
            // whose output was held finds its command in the views.
            self.publish();
            let counters = &self.shared.counters.worker;
            counters.batches.bump(1);
            counters.batched.bump(taken as u64);
            counters.max_batch.raise(taken as u64);
        }
        if self.committing.len() < self.config.commit_threads && self.group.taken > 0 {
            self.start_commit(remaining);
        }
    }

    /// Starts the group's commit, unless it applied nothing or the state is poisoned: done at
    /// once, or handed to a commit thread. Settles every group whose turn has come.
    fn start_commit(&mut self, remaining: usize) {
        let group = mem::take(&mut self.group);
        let seq = self.next_commit;
        self.next_commit += 1;
        let started = self.observer.is_some().then(Instant::now);
        let outcome = if group.applied == 0 || self.poison.is_some() {
            Some(Outcome::NotRun)
        } else {
            self.run_commit(
                seq,
                BatchInfo {
                    size: group.applied,
                    remaining,
                },
            )
        };
        // A failure known now poisons now, not when the group's turn comes: while an older
        // commit still runs, no later command may be applied to this state (found by review).
        if let Some(message) = outcome.as_ref().and_then(|outcome| self.poisoning(outcome)) {
            self.poison(message);
        }
        self.committing.push_back(Committing {
            seq,
            group,
            started,
            outcome,
        });
        self.settle_ready();
    }

    /// The poison an outcome brings, if it brings one: a panic, or a failure under `Stop`.
    fn poisoning(&self, outcome: &Outcome) -> Option<String> {
        match outcome {
            Outcome::Panicked(message) => Some(message.clone()),
            Outcome::Failed(message) if self.config.on_commit_error == OnCommitError::Stop => {
                Some(message.clone())
            }
            _ => None,
        }
    }

    /// Runs `start_commit`; returns its outcome, or `None` if its job went to a commit thread.
    fn run_commit(&mut self, seq: u64, info: BatchInfo) -> Option<Outcome> {
        let state = &mut self.state;
        let job = match on_panic::catch(|| state.start_commit(info)) {
            Ok(commit) => match commit.into_job() {
                Ok(done) => return Some(done),
                Err(job) => job,
            },
            Err(panic) => return Some(Outcome::Panicked(panic)),
        };
        match self.committer() {
            Some(committer) => {
                committer.run(seq, job);
                None
            }
            None => Some(Outcome::of_job(job)),
        }
    }

    /// The commit thread, started on first use; `None` if commits run on the worker.
    fn committer(&mut self) -> Option<&Committer> {
        if let CommitThread::NotYet = self.commit_thread {
            self.commit_thread = match Committer::spawn(&self.shared, self.config.commit_threads) {
                Some(committer) => CommitThread::Running(committer),
                None => CommitThread::Inline,
            };
        }
        match &self.commit_thread {
            CommitThread::Running(committer) => Some(committer),
            _ => None,
        }
    }

    /// A commit thread's report on the commit numbered `seq`.
    pub(super) fn commit_ended(&mut self, seq: u64, outcome: Outcome) {
        // A failure poisons as soon as it is known, even while an older commit still runs:
        // nothing applied after it may reach a caller (found by review).
        if let Some(message) = self.poisoning(&outcome) {
            self.poison(message);
        }
        if let Some(commit) = self.committing.iter_mut().find(|commit| commit.seq == seq) {
            commit.outcome = Some(outcome);
        }
        self.settle_ready();
    }

    /// Settles, oldest first, every group whose commit has ended and whose elders are
    /// settled: a group's outputs never go out before an older group's.
    fn settle_ready(&mut self) {
        while self
            .committing
            .front()
            .is_some_and(|commit| commit.outcome.is_some())
        {
            let commit = self.committing.pop_front().expect("just looked");
            let outcome = commit.outcome.expect("just looked");
            self.settle(commit.group, outcome, commit.started);
        }
    }

    /// Settles a group whose commit ended with `outcome`: counts a failure and poisons as the
    /// builder says; releases the held outputs if the commit succeeded, or tells their callers
    /// why not; then the group's commands are done with.
    fn settle(&mut self, group: Group<S::Output>, outcome: Outcome, started: Option<Instant>) {
        let ran = !matches!(outcome, Outcome::NotRun);
        let commit_time = started.filter(|_| ran).map(|started| started.elapsed());
        let committed = matches!(outcome, Outcome::Committed);
        if let Some(message) = self.poisoning(&outcome) {
            self.poison(message);
        }
        let failure = match outcome {
            Outcome::Committed => None,
            Outcome::NotRun => self.poison.clone(),
            Outcome::Failed(message) => {
                self.shared.counters.worker.failed_commits.bump(1);
                Some(message)
            }
            Outcome::Panicked(message) | Outcome::Abandoned(message) => Some(message),
        };
        match failure {
            None => (group.replies.into_iter()).for_each(|(reply, output)| {
                deliver(Some(reply), Ok(output));
            }),
            Some(message) => fail(group.replies, &message),
        }
        self.report_batch(group.taken, commit_time, committed);
        self.shared.batch_served(group.taken);
    }

    /// Tells the observer, if there is one, about a finished group.
    fn report_batch(
        &mut self,
        size: usize,
        commit_time: Option<std::time::Duration>,
        committed: bool,
    ) {
        if self.observer.is_some() {
            let times = BatchTimes {
                size,
                commit_time,
                committed,
                waiting: self.shared.depth(),
            };
            self.observe(|observer| observer.batch(&times));
        }
    }

    /// Abandons the group: its commands were applied to a state that a restart is about to
    /// replace, so its commit will never run. Its turn comes after the commits under way, as
    /// any group's does; its held outputs then fail as not committed.
    pub(super) fn abandon_group(&mut self, message: String) {
        let group = mem::take(&mut self.group);
        let seq = self.next_commit;
        self.next_commit += 1;
        self.committing.push_back(Committing {
            seq,
            group,
            started: None,
            outcome: Some(Outcome::Abandoned(message)),
        });
        self.settle_ready();
    }

    /// Tells the callers whose outputs wait for the group's commit, which will not come, that
    /// their commands were applied but not committed.
    pub(super) fn fail_pending(&mut self, message: &str) {
        fail(mem::take(&mut self.group.replies), message);
    }

    /// Before the worker finishes: waits for the running commit, commits the group left, and
    /// lets the commit thread go. Every command is out of the channel by now; what arrives is
    /// the thread's report (and perhaps a nudge).
    pub(super) fn settle_commits(&mut self) {
        loop {
            if self.committing.is_empty() {
                if self.group.taken == 0 {
                    break;
                }
                self.start_commit(0);
                continue;
            }
            let Some(message) = self.lanes.recv_normal() else {
                break;
            };
            if let Ok(taken) = self.lanes.normal_message(message, &self.shared) {
                self.run_batch(taken);
            }
        }
        // Joins the threads, which have run every job they were handed.
        self.commit_thread = CommitThread::Inline;
    }
}

/// Tells each caller that its command was applied, not committed.
fn fail<O>(replies: Vec<(Reply<O>, O)>, message: &str) {
    for (reply, output) in replies {
        deliver(
            Some(reply),
            Err(WaitError::NotCommitted(message.to_owned())),
        );
        deliver(None, Ok(output)); // dropped under `catch`, like any output
    }
}
