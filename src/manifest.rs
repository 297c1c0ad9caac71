//! The manifest nc2zarr keeps in the target under `.nc2zarr/`: what was written, with
//! the blake3 hash of every stored object, so `verify` can prove the store complete.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Reserved prefix for nc2zarr's own files in a target.
pub const PREFIX: &str = ".nc2zarr";
/// Key of the manifest.
pub const MANIFEST_KEY: &str = ".nc2zarr/manifest.json";
/// Key of the marker present while a write is in progress.
pub const IN_PROGRESS_KEY: &str = ".nc2zarr/in-progress.json";
/// The manifest a commit is about to make current: an append writes it before its
/// commit; on an Icechunk target every commit does, and it becomes the manifest only
/// once the repository holds what it lists.
pub const NEXT_MANIFEST_KEY: &str = ".nc2zarr/manifest.next.json";

/// One input file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputEntry {
    /// Path as given.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// blake3 (hex) of the size and the first 64 KiB: recognises a file on append.
    #[serde(default)]
    pub fingerprint: String,
    /// blake3 (hex) of the file's values of the concat coordinate (and its units): two
    /// files of equal size and layout hold different steps. Absent in older manifests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coordinate: Option<String>,
    /// The ETag of a remote input when it was read (`path` is then its URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// When the file was last modified (nanoseconds since 1970) as it was converted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified_ns: Option<i64>,
    /// blake3 (hex) of the whole file as it was converted: tells a file re-delivered
    /// with other values, but the same size, head and coordinates, from the one in the
    /// store. Absent in older manifests and after split runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

impl InputEntry {
    /// True when this entry is the file with `fingerprint` and concat `coordinate`
    /// hash (entries of older manifests carry no coordinate hash).
    pub fn is(&self, fingerprint: &str, coordinate: Option<&str>) -> bool {
        self.fingerprint == fingerprint && (self.coordinate.is_none() || self.coordinate.as_deref() == coordinate)
    }

    /// Whether `path`, which this entry recognises by fingerprint, still holds what was
    /// converted: by its modification time, else by the hash of all its bytes.
    pub fn holds_the_same(&self, path: &std::path::Path) -> std::io::Result<Sameness> {
        let Some(content) = &self.content else {
            return Ok(Sameness::Untouched);
        };
        if self.modified_ns.is_some() && self.modified_ns == modified_ns(path) {
            return Ok(Sameness::Untouched);
        }
        Ok(if &content_hash(path)? == content {
            Sameness::Rewritten
        } else {
            Sameness::Changed
        })
    }
}

/// What [`InputEntry::holds_the_same`] found for a file the entry recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sameness {
    /// Not modified since it was converted (or nothing more is recorded to compare).
    Untouched,
    /// Modified since, but it holds the same bytes.
    Rewritten,
    /// Its bytes differ from those converted.
    Changed,
}

/// When `path` was last modified, in nanoseconds since 1970 (None where the file
/// system does not say).
pub fn modified_ns(path: &std::path::Path) -> Option<i64> {
    let t = std::fs::metadata(path).ok()?.modified().ok()?;
    let d = t.duration_since(std::time::UNIX_EPOCH).ok()?;
    i64::try_from(d.as_nanos()).ok()
}

/// blake3 (hex) of all the bytes of `path`, read a block at a time.
pub fn content_hash(path: &std::path::Path) -> std::io::Result<String> {
    let file = std::fs::File::open(path)?;
    let mut h = blake3::Hasher::new();
    h.update_reader(file)?;
    Ok(h.finalize().to_hex().to_string())
}

/// Fingerprint of one input file: blake3 of its size and first 64 KiB.
pub fn file_fingerprint(path: &std::path::Path) -> std::io::Result<String> {
    use std::io::Read;
    let file = std::fs::File::open(path)?;
    let size = file.metadata()?.len();
    let mut head = Vec::with_capacity(64 << 10);
    file.take(64 << 10).read_to_end(&mut head)?;
    let mut h = blake3::Hasher::new();
    h.update(&size.to_le_bytes());
    h.update(&head);
    Ok(h.finalize().to_hex().to_string())
}

/// One stored object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectEntry {
    /// blake3 of the stored bytes, hex.
    pub blake3: String,
    /// Stored size in bytes.
    pub size: u64,
}

/// One array: its stored objects and the objects left out because they held only fill values.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArrayEntry {
    /// Stored objects by key (relative to the target).
    pub objects: BTreeMap<String, ObjectEntry>,
    /// Keys not stored because the object equals the fill value.
    pub empty: Vec<String>,
}

/// What a completed write put into the target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Manifest layout version.
    pub manifest_version: u32,
    /// The tool and version that wrote it.
    pub tool: String,
    /// 2 or 3.
    pub zarr_format: u64,
    /// The dimension inputs were concatenated along.
    #[serde(default)]
    pub concat_dim: Option<String>,
    /// The group of the inputs read as the dataset's root (`--group`), if not theirs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Inputs, in concat order.
    pub inputs: Vec<InputEntry>,
    /// Arrays by path.
    pub arrays: BTreeMap<String, ArrayEntry>,
}

impl Manifest {
    /// An empty manifest for a write.
    pub fn new(zarr_format: u64, inputs: Vec<InputEntry>) -> Manifest {
        Manifest {
            manifest_version: 1,
            tool: format!("nc2zarr {}", env!("CARGO_PKG_VERSION")),
            zarr_format,
            concat_dim: None,
            group: None,
            inputs,
            arrays: BTreeMap::new(),
        }
    }

    /// Serialized form.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("manifest serializes")
    }

    /// Parses a stored manifest.
    pub fn from_bytes(bytes: &[u8]) -> Result<Manifest, String> {
        serde_json::from_slice(bytes).map_err(|e| e.to_string())
    }
}
