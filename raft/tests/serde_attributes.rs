//! Commands, outputs and state with everyday serde attributes (`skip_serializing_if`,
//! `flatten`, an untagged enum) go through the log, a restart that replays it, and a
//! snapshot. Review #4 found the first of them stopping every node: the log's encoding was
//! postcard, which does not describe itself and cannot read such types back.

use std::collections::BTreeMap;
use std::time::Duration;

use openraft::{Config, SnapshotPolicy};
use serde::{Deserialize, Serialize};
use singular_queue::StateMachine;
use singular_queue_raft::{Node, Replicated, Request, Router, Session, SnapshotError};

#[derive(Default, Serialize, Deserialize)]
struct Notes {
    notes: Vec<Note>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Note {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tag: Option<String>,
    #[serde(flatten)]
    body: Body,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Body {
    text: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
enum Answer {
    Count(u64),
    Tagged { count: u64, tag: String },
}

impl StateMachine for Notes {
    type Command = Note;
    type Output = Answer;

    fn apply(&mut self, note: Note) -> Answer {
        self.notes.push(note.clone());
        let count = self.notes.len() as u64;
        match note.tag {
            Some(tag) => Answer::Tagged { count, tag },
            None => Answer::Count(count),
        }
    }
}

impl Replicated for Notes {
    fn snapshot(&self) -> Vec<u8> {
        singular_queue_raft::to_bytes(self)
    }
    fn restore(bytes: &[u8]) -> Result<Self, SnapshotError> {
        singular_queue_raft::from_bytes(bytes)
    }
}

fn note(i: u64) -> Note {
    Note {
        tag: i.is_multiple_of(2).then(|| format!("tag{i}")),
        body: Body {
            text: format!("note {i}"),
        },
    }
}

async fn start(dir: &std::path::Path, router: &Router<Notes>) -> BTreeMap<u64, Node<Notes>> {
    let config = Config {
        snapshot_policy: SnapshotPolicy::LogsSinceLast(5),
        max_in_snapshot_log_to_keep: 0,
        ..Config::default()
    };
    let mut nodes = BTreeMap::new();
    for id in 1..=3 {
        let network = router.network(id);
        let node = Node::start(
            id,
            dir.join(id.to_string()),
            Notes::default(),
            network,
            config.clone(),
        )
        .await
        .unwrap();
        router.add(id, node.raft().clone());
        nodes.insert(id, node);
    }
    nodes
}

async fn leader(nodes: &BTreeMap<u64, Node<Notes>>) -> &Node<Notes> {
    let wait = nodes[&1].raft().wait(Some(Duration::from_secs(30)));
    let elected = wait
        .metrics(|m| m.current_leader.is_some(), "elected")
        .await
        .unwrap();
    &nodes[&elected.current_leader.unwrap()]
}

/// Writes through the node that leads, following a refusal's hint: an election may move the
/// leadership between the look and the write (after a restart, or on a loaded machine; CI
/// saw it once). Retrying the same request is safe: its session applies it once. Between
/// tries it backs off 20 ms, as a client would while an election runs.
async fn write(nodes: &BTreeMap<u64, Node<Notes>>, request: Request<Note>) -> Answer {
    let mut node = leader(nodes).await;
    for _ in 0..100 {
        match node.write(request.clone()).await {
            Ok(answer) => return answer,
            Err(error) => {
                let hint = error.leader().and_then(|id| nodes.get(&id));
                tokio::time::sleep(Duration::from_millis(20)).await;
                node = match hint {
                    Some(hinted) => hinted,
                    None => leader(nodes).await,
                };
            }
        }
    }
    panic!("no node took {request:?}");
}

/// Every note, read linearizably on the node that leads, retried as [`write`] is.
async fn notes(nodes: &BTreeMap<u64, Node<Notes>>) -> Vec<Note> {
    for _ in 0..100 {
        let read = leader(nodes)
            .await
            .read(|notes: &Notes| notes.notes.clone());
        match read.await {
            Ok(notes) => return notes,
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    panic!("no node answered the read");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn everyday_serde_attributes_survive_the_log_a_restart_and_a_snapshot() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("serde-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let router = Router::new();
    let nodes = start(&dir, &router).await;
    nodes[&1]
        .initialize((1..=3).map(|id| (id, format!("node-{id}"))))
        .await
        .unwrap();
    let mut session = Session::new(1);
    for i in 1..=12 {
        let answer = write(&nodes, session.request(note(i))).await;
        let expected = match i % 2 {
            0 => Answer::Tagged {
                count: i,
                tag: format!("tag{i}"),
            },
            _ => Answer::Count(i),
        };
        assert_eq!(answer, expected);
    }
    for node in nodes.values() {
        node.shutdown().await.unwrap();
    }
    drop(nodes);
    // Restarted, each node decodes its snapshot and replays the log after it.
    let nodes = start(&dir, &router).await;
    let answer = write(&nodes, session.request(note(13))).await;
    assert_eq!(answer, Answer::Count(13));
    assert_eq!(notes(&nodes).await, (1..=13).map(note).collect::<Vec<_>>());
    for node in nodes.values() {
        node.shutdown().await.unwrap();
    }
    let _ = std::fs::remove_dir_all(&dir);
}
