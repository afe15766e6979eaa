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
        "src/reply.rs",
        "let before = {\n"
        "                let mut state = slot.state.lock();\n"
        "                slot.done.store(true, Ordering::Release);\n"
        "                std::mem::replace(&mut *state, State::Ready(result))\n"
        "            };\n"
        "            slot.ready.notify_one();",
        "slot.ready.notify_one();\n"
        "            crate::sync::spin_hint();\n"
        "            let before = {\n"
        "                let mut state = slot.state.lock();\n"
        "                slot.done.store(true, Ordering::Release);\n"
        "                std::mem::replace(&mut *state, State::Ready(result))\n"
        "            };",
        "ticket_completion_racing_its_waiter_always_wakes_it",
    ),
    "evict-without-telling-the-submitter": (
        "src/shared.rs",
        "reply.send(Err(WaitError::Dropped));",
        "std::mem::forget(reply);",
        "drop_oldest_two_producers_each_command_applied_or_dropped_exactly_once",
    ),
    "evict-without-counting": (
        "src/shared.rs",
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
        "src/worker.rs",
        "let failure = self.poison.clone().map(WaitError::Panicked);",
        "let failure: Option<WaitError> = None;",
        "a_failed_commit_fails_every_reply_of_its_batch",
    ),
    "ticket-keeps-the-first-waker": (
        "src/reply.rs",
        "_ => *waker = Some(cx.waker().clone()),",
        "None => *waker = Some(cx.waker().clone()),\n                Some(_) => {}",
        "async_ticket_completion_racing_poll_and_a_replaced_waker_always_wakes_the_task",
    ),
    "room-no-second-try-after-registering": (
        "src/shared.rs",
        "self.room.register(cx.waker());\n            let pending = match self.try_offer(pending) {\n"
        "                Ok(result) => return Poll::Ready(result),\n                Err(full) => full,\n            };",
        "self.room.register(cx.waker());",
        "an_async_submit_waiting_for_room_is_woken_when_the_worker_frees_a_slot",
    ),
    "async-retry-skips-the-gate": (
        "src/shared.rs",
        "let Some(_pass) = self.gate.enter() else {\n"
        "                return Poll::Ready(Err(SubmitError::Closed(pending)));\n"
        "            };",
        "",
        "a_shutdown_never_waits_for_a_task_waiting_for_room_which_then_gets_its_command_back",
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
        "None => *state = State::Abandoned,",
        "None => {}",
        "a_timed_out_call_never_drops_the_late_output_on_its_own_thread",
    ),
    "wait-for-graph-misses-cycles": (
        "src/waits.rs",
        "if queue == me {\n            return Err(WouldDeadlock);",
        "if queue == me && false {\n            return Err(WouldDeadlock);",
        "two_workers_calling_each_other_never_deadlock",
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
    "reject-loses-the-command": (
        "src/shared.rs",
        "Decision::RejectIfFull | Decision::Reject => Err(SubmitError::Full(message)),",
        "Decision::RejectIfFull | Decision::Reject => { drop(message); Ok(()) }",
        "reject_at_capacity_one_applies_or_hands_back_each_command",
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
             "--tests", "--", "--exact", test],
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
