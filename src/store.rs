//! The target store: a prefix in an `object_store` backend, used synchronously.
//!
//! object_store is async; nc2zarr's workers are rayon threads. [`Target`] owns a
//! tokio runtime and blocks on it for each call (`Handle::block_on` works from any
//! non-async thread, so `main` stays synchronous). Keys are `/`-separated and relative
//! to the target prefix; they are passed to object_store verbatim (not percent-encoded)
//! so that other Zarr readers find the same names.

use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use object_store::ObjectStore;
use object_store::ObjectStoreExt;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;

use crate::error::TargetError;

/// Where a target lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A local directory.
    Local(PathBuf),
    /// The in-process memory store (tests).
    Memory,
}

/// Parses a TARGET argument: a local path, `file://` URL or `memory://`.
pub fn parse_location(target: &str) -> Result<Location, TargetError> {
    if let Some(rest) = target.strip_prefix("file://") {
        if !rest.starts_with('/') {
            return Err(TargetError::BadUrl {
                target: target.to_string(),
                message: "file:// URLs need an absolute path (file:///data/out.zarr)".into(),
            });
        }
        return Ok(Location::Local(PathBuf::from(rest)));
    }
    if target.starts_with("memory://") {
        return Ok(Location::Memory);
    }
    if let Some((scheme, _)) = target.split_once("://") {
        return Err(TargetError::BadUrl {
            target: target.to_string(),
            message: format!("unsupported URL scheme '{scheme}'; use a local path, file:// or memory://"),
        });
    }
    if target.is_empty() {
        return Err(TargetError::BadUrl {
            target: String::new(),
            message: "empty target path".into(),
        });
    }
    Ok(Location::Local(PathBuf::from(target)))
}

/// A key in the target and its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Key relative to the target prefix.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
}

/// An open target store.
pub struct Target {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    display: String,
    location: Location,
    runtime: Arc<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target").field("target", &self.display).finish()
    }
}

fn runtime() -> Result<Arc<tokio::runtime::Runtime>, TargetError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map(Arc::new)
        .map_err(|e| TargetError::Invalid {
            target: String::new(),
            message: format!("cannot start the I/O runtime: {e}"),
        })
}

impl Target {
    /// Opens `target` for reading; a local directory must exist.
    pub fn open_existing(target: &str) -> Result<Target, TargetError> {
        let location = parse_location(target)?;
        if let Location::Local(dir) = &location
            && !dir.is_dir()
        {
            return Err(TargetError::Invalid {
                target: target.to_string(),
                message: "no such directory".into(),
            });
        }
        Self::connect(target, location)
    }

    /// Opens `target` for writing, creating a local directory if needed.
    pub fn open_for_write(target: &str) -> Result<Target, TargetError> {
        let location = parse_location(target)?;
        if let Location::Local(dir) = &location {
            if dir.exists() && !dir.is_dir() {
                return Err(TargetError::Invalid {
                    target: target.to_string(),
                    message: "exists and is not a directory; choose another target path".into(),
                });
            }
            std::fs::create_dir_all(dir).map_err(|e| TargetError::Invalid {
                target: target.to_string(),
                message: format!("cannot create the directory: {e}"),
            })?;
        }
        Self::connect(target, location)
    }

    /// True when a local target path does not exist yet (nothing to clean up on failure).
    pub fn is_absent(target: &str) -> bool {
        matches!(parse_location(target), Ok(Location::Local(dir)) if !dir.exists())
    }

    fn connect(target: &str, location: Location) -> Result<Target, TargetError> {
        let store: Arc<dyn ObjectStore> = match &location {
            Location::Local(dir) => {
                Arc::new(LocalFileSystem::new_with_prefix(dir).map_err(|e| TargetError::Invalid {
                    target: target.to_string(),
                    message: e.to_string(),
                })?)
            }
            Location::Memory => Arc::new(InMemory::new()),
        };
        Ok(Target {
            store,
            prefix: Path::default(),
            display: target.to_string(),
            location,
            runtime: runtime()?,
        })
    }

    /// The target as shown to users.
    pub fn display(&self) -> &str {
        &self.display
    }

    /// Where the target lives.
    pub fn location(&self) -> &Location {
        &self.location
    }

    fn path(&self, key: &str) -> Result<Path, TargetError> {
        let full = if self.prefix.as_ref().is_empty() {
            key.to_string()
        } else {
            format!("{}/{key}", self.prefix)
        };
        Path::parse(&full).map_err(|e| TargetError::Store {
            target: self.display.clone(),
            operation: "name",
            key: key.to_string(),
            message: e.to_string(),
        })
    }

    fn err(&self, operation: &'static str, key: &str, e: impl std::fmt::Display) -> TargetError {
        TargetError::Store {
            target: self.display.clone(),
            operation,
            key: key.to_string(),
            message: e.to_string(),
        }
    }

    /// Stores `bytes` at `key`, replacing what is there.
    pub fn put(&self, key: &str, bytes: Bytes) -> Result<(), TargetError> {
        let path = self.path(key)?;
        self.runtime
            .block_on(self.store.put(&path, bytes.into()))
            .map(|_| ())
            .map_err(|e| self.err("write", key, e))
    }

    /// Reads `key`; `None` when it does not exist.
    pub fn get(&self, key: &str) -> Result<Option<Bytes>, TargetError> {
        let path = self.path(key)?;
        let result = self.runtime.block_on(async {
            match self.store.get(&path).await {
                Ok(r) => r.bytes().await.map(Some),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        });
        result.map_err(|e| self.err("read", key, e))
    }

    /// Deletes `key` (no error when it is absent).
    pub fn delete(&self, key: &str) -> Result<(), TargetError> {
        let path = self.path(key)?;
        match self.runtime.block_on(self.store.delete(&path)) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.err("delete", key, e)),
        }
    }

    /// Every key under `prefix` (relative to the target), with sizes.
    pub fn list(&self, prefix: &str) -> Result<Vec<Listed>, TargetError> {
        let base = if prefix.is_empty() {
            self.prefix.clone()
        } else {
            self.path(prefix)?
        };
        let strip = self.prefix.as_ref().len();
        let listed = self.runtime.block_on(async {
            let mut out = Vec::new();
            let mut stream = self.store.list(Some(&base));
            while let Some(item) = stream.next().await {
                let meta = item?;
                let full = meta.location.as_ref();
                let key = if strip == 0 {
                    full.to_string()
                } else {
                    full[strip..].trim_start_matches('/').to_string()
                };
                out.push(Listed { key, size: meta.size });
            }
            Ok::<_, object_store::Error>(out)
        });
        listed.map_err(|e| self.err("list", prefix, e))
    }

    /// True when nothing is stored under the target.
    pub fn is_empty(&self) -> Result<bool, TargetError> {
        Ok(self.list("")?.is_empty())
    }

    /// Deletes everything under the target prefix; returns how many objects went.
    pub fn delete_all(&self) -> Result<usize, TargetError> {
        let keys = self.list("")?;
        for k in &keys {
            self.delete(&k.key)?;
        }
        if let Location::Local(dir) = &self.location {
            remove_empty_dirs(dir);
        }
        Ok(keys.len())
    }
}

/// Removes empty sub-directories left after deleting files (keeps `dir` itself).
fn remove_empty_dirs(dir: &FsPath) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            remove_empty_dirs(&p);
            let _ = std::fs::remove_dir(&p);
        }
    }
}

/// Refuses to overwrite locations whose deletion would be catastrophic.
pub fn check_overwrite_allowed(target: &str) -> Result<(), TargetError> {
    if let Ok(Location::Local(dir)) = parse_location(target) {
        let canonical = dir.canonicalize().unwrap_or(dir.clone());
        let home = std::env::var_os("HOME").map(PathBuf::from);
        if canonical.parent().is_none() || Some(&canonical) == home.as_ref() {
            return Err(TargetError::Invalid {
                target: target.to_string(),
                message: "refusing to overwrite a filesystem root or the home directory".into(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_locations() {
        assert_eq!(parse_location("out.zarr").unwrap(), Location::Local("out.zarr".into()));
        assert_eq!(
            parse_location("file:///tmp/x").unwrap(),
            Location::Local("/tmp/x".into())
        );
        assert_eq!(parse_location("memory://").unwrap(), Location::Memory);
        let e = parse_location("ftp://host/x").unwrap_err().to_string();
        assert!(e.contains("unsupported URL scheme 'ftp'"), "{e}");
        assert!(parse_location("file://relative").is_err());
    }

    #[test]
    fn put_get_list_delete_with_odd_names() {
        let dir = tempfile::tempdir().unwrap();
        let t = Target::open_for_write(dir.path().to_str().unwrap()).unwrap();
        assert!(t.is_empty().unwrap());
        t.put("a b/xā[1]/zarr.json", Bytes::from_static(b"{}")).unwrap();
        assert!(dir.path().join("a b/xā[1]/zarr.json").is_file());
        assert_eq!(
            t.get("a b/xā[1]/zarr.json").unwrap().unwrap(),
            Bytes::from_static(b"{}")
        );
        assert_eq!(t.get("missing").unwrap(), None);
        let listed = t.list("").unwrap();
        assert_eq!(
            listed,
            vec![Listed {
                key: "a b/xā[1]/zarr.json".into(),
                size: 2
            }]
        );
        assert_eq!(t.delete_all().unwrap(), 1);
        assert!(t.is_empty().unwrap());
        assert!(dir.path().read_dir().unwrap().next().is_none());
    }

    #[test]
    fn refuses_root_and_home() {
        assert!(check_overwrite_allowed("/").is_err());
        if let Some(home) = std::env::var_os("HOME") {
            assert!(check_overwrite_allowed(home.to_str().unwrap()).is_err());
        }
        assert!(check_overwrite_allowed("/tmp/some/out.zarr").is_ok());
    }
}
