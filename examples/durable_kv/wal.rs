//! A write-ahead log: length-prefixed, checksummed records, and a replay that stops at the
//! first torn or corrupt record.
//!
//! A record on disk is `len: u32 LE | crc32(payload): u32 LE | payload`, and a payload is
//! `tag: u8 | key_len: u32 LE | key | (value_len: u32 LE | value, for a set)`.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;
use std::sync::Arc;

/// One change to the key-value map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Set { key: String, value: String },
    Delete { key: String },
}

/// What opening a log found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Recovery {
    /// Whole, valid records replayed.
    pub(crate) records: usize,
    /// Bytes of the valid prefix, kept.
    pub(crate) valid_bytes: u64,
    /// Bytes after it (a torn or corrupt tail), cut off.
    pub(crate) discarded_bytes: u64,
}

/// An open log, positioned after its last valid record.
pub(crate) struct Wal {
    file: BufWriter<File>,
    /// The same open file, for a commit thread to fsync while new records are written.
    sync: Arc<File>,
}

const SET: u8 = 1;
const DELETE: u8 = 2;
const HEADER: usize = 8;

impl Wal {
    /// Opens (or creates) the log at `path`, replays it, and cuts off any torn or corrupt tail
    /// so that new records follow the last valid one.
    pub(crate) fn open(path: &Path) -> io::Result<(Wal, Vec<Op>, Recovery)> {
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let (ops, valid) = replay(&bytes);
        let recovery = Recovery {
            records: ops.len(),
            valid_bytes: valid as u64,
            discarded_bytes: (bytes.len() - valid) as u64,
        };
        if recovery.discarded_bytes > 0 {
            file.set_len(recovery.valid_bytes)?;
            file.sync_data()?;
        }
        let sync = Arc::new(file.try_clone()?);
        Ok((
            Wal {
                file: BufWriter::new(file),
                sync,
            },
            ops,
            recovery,
        ))
    }

    /// Appends a record to the log's buffer; it is durable only after [`Wal::commit`].
    pub(crate) fn append(&mut self, op: &Op) -> io::Result<()> {
        self.file.write_all(&encode(op))
    }

    /// Writes the buffer out and waits until the disk has it (`fsync`).
    pub(crate) fn commit(&mut self) -> io::Result<()> {
        self.write_out()?.sync_data()
    }

    /// Writes the buffer out to the file (quick: into the operating system's cache) and
    /// returns the file, whose `sync_data` makes every record written so far durable.
    pub(crate) fn write_out(&mut self) -> io::Result<Arc<File>> {
        self.file.flush()?;
        Ok(Arc::clone(&self.sync))
    }
}

/// Encodes one op as a whole record, header included.
pub(crate) fn encode(op: &Op) -> Vec<u8> {
    let mut payload = Vec::new();
    match op {
        Op::Set { key, value } => {
            payload.push(SET);
            put_bytes(&mut payload, key.as_bytes());
            put_bytes(&mut payload, value.as_bytes());
        }
        Op::Delete { key } => {
            payload.push(DELETE);
            put_bytes(&mut payload, key.as_bytes());
        }
    }
    let mut record = Vec::with_capacity(HEADER + payload.len());
    record.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    record.extend_from_slice(&crc32(&payload).to_le_bytes());
    record.extend_from_slice(&payload);
    record
}

// ANCHOR: replay
/// Decodes the longest prefix of whole, valid records. Returns the ops and the prefix's
/// length in bytes. Never panics, whatever the bytes.
pub(crate) fn replay(bytes: &[u8]) -> (Vec<Op>, usize) {
    let mut ops = Vec::new();
    let mut at = 0;
    while let Some((op, size)) = decode_record(&bytes[at..]) {
        ops.push(op);
        at += size;
    }
    (ops, at)
}

/// One whole record at the start of `bytes`, and its size, if it is valid.
fn decode_record(bytes: &[u8]) -> Option<(Op, usize)> {
    let len = u32::from_le_bytes(bytes.get(0..4)?.try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(bytes.get(4..8)?.try_into().ok()?);
    let payload = bytes.get(HEADER..HEADER.checked_add(len)?)?;
    if crc32(payload) != crc {
        return None;
    }
    Some((decode_payload(payload)?, HEADER + len))
}
// ANCHOR_END: replay

fn decode_payload(payload: &[u8]) -> Option<Op> {
    let (&tag, rest) = payload.split_first()?;
    let (key, rest) = take_string(rest)?;
    let (op, rest) = match tag {
        SET => {
            let (value, rest) = take_string(rest)?;
            (Op::Set { key, value }, rest)
        }
        DELETE => (Op::Delete { key }, rest),
        _ => return None,
    };
    rest.is_empty().then_some(op)
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

fn take_string(bytes: &[u8]) -> Option<(String, &[u8])> {
    let len = u32::from_le_bytes(bytes.get(0..4)?.try_into().ok()?) as usize;
    let text = bytes.get(4..4usize.checked_add(len)?)?;
    let text = String::from_utf8(text.to_vec()).ok()?;
    Some((text, &bytes[4 + len..]))
}

/// CRC-32 (IEEE 802.3), a byte at a time over a table built at compile time.
pub(crate) fn crc32(bytes: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut crc = i as u32;
            let mut bit = 0;
            while bit < 8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
                bit += 1;
            }
            table[i] = crc;
            i += 1;
        }
        table
    };
    !bytes.iter().fold(!0u32, |crc, &byte| {
        TABLE[((crc ^ u32::from(byte)) & 0xFF) as usize] ^ (crc >> 8)
    })
}
