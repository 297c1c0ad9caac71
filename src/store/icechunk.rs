//! Icechunk repositories as targets, named `icechunk+TARGET`: `icechunk+s3://bucket/era5`,
//! `icechunk+file:///data/era5`, `icechunk+era5.icechunk` (a local path). Needs the
//! `icechunk` Cargo feature.
//!
//! An Icechunk repository is transactional Zarr v3 storage: writes go to a session and
//! become visible together when it is committed, as one snapshot in the history of the
//! branch `main`. nc2zarr commits once per `convert` and once per `append`, with a
//! message naming the inputs; a command that stops before its commit leaves the branch as
//! it was, whatever it wrote.
//!
//! A repository's keys must be Zarr keys, so nc2zarr's own records (lock, journal,
//! manifest, in-progress marker, all under `.nc2zarr/`) live beside it: in the same
//! storage, under the same prefix, where Icechunk never looks. The repository is reached
//! through the target's own object store, so endpoints, credentials, retries and
//! `--storage-option`s are those of a plain target.

/// The prefix that names an Icechunk target.
pub const SCHEME: &str = "icechunk+";

/// The storage part of an `icechunk+TARGET` name, or `None` for a plain target.
pub fn strip_scheme(target: &str) -> Option<&str> {
    target.strip_prefix(SCHEME)
}

/// How a repository is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// An existing repository, for reading and for a new commit.
    Existing,
    /// An existing repository, or a new one in an empty location.
    CreateIfAbsent,
}

/// The kind of storage under a repository: Icechunk tunes its requests to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "icechunk", derive(serde::Serialize, serde::Deserialize))]
pub enum StorageKind {
    /// A local directory (no conditional updates).
    Local,
    /// An in-process memory store (tests).
    Memory,
    /// S3, GCS or Azure.
    Cloud,
}

/// Where a writing run saves its session beside the repository, for a re-run to resume.
pub const SESSION_KEY: &str = ".nc2zarr/session.bin";

/// The snapshot property that names the nc2zarr run behind a commit.
pub const RUN_PROPERTY: &str = "nc2zarr_run";

#[cfg(feature = "icechunk")]
pub use with_icechunk::Repo;
#[cfg(not(feature = "icechunk"))]
pub use without_icechunk::Repo;

#[cfg(not(feature = "icechunk"))]
mod without_icechunk {
    use std::sync::Arc;

    use bytes::Bytes;
    use object_store::ObjectStore;

    use super::{Mode, StorageKind};

    /// An Icechunk repository; none can be opened without the `icechunk` feature.
    pub enum Repo {}

    impl Repo {
        /// Refuses: this build has no Icechunk support.
        pub async fn open(_: Arc<dyn ObjectStore>, _: &str, _: &str, _: StorageKind, _: Mode) -> Result<Repo, String> {
            Err("this nc2zarr was built without Icechunk support; install it with \
                 `cargo install nc2zarr --features icechunk`"
                .into())
        }
        /// Unreachable.
        pub async fn set(&self, _: &str, _: Bytes) -> Result<(), String> {
            match *self {}
        }
        /// Unreachable.
        pub async fn get(&self, _: &str) -> Result<Option<Bytes>, String> {
            match *self {}
        }
        /// Unreachable.
        pub async fn delete(&self, _: &str) -> Result<(), String> {
            match *self {}
        }
        /// Unreachable.
        pub async fn clear(&self) -> Result<(), String> {
            match *self {}
        }
        /// Unreachable.
        pub async fn list(&self, _: &str) -> Result<Vec<(String, u64)>, String> {
            match *self {}
        }
        /// Unreachable.
        pub async fn commit(&self, _: &str, _: &str) -> Result<String, String> {
            match *self {}
        }
        /// Unreachable.
        pub async fn tip(&self) -> Result<String, String> {
            match *self {}
        }
        /// Unreachable.
        pub async fn tip_run(&self) -> Result<Option<String>, String> {
            match *self {}
        }
        /// Unreachable.
        pub async fn save(&self, _: &str) -> Result<(), String> {
            match *self {}
        }
        /// Unreachable.
        pub async fn resume(&self, _: &str) -> Result<bool, String> {
            match *self {}
        }
        /// Unreachable.
        pub async fn fork(&self, _: &str) -> Result<(), String> {
            match *self {}
        }
        /// Unreachable.
        pub async fn adopt(&self, _: &str) -> Result<(), String> {
            match *self {}
        }
        /// Unreachable.
        pub async fn merge(&self, _: &str) -> Result<(), String> {
            match *self {}
        }
    }
}

#[cfg(feature = "icechunk")]
mod with_icechunk {
    use std::fmt;
    use std::num::{NonZeroU16, NonZeroU64};
    use std::sync::{Arc, Mutex};

    use bytes::Bytes;
    use futures::{StreamExt, TryStreamExt};
    use icechunk::format::ByteRange;
    use icechunk::repository::VersionInfo;
    use icechunk::session::Session;
    use icechunk::storage::{
        ConcurrencySettings, ObjectStorage, ObjectStoreBackend, RetriesSettings, Role, Settings, StorageError,
        StorageErrorKind, StorageInfo,
    };
    use icechunk::store::StoreErrorKind;
    use icechunk::{Repository, Storage, Store};
    use object_store::{ObjectStore, ObjectStoreExt};
    use serde::{Deserialize, Serialize};
    use tokio::sync::RwLock;

    use super::{Mode, RUN_PROPERTY, SESSION_KEY, StorageKind};

    /// The branch nc2zarr reads and commits to.
    const BRANCH: &str = "main";

    /// Object stores handed to Icechunk, by name. Icechunk's storage is serialisable (a
    /// session saved by one process is resumed by another) and rebuilds its client from
    /// a backend description; ours names a store that this process opened under that
    /// name, so no endpoint or credential is ever written into a session.
    static STORES: Mutex<Vec<(String, Arc<dyn ObjectStore>)>> = Mutex::new(Vec::new());

    /// An Icechunk storage backend that is one of nc2zarr's target stores.
    #[derive(Debug, Serialize, Deserialize)]
    struct TargetBackend {
        /// The store's name in [`STORES`].
        store: String,
        /// The repository's prefix in the store.
        prefix: String,
        kind: StorageKind,
    }

    impl fmt::Display for TargetBackend {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "nc2zarr target store (prefix {:?})", self.prefix)
        }
    }

    #[typetag::serde(name = "nc2zarr_target_store")]
    impl ObjectStoreBackend for TargetBackend {
        fn mk_object_store(&self, _: &Settings, _: Role) -> Result<Arc<dyn ObjectStore>, StorageError> {
            let stores = STORES.lock().expect("icechunk stores");
            let found = stores.iter().find(|(name, _)| *name == self.store);
            found.map(|(_, s)| s.clone()).ok_or_else(|| {
                StorageError::capture(StorageErrorKind::Other(format!(
                    "the target store {} is not open in this process",
                    self.store
                )))
            })
        }

        fn prefix(&self) -> String {
            self.prefix.clone()
        }

        fn ordered_offset_listing(&self) -> bool {
            self.kind == StorageKind::Cloud
        }

        fn storage_info(&self) -> StorageInfo {
            StorageInfo {
                backend_type: "nc2zarr target",
                fields: vec![("prefix", self.prefix.clone())],
            }
        }

        fn artificially_sort_refs_in_mem(&self) -> bool {
            self.kind != StorageKind::Cloud
        }

        /// Icechunk's own choices for each kind of storage: a local directory and memory
        /// have no conditional update and need no retries.
        fn default_settings(&self) -> Settings {
            if self.kind == StorageKind::Cloud {
                return Settings::default();
            }
            Settings {
                concurrency: Some(ConcurrencySettings {
                    max_concurrent_requests_for_object: NonZeroU16::new(5),
                    ideal_concurrent_request_size: NonZeroU64::new(4 * 1024),
                }),
                unsafe_use_conditional_update: Some(self.kind == StorageKind::Memory),
                unsafe_use_metadata: Some(false),
                retries: Some(RetriesSettings {
                    max_tries: NonZeroU16::new(1),
                    initial_backoff_ms: Some(0),
                    max_backoff_ms: Some(0),
                }),
                ..Default::default()
            }
        }

        fn restricts_empty_prefix_creation(&self) -> bool {
            self.kind == StorageKind::Cloud
        }

        fn supports_storage_class(&self) -> bool {
            self.kind == StorageKind::Cloud
        }
    }

    /// Icechunk storage over `store` (named `name`) at `prefix`.
    fn storage(
        store: Arc<dyn ObjectStore>,
        name: &str,
        prefix: &str,
        kind: StorageKind,
    ) -> Result<Arc<dyn Storage + Send + Sync>, String> {
        {
            let mut stores = STORES.lock().expect("icechunk stores");
            stores.retain(|(n, _)| n != name);
            stores.push((name.to_string(), store));
        }
        let backend: Box<dyn ObjectStoreBackend> = Box::new(TargetBackend {
            store: name.to_string(),
            prefix: prefix.to_string(),
            kind,
        });
        // ObjectStorage is built from a backend only through its serialised form.
        let described = serde_json::json!({ "backend": backend });
        let storage: ObjectStorage = serde_json::from_value(described).map_err(|e| e.to_string())?;
        Ok(Arc::new(storage))
    }

    /// An open repository and a session on its branch `main`.
    pub struct Repo {
        repository: Repository,
        store: Store,
        /// The repository's storage: the target's object store and prefix.
        objects: (Arc<dyn ObjectStore>, String),
    }

    fn text(e: impl fmt::Display) -> String {
        // Icechunk's errors carry a span trace over several lines; the first says it.
        let s = e.to_string();
        s.lines().next().unwrap_or_default().trim().to_string()
    }

    impl Repo {
        /// Opens the repository at `prefix` in `store` (creating it in `CreateIfAbsent`
        /// mode when the location holds nothing but nc2zarr's records), with a writable
        /// session on `main`, or a read-only one when no writable one can be had (storage
        /// that refuses writes: reading works, and a write fails with Icechunk's error).
        /// `name` names the location the same way in every process (see [`STORES`]).
        pub async fn open(
            store: Arc<dyn ObjectStore>,
            name: &str,
            prefix: &str,
            kind: StorageKind,
            mode: Mode,
        ) -> Result<Repo, String> {
            let storage = storage(store.clone(), name, prefix, kind)?;
            let exists = Repository::exists(storage.clone(), None).await.map_err(text)?;
            let repository = match (exists, mode) {
                (true, _) => Repository::open(storage).execute().await.map_err(text)?,
                (false, Mode::Existing) if holds_other_objects(&store, prefix).await? => {
                    return Err(
                        "is not an Icechunk repository (for a plain Zarr store, drop the icechunk+ prefix)".into(),
                    );
                }
                (false, Mode::CreateIfAbsent) if holds_other_objects(&store, prefix).await? => {
                    return Err(
                        "is not an Icechunk repository but holds other objects; choose an empty location".into(),
                    );
                }
                (false, Mode::CreateIfAbsent) => Repository::create(storage)
                    .check_clean_root(false)
                    .execute()
                    .await
                    .map_err(text)?,
                (false, Mode::Existing) => return Err("is not an Icechunk repository (nothing found)".into()),
            };
            let session = match repository.writable_session(BRANCH).await {
                Ok(s) => s,
                Err(_) => repository
                    .readonly_session(&VersionInfo::BranchTipRef(BRANCH.into()))
                    .await
                    .map_err(text)?,
            };
            Ok(Repo {
                repository,
                store: Store::from_session(Arc::new(RwLock::new(session))).await,
                objects: (store, prefix.to_string()),
            })
        }

        /// The path of nc2zarr's record `key` in the repository's storage.
        fn record_path(&self, key: &str) -> object_store::path::Path {
            let (_, prefix) = &self.objects;
            object_store::path::Path::from(if prefix.is_empty() {
                key.to_string()
            } else {
                format!("{prefix}/{key}")
            })
        }

        /// Saves the session, with every change it holds, as nc2zarr's record `key`
        /// beside the repository: what a re-run after a crash resumes.
        pub async fn save(&self, key: &str) -> Result<(), String> {
            let bytes = self.store.as_bytes().await.map_err(text)?;
            self.put_record(key, bytes).await
        }

        async fn put_record(&self, key: &str, bytes: Bytes) -> Result<(), String> {
            let (objects, _) = &self.objects;
            let saved = objects.put(&self.record_path(key), bytes.into()).await;
            saved.map(|_| ()).map_err(|e| crate::store::explain(&e))
        }

        /// The bytes of nc2zarr's record `key`, if there is one.
        async fn get_record(&self, key: &str) -> Result<Option<Bytes>, String> {
            let (objects, _) = &self.objects;
            match objects.get(&self.record_path(key)).await {
                Ok(found) => found.bytes().await.map(Some).map_err(|e| crate::store::explain(&e)),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(crate::store::explain(&e)),
            }
        }

        /// The session saved as `key`; an error when it is missing or damaged.
        async fn load(&self, key: &str) -> Result<Session, String> {
            let bytes = self.get_record(key).await?.ok_or_else(|| format!("{key} is missing"))?;
            Session::from_bytes(&bytes).map_err(|e| format!("{key} is damaged: {}", text(e)))
        }

        /// Takes up the session an interrupted run saved as `key`, if it still applies:
        /// on the same branch (or fork) and snapshot as the session now, which for `main`
        /// is its tip when the repository was opened (a commit since makes it stale).
        /// Returns whether it did. Its changes then count as written, so the run's journal
        /// holds for them.
        /// A damaged saved session is not taken up (the run starts again); a failure to
        /// read it is an error.
        pub async fn resume(&self, key: &str) -> Result<bool, String> {
            let Some(bytes) = self.get_record(key).await? else {
                return Ok(false);
            };
            let Ok(saved) = Session::from_bytes(&bytes) else {
                return Ok(false);
            };
            let session = self.store.session();
            let mut current = session.write().await;
            if saved.read_only() || saved.branch() != current.branch() || saved.snapshot_id() != current.snapshot_id() {
                return Ok(false);
            }
            *current = saved;
            Ok(true)
        }

        /// Forks the session for the tasks of a split run and saves the fork as `key`:
        /// the session's changes go into an anonymous snapshot the fork is based on, and
        /// each task writes its chunks into a copy of the fork.
        pub async fn fork(&self, key: &str) -> Result<(), String> {
            let fork = self.store.session().read().await.fork().await.map_err(text)?;
            let bytes = fork.as_bytes().map_err(text)?;
            self.put_record(key, Bytes::from(bytes)).await
        }

        /// Replaces the session by the one saved as `key` (a task takes up its run's fork).
        pub async fn adopt(&self, key: &str) -> Result<(), String> {
            *self.store.session().write().await = self.load(key).await?;
            Ok(())
        }

        /// Merges the changes of the session saved as `key` (a task's) into the session.
        pub async fn merge(&self, key: &str) -> Result<(), String> {
            let saved = self.load(key).await?;
            self.store.session().write().await.merge(saved).await.map_err(text)
        }

        /// Sets `key` in the session. A metadata document equal to the one there is not
        /// set again, so that re-running a finished step adds no change to commit.
        pub async fn set(&self, key: &str, bytes: Bytes) -> Result<(), String> {
            if key.ends_with("zarr.json") && self.get(key).await?.as_deref() == Some(bytes.as_ref()) {
                return Ok(());
            }
            self.store.set(key, bytes).await.map_err(text)
        }

        /// Reads `key` as the session sees it; `None` when absent.
        pub async fn get(&self, key: &str) -> Result<Option<Bytes>, String> {
            match self.store.get(key, &ByteRange::From(0)).await {
                Ok(b) => Ok(Some(b)),
                Err(e) if is_not_found(e.kind()) => Ok(None),
                Err(e) => Err(text(e)),
            }
        }

        /// Deletes `key` in the session (no error when absent).
        pub async fn delete(&self, key: &str) -> Result<(), String> {
            match self.store.delete(key).await {
                Ok(()) => Ok(()),
                Err(e) if is_not_found(e.kind()) => Ok(()),
                Err(e) => Err(text(e)),
            }
        }

        /// Deletes every node in the session.
        pub async fn clear(&self) -> Result<(), String> {
            self.store.clear().await.map_err(text)
        }

        /// Every Zarr key under `prefix`, with its size.
        pub async fn list(&self, prefix: &str) -> Result<Vec<(String, u64)>, String> {
            let keys: Vec<String> = self
                .store
                .list_prefix(if prefix.is_empty() { "/" } else { prefix })
                .await
                .map_err(text)?
                .try_collect()
                .await
                .map_err(text)?;
            let mut out = Vec::with_capacity(keys.len());
            for key in keys {
                let size = self.store.getsize(&key).await.map_err(text)?;
                out.push((key, size));
            }
            Ok(out)
        }

        /// Commits the session's changes to `main` with `message`, recording `run` (what
        /// identifies the nc2zarr run) as a snapshot property; returns the new snapshot,
        /// or the current one when there was nothing to commit.
        pub async fn commit(&self, message: &str, run: &str) -> Result<String, String> {
            let session = self.store.session();
            let mut session = session.write().await;
            if !session.has_uncommitted_changes() {
                self.delete_record(SESSION_KEY).await?;
                return Ok(session.snapshot_id().to_string());
            }
            let properties = [(RUN_PROPERTY.to_string(), serde_json::Value::from(run))].into();
            let id = session
                .commit(message)
                .properties(properties)
                .execute()
                .await
                .map_err(text)?;
            // The saved session is spent (its base is no longer the tip).
            self.delete_record(SESSION_KEY).await?;
            Ok(id.to_string())
        }

        async fn delete_record(&self, key: &str) -> Result<(), String> {
            let (objects, _) = &self.objects;
            match objects.delete(&self.record_path(key)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(crate::store::explain(&e)),
            }
        }

        /// The snapshot at the tip of `main` now.
        pub async fn tip(&self) -> Result<String, String> {
            let id = self.repository.lookup_branch(BRANCH).await.map_err(text)?;
            Ok(id.to_string())
        }

        /// The nc2zarr run that committed the tip of `main` (see [`Repo::commit`]), if one did.
        pub async fn tip_run(&self) -> Result<Option<String>, String> {
            let ancestry = self
                .repository
                .ancestry(&VersionInfo::BranchTipRef(BRANCH.into()))
                .await
                .map_err(text)?;
            let mut ancestry = std::pin::pin!(ancestry);
            let Some(tip) = ancestry.next().await.transpose().map_err(text)? else {
                return Ok(None);
            };
            Ok(tip
                .metadata
                .get(RUN_PROPERTY)
                .and_then(|v| v.as_str())
                .map(String::from))
        }
    }

    fn is_not_found(kind: &StoreErrorKind) -> bool {
        matches!(kind, StoreErrorKind::NotFound(_))
    }

    /// True when the location holds objects other than nc2zarr's records.
    async fn holds_other_objects(store: &Arc<dyn ObjectStore>, prefix: &str) -> Result<bool, String> {
        let found = crate::store::holds_more_than_records(store, prefix).await;
        found.map_err(|e| crate::store::explain(&e))
    }
}
