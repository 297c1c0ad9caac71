//! A run's records in its target, written by every command that writes and read by
//! `verify`: the name of a run (kept in its in-progress marker and in an Icechunk
//! commit), the inputs' manifest entries and their fingerprint, a commit message, and
//! finishing the records once the commit happened (the next manifest becomes the
//! manifest; the marker and the journal go).

use crate::error::{InputError, Result};
use crate::journal;
use crate::json::Json;
use crate::manifest::{self, InputEntry};
use crate::model::Inventory;
use crate::store::Target;

/// A new name for a run that writes what `what` describes: recorded in its in-progress
/// marker and in the Icechunk commit it makes, so that a re-run tells whether that
/// commit happened. Unique per run: the same job run again is another run.
pub fn new_run(what: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{what}:{nanos:x}-{:x}", std::process::id())
}

/// The run an in-progress marker names (see [`new_run`]; empty for a marker without).
pub fn run_of_marker(marker: &Json) -> String {
    marker.get("run").and_then(Json::as_str).unwrap_or_default().to_string()
}

/// The run named by the target's in-progress marker (empty without one).
pub fn current_run(store: &Target) -> Result<String> {
    let marker = crate::existing::read_json(store, manifest::IN_PROGRESS_KEY)?;
    Ok(marker.as_ref().map(run_of_marker).unwrap_or_default())
}

/// Finishes the records of a run whose commit happened: the next manifest becomes the
/// manifest, and the in-progress marker and the journal go.
pub fn finish_records(store: &Target) -> Result<()> {
    if let Some(next) = store.get(manifest::NEXT_MANIFEST_KEY)? {
        store.put(manifest::MANIFEST_KEY, next)?;
        store.delete(manifest::NEXT_MANIFEST_KEY)?;
    }
    store.delete(manifest::IN_PROGRESS_KEY)?;
    journal::clear(store, journal::JOURNAL_PREFIX)?;
    Ok(())
}

/// A commit message naming the inputs (the first and last few of a long list).
pub fn commit_message(command: &str, inputs: &[InputEntry]) -> String {
    let names: Vec<String> = inputs.iter().map(|i| crate::secrets::redact(&i.path)).collect();
    let shown = if names.len() <= 6 {
        names.join(", ")
    } else {
        format!(
            "{}, … {} more …, {}",
            names[..3].join(", "),
            names.len() - 6,
            names[names.len() - 3..].join(", ")
        )
    };
    let plural = if names.len() == 1 { "" } else { "s" };
    format!("nc2zarr {command}: {} file{plural}: {shown}", names.len())
}

/// Every input with its fingerprint, in concat order.
pub fn input_entries(inv: &Inventory) -> Result<Vec<InputEntry>> {
    inv.files
        .iter()
        .map(|f| {
            let fingerprint = manifest::file_fingerprint(&f.path).map_err(|e| InputError::Io {
                path: f.path.clone(),
                message: e.to_string(),
            })?;
            let (path, etag) = match &f.origin {
                // Without credentials: the manifest is part of the store.
                Some((url, etag)) => (crate::remote::identity(url), etag.clone()),
                None => (f.path.display().to_string(), None),
            };
            Ok(InputEntry {
                path,
                size: f.size,
                fingerprint,
                coordinate: f.coordinate_digest.clone(),
                etag,
                modified_ns: manifest::modified_ns(&f.path),
                content: None,
            })
        })
        .collect()
}

/// The hash of every input's bytes ([`manifest::content_hash`]), in the order of
/// `inv.files`: computed beside a write, for the manifest it ends with.
pub fn content_hashes(inv: &Inventory) -> Result<Vec<String>> {
    inv.files
        .iter()
        .map(|f| {
            manifest::content_hash(&f.path).map_err(|e| {
                InputError::Io {
                    path: f.path.clone(),
                    message: e.to_string(),
                }
                .into()
            })
        })
        .collect()
}

/// Records `hashes` (from [`content_hashes`]) in the entries of the same inputs.
pub fn record_content(inputs: &mut [InputEntry], hashes: Vec<String>) {
    for (i, h) in inputs.iter_mut().zip(hashes) {
        i.content = Some(h);
    }
}

/// Fingerprint of the inputs: their paths and file fingerprints.
pub fn inputs_fingerprint(inputs: &[InputEntry]) -> String {
    let mut h = blake3::Hasher::new();
    for i in inputs {
        h.update(i.path.as_bytes());
        h.update(i.fingerprint.as_bytes());
        h.update(i.coordinate.as_deref().unwrap_or("").as_bytes());
    }
    h.finalize().to_hex().to_string()
}
