//! How this crate turns values into bytes, on disk and on the wire: CBOR (RFC 8949).
//!
//! The format describes itself, so whatever serde derives for a user's commands and outputs
//! reads back: `skip_serializing_if`, `flatten`, untagged enums. (postcard, the first choice,
//! is more compact but cannot: review #4 found a command with `skip_serializing_if` committed
//! and then unreadable, stopping every node.)

use std::io;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// `value` as bytes.
pub(crate) fn encode<T: Serialize>(value: &T) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    ciborium::into_writer(value, &mut bytes).map_err(io::Error::other)?;
    Ok(bytes)
}

/// The value that [`encode`] wrote as `bytes`.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> io::Result<T> {
    ciborium::from_reader(bytes).map_err(io::Error::other)
}

/// `state` as bytes, in the crate's own encoding (CBOR): a ready-made
/// [`Replicated::snapshot`](crate::Replicated::snapshot) for a state that derives serde.
///
/// # Panics
///
/// When `state`'s `Serialize` fails, which derived implementations do not.
///
/// # Examples
///
/// ```
/// use std::collections::BTreeMap;
///
/// let state = BTreeMap::from([("ada".to_owned(), 5_i64)]);
/// let bytes = singular_queue_raft::to_bytes(&state);
/// let back: BTreeMap<String, i64> = singular_queue_raft::from_bytes(&bytes).unwrap();
/// assert_eq!(back, state);
/// ```
pub fn to_bytes<T: Serialize>(state: &T) -> Vec<u8> {
    encode(state).expect("a derived Serialize does not fail")
}

/// The state that [`to_bytes`] wrote as `bytes`: a ready-made
/// [`Replicated::restore`](crate::Replicated::restore).
///
/// # Errors
///
/// When `bytes` are not such a state.
pub fn from_bytes<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, crate::SnapshotError> {
    Ok(decode(bytes)?)
}
