//! placeholder
mod applier;
mod error;
mod node;
mod replicated;
mod request;
mod router;
mod state_machine;
mod store;
mod type_config;

pub use error::{ReadError, WriteError};
pub use node::Node;
pub use replicated::{Replicated, SnapshotError};
pub use request::{Request, Response, Session};
pub use router::{Router, RouterLink, RouterNetwork};
pub use type_config::{NodeId, TypeConfig};
