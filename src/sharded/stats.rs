//! The figures of a sharded queue.

use crate::Stats;

/// The figures of a [`Sharded`](crate::Sharded) queue, from [`ShardedHandle::stats`](crate::ShardedHandle::stats).
///
/// Each shard's [`Stats`] keeps its own accounting, and so does their total: once quiet,
/// `total.submitted == total.applied + total.panicked + total.dropped + total.not_applied`.
/// Commands refused for spanning shards never reached a shard: `cross_shard` counts them.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq)]
pub struct ShardedStats {
    /// Each shard's figures, in shard order.
    pub shards: Vec<Stats>,
    /// Their sum (maxima for the maxima).
    pub total: Stats,
    /// Commands refused because their keys belong to more than one shard (handed back).
    pub cross_shard: u64,
}
