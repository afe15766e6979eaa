//! The error types: every predicate, the command handed back, Debug, Display, conversions.

use std::error::Error;

use singular_queue::{CallError, SubmitError, WaitError};

/// A command type that is neither Debug nor PartialEq: errors must not need either.
struct Opaque(u32);

#[test]
fn submit_error_hands_the_command_back() {
    let error = SubmitError::Closed(Opaque(3));
    assert!(error.is_closed());
    assert_eq!(format!("{error:?}"), "Closed(..)");
    assert_eq!(error.to_string(), "submitting to a closed queue");
    assert_eq!(error.into_inner().0, 3);
}

#[test]
fn wait_error_predicates_each_match_one_variant() {
    let panicked = WaitError::Panicked("boom".to_owned());
    assert!(panicked.is_panicked() && !panicked.is_not_applied());
    assert!(WaitError::NotApplied.is_not_applied() && !WaitError::NotApplied.is_panicked());
    assert_eq!(panicked.to_string(), "the command panicked: boom");
    assert_eq!(
        WaitError::NotApplied.to_string(),
        "the queue stopped before applying the command"
    );
}

#[test]
fn call_error_predicates_each_match_one_variant() {
    let closed = CallError::Closed(Opaque(1));
    let panicked = CallError::<Opaque>::Panicked("boom".to_owned());
    let not_applied = CallError::<Opaque>::NotApplied;
    let flags = |e: &CallError<Opaque>| (e.is_closed(), e.is_panicked(), e.is_not_applied());
    assert_eq!(flags(&closed), (true, false, false));
    assert_eq!(flags(&panicked), (false, true, false));
    assert_eq!(flags(&not_applied), (false, false, true));

    assert_eq!(format!("{closed:?}"), "Closed(..)");
    assert_eq!(format!("{panicked:?}"), "Panicked(\"boom\")");
    assert_eq!(format!("{not_applied:?}"), "NotApplied");
    assert_eq!(closed.to_string(), "calling a closed queue");
    assert_eq!(panicked.to_string(), "the command panicked: boom");

    assert_eq!(closed.into_inner().map(|c| c.0), Some(1));
    assert!(panicked.into_inner().is_none());
    assert!(not_applied.into_inner().is_none());
}

#[test]
fn call_error_converts_from_the_submit_and_wait_errors() {
    let closed: CallError<Opaque> = SubmitError::Closed(Opaque(9)).into();
    assert_eq!(closed.into_inner().map(|c| c.0), Some(9));
    let panicked: CallError<Opaque> = WaitError::Panicked("x".to_owned()).into();
    assert!(panicked.is_panicked());
    let not_applied: CallError<Opaque> = WaitError::NotApplied.into();
    assert!(not_applied.is_not_applied());
}

#[test]
fn errors_are_std_errors_and_display_in_lowercase() {
    let errors: Vec<Box<dyn Error>> = vec![
        Box::new(SubmitError::Closed(Opaque(0))),
        Box::new(WaitError::NotApplied),
        Box::new(CallError::Closed(Opaque(0))),
    ];
    for error in errors {
        let text = error.to_string();
        assert!(text.starts_with(char::is_lowercase), "{text}");
        assert!(!text.ends_with('.'), "{text}");
    }
}
