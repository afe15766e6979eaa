use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::BuildHasher;

use serde::{Deserialize, Serialize};

/// One command from one client session, as it travels in the Raft log.
///
/// `client` names the session and `seq` numbers its requests 1, 2, 3, …: the state machine
/// remembers each session's last request and its output, so **retrying the same request**
/// (after a leader crash, a timeout, a lost answer) applies it at most once and returns the
/// first answer. Make requests with [`Session::request`]; send one at a time per session, and
/// retry a request until it gets an answer before making the next.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request<C> {
    /// The session that sent it.
    pub client: u64,
    /// Its number within the session, from 1.
    pub seq: u64,
    /// The user's command.
    pub command: C,
}

impl<C> Request<C> {
    /// The command, given back.
    pub fn into_inner(self) -> C {
        self.command
    }
}

impl<C> fmt::Debug for Request<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Request {{ client: {}, seq: {}, .. }}",
            self.client, self.seq
        )
    }
}

/// What the replicated state machine answered to one log entry.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response<O> {
    /// The request was applied now, and this is its output.
    Applied(O),
    /// The request had been applied before (a retry): this is the output it had then.
    Repeated(O),
    /// The session has applied a newer request since: this one is not applied.
    Superseded,
    /// The entry was Raft's own (a leader's first entry, a membership change).
    Internal,
}

impl<O> fmt::Debug for Response<O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Applied(_) => "Applied(..)",
            Self::Repeated(_) => "Repeated(..)",
            Self::Superseded => "Superseded",
            Self::Internal => "Internal",
        })
    }
}

/// A client session: numbers its requests so that retries are applied at most once.
///
/// # Examples
///
/// ```
/// use singular_queue_raft::Session;
///
/// let mut session = Session::new(7);
/// let first = session.request("a");
/// let second = session.request("b");
/// assert_eq!((first.client, first.seq), (7, 1));
/// assert_eq!((second.client, second.seq), (7, 2));
/// ```
#[derive(Debug, Clone)]
pub struct Session {
    client: u64,
    last_seq: u64,
}

impl Session {
    /// A session named `client`. Two live sessions must never share a name: the second one's
    /// requests would be taken for the first one's retries.
    pub fn new(client: u64) -> Self {
        Self {
            client,
            last_seq: 0,
        }
    }

    /// A session with a random 64-bit name (from the standard library's randomly seeded
    /// hasher).
    pub fn random() -> Self {
        Self::new(RandomState::new().hash_one(std::process::id()))
    }

    /// The session's name.
    pub fn client(&self) -> u64 {
        self.client
    }

    /// The next request of this session, carrying `command`.
    pub fn request<C>(&mut self, command: C) -> Request<C> {
        self.last_seq += 1;
        Request {
            client: self.client,
            seq: self.last_seq,
            command,
        }
    }
}
