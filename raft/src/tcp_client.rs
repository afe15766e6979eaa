//! An application's side of the TCP network: writes that follow the leader.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::time::Duration;

use crate::tcp::{Call, Failure, Line, Refusal, Status};
use crate::{NodeId, Replicated, Request, WriteError};

/// How long a client waits for one answer before it tries elsewhere.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(1);

/// An application's client of a cluster over TCP: writes requests, following the leader.
///
/// # Examples
///
/// ```no_run
/// # use singular_queue_raft::{Replicated, Session, TcpClient};
/// # async fn run<S: Replicated<Command = u64>>() {
/// let members = [(1, "10.0.0.1:7000"), (2, "10.0.0.2:7000"), (3, "10.0.0.3:7000")];
/// let mut client = TcpClient::<S>::new(members.map(|(id, addr)| (id, addr.to_owned())));
/// let mut session = singular_queue_raft::Session::random();
/// let output = client
///     .write_retrying(session.request(5), std::time::Duration::from_secs(10))
///     .await
///     .expect("the cluster answered within 10 s");
/// # }
/// ```
pub struct TcpClient<S> {
    lines: BTreeMap<NodeId, Line>,
    /// Where the next write goes first: the last node that answered, or the leader it named.
    leader: Option<NodeId>,
    _state: PhantomData<fn() -> S>,
}

impl<S> fmt::Debug for TcpClient<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpClient")
            .field("members", &self.lines.keys().collect::<Vec<_>>())
            .field("leader", &self.leader)
            .finish()
    }
}

impl<S: Replicated> TcpClient<S> {
    /// A client of the nodes `members` (id and address). It connects on first use.
    ///
    /// # Panics
    ///
    /// When `members` is empty.
    pub fn new(members: impl IntoIterator<Item = (NodeId, String)>) -> Self {
        let lines: BTreeMap<_, _> = members
            .into_iter()
            .map(|(id, addr)| (id, Line::new(addr)))
            .collect();
        assert!(!lines.is_empty(), "a client needs at least one member");
        Self {
            lines,
            leader: None,
            _state: PhantomData,
        }
    }

    /// One attempt: sends `request` to the node believed to lead (at first, the first member)
    /// and waits up to a second for the answer.
    ///
    /// # Errors
    ///
    /// As [`Node::write`](crate::Node::write); a node that cannot be reached or does not
    /// answer in time is [`WriteError::Stopped`] (the request may or may not have been
    /// applied), and a request too large to send is [`WriteError::TooLarge`]. Each error
    /// gives the request back, to retry.
    pub async fn write(
        &mut self,
        request: Request<S::Command>,
    ) -> Result<S::Output, WriteError<S::Command>> {
        let target = self
            .leader
            .unwrap_or_else(|| *self.lines.keys().next().expect("members"));
        let line = self.lines.get_mut(&target).expect("a member");
        let answer: Result<Result<S::Output, Refusal>, Failure> = line
            .call(&Call::<S>::Write(request.clone()), CLIENT_TIMEOUT)
            .await;
        match answer {
            Ok(Ok(output)) => {
                self.leader = Some(target);
                Ok(output)
            }
            Ok(Err(Refusal::NotLeader(leader))) => {
                self.leader = leader.filter(|id| self.lines.contains_key(id) && *id != target);
                if self.leader.is_none() {
                    self.leader = Some(self.after(target));
                }
                Err(WriteError::NotLeader { leader, request })
            }
            Ok(Err(Refusal::Superseded)) => Err(WriteError::Superseded(request)),
            Ok(Err(Refusal::Stopped(reason))) => {
                self.leader = Some(self.after(target));
                Err(WriteError::Stopped { reason, request })
            }
            Err(Failure::TooLarge(size)) => Err(WriteError::TooLarge { size, request }),
            Err(Failure::Connect(e) | Failure::Lost(e)) => {
                self.leader = Some(self.after(target));
                let reason = format!("node {target} did not answer: {e}");
                Err(WriteError::Stopped { reason, request })
            }
        }
    }

    /// Writes `request`, retrying the same request after every error but
    /// [`Superseded`](WriteError::Superseded) (on the leader it was told of, or the next
    /// member), pausing 50 ms when no leader is known, until `deadline` has passed.
    ///
    /// # Errors
    ///
    /// The last error, when `deadline` passed without an answer, or `Superseded`.
    pub async fn write_retrying(
        &mut self,
        mut request: Request<S::Command>,
        deadline: Duration,
    ) -> Result<S::Output, WriteError<S::Command>> {
        let give_up = tokio::time::Instant::now() + deadline;
        loop {
            let error = match self.write(request).await {
                Ok(output) => return Ok(output),
                Err(error @ WriteError::Superseded(_)) => return Err(error),
                Err(error) => error,
            };
            if tokio::time::Instant::now() >= give_up {
                return Err(error);
            }
            if error.leader().is_none() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            request = error.into_inner();
        }
    }

    /// What node `id` reports of itself.
    ///
    /// # Errors
    ///
    /// When `id` is not a member, or does not answer within a second.
    pub async fn status(&mut self, id: NodeId) -> io::Result<Status> {
        let line = self.lines.get_mut(&id).ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, format!("{id} is not a member"))
        })?;
        match line.call(&Call::<S>::Status, CLIENT_TIMEOUT).await {
            Ok(status) => Ok(status),
            Err(failure) => Err(failure.into_io()),
        }
    }

    /// A copy of node `id`'s state as it is now, possibly stale, as
    /// [`Node::read_local`](crate::Node::read_local) sees it: the node writes it with
    /// [`Replicated::snapshot`] and this client reads it back with [`Replicated::restore`].
    /// The whole state travels, within the one-second answer time: meant for tests and
    /// inspection of small states.
    ///
    /// # Errors
    ///
    /// When `id` is not a member, does not answer within a second, has stopped, or sends a
    /// state that does not restore.
    pub async fn local_state(&mut self, id: NodeId) -> io::Result<S> {
        let line = self.lines.get_mut(&id).ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, format!("{id} is not a member"))
        })?;
        let answer: Result<Vec<u8>, String> =
            match line.call(&Call::<S>::State, CLIENT_TIMEOUT).await {
                Ok(answer) => answer,
                Err(failure) => return Err(failure.into_io()),
            };
        let bytes = answer.map_err(io::Error::other)?;
        S::restore(&bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    /// The member after `id`, counting round.
    fn after(&self, id: NodeId) -> NodeId {
        let mut later = self.lines.range(id + 1..).map(|(&id, _)| id);
        later
            .next()
            .unwrap_or_else(|| *self.lines.keys().next().expect("members"))
    }
}
