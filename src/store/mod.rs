//! The target store: a prefix in an `object_store` backend, used from sync code.
//!
//! object_store is async; nc2zarr's workers are rayon threads. [`Target`] owns a small
//! tokio runtime and blocks on it for each call (`Handle::block_on` works from any
//! non-async thread, so `main` stays synchronous). Uploads that should overlap go
//! through [`Uploader`], which keeps at most `--io-concurrency` requests in flight.
//!
//! Keys are `/`-separated and relative to the target prefix; they are passed to
//! object_store verbatim (not percent-encoded) so that other Zarr readers find them.
//!
//! Configuration comes from each backend's environment variables (`AWS_*`,
//! `GOOGLE_*`, `AZURE_*`), then `--endpoint` and `--storage-option key=value`.
//! Retries (5xx, timeouts, connection resets) follow object_store's `RetryConfig`.

use std::path::{Path as FsPath, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey, Checksum};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, RetryConfig};
use tokio::sync::Semaphore;

pub mod icechunk;

use self::icechunk::{Repo, StorageKind};
use crate::error::TargetError;
use crate::secrets::redact;

/// Where a target lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A local directory.
    Local(PathBuf),
    /// A named in-process memory store (`memory://NAME`, for tests).
    Memory(String),
    /// Amazon S3 or an S3-compatible service (`s3://bucket/prefix`).
    S3 {
        /// The full URL.
        url: String,
    },
    /// Google Cloud Storage (`gs://bucket/prefix`).
    Gcs {
        /// The full URL.
        url: String,
    },
    /// Azure Blob Storage (`az://container/prefix`, `abfs://…`).
    Azure {
        /// The full URL.
        url: String,
    },
}

/// Parses a TARGET argument: where it is stored (for `icechunk+TARGET`, where the
/// repository is).
pub fn parse_location(target: &str) -> Result<Location, TargetError> {
    let bad = |message: String| TargetError::BadUrl {
        target: redact(target),
        message,
    };
    let target = icechunk::strip_scheme(target).unwrap_or(target);
    if target.is_empty() {
        return Err(bad("empty target".into()));
    }
    let Some((scheme, rest)) = target.split_once("://") else {
        return Ok(Location::Local(PathBuf::from(target)));
    };
    match scheme {
        "file" => {
            if !rest.starts_with('/') {
                return Err(bad("file:// URLs need an absolute path (file:///data/out.zarr)".into()));
            }
            Ok(Location::Local(PathBuf::from(rest)))
        }
        "memory" => Ok(Location::Memory(rest.to_string())),
        "s3" | "s3a" | "gs" | "az" | "azure" | "abfs" | "abfss" | "adl" => {
            let bucket = rest.split('/').next().unwrap_or("");
            if bucket.is_empty() {
                return Err(bad(format!("{scheme}:// URLs need a bucket or container name")));
            }
            let url = target.to_string();
            Ok(match scheme {
                "s3" | "s3a" => Location::S3 { url },
                "gs" => Location::Gcs { url },
                _ => Location::Azure { url },
            })
        }
        other => Err(bad(format!(
            "unsupported URL scheme '{other}'; use a local path, file://, s3://, gs://, az://, abfs:// or memory://"
        ))),
    }
}

/// The prefix inside the bucket/container of a remote URL (`s3://b/a/b` → `a/b`), as
/// spelled: keys may hold `?` and `#`, which start no query or fragment here.
fn url_prefix(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let path = rest.split_once('/').map_or("", |(_, p)| p);
    path.trim_matches('/').to_string()
}

/// Connection settings for remote targets.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Endpoint URL (S3-compatible services, emulators).
    pub endpoint: Option<String>,
    /// `key=value` settings passed to the backend's builder.
    pub options: Vec<(String, String)>,
    /// Requests in flight at once.
    pub io_concurrency: usize,
    /// Give up retrying a request after this long.
    pub retry_timeout: Duration,
    /// Retries per request.
    pub max_retries: usize,
    /// Timeout of one request.
    pub request_timeout: Duration,
    /// Timeout to connect.
    pub connect_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            endpoint: None,
            options: Vec::new(),
            io_concurrency: usize::from(crate::settings::IO_CONCURRENCY),
            retry_timeout: Duration::from_secs(crate::settings::RETRY_TIMEOUT_SECS),
            max_retries: 8,
            request_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

impl StoreOptions {
    /// Retry settings of requests.
    pub(crate) fn retry(&self) -> RetryConfig {
        RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(5),
                base: 2.0,
            },
            max_retries: self.max_retries,
            retry_timeout: self.retry_timeout,
        }
    }

    /// HTTP client settings of requests.
    pub(crate) fn client(&self) -> ClientOptions {
        ClientOptions::new()
            .with_timeout(self.request_timeout)
            .with_connect_timeout(self.connect_timeout)
    }
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
#[derive(Clone)]
pub struct Target {
    store: Arc<dyn ObjectStore>,
    put_delay: Option<Duration>,
    prefix: String,
    display: String,
    location: Location,
    runtime: Arc<tokio::runtime::Runtime>,
    options: StoreOptions,
    /// The Icechunk repository that holds the Zarr keys of an `icechunk+` target.
    repo: Option<Arc<Repo>>,
    /// Where [`Target::checkpoint`] saves an Icechunk session.
    session_key: String,
}

/// The version of an object as read: what a conditional replace must still find.
#[derive(Debug, Clone)]
pub struct Version {
    e_tag: Option<String>,
    version: Option<String>,
    /// The content read (local directories compare content, having no ETags).
    bytes: Bytes,
}

/// The contents of the file at `path` (`None` when absent), read under a shared `flock`.
fn local_read_locked(path: &FsPath) -> std::io::Result<Option<Vec<u8>>> {
    use std::io::Read;
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    crate::os::lock_shared(&file)?;
    let mut out = Vec::new();
    file.read_to_end(&mut out)?;
    Ok(Some(out))
}

/// Rewrites the file at `path` with `new` if it holds `seen`, under an exclusive
/// `flock`, in place (so that every process locks the same inode).
fn local_replace_if_unchanged(path: &FsPath, seen: &[u8], new: &[u8]) -> std::io::Result<bool> {
    use std::io::{Read, Seek, Write};
    let mut file = match std::fs::OpenOptions::new().read(true).write(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    crate::os::lock_exclusive(&file)?;
    let mut current = Vec::new();
    file.read_to_end(&mut current)?;
    if current != seen {
        return Ok(false);
    }
    file.set_len(0)?;
    file.seek(std::io::SeekFrom::Start(0))?;
    file.write_all(new)?;
    file.sync_data()?;
    Ok(true)
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target").field("target", &self.display).finish()
    }
}

/// The process's runtime for object-store requests.
pub(crate) fn runtime() -> Result<Arc<tokio::runtime::Runtime>, TargetError> {
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

/// In-process memory stores by name, so one test can write and another call read.
fn memory_store(name: &str) -> Arc<dyn ObjectStore> {
    static STORES: Mutex<Vec<(String, Arc<InMemory>)>> = Mutex::new(Vec::new());
    let mut stores = STORES.lock().expect("memory stores");
    if let Some((_, s)) = stores.iter().find(|(n, _)| n == name) {
        return s.clone();
    }
    let s = Arc::new(InMemory::new());
    stores.push((name.to_string(), s.clone()));
    s
}

impl Target {
    /// Opens `target` for reading; a local directory must exist.
    pub fn open_existing(target: &str, options: &StoreOptions) -> Result<Target, TargetError> {
        let location = parse_location(target)?;
        if let Location::Local(dir) = &location
            && !dir.is_dir()
        {
            return Err(TargetError::Invalid {
                target: redact(target),
                message: "no such directory".into(),
            });
        }
        Self::connect(target, location, options, icechunk::Mode::Existing)
    }

    /// Opens `target` for writing, creating a local directory if needed.
    pub fn open_for_write(target: &str, options: &StoreOptions) -> Result<Target, TargetError> {
        let location = parse_location(target)?;
        if let Location::Local(dir) = &location {
            if dir.exists() && !dir.is_dir() {
                return Err(TargetError::Invalid {
                    target: redact(target),
                    message: "exists and is not a directory; choose another target path".into(),
                });
            }
            std::fs::create_dir_all(dir).map_err(|e| TargetError::Invalid {
                target: redact(target),
                message: format!("cannot create the directory: {e}"),
            })?;
        }
        Self::connect(target, location, options, icechunk::Mode::CreateIfAbsent)
    }

    /// True when a local target path does not exist yet.
    pub fn is_absent(target: &str) -> bool {
        matches!(parse_location(target), Ok(Location::Local(dir)) if !dir.exists())
    }

    fn connect(
        target: &str,
        location: Location,
        options: &StoreOptions,
        mode: icechunk::Mode,
    ) -> Result<Target, TargetError> {
        let build_err = |e: object_store::Error| TargetError::Invalid {
            target: redact(target),
            message: format!("cannot configure the store: {}", redact(&e.to_string())),
        };
        let option_err = |k: &str| TargetError::BadUrl {
            target: redact(target),
            message: format!("unknown --storage-option key '{k}' for this kind of store"),
        };
        let (store, prefix): (Arc<dyn ObjectStore>, String) = match &location {
            Location::Local(dir) => {
                let fs = LocalFileSystem::new_with_prefix(dir).map_err(build_err)?;
                (Arc::new(fs), String::new())
            }
            Location::Memory(name) => (memory_store(name), String::new()),
            Location::S3 { url } => {
                check_s3_credentials(target, options)?;
                let mut b = AmazonS3Builder::from_env()
                    .with_url(url)
                    .with_checksum_algorithm(Checksum::SHA256)
                    .with_retry(options.retry())
                    .with_client_options(options.client());
                // `with_client_options` replaced what `from_env` read for the HTTP client:
                // honour AWS_ALLOW_HTTP again, and an http:// endpoint from the environment
                // as --endpoint's is honoured.
                let env_true = |k: &str| std::env::var(k).is_ok_and(|v| matches!(v.trim(), "true" | "1" | "yes"));
                if env_true("AWS_ALLOW_HTTP") {
                    b = b.with_allow_http(true);
                }
                if let Some(e) = std::env::var("AWS_ENDPOINT_URL")
                    .ok()
                    .or_else(|| std::env::var("AWS_ENDPOINT").ok())
                    .filter(|e| !e.trim().is_empty())
                {
                    let http = e.starts_with("http://");
                    b = b.with_endpoint(e);
                    if http {
                        b = b.with_allow_http(true);
                    }
                }
                if let Some(e) = &options.endpoint {
                    b = b.with_endpoint(e).with_allow_http(e.starts_with("http://"));
                }
                if std::env::var("AWS_REGION").is_err() && std::env::var("AWS_DEFAULT_REGION").is_err() {
                    b = b.with_region("us-east-1");
                }
                for (k, v) in &options.options {
                    let key: AmazonS3ConfigKey = k.parse().map_err(|_| option_err(k))?;
                    b = b.with_config(key, v);
                }
                (Arc::new(b.build().map_err(build_err)?), url_prefix(url))
            }
            Location::Gcs { url } => {
                let mut b = GoogleCloudStorageBuilder::from_env()
                    .with_url(url)
                    .with_retry(options.retry())
                    .with_client_options(options.client());
                for (k, v) in &options.options {
                    let key: GoogleConfigKey = k.parse().map_err(|_| option_err(k))?;
                    b = b.with_config(key, v);
                }
                (Arc::new(b.build().map_err(build_err)?), url_prefix(url))
            }
            Location::Azure { url } => {
                let mut b = MicrosoftAzureBuilder::from_env()
                    .with_url(url)
                    .with_retry(options.retry())
                    .with_client_options(options.client());
                if std::env::var_os("AZURITE").is_some() {
                    b = b.with_use_emulator(true);
                }
                if let Some(e) = &options.endpoint {
                    b = b.with_endpoint(e.clone()).with_allow_http(e.starts_with("http://"));
                }
                for (k, v) in &options.options {
                    let key: AzureConfigKey = k.parse().map_err(|_| option_err(k))?;
                    b = b.with_config(key, v);
                }
                (Arc::new(b.build().map_err(build_err)?), url_prefix(url))
            }
        };
        let put_delay = crate::settings::test_put_delay();
        let runtime = runtime()?;
        let repo = match icechunk::strip_scheme(target) {
            None => None,
            Some(_) => {
                let kind = match &location {
                    Location::Local(_) => StorageKind::Local,
                    Location::Memory(_) => StorageKind::Memory,
                    _ => StorageKind::Cloud,
                };
                // The same location has the same name in every process (a saved session
                // names its store by it).
                let name = match &location {
                    Location::Local(dir) => std::fs::canonicalize(dir).unwrap_or(dir.clone()).display().to_string(),
                    _ => redact(icechunk::strip_scheme(target).unwrap_or(target)),
                };
                let opened = runtime.block_on(Repo::open(store.clone(), &name, &prefix, kind, mode));
                Some(Arc::new(opened.map_err(|message| TargetError::Invalid {
                    target: redact(target),
                    message,
                })?))
            }
        };
        Ok(Target {
            store,
            put_delay,
            prefix,
            display: redact(target),
            location,
            runtime,
            options: options.clone(),
            repo,
            session_key: icechunk::SESSION_KEY.to_string(),
        })
    }

    /// True for an Icechunk target: nothing it writes is visible before [`Target::commit`].
    pub fn is_transactional(&self) -> bool {
        self.repo.is_some()
    }

    /// The repository that holds `key`, when it is a Zarr key of an Icechunk target
    /// (nc2zarr's own records, under `.nc2zarr/`, live beside the repository).
    fn repo_for(&self, key: &str) -> Option<&Repo> {
        let own = key == crate::manifest::PREFIX || key.starts_with(".nc2zarr/");
        self.repo.as_deref().filter(|_| !own)
    }

    fn repo_err(&self, operation: &'static str, key: &str, message: String) -> TargetError {
        TargetError::Store {
            target: self.display.clone(),
            operation,
            key: key.to_string(),
            message,
        }
    }

    /// Makes what was written visible: for an Icechunk target, commits the session to
    /// `main` with `message`, recording `run` (the in-progress marker's fingerprints), and
    /// returns the snapshot (the current one when nothing changed); `None` for a plain
    /// target, whose writes are visible as they land.
    pub fn commit(&self, message: &str, run: &str) -> Result<Option<String>, TargetError> {
        let Some(repo) = &self.repo else { return Ok(None) };
        let id = self.runtime.block_on(repo.commit(message, run));
        id.map(Some).map_err(|m| self.repo_err("commit", "(session)", m))
    }

    /// Saves an Icechunk target's session beside the repository, so that a re-run after a
    /// crash resumes it (a no-op for a plain target, whose objects are there as written).
    /// Called before each journal segment: every object a journal lists is in the saved
    /// session.
    pub fn checkpoint(&self) -> Result<(), TargetError> {
        let Some(repo) = &self.repo else { return Ok(()) };
        let saved = self.runtime.block_on(repo.save(&self.session_key));
        saved.map_err(|m| self.repo_err("write", &self.session_key, m))
    }

    /// This target, saving its Icechunk session as `key` (each task of a split run has
    /// its own) instead of `.nc2zarr/session.bin`. It shares the session itself with
    /// `self`: taking one up through either replaces it for both.
    pub fn with_session_key(&self, key: &str) -> Target {
        Target {
            session_key: key.to_string(),
            ..self.clone()
        }
    }

    /// Takes up the session an interrupted run saved on an Icechunk target, if it still
    /// applies (see [`Target::checkpoint`]); returns whether it did. Plain targets: false.
    pub fn resume_session(&self) -> Result<bool, TargetError> {
        let Some(repo) = &self.repo else { return Ok(false) };
        let resumed = self.runtime.block_on(repo.resume(&self.session_key));
        resumed.map_err(|m| self.repo_err("read", &self.session_key, m))
    }

    /// Forks an Icechunk target's session for the tasks of a split run, saved as `key`
    /// (a no-op for a plain target).
    pub fn fork_session(&self, key: &str) -> Result<(), TargetError> {
        let Some(repo) = &self.repo else { return Ok(()) };
        let done = self.runtime.block_on(repo.fork(key));
        done.map_err(|m| self.repo_err("write", key, m))
    }

    /// Takes up the session saved as `key` (a task, its run's fork); a no-op for a plain
    /// target.
    pub fn adopt_session(&self, key: &str) -> Result<(), TargetError> {
        let Some(repo) = &self.repo else { return Ok(()) };
        let done = self.runtime.block_on(repo.adopt(key));
        done.map_err(|m| self.repo_err("read", key, m))
    }

    /// Merges the changes of the session saved as `key` (a task's) into this target's;
    /// a no-op for a plain target.
    pub fn merge_session(&self, key: &str) -> Result<(), TargetError> {
        let Some(repo) = &self.repo else { return Ok(()) };
        let done = self.runtime.block_on(repo.merge(key));
        done.map_err(|m| self.repo_err("merge", key, m))
    }

    /// The snapshot at the tip of `main` of an Icechunk target; `None` for a plain one.
    pub fn snapshot(&self) -> Result<Option<String>, TargetError> {
        let Some(repo) = &self.repo else { return Ok(None) };
        let id = self.runtime.block_on(repo.tip());
        id.map(Some).map_err(|m| self.repo_err("read", "(branch main)", m))
    }

    /// True when the tip of `main` of an Icechunk target was committed by `run`: the
    /// run it names finished its commit (and was stopped, if at all, after it).
    /// Always false for a plain target.
    pub fn committed_by(&self, run: &str) -> Result<bool, TargetError> {
        let Some(repo) = &self.repo else { return Ok(false) };
        let found = self.runtime.block_on(repo.tip_run());
        Ok(found
            .map_err(|m| self.repo_err("read", "(history of main)", m))?
            .as_deref()
            == Some(run))
    }

    /// The underlying object store and the prefix of the target in it.
    pub(crate) fn object_store(&self) -> (Arc<dyn ObjectStore>, &str) {
        (self.store.clone(), &self.prefix)
    }

    /// The directory of a local target.
    pub fn local_dir(&self) -> Option<&FsPath> {
        match &self.location {
            Location::Local(dir) => Some(dir),
            _ => None,
        }
    }

    /// The target as shown to users (credentials redacted).
    pub fn display(&self) -> &str {
        &self.display
    }

    /// Requests in flight at once for [`Uploader`].
    pub fn io_concurrency(&self) -> usize {
        self.options.io_concurrency.max(1)
    }

    fn path(&self, key: &str) -> Result<Path, TargetError> {
        let full = if self.prefix.is_empty() {
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

    fn err(&self, operation: &'static str, key: &str, e: &object_store::Error) -> TargetError {
        TargetError::Store {
            target: self.display.clone(),
            operation,
            key: key.to_string(),
            message: explain(e),
        }
    }

    /// Stores `bytes` at `key`, replacing what is there.
    pub fn put(&self, key: &str, bytes: Bytes) -> Result<(), TargetError> {
        let path = self.path(key)?;
        self.runtime.block_on(self.put_async(key, &path, bytes))
    }

    async fn put_async(&self, key: &str, path: &Path, bytes: Bytes) -> Result<(), TargetError> {
        if let Some(delay) = self.put_delay {
            tokio::time::sleep(delay).await;
        }
        if let Some(repo) = self.repo_for(key) {
            return repo.set(key, bytes).await.map_err(|m| self.repo_err("write", key, m));
        }
        let stored = self.store.put(path, bytes.into()).await;
        stored.map(|_| ()).map_err(|e| self.err("write", key, &e))
    }

    /// Stores `bytes` at `key` only if nothing is there (O_EXCL locally, If-None-Match
    /// on object stores); returns whether it did.
    pub fn create_exclusive(&self, key: &str, bytes: Bytes) -> Result<bool, TargetError> {
        let path = self.path(key)?;
        let opts = object_store::PutOptions {
            mode: object_store::PutMode::Create,
            ..Default::default()
        };
        match self.runtime.block_on(self.store.put_opts(&path, bytes.into(), opts)) {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }) => Ok(false),
            Err(e) => Err(self.err("create", key, &e)),
        }
    }

    /// Reads `key` with the version it has now; `None` when it does not exist. Pass the
    /// version to [`Target::replace_if_unchanged`] to change it only if nobody else has.
    pub fn get_versioned(&self, key: &str) -> Result<Option<(Bytes, Version)>, TargetError> {
        if let Location::Local(dir) = &self.location {
            // Read under a shared flock: `replace_if_unchanged` rewrites the file in
            // place under an exclusive one, and a reader must not see it half written.
            let found = local_read_locked(&dir.join(key)).map_err(|e| TargetError::Store {
                target: self.display.clone(),
                operation: "read",
                key: key.to_string(),
                message: e.to_string(),
            })?;
            return Ok(found.map(|bytes| {
                let bytes = Bytes::from(bytes);
                let v = Version {
                    e_tag: None,
                    version: None,
                    bytes: bytes.clone(),
                };
                (bytes, v)
            }));
        }
        let path = self.path(key)?;
        let result = self.runtime.block_on(async {
            match self.store.get(&path).await {
                Ok(r) => {
                    let (e_tag, version) = (r.meta.e_tag.clone(), r.meta.version.clone());
                    r.bytes().await.map(|b| Some((b, e_tag, version)))
                }
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        });
        let found = result.map_err(|e| self.err("read", key, &e))?;
        Ok(found.map(|(bytes, e_tag, version)| {
            let v = Version {
                e_tag,
                version,
                bytes: bytes.clone(),
            };
            (bytes, v)
        }))
    }

    /// Replaces `key` with `bytes` only if it still is as `seen` (an If-Match put on
    /// object stores; on a local directory, a compare and rewrite under an exclusive
    /// `flock` of the file). Returns whether it replaced it. Two jobs that both saw the
    /// same version cannot both succeed.
    pub fn replace_if_unchanged(&self, key: &str, seen: &Version, bytes: Bytes) -> Result<bool, TargetError> {
        if let Location::Local(dir) = &self.location {
            return local_replace_if_unchanged(&dir.join(key), &seen.bytes, &bytes).map_err(|e| TargetError::Store {
                target: self.display.clone(),
                operation: "replace",
                key: key.to_string(),
                message: e.to_string(),
            });
        }
        let path = self.path(key)?;
        let opts = object_store::PutOptions {
            mode: object_store::PutMode::Update(object_store::UpdateVersion {
                e_tag: seen.e_tag.clone(),
                version: seen.version.clone(),
            }),
            ..Default::default()
        };
        match self.runtime.block_on(self.store.put_opts(&path, bytes.into(), opts)) {
            Ok(_) => Ok(true),
            Err(object_store::Error::Precondition { .. } | object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.err("replace", key, &e)),
        }
    }

    /// Reads `key`; `None` when it does not exist.
    pub fn get(&self, key: &str) -> Result<Option<Bytes>, TargetError> {
        if let Some(repo) = self.repo_for(key) {
            let found = self.runtime.block_on(repo.get(key));
            return found.map_err(|m| self.repo_err("read", key, m));
        }
        let path = self.path(key)?;
        let result = self.runtime.block_on(async {
            match self.store.get(&path).await {
                Ok(r) => r.bytes().await.map(Some),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        });
        result.map_err(|e| self.err("read", key, &e))
    }

    /// Deletes `key` (no error when it is absent).
    pub fn delete(&self, key: &str) -> Result<(), TargetError> {
        if let Some(repo) = self.repo_for(key) {
            let done = self.runtime.block_on(repo.delete(key));
            return done.map_err(|m| self.repo_err("delete", key, m));
        }
        let path = self.path(key)?;
        match self.runtime.block_on(self.store.delete(&path)) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.err("delete", key, &e)),
        }
    }

    /// Every key under `prefix` (relative to the target), with sizes.
    pub fn list(&self, prefix: &str) -> Result<Vec<Listed>, TargetError> {
        let Some(repo) = &self.repo else {
            return self.list_objects(prefix);
        };
        // An Icechunk target: the repository's Zarr keys and nc2zarr's records beside it
        // (never the repository's own objects).
        let mut listed = Vec::new();
        if self.repo_for(prefix).is_some() {
            let keys = self.runtime.block_on(repo.list(prefix));
            let keys = keys.map_err(|m| self.repo_err("list", if prefix.is_empty() { "(all)" } else { prefix }, m))?;
            listed.extend(keys.into_iter().map(|(key, size)| Listed { key, size }));
        }
        let own = if prefix.is_empty() {
            crate::manifest::PREFIX
        } else {
            prefix
        };
        if own.starts_with(crate::manifest::PREFIX) {
            listed.extend(self.list_objects(own)?);
        }
        Ok(listed)
    }

    /// Every object under `prefix` in the underlying store, with sizes.
    fn list_objects(&self, prefix: &str) -> Result<Vec<Listed>, TargetError> {
        let base = match (prefix.is_empty(), self.prefix.is_empty()) {
            (false, _) => Some(self.path(prefix)?),
            (true, true) => None,
            (true, false) => Some(Path::parse(&self.prefix).map_err(|e| TargetError::BadUrl {
                target: self.display.clone(),
                message: format!("bad prefix: {e}"),
            })?),
        };
        let strip = self.prefix.len();
        let listed = self.runtime.block_on(async {
            let mut out = Vec::new();
            let mut stream = self.store.list(base.as_ref());
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
        listed.map_err(|e| self.err("list", if prefix.is_empty() { "(all)" } else { prefix }, &e))
    }

    /// True when the underlying store holds anything under the target's prefix other
    /// than nc2zarr's records (`.nc2zarr/…`); stops listing at the first such object.
    pub fn holds_more_than_records(&self) -> Result<bool, TargetError> {
        let found = self
            .runtime
            .block_on(holds_more_than_records(&self.store, &self.prefix));
        found.map_err(|e| self.err("list", "(all)", &e))
    }

    /// True when nothing is stored under the target.
    pub fn is_empty(&self) -> Result<bool, TargetError> {
        Ok(self.list("")?.is_empty())
    }

    /// Deletes everything under the target prefix; returns how many objects went.
    pub fn delete_all(&self) -> Result<usize, TargetError> {
        self.delete_all_except(&[])
    }

    /// Deletes everything under the target prefix but `keep`; returns how many went.
    /// For an Icechunk target, the repository's nodes are deleted in the session (the
    /// next commit records it; earlier snapshots keep them).
    pub fn delete_all_except(&self, keep: &[&str]) -> Result<usize, TargetError> {
        if let Some(repo) = &self.repo {
            // The manifest describes the branch until a commit replaces it: it stays.
            let keep = [keep, &[crate::manifest::MANIFEST_KEY]].concat();
            let nodes = self.runtime.block_on(repo.list(""));
            let nodes = nodes.map_err(|m| self.repo_err("list", "(all)", m))?.len();
            let cleared = self.runtime.block_on(repo.clear());
            cleared.map_err(|m| self.repo_err("delete", "(all)", m))?;
            let own: Vec<Listed> = self.list_objects(crate::manifest::PREFIX)?;
            let own: Vec<&Listed> = own.iter().filter(|l| !keep.contains(&l.key.as_str())).collect();
            for l in &own {
                self.delete(&l.key)?;
            }
            return Ok(nodes + own.len());
        }
        let keys: Vec<Listed> = self
            .list("")?
            .into_iter()
            .filter(|l| !keep.contains(&l.key.as_str()))
            .collect();
        let paths: Vec<Path> = keys.iter().map(|k| self.path(&k.key)).collect::<Result<_, _>>()?;
        let concurrency = self.io_concurrency();
        let result = self.runtime.block_on(async {
            futures::stream::iter(paths)
                .map(|p| {
                    let store = self.store.clone();
                    async move {
                        match store.delete(&p).await {
                            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                            Err(e) => Err(e),
                        }
                    }
                })
                .buffer_unordered(concurrency)
                .collect::<Vec<_>>()
                .await
                .into_iter()
                .collect::<Result<Vec<()>, _>>()
        });
        result.map_err(|e| self.err("delete", "(all)", &e))?;
        if let Location::Local(dir) = &self.location {
            remove_empty_dirs(dir);
        }
        Ok(keys.len())
    }
}

/// True when `store` holds anything under `prefix` other than nc2zarr's records
/// (`.nc2zarr/…`); stops listing at the first such object.
pub(crate) async fn holds_more_than_records(store: &Arc<dyn ObjectStore>, prefix: &str) -> object_store::Result<bool> {
    // The prefix as spelled (`Path::from` would percent-encode `~`, `%`, … into another one).
    let base = match prefix {
        "" => None,
        p => Some(Path::parse(p)?),
    };
    let mut stream = store.list(base.as_ref());
    while let Some(item) = stream.next().await {
        let meta = item?;
        let key = meta.location.as_ref()[prefix.len()..].trim_start_matches('/');
        if !key.starts_with(".nc2zarr/") {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Fails fast when no S3 credentials are configured and instance metadata is off
/// (`AWS_EC2_METADATA_DISABLED=true`), instead of trying to reach the metadata service.
fn check_s3_credentials(target: &str, options: &StoreOptions) -> Result<(), TargetError> {
    let env = |k: &str| std::env::var_os(k).is_some_and(|v| !v.is_empty());
    let has_keys = (env("AWS_ACCESS_KEY_ID") && env("AWS_SECRET_ACCESS_KEY"))
        || options.options.iter().any(|(k, _)| k.contains("secret_access_key"))
        || env("AWS_WEB_IDENTITY_TOKEN_FILE")
        || env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
        || env("AWS_CONTAINER_CREDENTIALS_FULL_URI")
        || options
            .options
            .iter()
            .any(|(k, v)| k.contains("skip_signature") && v == "true");
    let metadata_off = std::env::var("AWS_EC2_METADATA_DISABLED").is_ok_and(|v| v.eq_ignore_ascii_case("true"));
    if !has_keys && metadata_off {
        return Err(TargetError::Invalid {
            target: redact(target),
            message: "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or --storage-option aws_skip_signature=true for public buckets)".into(),
        });
    }
    Ok(())
}

/// Uploads with at most `io_concurrency` requests in flight. `submit` blocks the
/// calling (rayon) thread only while all slots are busy; results arrive through the
/// callback on the I/O runtime.
pub struct Uploader {
    target: Target,
    slots: Arc<Semaphore>,
    capacity: u32,
}

impl Uploader {
    /// An uploader for `target` with its configured concurrency.
    pub fn new(target: &Target) -> Uploader {
        Self::with_concurrency(target, target.io_concurrency())
    }

    /// An uploader for `target` with `concurrency` requests in flight.
    pub fn with_concurrency(target: &Target, concurrency: usize) -> Uploader {
        let capacity = concurrency.max(1) as u32;
        Uploader {
            target: target.clone(),
            slots: Arc::new(Semaphore::new(capacity as usize)),
            capacity,
        }
    }

    /// Starts uploading `bytes` to `key`; `done` is called with the outcome.
    pub fn submit<F>(&self, key: String, bytes: Bytes, done: F) -> Result<(), TargetError>
    where
        F: FnOnce(Result<(), TargetError>) + Send + 'static,
    {
        let path = self.target.path(&key)?;
        let permit = self
            .target
            .runtime
            .block_on(self.slots.clone().acquire_owned())
            .expect("semaphore is never closed");
        let target = self.target.clone();
        self.target.runtime.spawn(async move {
            let result = target.put_async(&key, &path, bytes).await;
            // Report before freeing the slot, so `wait` returns only after every callback.
            done(result);
            drop(permit);
        });
        Ok(())
    }

    /// Waits until every submitted upload has finished.
    pub fn wait(&self) {
        let all = self
            .target
            .runtime
            .block_on(self.slots.acquire_many(self.capacity))
            .expect("semaphore is never closed");
        drop(all);
    }
}

/// Says what an object-store error means for the user, on one line, credentials redacted.
pub fn explain(e: &object_store::Error) -> String {
    let text = redact(&e.to_string());
    let lower = text.to_ascii_lowercase();
    let hint = if lower.contains("169.254.169.254") {
        "no credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (instance-metadata credentials are not available here)"
    } else if lower.contains("nosuchbucket")
        || lower.contains("containernotfound")
        || lower.contains("bucket does not exist")
    {
        "the bucket/container does not exist: create it first"
    } else if [
        "invalidaccesskeyid",
        "signaturedoesnotmatch",
        "accessdenied",
        "authorizationfailure",
        "authenticationfailed",
        "403 forbidden",
        "401 unauthorized",
    ]
    .iter()
    .any(|m| lower.contains(m))
    {
        "the credentials were rejected: check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AZURE_STORAGE_ACCOUNT_NAME/KEY or GOOGLE_APPLICATION_CREDENTIALS"
    } else if [
        "connection refused",
        "error sending request",
        "timed out",
        "dns error",
        "tcp connect",
    ]
    .iter()
    .any(|m| lower.contains(m))
    {
        "the endpoint cannot be reached: check the URL, --endpoint and the network"
    } else if lower.contains("after ") && lower.contains(" retries") {
        "the store kept failing through every retry: check its health (or raise --retry-timeout), then run the same command again to resume"
    } else {
        ""
    };
    // Servers answer with XML bodies; keep their code and message, on one line.
    let mut summary = match (xml_field(&text, "Code"), xml_field(&text, "Message")) {
        (Some(code), message) => {
            let head = text.split('<').next().unwrap_or("").trim_end_matches([':', ' ']);
            format!(
                "{head}: {code}{}",
                message.map(|m| format!(" ({m})")).unwrap_or_default()
            )
        }
        (None, _) => text.clone(),
    };
    summary = summary.split_whitespace().collect::<Vec<_>>().join(" ");
    if hint.is_empty() {
        summary
    } else {
        format!("{hint} ({summary})")
    }
}

fn xml_field(text: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = text.find(&open)? + open.len();
    let end = text[start..].find(&format!("</{tag}>"))? + start;
    Some(text[start..end].lines().next().unwrap_or("").trim().to_string())
}

/// True for backend options that carry credentials: they must not be written to a file
/// (batch scripts, a split run's job).
pub fn is_secret_option(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["secret", "token", "password", "sas"].iter().any(|w| k.contains(w)) || k.ends_with("_key") || k == "key"
}

/// Removes empty sub-directories left after deleting files (keeps `dir` itself).
fn remove_empty_dirs(dir: &FsPath) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
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
    let refuse = |message: &str| {
        Err(TargetError::Invalid {
            target: redact(target),
            message: message.into(),
        })
    };
    match parse_location(target)? {
        Location::Local(dir) => {
            let canonical = dir.canonicalize().unwrap_or(dir.clone());
            let home = std::env::var_os("HOME").map(PathBuf::from);
            if canonical.parent().is_none() || Some(&canonical) == home.as_ref() {
                return refuse("refusing to overwrite a filesystem root or the home directory");
            }
        }
        Location::S3 { url } | Location::Gcs { url } | Location::Azure { url } => {
            if url_prefix(&url).is_empty() {
                return refuse("refusing to overwrite a whole bucket or container; give a prefix (s3://bucket/path)");
            }
        }
        Location::Memory(_) => {}
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
        assert_eq!(parse_location("memory://t1").unwrap(), Location::Memory("t1".into()));
        assert!(matches!(parse_location("s3://b/p").unwrap(), Location::S3 { .. }));
        assert!(matches!(parse_location("gs://b/p").unwrap(), Location::Gcs { .. }));
        assert!(matches!(parse_location("abfs://c/p").unwrap(), Location::Azure { .. }));
        let e = parse_location("ftp://host/x").unwrap_err().to_string();
        assert!(e.contains("unsupported URL scheme 'ftp'"), "{e}");
        assert!(parse_location("file://relative").is_err());
        assert!(parse_location("s3:///x").unwrap_err().to_string().contains("bucket"));
        assert_eq!(url_prefix("s3://bucket/a/b/"), "a/b");
        assert_eq!(url_prefix("s3://bucket"), "");
        assert_eq!(url_prefix("s3://bucket/run#1/a?b/"), "run#1/a?b");
    }

    #[test]
    fn a_lock_rewritten_in_place_is_never_read_half_written() {
        let dir = tempfile::tempdir().unwrap();
        let t = Target::open_for_write(dir.path().to_str().unwrap(), &StoreOptions::default()).unwrap();
        let (a, b) = (Bytes::from(vec![b'a'; 64 << 10]), Bytes::from(vec![b'b'; 64 << 10]));
        t.put("lock.json", a.clone()).unwrap();
        let stop = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|scope| {
            scope.spawn(|| {
                let mut current = a.clone();
                for _ in 0..300 {
                    let (_, seen) = t.get_versioned("lock.json").unwrap().unwrap();
                    let next = if current == a { b.clone() } else { a.clone() };
                    assert!(t.replace_if_unchanged("lock.json", &seen, next.clone()).unwrap());
                    current = next;
                }
                stop.store(true, std::sync::atomic::Ordering::SeqCst);
            });
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let (got, _) = t.get_versioned("lock.json").unwrap().unwrap();
                assert!(got == a || got == b, "read {} bytes of a half-written file", got.len());
            }
        });
    }

    #[test]
    fn put_get_list_delete_with_odd_names() {
        let dir = tempfile::tempdir().unwrap();
        let t = Target::open_for_write(dir.path().to_str().unwrap(), &StoreOptions::default()).unwrap();
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
    fn uploader_finishes_every_submission() {
        let t = Target::open_for_write(
            "memory://uploader",
            &StoreOptions {
                io_concurrency: 3,
                ..Default::default()
            },
        )
        .unwrap();
        let up = Uploader::new(&t);
        let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        for i in 0..20 {
            let done = done.clone();
            up.submit(format!("k/{i}"), Bytes::from(vec![i as u8; 10]), move |r| {
                r.unwrap();
                done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            })
            .unwrap();
        }
        up.wait();
        assert_eq!(done.load(std::sync::atomic::Ordering::SeqCst), 20);
        assert_eq!(t.list("k").unwrap().len(), 20);
    }

    #[test]
    fn refuses_root_home_and_bucket_roots() {
        assert!(check_overwrite_allowed("/").is_err());
        if let Some(home) = std::env::var_os("HOME") {
            assert!(check_overwrite_allowed(home.to_str().unwrap()).is_err());
        }
        assert!(check_overwrite_allowed("s3://bucket").is_err());
        assert!(check_overwrite_allowed("s3://bucket/out.zarr").is_ok());
        assert!(check_overwrite_allowed("/tmp/some/out.zarr").is_ok());
    }
}
