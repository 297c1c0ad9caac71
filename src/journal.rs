//! The write journal: which objects a conversion has stored so far, so that a re-run
//! after a crash resumes instead of starting over.
//!
//! Entries are appended in small segments (`.nc2zarr/journal/NNNNNNNNNN.jsonl`), each
//! written once and never rewritten, so a crash loses at most the last unflushed
//! entries (whose objects are simply written again, with identical bytes).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::error::TargetError;
use crate::store::Target;

/// Prefix of journal segments.
pub const JOURNAL_PREFIX: &str = ".nc2zarr/journal";

/// Entries buffered before a segment is written.
const FLUSH_ENTRIES: usize = 512;
/// Longest time entries stay buffered.
const FLUSH_AFTER: Duration = Duration::from_secs(2);
/// The same for an Icechunk target, where each segment first saves the whole session
/// (about 36 bytes per object written so far): less often, so that saving stays cheap.
const FLUSH_ENTRIES_SESSION: usize = 8192;
/// See [`FLUSH_ENTRIES_SESSION`].
const FLUSH_AFTER_SESSION: Duration = Duration::from_secs(15);

/// One finished object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Object key.
    #[serde(rename = "k")]
    pub key: String,
    /// blake3 (hex) of the stored bytes; absent for objects not stored (fill only).
    #[serde(rename = "h", default, skip_serializing_if = "Option::is_none")]
    pub blake3: Option<String>,
    /// Stored size in bytes.
    #[serde(rename = "s", default)]
    pub size: u64,
}

/// Buffers entries and writes them as journal segments.
pub struct Journal {
    target: Target,
    prefix: String,
    /// Entries buffered before a segment is written.
    flush_entries: usize,
    /// Longest time entries stay buffered.
    flush_after: Duration,
    state: Mutex<State>,
}

struct State {
    pending: Vec<Entry>,
    next_segment: u64,
    last_flush: Instant,
}

impl Journal {
    /// A journal continuing after `existing_segments` segments.
    pub fn new(target: &Target, existing_segments: u64) -> Journal {
        Self::at(target, JOURNAL_PREFIX, existing_segments)
    }

    /// A journal under `prefix` (each task of a split run keeps its own).
    pub fn at(target: &Target, prefix: &str, existing_segments: u64) -> Journal {
        let (flush_entries, flush_after) = if target.is_transactional() {
            (FLUSH_ENTRIES_SESSION, FLUSH_AFTER_SESSION)
        } else {
            (FLUSH_ENTRIES, FLUSH_AFTER)
        };
        Journal {
            target: target.clone(),
            prefix: prefix.to_string(),
            flush_entries,
            flush_after,
            state: Mutex::new(State {
                pending: Vec::new(),
                next_segment: existing_segments,
                last_flush: Instant::now(),
            }),
        }
    }

    /// Records a finished object, writing a segment when enough have accumulated.
    /// Called from one thread (the collector), never from the async runtime.
    pub fn record(&self, entry: Entry) -> Result<(), TargetError> {
        let mut state = self.state.lock().expect("journal lock");
        state.pending.push(entry);
        if state.pending.len() >= self.flush_entries || state.last_flush.elapsed() >= self.flush_after {
            self.write_segment(&mut state)?;
        }
        Ok(())
    }

    /// Writes whatever is buffered.
    pub fn flush(&self) -> Result<(), TargetError> {
        let mut state = self.state.lock().expect("journal lock");
        self.write_segment(&mut state)
    }

    fn write_segment(&self, state: &mut State) -> Result<(), TargetError> {
        state.last_flush = Instant::now();
        if state.pending.is_empty() {
            return Ok(());
        }
        // An Icechunk session holds what it wrote until it commits: save it first, so
        // that every object this segment lists survives a crash with it.
        self.target.checkpoint()?;
        let mut text = String::new();
        for e in state.pending.drain(..) {
            text.push_str(&serde_json::to_string(&e).expect("entry serializes"));
            text.push('\n');
        }
        let key = format!("{}/{:010}.jsonl", self.prefix, state.next_segment);
        state.next_segment += 1;
        self.target.put(&key, Bytes::from(text))
    }
}

/// Deletes the journal under `prefix` (every segment).
pub fn clear(target: &Target, prefix: &str) -> Result<(), TargetError> {
    for segment in target.list(prefix)? {
        target.delete(&segment.key)?;
    }
    Ok(())
}

/// What an interrupted run finished: entries by key, and how many segments exist.
pub fn load(target: &Target) -> Result<(HashMap<String, Entry>, u64), TargetError> {
    load_at(target, JOURNAL_PREFIX)
}

/// [`load`] for the journal under `prefix`.
pub fn load_at(target: &Target, prefix: &str) -> Result<(HashMap<String, Entry>, u64), TargetError> {
    let mut segments: Vec<String> = target.list(prefix)?.into_iter().map(|l| l.key).collect();
    segments.sort();
    let mut entries = HashMap::new();
    let mut next = 0;
    for key in &segments {
        if let Some(n) = key
            .rsplit('/')
            .next()
            .and_then(|f| f.strip_suffix(".jsonl"))
            .and_then(|n| n.parse::<u64>().ok())
        {
            next = next.max(n + 1);
        }
        let Some(bytes) = target.get(key)? else { continue };
        // A torn last line (crash mid-write) is ignored: its object is rewritten.
        for line in String::from_utf8_lossy(&bytes).lines() {
            if let Ok(e) = serde_json::from_str::<Entry>(line) {
                entries.insert(e.key.clone(), e);
            }
        }
    }
    Ok((entries, next))
}
