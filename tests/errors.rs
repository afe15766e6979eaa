//! The error types: every predicate, the command handed back, Debug, Display, conversions.

use std::error::Error;

use singular_queue::{CallError, SubmitError, WaitError};

/// A command type that is neither Debug nor PartialEq: errors must not need either.
struct Opaque(u32);

#[test]
fn submit_error_predicates_each_match_one_variant_and_hand_the_command_back() {
    let cases = [
        (
            SubmitError::Closed(Opaque(1)),
            [true, false, false, false],
            "Closed(..)",
        ),
        (
            SubmitError::Full(Opaque(2)),
            [false, true, false, false],
            "Full(..)",
        ),
        (
            SubmitError::Timeout(Opaque(3)),
            [false, false, true, false],
            "Timeout(..)",
        ),
        (
            SubmitError::Deadlock(Opaque(4)),
            [false, false, false, true],
            "Deadlock(..)",
        ),
    ];
    for (n, (error, flags, debug)) in (1..).zip(cases) {
        assert_eq!(
            [
                error.is_closed(),
                error.is_full(),
                error.is_timeout(),
                error.is_deadlock()
            ],
            flags
        );
        assert_eq!(format!("{error:?}"), debug);
        assert_eq!(error.into_inner().0, n);
    }
    assert_eq!(
        SubmitError::Closed(Opaque(0)).to_string(),
        "submitting to a closed queue"
    );
    assert_eq!(
        SubmitError::Full(Opaque(0)).to_string(),
        "submitting to a full queue"
    );
    assert_eq!(
        SubmitError::Timeout(Opaque(0)).to_string(),
        "timed out waiting for room in the queue"
    );
    assert_eq!(
        SubmitError::Deadlock(Opaque(0)).to_string(),
        "waiting would deadlock: the queue waits for this thread"
    );
}

#[test]
fn wait_error_predicates_each_match_one_variant() {
    let cases = [
        WaitError::Panicked("boom".to_owned()),
        WaitError::NotCommitted("boom".to_owned()),
        WaitError::NotApplied,
        WaitError::Dropped,
        WaitError::Deadlock,
    ];
    for (index, error) in cases.into_iter().enumerate() {
        let flags = [
            error.is_panicked(),
            error.is_not_committed(),
            error.is_not_applied(),
            error.is_dropped(),
            error.is_deadlock(),
        ];
        let expected: [bool; 5] = std::array::from_fn(|i| i == index);
        assert_eq!(flags, expected, "{error:?}");
    }
    assert_eq!(
        WaitError::NotCommitted("disk full".to_owned()).to_string(),
        "the command was applied, but its batch was not committed: disk full"
    );
    assert_eq!(
        WaitError::Deadlock.to_string(),
        "not waited for: waiting would deadlock, and the command stays accepted"
    );
    assert_eq!(
        WaitError::Panicked("boom".to_owned()).to_string(),
        "the command panicked: boom"
    );
    assert_eq!(
        WaitError::NotApplied.to_string(),
        "the queue stopped before applying the command"
    );
    assert_eq!(
        WaitError::Dropped.to_string(),
        "the command was evicted by a newer one"
    );
}

fn call_flags(e: &CallError<Opaque>) -> [bool; 10] {
    [
        e.is_closed(),
        e.is_full(),
        e.is_timeout(),
        e.is_reentrant(),
        e.is_deadlock(),
        e.is_panicked(),
        e.is_not_committed(),
        e.is_not_applied(),
        e.is_dropped(),
        e.is_reply_timeout(),
    ]
}

#[test]
fn call_error_predicates_each_match_one_variant() {
    let cases: [(CallError<Opaque>, &str, Option<u32>); 10] = [
        (CallError::Closed(Opaque(1)), "Closed(..)", Some(1)),
        (CallError::Full(Opaque(2)), "Full(..)", Some(2)),
        (CallError::Timeout(Opaque(3)), "Timeout(..)", Some(3)),
        (CallError::Reentrant(Opaque(4)), "Reentrant(..)", Some(4)),
        (CallError::Deadlock(Opaque(5)), "Deadlock(..)", Some(5)),
        (
            CallError::Panicked("boom".to_owned()),
            "Panicked(\"boom\")",
            None,
        ),
        (
            CallError::NotCommitted("boom".to_owned()),
            "NotCommitted(\"boom\")",
            None,
        ),
        (CallError::NotApplied, "NotApplied", None),
        (CallError::Dropped, "Dropped", None),
        (CallError::ReplyTimeout, "ReplyTimeout", None),
    ];
    for (index, (error, debug, command)) in cases.into_iter().enumerate() {
        let flags = call_flags(&error);
        let expected: [bool; 10] = std::array::from_fn(|i| i == index);
        assert_eq!(flags, expected, "{debug}");
        assert_eq!(format!("{error:?}"), debug);
        assert_eq!(error.into_inner().map(|c| c.0), command);
    }
    assert_eq!(
        CallError::<Opaque>::ReplyTimeout.to_string(),
        "timed out waiting for the command's output"
    );
    // `NotWaited` comes only from a ticket's `WaitError::Deadlock`; it is a deadlock too.
    let not_waited = CallError::<Opaque>::NotWaited;
    assert_eq!(format!("{not_waited:?}"), "NotWaited");
    assert!(not_waited.is_deadlock() && not_waited.into_inner().is_none());
}

#[test]
fn call_error_converts_from_the_submit_and_wait_errors() {
    let refusals = [
        SubmitError::Closed(Opaque(1)),
        SubmitError::Full(Opaque(2)),
        SubmitError::Timeout(Opaque(3)),
        SubmitError::Deadlock(Opaque(4)),
    ];
    for (n, refusal) in (1..).zip(refusals) {
        let flags = [
            refusal.is_closed(),
            refusal.is_full(),
            refusal.is_timeout(),
            refusal.is_deadlock(),
        ];
        let call: CallError<Opaque> = refusal.into();
        let call_flags = call_flags(&call);
        assert_eq!(call_flags[..3], flags[..3]);
        assert_eq!(call_flags[4], flags[3]);
        assert_eq!(call.into_inner().map(|c| c.0), Some(n));
    }
    let failures = [
        WaitError::Panicked("x".to_owned()),
        WaitError::NotCommitted("x".to_owned()),
        WaitError::NotApplied,
        WaitError::Dropped,
        WaitError::Deadlock,
    ];
    for failure in failures {
        let flags = [
            failure.is_deadlock(),
            failure.is_panicked(),
            failure.is_not_committed(),
            failure.is_not_applied(),
            failure.is_dropped(),
        ];
        let call: CallError<Opaque> = failure.into();
        assert_eq!(call_flags(&call)[4..9], flags);
        assert!(call.into_inner().is_none());
    }
}

#[test]
fn errors_are_std_errors_and_display_in_lowercase() {
    let errors: Vec<Box<dyn Error>> = vec![
        Box::new(SubmitError::Closed(Opaque(0))),
        Box::new(SubmitError::Full(Opaque(0))),
        Box::new(SubmitError::Timeout(Opaque(0))),
        Box::new(SubmitError::Deadlock(Opaque(0))),
        Box::new(WaitError::NotApplied),
        Box::new(WaitError::Dropped),
        Box::new(WaitError::Deadlock),
        Box::new(WaitError::NotCommitted("x".to_owned())),
        Box::new(CallError::Closed(Opaque(0))),
        Box::new(CallError::Full(Opaque(0))),
        Box::new(CallError::Timeout(Opaque(0))),
        Box::new(CallError::Reentrant(Opaque(0))),
        Box::new(CallError::<Opaque>::Dropped),
        Box::new(CallError::<Opaque>::ReplyTimeout),
        Box::new(CallError::Deadlock(Opaque(0))),
        Box::new(CallError::<Opaque>::NotWaited),
        Box::new(CallError::<Opaque>::NotCommitted("x".to_owned())),
    ];
    for error in errors {
        let text = error.to_string();
        assert!(text.starts_with(char::is_lowercase), "{text}");
        assert!(!text.ends_with('.'), "{text}");
    }
}
