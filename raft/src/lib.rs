//! The state machine you wrote for a [`SingularQueue`](singular_queue::SingularQueue),
//! replicated on three (or five) machines with [openraft](https://docs.rs/openraft/0.9.25):
//! when one machine is not enough, or you must survive losing one.
//!
//! A singular update queue is the apply loop of every Raft system (etcd, ZooKeeper,
//! Ratis), and here it is literally that: each [`Node`] runs openraft for consensus and a
//! `SingularQueue` whose dedicated worker thread applies the committed log to your state
//! machine. Your `apply` never runs on a tokio thread, so a slow `apply` cannot delay the
//! heartbeats that keep the leader in office.
//!
//! # What you add to your state machine
//!
//! Implement [`Replicated`]: serde for `Command` and `Output`, a snapshot to and from bytes,
//! and keep `apply` deterministic. `apply` itself does not change.
//!
//! # Writing: exactly once, across retries
//!
//! Clients write through a [`Session`]: each [`Request`] carries the session's name and a
//! sequence number, and the state machine remembers each session's last request and output.
//! When a leader crashes, a client cannot know whether its last write was committed; it
//! **retries the same request** on the new leader, and the request is applied at most once,
//! the retry getting the first answer ([Raft paper §8](https://raft.github.io/raft.pdf)).
//!
//! # Reading
//!
//! - [`Node::read`] is **linearizable**: the leader confirms with a quorum that it still
//!   leads, waits until it has applied everything committed before the call, then runs your
//!   closure on the queue's worker. It never goes through the log.
//! - [`Node::read_local`] runs the closure at once on any node: cheap, **possibly stale**.
//!
//! # Durability
//!
//! Each node keeps the Raft log, its vote and the current snapshot in one
//! [redb](https://docs.rs/redb) file, and tells openraft an entry or a vote is durable only
//! after the redb commit that wrote it returned (redb commits are atomic and `fsync`ed). The
//! state machine lives in memory: a restarted node loads its last snapshot and openraft
//! replays the committed log after it.
//!
//! # A three-node cluster in one process
//!
//! [`Router`] is an in-process network for tests (with [`Router::isolate`] and
//! [`Router::heal`]); [`TcpNetwork`], [`serve`] and [`TcpClient`] are the real one.
//!
//! ```
//! use std::collections::BTreeMap;
//! use singular_queue::StateMachine;
//! use singular_queue_raft::{Node, Replicated, Router, Session, SnapshotError};
//!
//! #[derive(Default, serde::Serialize, serde::Deserialize)]
//! struct Counter(u64);
//!
//! impl StateMachine for Counter {
//!     type Command = u64;
//!     type Output = u64;
//!     fn apply(&mut self, add: u64) -> u64 {
//!         self.0 += add;
//!         self.0
//!     }
//! }
//!
//! impl Replicated for Counter {
//!     fn snapshot(&self) -> Vec<u8> {
//!         self.0.to_le_bytes().to_vec()
//!     }
//!     fn restore(bytes: &[u8]) -> Result<Self, SnapshotError> {
//!         Ok(Counter(u64::from_le_bytes(bytes.try_into()?)))
//!     }
//! }
//!
//! # let runtime = tokio::runtime::Runtime::new().unwrap();
//! # runtime.block_on(async {
//! let dir = std::env::temp_dir().join(format!("counter-{}", std::process::id()));
//! let router = Router::new();
//! let mut nodes = BTreeMap::new();
//! for id in 1..=3 {
//!     let network = router.network(id);
//!     let dir = dir.join(id.to_string());
//!     let node = Node::start(id, dir, Counter(0), network, Default::default()).await.unwrap();
//!     router.add(id, node.raft().clone());
//!     nodes.insert(id, node);
//! }
//! nodes[&1].initialize((1..=3).map(|id| (id, format!("node-{id}")))).await.unwrap();
//!
//! // Wait for the first election, and write on its winner.
//! let wait = nodes[&1].raft().wait(None);
//! let elected = wait.metrics(|m| m.current_leader.is_some(), "elected").await.unwrap();
//! let leader = &nodes[&elected.current_leader.unwrap()];
//! let mut session = Session::new(42);
//! let request = session.request(5);
//! assert_eq!(leader.write(request.clone()).await.unwrap(), 5);
//! // A retry of the same request is not applied again: it gets the first answer.
//! assert_eq!(leader.write(request).await.unwrap(), 5);
//! assert_eq!(leader.write(session.request(2)).await.unwrap(), 7);
//! assert_eq!(leader.read(|counter| counter.0).await.unwrap(), 7);
//!
//! for node in nodes.values() {
//!     node.shutdown().await.unwrap();
//! }
//! # std::fs::remove_dir_all(&dir).unwrap();
//! # });
//! ```
//!
//! The book's chapter "When one machine is not enough" has the guarantees, the failure cases
//! and the three-process example, `replicated_kv`.
mod applier;
mod codec;
#[cfg(test)]
mod conformance;
mod error;
mod log_store;
mod node;
mod replicated;
mod request;
mod router;
mod state_machine;
mod tcp;
mod tcp_client;
mod type_config;

pub use codec::{from_bytes, to_bytes};
pub use error::{ReadError, WriteError};
pub use log_store::LogStore;
pub use node::Node;
pub use replicated::{Replicated, SnapshotError};
pub use request::{Request, Response, Session};
pub use router::{Router, RouterLink, RouterNetwork};
pub use tcp::{Status, TcpLink, TcpNetwork, serve};
pub use tcp_client::TcpClient;
pub use type_config::{NodeId, TypeConfig};

/// The guide's chapter on replication, its samples compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../book/src/replicated.md")]
struct ReplicatedChapter;
