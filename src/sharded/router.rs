//! Which shard owns a command: the [`Router`] trait, and the default that hashes a key.

use std::fmt;
use std::hash::{DefaultHasher, Hash, Hasher};

/// Where a [`Router`] sends a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// The shard that owns every key of the command, in `0..shards`.
    Shard(usize),
    /// The command's keys belong to more than one shard. No shard can apply it alone, so it
    /// is refused with [`SubmitError::CrossShard`](crate::SubmitError::CrossShard) (or
    /// [`CallError::CrossShard`](crate::CallError::CrossShard)) and handed back, as Redis
    /// Cluster refuses `CROSSSLOT`. Route related keys by a group id to keep them together.
    CrossShard,
}

/// Decides which shard of a [`Sharded`](crate::Sharded) queue owns a command.
///
/// A router must be a pure function of the command and the number of shards: the same
/// command must always go to the same shard, since that is what keeps a key's commands in one
/// order. [`by_key`] and [`by_keys`] build the usual one; implement this trait for a stable
/// hash (see [`shard_of`]) or for routing by ranges.
///
/// # Examples
///
/// Commands that name their shard's group, routed with the crate's mapping from a hash of
/// your own (FNV-1a here), which stays the same across builds and Rust versions:
///
/// ```
/// use singular_queue::{Route, Router, shard_of};
///
/// struct Order { symbol: String, quantity: u64 }
///
/// struct BySymbol;
///
/// impl Router<Order> for BySymbol {
///     fn route(&self, order: &Order, shards: usize) -> Route {
///         let hash = order.symbol.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
///             (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
///         });
///         Route::Shard(shard_of(hash, shards))
///     }
/// }
///
/// let order = Order { symbol: "ACME".into(), quantity: 10 };
/// assert_eq!(BySymbol.route(&order, 4), BySymbol.route(&order, 4));
/// # let _ = order.quantity;
/// ```
pub trait Router<C>: Send + Sync + 'static {
    /// The shard that owns `command`, among `shards` (at least 1), or
    /// [`Route::CrossShard`]. A shard index of `shards` or more is a bug of the router: the
    /// submit panics, naming it. With one shard, which owns every key, a submit does not ask
    /// the router (but [`ShardedHandle::route`](crate::ShardedHandle::route) does).
    fn route(&self, command: &C, shards: usize) -> Route;
}

/// Maps a 64-bit hash to one of `shards` shards, evenly, by multiply-shift (as ScyllaDB maps
/// tokens to shards): the hash is first mixed (the finaliser of MurmurHash3), so that hashes
/// that differ only in their low bits (small sequential ids under an identity hash) or only
/// in their high bits still spread over every shard; then `(mixed × shards) >> 64`, which,
/// unlike `%`, costs one multiplication and keeps every shard's share within one part in
/// 2⁶⁴ of the others.
///
/// Stable: the same hash and shard count give the same shard on every build, so a stable
/// hash of your own makes routing that a restarted process (with per-shard logs) can trust.
///
/// # Panics
///
/// If `shards` is 0.
///
/// # Examples
///
/// ```
/// use singular_queue::shard_of;
///
/// let mut counts = [0; 4];
/// for id in 0..4000_u64 {
///     counts[shard_of(id, 4)] += 1; // an identity "hash" of small ids
/// }
/// assert!(counts.iter().all(|&n| (900..1100).contains(&n)), "{counts:?}");
/// ```
pub fn shard_of(hash: u64, shards: usize) -> usize {
    assert!(shards > 0, "a sharded queue has at least one shard");
    let mixed = mix(hash);
    // Both factors fit in 64 bits, so the product fits in 128, and its top half is below
    // `shards`.
    ((u128::from(mixed) * shards as u128) >> 64) as usize
}

/// MurmurHash3's 64-bit finaliser: every input bit affects every output bit.
fn mix(mut hash: u64) -> u64 {
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    hash ^ (hash >> 33)
}

/// The hash of `key` that [`by_key`] and [`by_keys`] route on: std's `DefaultHasher` with
/// its fixed keys, the same in every process of one build, but not promised across Rust
/// versions (std may change its algorithm). Persist nothing by it: use a [`Router`] with a
/// stable hash of your own for that.
fn hash_of<K: Hash + ?Sized>(key: &K) -> u64 {
    let mut hasher = DefaultHasher::new();
    key.hash(&mut hasher);
    hasher.finish()
}

/// Routes each command by one key that `key` extracts from it: hashed, then mapped with
/// [`shard_of`].
///
/// All commands with equal keys go to the same shard, so they are applied in one order. The
/// hash is std's `DefaultHasher`, the same in every process of one build but not promised
/// across Rust versions: if you keep per-shard logs or state across restarts, route with a
/// stable hash of your own through a [`Router`] (and [`shard_of`]).
///
/// # Examples
///
/// ```
/// use singular_queue::{Route, Router, by_key};
///
/// struct Deposit { account: u64, amount: u64 }
///
/// let router = by_key(|deposit: &Deposit| deposit.account);
/// let deposit = Deposit { account: 7, amount: 10 };
/// let Route::Shard(shard) = router.route(&deposit, 4) else { unreachable!() };
/// assert!(shard < 4 && deposit.amount == 10);
/// ```
pub fn by_key<C, K, F>(key: F) -> ByKey<F>
where
    F: Fn(&C) -> K + Send + Sync + 'static,
    K: Hash,
{
    ByKey(key)
}

/// Routes each command by the keys that `keys` extracts from it: to the shard that owns all
/// of them, or, if they belong to more than one, [`Route::CrossShard`]. A command with no key
/// goes to shard 0.
///
/// # Examples
///
/// ```
/// use singular_queue::{Route, Router, by_keys};
///
/// struct Transfer { from: u64, to: u64 }
///
/// let router = by_keys(|transfer: &Transfer| [transfer.from, transfer.to]);
/// let within = Transfer { from: 7, to: 7 };
/// assert!(matches!(router.route(&within, 4), Route::Shard(_)));
/// // Over enough pairs of accounts, some span two shards, and are refused.
/// let spanning = (0..64).any(|to| router.route(&Transfer { from: 0, to }, 4) == Route::CrossShard);
/// assert!(spanning);
/// ```
pub fn by_keys<C, I, F>(keys: F) -> ByKeys<F>
where
    F: Fn(&C) -> I + Send + Sync + 'static,
    I: IntoIterator,
    I::Item: Hash,
{
    ByKeys(keys)
}

/// The router of [`by_key`].
#[derive(Clone, Copy)]
pub struct ByKey<F>(F);

/// The router of [`by_keys`].
#[derive(Clone, Copy)]
pub struct ByKeys<F>(F);

impl<C, K, F> Router<C> for ByKey<F>
where
    F: Fn(&C) -> K + Send + Sync + 'static,
    K: Hash,
{
    fn route(&self, command: &C, shards: usize) -> Route {
        Route::Shard(shard_of(hash_of(&(self.0)(command)), shards))
    }
}

impl<C, I, F> Router<C> for ByKeys<F>
where
    F: Fn(&C) -> I + Send + Sync + 'static,
    I: IntoIterator,
    I::Item: Hash,
{
    fn route(&self, command: &C, shards: usize) -> Route {
        let mut owners = (self.0)(command)
            .into_iter()
            .map(|key| shard_of(hash_of(&key), shards));
        let first = owners.next().unwrap_or(0);
        if owners.all(|owner| owner == first) {
            Route::Shard(first)
        } else {
            Route::CrossShard
        }
    }
}

impl<F> fmt::Debug for ByKey<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ByKey(..)")
    }
}

impl<F> fmt::Debug for ByKeys<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ByKeys(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every shard count from 1 to 9 gets an even share of small sequential ids under an
    /// identity hash (dashmap's pitfall with the high bits alone), of ids that differ only in
    /// their high bits, and of std-hashed ids.
    #[test]
    fn shard_of_spreads_sequential_and_high_bit_hashes_evenly() {
        type Hash = fn(u64) -> u64;
        let inputs: [(&str, Hash); 3] = [
            ("identity", |id| id),
            ("high bits", |id| id << 40),
            ("std hash", |id| hash_of(&id)),
        ];
        for shards in 1..10 {
            for (name, hash) in inputs {
                let mut counts = vec![0_u64; shards];
                for id in 0..9000 {
                    counts[shard_of(hash(id), shards)] += 1;
                }
                let fair = 9000 / shards as u64;
                let spread = |&n: &u64| n.abs_diff(fair) * 10 <= fair;
                assert!(counts.iter().all(spread), "{name}, {shards}: {counts:?}");
            }
        }
    }

    #[test]
    fn shard_of_is_in_range_at_the_numeric_edges() {
        for hash in [0, 1, u64::MAX, u64::MAX / 2, 1 << 63] {
            for shards in [1, 2, 3, 7, usize::MAX] {
                assert!(shard_of(hash, shards) < shards);
            }
        }
        assert_eq!(shard_of(u64::MAX, 1), 0);
    }

    #[test]
    fn by_keys_routes_no_key_to_shard_0_and_one_key_as_by_key() {
        let keys = by_keys(|keys: &Vec<u64>| keys.clone());
        let key = by_key(|keys: &Vec<u64>| keys[0]);
        assert_eq!(keys.route(&vec![], 5), Route::Shard(0));
        for id in 0..100 {
            assert_eq!(keys.route(&vec![id, id], 5), key.route(&vec![id], 5));
        }
    }
}
