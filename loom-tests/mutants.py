#!/usr/bin/env python3
"""Shows that the loom models can fail: breaks the code on purpose, one mutation at a time, in
a scratch copy of the repository, runs the model that should catch it, and prints
`caught <mutation>` or `MISSED <mutation>`.

Usage: python3 loom-tests/mutants.py [NAME ...]   (default: every mutation)
Not part of CI: each mutation rebuilds the crate under loom.
"""
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# name: (file, original text, mutated text, model test that must fail), or, for a bug that
# spans several places: ([(file, original text, mutated text), ...], model test that must fail)
MUTATIONS = {
    "gate-check-then-register": (
        "src/gate.rs",
        "let before = self.state.fetch_add(ONE, Ordering::AcqRel);",
        "let before = self.state.load(Ordering::Acquire);\n"
        "        crate::sync::spin_hint();\n"
        "        self.state.fetch_add(ONE, Ordering::AcqRel);",
        "shutdown_racing_a_submit_applies_it_or_hands_it_back",
    ),
    "gate-missed-notify": (
        "src/gate.rs",
        "self.left.notify_all();",
        "let _ = &self.left;",
        "shutdown_racing_a_submit_applies_it_or_hands_it_back",
    ),
    "shutdown-skips-wait-quiet": (
        "src/shared.rs",
        "self.gate.wait_quiet();",
        "",
        "shutdown_racing_a_submit_applies_it_or_hands_it_back",
    ),
    "reply-missed-notify": (
        "src/reply.rs",
        "slot.ready.notify_one();",
        "let _ = &slot.ready;",
        "ticket_completion_racing_its_waiter_always_wakes_it",
    ),
    "reply-notify-before-store": (
        [
            ("src/reply.rs",
             "            let before = {\n                let mut state = slot.state.lock();",
             "            slot.ready.notify_one();\n            crate::sync::spin_hint();\n"
             "            let before = {\n                let mut state = slot.state.lock();"),
            ("src/reply.rs",
             "            slot.ready.notify_one();\n            // Woken after",
             "            // Woken after"),
        ],
        "ticket_completion_racing_its_waiter_always_wakes_it",
    ),
    "evict-without-telling-the-submitter": (
        "src/shared/eviction.rs",
        "reply.send(Err(WaitError::Dropped));",
        "std::mem::forget(reply);",
        "drop_oldest_two_producers_each_command_applied_or_dropped_exactly_once",
    ),
    "evict-without-counting": (
        "src/shared/eviction.rs",
        "self.counters.submit.dropped.add(1);",
        "",
        "drop_oldest_two_producers_each_command_applied_or_dropped_exactly_once",
    ),
    "set-aside-forgets-the-waiter": (
        "src/worker.rs",
        "drop(reply);",
        "std::mem::forget(reply);",
        "shutdown_now_racing_a_waiter_applies_or_returns_the_command_and_wakes_the_waiter",
    ),
    "group-commit-replies-before-commit": (
        "src/worker.rs",
        "if self.config.reply_mode == ReplyMode::AfterBatch =>",
        "if false && self.config.reply_mode == ReplyMode::AfterBatch =>",
        "group_commit_never_replies_before_the_batch_is_committed",
    ),
    "failed-commit-reports-done": (
        "src/worker/commits.rs",
        "        match failure {\n",
        "        match None::<String> {\n",
        "a_failed_commit_fails_every_reply_of_its_batch",
    ),

    "ticket-keeps-the-first-waker": (
        "src/reply.rs",
        "State::Pending { waker: known, .. } => known.replace(waker),",
        "State::Pending { waker: known, .. } if known.is_none() => known.replace(waker),",
        "async_ticket_completion_racing_poll_and_a_replaced_waker_always_wakes_the_task",
    ),
    "room-no-second-try-after-registering": (
        "src/shared.rs",
        "            registration.register_then_look(cx.waker());\n"
        "            let pending = match self.look_for_room(pending, &mut attempt) {\n"
        "                Ok(result) => return Poll::Ready(result),\n"
        "                Err(full) => full,\n            };",
        "            registration.register_then_look(cx.waker());",
        "an_async_submit_waiting_for_room_is_woken_when_the_worker_frees_a_slot",
    ),
    "retry-for-room-skips-the-gate": (
        "src/shared.rs",
        "let Some(_pass) = self.gate.enter() else {\n"
        "            return Ok(Err(SubmitError::Closed(message)));\n"
        "        };",
        "",
        "a_shutdown_racing_a_poll_in_progress_wakes_the_task_which_gets_in_or_its_command_back",
    ),
    # Both defences removed: a timed-out call keeps its slot, and the slot is reused without
    # proof that the worker let go. Either one alone keeps the late output out.
    "reuse-a-slot-the-worker-can-still-reach": (
        [
            ("src/handle.rs",
             "if !matches!(outcome, Err(CallError::ReplyTimeout)) {",
             "if true {"),
            ("src/spare.rs",
             "match take::<T>().and_then(unshared) {",
             "match take::<T>() {"),
        ],
        "a_reused_reply_slot_never_receives_an_earlier_output",
    ),
    "timed-out-call-keeps-its-slot-pending": (
        "src/reply.rs",
        "std::mem::replace(&mut *state, State::Abandoned)",
        "std::mem::replace(&mut *state, pending())",
        "a_timed_out_call_never_drops_the_late_output_on_its_own_thread",
    ),
    "wait-for-graph-misses-cycles": (
        "src/waits.rs",
        "if mine.contains(&queue) {\n            return Err(WouldDeadlock);",
        "if mine.contains(&queue) && false {\n            return Err(WouldDeadlock);",
        "two_workers_calling_each_other_never_deadlock",
    ),
    "reply-does-not-settle-its-waiters-edge": (
        "src/reply.rs",
        "                    if *edge != 0 {\n                        waits::settle(*edge);\n",
        "                    if *edge != 0 && false {\n                        waits::settle(*edge);\n",
        "a_worker_whose_wait_was_answered_is_never_taken_for_blocked",
    ),
    "orphaned-worker-drains-before-the-gate-is-quiet": (
        "src/worker.rs",
        "        self.shared.close();\n        self.shared.wait_quiet();\n",
        "        self.shared.close();\n",
        "an_owner_dropped_on_its_own_worker_stops_the_queue_without_losing_a_command",
    ),
    "timer-wakes-under-the-alarm-lock": (
        "src/timer.rs",
        "let waker = entry.waker.lock().take();\n            if let Some(waker) = waker {",
        "if let Some(waker) = entry.waker.lock().take() {",
        "a_waker_that_drops_its_task_inline_never_deadlocks_the_timer",
    ),
    "room-wakes-under-its-lock": (
        "src/room.rs",
        "let entries = {\n            let mut waiters = self.waiters.lock();",
        "let mut waiters = self.waiters.lock();\n        let entries = {",
        "a_waker_that_drops_its_task_inline_never_deadlocks_the_timer",
    ),
    "idle-timer-never-exits": (
        "src/timer.rs",
        "while due.live > 0 {",
        "while due.live > 0 || !due.entries.is_empty() || due.running {",
        "an_async_deadline_fires_or_room_comes_and_the_idle_timer_thread_exits",
    ),
    "cancelled-alarm-not-counted": (
        "src/timer.rs",
        "            clock::Timer::global().cancelled();\n",
        "",
        "an_async_deadline_fires_or_room_comes_and_the_idle_timer_thread_exits",
    ),
    "poisoned-worker-keeps-applying": (
        "src/worker.rs",
        "if self.poison.is_some() || self.shared.stopping_now() {",
        "if self.shared.stopping_now() {",
        "poisoning_racing_a_submitter_applies_hands_back_or_returns_each_command",
    ),
    "set-aside-command-not-returned": (
        "src/worker.rs",
        "self.unapplied.push(command);",
        "drop(command);",
        "drop_oldest_racing_each_kind_of_stop_tells_every_command_its_fate",
    ),
    "stop-skips-the-last-batch-end": (
        "src/worker.rs",
        "                    self.end_batch(taken, applied, 0);\n                    let ending = if",
        "                    let ending = if",
        "shutdown_now_under_group_commit_answers_only_committed_commands",
    ),

    "drop-detaches-the-worker": (
        "src/queue.rs",
        "        drop(self.stop(false));",
        "        drop(self.worker.take());",
        "dropping_the_queue_racing_a_blocked_submit_applies_it_or_hands_it_back",
    ),
    "room-wakes-only-one-waiter": (
        "src/room.rs",
        "for waker in entries.into_iter().flatten() {",
        "for waker in entries.into_iter().flatten().take(1) {",
        "two_tasks_waiting_for_room_both_get_in",
    ),
    "cancelled-registration-keeps-its-waker": (
        "src/room.rs",
        "let removed = waiters.remove(key);",
        "let removed: Option<Waker> = { let _ = key; None };",
        "a_task_cancelled_while_waiting_for_room_takes_its_waker_back",
    ),
    "close-wakes-no-waiter": (
        "src/shared.rs",
        "        self.gate.close();\n        // Submitters waiting for room find the gate closed when they look again.\n"
        "        self.room.wake_all_after_change();",
        "        self.gate.close();",
        "a_shutdown_wakes_waiting_tasks_at_once_even_while_the_worker_is_busy",
    ),
    "try-call-waits-under-a-waiting-policy": (
        "src/backpressure.rs",
        "(Limit::NoWait, Wait | WaitFor(_)) => Decision::RejectIfFull,",
        "(Limit::NoWait, Wait) => Decision::RejectIfFull,",
        "per_call_limits_and_a_custom_policy_refuse_each_command_under_its_own_name",
    ),
    "timed-wait-loses-a-result-at-the-deadline": (
        "src/reply.rs",
        "            if self.ready.wait_until(&mut state, deadline).timed_out() {\n"
        "                return take(&mut state);",
        "            if self.ready.wait_until(&mut state, deadline).timed_out() {\n"
        "                drop(take(&mut state));\n                return None;",
        "a_ticket_wait_timeout_racing_completion_yields_the_result_exactly_once",
    ),
    "batches-ignore-max-batch": (
        "src/worker.rs",
        "if taken < self.config.max_batch {",
        "if true {",
        "max_batch_cuts_batches_and_each_is_committed_before_its_replies",
    ),
    "panic-under-stop-does-not-poison": (
        "src/worker.rs",
        "if self.config.on_panic == OnPanic::Stop {",
        "if false {",
        "a_panic_in_apply_wakes_the_waiter_with_an_error",
    ),
    "reply-leaks-its-slot": (
        "src/reply.rs",
        "            let Some(before) = before else {",
        "            std::mem::forget(Arc::clone(&slot));\n            let Some(before) = before else {",
        "a_ticket_dropped_before_during_or_after_completion_leaves_the_command_applied",
    ),
    "timeout-counted-as-rejected": (
        "src/shared.rs",
        "SubmitError::Timeout(_) => &self.counters.submit.timed_out,",
        "SubmitError::Timeout(_) => &self.counters.submit.rejected,",
        "per_call_limits_and_a_custom_policy_refuse_each_command_under_its_own_name",
    ),
    "timeout-loses-the-command": (
        "src/shared.rs",
        "            let pending = pending.expect(\"what timed out is still pending\");\n"
        "            Err(SubmitError::Timeout(pending))",
        "            drop(pending);\n            Ok(())",
        "block_for_racing_the_worker_is_accepted_or_timed_out_never_both",
    ),
    "reject-loses-the-command": (
        "src/shared.rs",
        "            _ => return Offered::Done(Err(SubmitError::Full(message))),",
        "            _ => {\n                drop(message);\n                return Offered::Done(Ok(()));\n            }",
        "reject_at_capacity_one_applies_or_hands_back_each_command",
    ),
    # The worker takes a command out without giving its place back: the queue shrinks until
    # nobody gets in.
    "worker-keeps-the-vacancy": (
        "src/worker.rs",
        "        self.shared.slots_freed(count);\n",
        "",
        "a_permit_and_an_evicting_submitter_never_take_the_same_place",
    ),
    # A bulk sends what fits and forgets the rest: commands neither applied nor handed back.
    "bulk-forgets-the-rest": (
        "src/shared/bulk.rs",
        "            Ok(()) => Err(commands),",
        "            Ok(()) => Ok(Ok(())),",
        "a_bulk_larger_than_the_queue_waits_for_room_and_lands_in_order",
    ),

    # The worker gives back one place for a bulk of many: the queue shrinks until a bulk
    # waits for room that never comes.
    "worker-frees-one-place-per-bulk": (
        "src/worker.rs",
        "                    self.take(commands.len());",
        "                    self.take(1);",
        "a_bulk_larger_than_the_queue_waits_for_room_and_lands_in_order",
    ),
    # A bulk goes past the shutdown gate: a command sent after the worker's last look is
    # neither applied nor handed back.
    "bulk-skips-the-gate": (
        "src/shared/bulk.rs",
        "        let Some(_pass) = self.gate.enter() else {\n            return Ok(Err(SubmitError::Closed(commands)));\n        };",
        "        if self.gate.is_closed() {\n            return Ok(Err(SubmitError::Closed(commands)));\n        }",
        "a_bulk_racing_a_shutdown_is_applied_or_handed_back_command_by_command",
    ),
    # The worker releases a group's outputs when it hands the commit to the commit thread,
    # before the job has made them durable.
    "commit-releases-before-its-job": (
        [
            (
                "src/worker/commits.rs",
                "            .is_some_and(|commit| commit.outcome.is_some())",
                "            .is_some()",
            ),
            (
                "src/worker/commits.rs",
                "            let outcome = commit.outcome.expect(\"just looked\");",
                "            let outcome = commit.outcome.unwrap_or(Outcome::Committed);",
            ),
        ],
        "an_output_waits_for_its_own_groups_job",
    ),

    # The worker finishes without waiting for the running commit or committing the group
    # left: `on_stop` runs, and the owner gets the state, before the last records are durable.
    "worker-finishes-before-its-last-commit": (
        "src/worker/commits.rs",
        "            if self.committing.is_empty() {\n                if self.group.taken == 0 {",
        "            if true {\n                if true {",
        "the_worker_finishes_only_after_its_last_group_is_committed",
    ),

    # A failed commit also fails the group applied while it ran, whose own commit is yet to
    # come.
    "failed-commit-fails-the-next-group": (
        "src/worker/commits.rs",
        "            Outcome::Failed(message) => {\n",
        "            Outcome::Failed(message) => {\n                self.fail_pending(&message);\n",
        "a_failed_job_fails_exactly_its_own_group",
    ),

    # A group is settled as soon as its own job ends, before an older group whose job is
    # still running: a later command's output goes out first.
    "outputs-out-of-commit-order": (
        "src/worker/commits.rs",
        "        if let Some(commit) = self.committing.iter_mut().find(|commit| commit.seq == seq) {\n"
        "            commit.outcome = Some(outcome);\n"
        "        }",
        "        if let Some(at) = self.committing.iter().position(|commit| commit.seq == seq) {\n"
        "            let commit = self.committing.remove(at).expect(\"found\");\n"
        "            self.settle(commit.group, outcome, commit.started);\n"
        "        }",
        "with_two_commit_threads_outputs_still_go_out_in_order",
    ),
    # A waiter for room skips the flag: whoever gives a place back sees nobody waiting and
    # wakes nobody.
    "room-waiter-skips-the-flag": (
        "src/shared.rs",
        "        self.vacancies.flag_waiting();\n        attempt(pending)",
        "        attempt(pending)",
        "a_permit_dropped_unused_wakes_a_reservation_waiting_for_room",
    ),
    # A permit dropped unused keeps its place: a reservation waiting for it waits forever.
    "permit-drop-keeps-its-place": (
        "src/shared/reservation.rs",
        "        self.reserved.fetch_sub(1, Ordering::SeqCst);\n        self.slots_freed(1);\n    }",
        "        self.reserved.fetch_sub(1, Ordering::SeqCst);\n    }",
        "a_permit_dropped_unused_wakes_a_reservation_waiting_for_room",
    ),
    # An evicting submitter that finds nothing to evict spins, even when permits hold every
    # place and nothing will come to evict until one is used.
    "evictor-spins-while-permits-hold-the-room": (
        "src/shared/eviction.rs",
        "if self.reserved.load(Ordering::SeqCst) >= self.config.capacity {",
        "if false {",
        "a_try_under_drop_oldest_is_refused_when_permits_hold_every_place",
    ),
    # An evicting submitter that pops a close's nudge drops it: the sleeping worker never
    # learns that the queue closed.
    "evictor-swallows-the-nudge": (
        "src/shared/eviction.rs",
        "            Ok(other) => {\n                let _ = self.tx.try_send(other);\n",
        "            Ok(other) => {\n                drop(other);\n",
        "an_evicting_submitter_never_swallows_a_close_nudge",
    ),
    # A permit's send wakes nobody: a DropOldest submitter waiting for a command to evict
    # sleeps while one waits in the channel.
    "permit-send-wakes-no-evicting-waiter": (
        "src/shared/reservation.rs",
        "        if self.vacancies.is_flagged() {\n            self.vacancies.take_flag();\n            self.room.wake_all();\n        }\n        Ok(())",
        "        Ok(())",
        "a_permits_command_wakes_a_drop_oldest_submitter_waiting_to_evict",
    ),
    # A permit's command takes a fresh place instead of the one it holds.
    "permit-sends-without-its-place": (
        "src/shared/reservation.rs",
        "        self.settle(self.send_held(self.message(command, reply)))",
        "        self.slots_freed(1);\n"
        "        let message = self.message(command, reply);\n"
        "        match self.try_offer(message) {\n"
        "            Ok(offered) => self.settle(offered),\n"
        "            Err(full) => self.settle(Err(SubmitError::Full(full))),\n"
        "        }",
        "a_permit_and_an_evicting_submitter_never_take_the_same_place",
    ),
    "served-batch-does-not-wake-quiet-waiters": (
        "src/shared.rs",
        "self.counters.worker.served.bump(taken as u64);\n        self.quiet.wake_all_after_change();",
        "self.counters.worker.served.bump(taken as u64);",
        "waiting_until_quiet_racing_a_refused_submit_returns_once_everything_accepted_is_served",
    ),
    "batch-served-before-its-replies": (
        [
            (
                "src/worker/commits.rs",
                "            counters.max_batch.raise(taken as u64);\n",
                "            counters.max_batch.raise(taken as u64);\n            self.shared.batch_served(taken);\n",
            ),
            (
                "src/worker/commits.rs",
                "        self.report_batch(group.taken, commit_time, committed);\n        self.shared.batch_served(group.taken);",
                "        self.report_batch(group.taken, commit_time, committed);",
            ),
        ],
        "quiet_comes_only_after_the_batch_is_committed_and_answered",
    ),

    "quiet-reads-submitted-before-the-done-counts": (
        "src/stats.rs",
        "        let done = self.worker.served.get() + self.submit.evictions_told.get();\n"
        "        done >= self.submit.submitted.get()",
        "        let submitted = self.submit.submitted.get();\n"
        "        crate::sync::spin_hint();\n"
        "        self.worker.served.get() + self.submit.evictions_told.get() >= submitted",
        "an_eviction_done_first_never_passes_for_an_earlier_command_served",
    ),
    # The waiter for quiet reads the counters without the fence that orders its registration
    # before them: it and the worker can each miss the other's write.
    "quiet-waiter-looks-without-the-fence": (
        "src/room.rs",
        "        self.register(waker);\n        fence(Ordering::SeqCst);",
        "        self.register(waker);",
        "quiet_comes_only_after_the_batch_is_committed_and_answered",
    ),
    # A failed commit under `Continue` lets its batch's held replies through as done.
    "failed-commit-under-continue-reports-done": (
        "src/worker/commits.rs",
        "                self.shared.counters.worker.failed_commits.bump(1);\n                Some(message)",
        "                self.shared.counters.worker.failed_commits.bump(1);\n                self.poison.clone()",
        "a_failed_commit_under_continue_fails_exactly_its_own_batch",
    ),

    # The worker does not read a handle's close: it sleeps on, and `closed()` never completes.
    "worker-ignores-a-handles-close": (
        "src/shared.rs",
        "self.is_orphaned() || self.closing.load(Ordering::Acquire)",
        "self.is_orphaned()",
        "a_close_from_a_handle_racing_a_submitter_applies_or_hands_back_and_ends_the_worker",
    ),
    # A hand-stepped queue's shutdown closes it but serves nothing that was waiting.
    "manual-shutdown-skips-what-is-waiting": (
        "src/worker.rs",
        "if self.guarded(Self::finish_alone).is_none() {",
        "if self.guarded(|worker| worker.shared.close()).is_none() {",
        "a_manual_shutdown_racing_a_submitter_applies_it_or_hands_it_back",
    ),
    # `model::block_on` records a plain edge instead of one on the ticket's reply slot: the
    # reply no longer settles it, and a worker calling the answered owner is refused.
    "block-on-edge-not-settled-by-the-reply": (
        "src/ticket.rs",
        "waits::note_pending(move || slot.wait_for(queue));",
        "waits::note_pending(move || {\n                let _ = &slot;\n                waits::wait_for(queue)\n            });",
        "a_worker_calling_a_manual_queue_whose_owner_block_on_was_answered_is_not_refused",
    ),
    # A failing user model that called on its main thread: its spare reply slot, made of loom's
    # primitives, is dropped after the model, and loom aborts the whole test binary.
    "spare-slot-dropped-outside-a-failed-model": (
        "src/spare.rs",
        "if unwinding_out_of_a_model() {",
        "if false && unwinding_out_of_a_model() {",
        "checking_the_dashboard_before_buying_oversells",
    ),
    # A snapshot's worker computes at its marker and goes on without waiting for the other
    # shards: a command applied past one marker can cause one applied before another.
    "cut-without-the-barrier": (
        "src/sharded/cut.rs",
        "            self.changed.wait(&mut state);",
        "            break;",
        "a_snapshot_never_holds_an_effect_without_its_cause",
    ),
    # A marker dropped unrun (its shard stopped first) does not fail the cut: the shards that
    # reached theirs wait for it forever.
    "dropped-marker-keeps-the-cut-waiting": (
        "src/sharded/snapshot.rs",
        "            self.cut.fail(SnapshotError::NotApplied);",
        "            let _ = &self.cut;",
        "a_snapshot_racing_shutdown_now_always_ends",
    ),
    "view-published-after-the-replies": (
        [
            ("src/worker/commits.rs", "            self.publish();\n", ""),
            ("src/worker/commits.rs",
             "            self.start_commit(remaining);\n        }\n    }",
             "            self.start_commit(remaining);\n        }\n        self.publish();\n    }"),
        ],
        "a_view_is_whole_monotonic_and_holds_the_callers_own_command",
    ),
    "priority-submit-rings-no-doorbell": (
        "src/shared.rs",
        "            let _ = self.normal.tx.try_send(Message::Doorbell);",
        "            let _ = Message::<S>::Doorbell;",
        "a_priority_call_wakes_a_sleeping_worker",
    ),
    "worker-sleeps-without-looking-at-the-priority-lane": (
        "src/shared.rs",
        "        if priority.rx.is_empty() {\n            return false;\n        }",
        "        if priority.rx.is_empty() || true {\n            return false;\n        }",
        "a_priority_call_wakes_a_sleeping_worker",
    ),
    "read-not-held-behind-the-priority-lane": (
        "src/message.rs",
        "matches!(self, Message::Visit(_) | Message::Stop)",
        "matches!(self, Message::Stop)",
        "a_read_sees_the_priority_commands_accepted_before_it",
    ),
}


def scratch_copy():
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout.split()
    scratch = tempfile.mkdtemp(prefix="sq-mutant-")
    for name in files:
        os.makedirs(os.path.join(scratch, os.path.dirname(name)), exist_ok=True)
        shutil.copy2(os.path.join(ROOT, name), os.path.join(scratch, name))
    return scratch


def run(name, *spec):
    edits, test = (spec[0], spec[1]) if isinstance(spec[0], list) else ([spec[:3]], spec[3])
    scratch = scratch_copy()
    try:
        for path, original, mutated in edits:
            target = os.path.join(scratch, path)
            text = open(target).read()
            if original not in text:
                return f"STALE {name} (its original text is no longer in {path})"
            open(target, "w").write(text.replace(original, mutated, 1))
        env = dict(os.environ,
                   RUSTFLAGS="--cfg singular_queue_loom",
                   CARGO_TARGET_DIR=os.path.join(ROOT, "target", "loom-mutants"))
        result = subprocess.run(
            ["cargo", "test", "--profile", "loom", "-p", "singular-queue-loom-tests",
             "-p", "box-office", "--tests", "--", "--exact", test],
            cwd=scratch, env=env, capture_output=True, text=True,
        )
        output = result.stdout + result.stderr
        if "could not compile" in output:
            return f"BROKEN {name} (the mutant does not compile)"
        return f"caught {name}" if result.returncode != 0 else f"MISSED {name}"
    finally:
        shutil.rmtree(scratch)


def main():
    names = sys.argv[1:] or list(MUTATIONS)
    results = [run(name, *MUTATIONS[name]) for name in names]
    for line in results:
        print(line, flush=True)
    sys.exit(0 if all(line.startswith("caught") for line in results) else 1)


if __name__ == "__main__":
    main()
