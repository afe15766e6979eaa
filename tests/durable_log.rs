//! The durable store's log: replay recovers the longest valid prefix of any damaged log.

#[allow(dead_code)]
#[path = "../examples/durable_kv/wal.rs"]
mod wal;

use wal::{Op, encode, replay};

/// A log of `n` records of varied sizes, and the byte offset where each record ends.
fn sample_log(n: usize) -> (Vec<Op>, Vec<u8>, Vec<usize>) {
    let mut ops = Vec::new();
    let mut bytes = Vec::new();
    let mut ends = Vec::new();
    for i in 0..n {
        let op = if i % 4 == 3 {
            Op::Delete {
                key: format!("k{}", i - 1),
            }
        } else {
            Op::Set {
                key: format!("k{i}"),
                value: "v".repeat(i * 3),
            }
        };
        bytes.extend_from_slice(&encode(&op));
        ends.push(bytes.len());
        ops.push(op);
    }
    (ops, bytes, ends)
}

/// How many whole records end at or before `len`.
fn whole_records(ends: &[usize], len: usize) -> usize {
    ends.iter().take_while(|&&end| end <= len).count()
}

#[test]
fn an_intact_log_replays_every_record() {
    let (ops, bytes, _) = sample_log(12);
    assert_eq!(replay(&bytes), (ops, bytes.len()));
}

#[test]
fn garbage_appended_after_the_last_record_is_cut_off() {
    let (ops, mut bytes, _) = sample_log(12);
    let valid = bytes.len();
    for garbage in [
        &[0u8][..],
        &[0xFF; 3],
        &[7, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    ] {
        bytes.truncate(valid);
        bytes.extend_from_slice(garbage);
        assert_eq!(replay(&bytes), (ops.clone(), valid), "garbage {garbage:?}");
    }
}

#[test]
fn a_log_cut_at_any_byte_keeps_exactly_the_whole_records_before_the_cut() {
    let (ops, bytes, ends) = sample_log(12);
    for cut in 0..=bytes.len() {
        let (replayed, valid) = replay(&bytes[..cut]);
        let whole = whole_records(&ends, cut);
        assert_eq!(replayed, ops[..whole], "cut at {cut}");
        assert_eq!(valid, if whole == 0 { 0 } else { ends[whole - 1] });
    }
}

#[test]
fn a_flipped_byte_anywhere_keeps_exactly_the_records_before_it() {
    let (ops, bytes, ends) = sample_log(12);
    for at in 0..bytes.len() {
        for flip in [0x01, 0x80, 0xFF] {
            let mut damaged = bytes.clone();
            damaged[at] ^= flip;
            let (replayed, valid) = replay(&damaged);
            // The record holding the flipped byte is the first one lost.
            let intact = whole_records(&ends, at);
            assert_eq!(replayed, ops[..intact], "flip {flip:#x} at {at}");
            assert_eq!(valid, if intact == 0 { 0 } else { ends[intact - 1] });
        }
    }
}

#[test]
fn the_checksum_is_crc32_ieee() {
    assert_eq!(wal::crc32(b"123456789"), 0xCBF4_3926);
    assert_eq!(wal::crc32(b""), 0);
}

mod fuzz {
    //! Replay under random bytes: never a panic, always the longest valid prefix.

    use proptest::prelude::*;

    use super::wal::{Op, encode, replay};

    fn op() -> impl Strategy<Value = Op> {
        let text = "[a-z0-9é]{0,12}";
        prop_oneof![
            (text, text).prop_map(|(key, value)| Op::Set { key, value }),
            text.prop_map(|key| Op::Delete { key }),
        ]
    }

    /// What replay must return for `bytes`: it decodes whole records, and the bytes it kept
    /// are exactly those records re-encoded, and no further record can be decoded after them.
    fn check_longest_valid_prefix(bytes: &[u8]) -> Vec<Op> {
        let (ops, valid) = replay(bytes);
        let reencoded: Vec<u8> = ops.iter().flat_map(encode).collect();
        assert_eq!(reencoded, bytes[..valid]);
        assert!(replay(&bytes[valid..]).0.is_empty(), "replay stopped early");
        ops
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        #[test]
        fn arbitrary_bytes_replay_to_a_valid_prefix_without_panicking(
            bytes in proptest::collection::vec(any::<u8>(), 0..512),
        ) {
            check_longest_valid_prefix(&bytes);
        }

        #[test]
        fn a_damaged_log_keeps_exactly_the_records_before_the_damage(
            ops in proptest::collection::vec(op(), 1..20),
            at in any::<prop::sample::Index>(),
            damage in 0..3u8,
            noise in proptest::collection::vec(1..=255u8, 1..8),
        ) {
            let records: Vec<Vec<u8>> = ops.iter().map(encode).collect();
            let original: Vec<u8> = records.concat();
            let mut bytes = original.clone();
            let at = at.index(bytes.len());
            match damage {
                0 => bytes[at] ^= noise[0],                      // flip bits in a byte
                1 => bytes.truncate(at),                         // torn tail
                _ => bytes.splice(at..at, noise.iter().copied()).for_each(drop), // inserted garbage
            }
            // A record survives while every byte up to its end is unchanged. (Damage does not
            // always change bytes: a byte inserted before an equal one leaves the prefix intact.)
            let mut end = 0;
            let intact = records
                .iter()
                .take_while(|r| {
                    end += r.len();
                    bytes.get(..end) == Some(&original[..end])
                })
                .count();
            let replayed = check_longest_valid_prefix(&bytes);
            prop_assert_eq!(replayed, ops[..intact].to_vec());
        }
    }
}
