//! Remote inputs: NetCDF files in object stores (`s3://`, `gs://`, `az://`) and on HTTP
//! servers (`http(s)://`), staged on local disk before they are read.
//!
//! Inputs are listed first (a glob needs a listing; an explicit URL a HEAD), which gives
//! each file's size and ETag without reading it, so `append` recognises files it has
//! converted without downloading them. New files are then downloaded with concurrent
//! ranged GETs, each conditional on the ETag seen at listing (`If-Match`): a file replaced
//! during the run is an error, not a mix of two versions. The staged copies live in a
//! temporary directory (under `--temp-dir`, or the system's) that is removed when the run
//! ends, and nothing is staged unless that disk has room for all of it.

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use object_store::{GetOptions, ObjectStore, ObjectStoreExt, path::Path as ObjectPath};

use crate::error::InputError;
use crate::secrets::redact;
use crate::settings::NETCDF_EXTENSIONS;
use crate::store::{StoreOptions, Target};

/// Bytes per ranged GET.
const PART_BYTES: u64 = 8 << 20;

/// One remote input as listed: its URL, size and ETag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteFile {
    /// The URL, as `scheme://bucket/key` or `https://host/path`.
    pub url: String,
    /// Size in bytes.
    pub size: u64,
    /// The version seen when listed; downloads require it still.
    pub etag: Option<String>,
}

/// True when `arg` names a remote input.
pub fn is_remote(arg: &str) -> bool {
    [
        "s3://", "gs://", "az://", "azure://", "abfs://", "abfss://", "http://", "https://",
    ]
    .iter()
    .any(|p| arg.starts_with(p))
}

/// A store that holds inputs, and the object prefix under it.
struct Source {
    store: Arc<dyn ObjectStore>,
    prefix: String,
    base: String,
}

impl Source {
    fn open(base: &str, options: &StoreOptions) -> Result<Source, InputError> {
        let unreachable = |message: String| InputError::Unreadable {
            path: PathBuf::from(redact(base)),
            message,
        };
        if base.starts_with("http://") || base.starts_with("https://") {
            let store = object_store::http::HttpBuilder::new()
                .with_url(base)
                .with_client_options(options.client().with_allow_http(base.starts_with("http://")))
                .with_retry(options.retry())
                .build()
                .map_err(|e| unreachable(format!("cannot reach the server: {}", redact(&e.to_string()))))?;
            return Ok(Source {
                store: Arc::new(store),
                prefix: String::new(),
                base: base.to_string(),
            });
        }
        let target = Target::open_existing(base, options).map_err(|e| unreachable(e.to_string()))?;
        let (store, prefix) = target.object_store();
        Ok(Source {
            store,
            prefix: prefix.to_string(),
            base: base.to_string(),
        })
    }

    /// The source at `base` from `opened`, opened and kept there on first use.
    fn shared(
        opened: &mut HashMap<String, Arc<Source>>,
        base: String,
        options: &StoreOptions,
    ) -> Result<Arc<Source>, InputError> {
        if let Some(s) = opened.get(&base) {
            return Ok(s.clone());
        }
        let s = Arc::new(Source::open(&base, options)?);
        opened.insert(base, s.clone());
        Ok(s)
    }

    /// The object `name` (under the prefix) names, its key spelled as given: `Path::from`
    /// would percent-encode characters keys may hold (`%`, `~`, `#`, …) into another key.
    /// An HTTP URL is percent-encoded, so its name is decoded first.
    fn path(&self, name: &str) -> Result<ObjectPath, InputError> {
        let name = if is_http(&self.base) {
            percent_encoding::percent_decode_str(name).decode_utf8_lossy()
        } else {
            name.into()
        };
        let key = if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}/{name}", self.prefix.trim_end_matches('/'))
        };
        ObjectPath::parse(&key).map_err(|e| InputError::Unreadable {
            path: PathBuf::from(redact(&self.url(&name))),
            message: format!("not an object name: {e}"),
        })
    }

    fn url(&self, name: &str) -> String {
        format!("{}/{name}", self.base.trim_end_matches('/'))
    }
}

/// True for an HTTP URL with a query (a presigned URL carries its signature there): it
/// names one file, its `?` is no glob, and its server may answer GET only.
fn is_signed_http(url: &str) -> bool {
    is_http(url) && url.contains('?')
}

/// Query parameters that sign a URL or grant access wherever they appear (bearer tokens,
/// S3 query authentication, GCS signed URLs); compared lowercased. `X-Amz-*` and
/// `X-Goog-*` ones too.
const SIGNING_PARAMETERS: &[&str] = &[
    "awsaccesskeyid",
    "googleaccessid",
    "signature",
    "sig",
    "token",
    "access_token",
];

/// The other fields of an Azure SAS: signing only beside its `sig`.
const AZURE_SAS_FIELDS: &[&str] = &[
    "se", "sp", "sv", "sr", "st", "ss", "srt", "si", "spr", "sdd", "skoid", "sktid", "skt", "ske", "sks", "skv",
    "saoid", "suoid", "scid", "ses",
];

/// The other fields of a CloudFront signed URL: signing only beside its `Signature`.
const CLOUDFRONT_FIELDS: &[&str] = &["expires", "policy", "key-pair-id"];

/// Which of the query `parameters` (names, lowercased) sign their URL: those of
/// [`SIGNING_PARAMETERS`], and an Azure SAS's or a CloudFront signature's other fields
/// only beside the signature they go with (alone, `st=` or `policy=` may name a file).
fn signing_parameters(parameters: &[String]) -> Vec<bool> {
    let has = |n: &str| parameters.iter().any(|p| p == n);
    let (azure, cloudfront) = (has("sig"), has("signature"));
    parameters
        .iter()
        .map(|n| {
            n.starts_with("x-amz-")
                || n.starts_with("x-goog-")
                || SIGNING_PARAMETERS.contains(&n.as_str())
                || (azure && AZURE_SAS_FIELDS.contains(&n.as_str()))
                || (cloudfront && CLOUDFRONT_FIELDS.contains(&n.as_str()))
        })
        .collect()
}

/// How the manifest names the remote input `url`, to tell inputs apart on a later
/// `append`: without credentials (a `user:password@` part, a signing query), so a URL
/// signed again names the same file; a query that says which file a server sends
/// (`download?file=a.nc`) is kept, as a digest of its parameters in order, since it may
/// carry secrets this list does not know.
pub fn identity(url: &str) -> String {
    let shown = crate::secrets::without_secrets(url);
    let Some((_, query)) = url.split_once('?').filter(|_| is_http(url)) else {
        return shown;
    };
    let pairs: Vec<&str> = query.split('&').filter(|p| !p.is_empty()).collect();
    let names: Vec<String> = pairs
        .iter()
        .map(|p| p.split('=').next().unwrap_or(p).to_ascii_lowercase())
        .collect();
    let naming: Vec<&str> = pairs
        .into_iter()
        .zip(signing_parameters(&names))
        .filter(|(_, signing)| !signing)
        .map(|(p, _)| p)
        .collect();
    if naming.is_empty() {
        return shown;
    }
    let mut sorted = naming;
    sorted.sort_unstable();
    let digest = blake3::hash(sorted.join("&").as_bytes()).to_hex();
    format!("{shown} query {}", &digest[..16])
}

/// Splits `url` into the store to open and what to find there: a glob pattern, or one
/// object's name (empty for an HTTP URL with a query, which is opened whole).
fn split(url: &str) -> (String, String) {
    if is_signed_http(url) {
        return (url.to_string(), String::new());
    }
    let scheme_end = url.find("://").map_or(0, |i| i + 3);
    // The bucket (or host) always belongs to the store.
    let bucket_end = url[scheme_end..].find('/').map_or(url.len(), |i| i + scheme_end);
    let glob_at = url[scheme_end..].find(['*', '?', '[']).map(|i| i + scheme_end);
    let cut = match glob_at {
        Some(g) => url[..g].rfind('/').unwrap_or(scheme_end),
        None => url.rfind('/').unwrap_or(scheme_end),
    }
    .max(bucket_end);
    (url[..cut].to_string(), url[cut..].trim_start_matches('/').to_string())
}

/// What went wrong with `url`, for the user.
fn explain(url: &str, e: &object_store::Error) -> InputError {
    let message = match e {
        object_store::Error::NotFound { .. } => "no such object (check the URL and the --input-endpoint)".into(),
        object_store::Error::Precondition { .. } => {
            "it changed since it was listed (its ETag differs): it was replaced during the run; run again to \
             convert the new version"
                .into()
        }
        object_store::Error::NotModified { .. } => "it changed since it was listed".into(),
        object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. } if is_http(url) => {
            let why = if is_signed_http(url) {
                "a presigned URL may have expired, or be signed for another object or method: ask for a new one"
            } else {
                "check the URL; a server that needs credentials takes them in it (user:password@, or presigned)"
            };
            format!("the server refused access ({}): {why}", redact(&other_text(e)))
        }
        other => {
            let text = other.to_string();
            if text.contains("Range") || text.contains("range") || text.contains("NotPartial") {
                format!(
                    "the server does not honour Range requests, which reading in parts needs ({})",
                    redact(&text)
                )
            } else {
                crate::store::explain(other)
            }
        }
    };
    InputError::Io {
        path: PathBuf::from(redact(url)),
        message,
    }
}

/// The text of `e` from its source on (without object_store's "for path …" preamble).
fn other_text(e: &object_store::Error) -> String {
    use std::error::Error as _;
    e.source().map_or_else(|| e.to_string(), |s| s.to_string())
}

/// True when a GET of the first byte was refused as past the end (416): the object is
/// empty.
fn is_empty_object(e: &object_store::Error) -> bool {
    e.to_string().to_ascii_lowercase().contains("416 range not satisfiable")
}

/// Lists the remote inputs `args` name, in argument order (a glob's matches sorted by
/// name). Fails on a URL that names nothing. Each store is opened once; the HEAD requests
/// of explicitly named files run concurrently (`options.io_concurrency` in flight), so
/// naming many files does not add their latencies one after another.
pub fn list(args: &[String], options: &StoreOptions) -> Result<Vec<RemoteFile>, InputError> {
    let runtime = crate::store::runtime().map_err(|e| InputError::Unreadable {
        path: PathBuf::from("(remote inputs)"),
        message: e.to_string(),
    })?;
    let mut sources: HashMap<String, Arc<Source>> = HashMap::new();
    let mut found: Vec<Vec<RemoteFile>> = Vec::with_capacity(args.len());
    let mut heads = Vec::new();
    for (i, arg) in args.iter().enumerate() {
        let (base, rest) = split(arg);
        let source = Source::shared(&mut sources, base, options)?;
        if rest.contains(['*', '?', '[']) {
            found.push(list_glob(&runtime, &source, arg, &rest)?);
        } else if !is_http(arg) && (rest.is_empty() || arg.ends_with('/')) {
            found.push(list_dir(&runtime, &source, arg, &rest)?);
        } else {
            found.push(Vec::new());
            heads.push((i, source, rest));
        }
    }
    let mut headed = runtime.block_on(async {
        futures::stream::iter(heads)
            .map(|(i, source, name)| async move {
                let arg = &args[i];
                let path = match source.path(&name) {
                    Ok(path) => path,
                    Err(e) => return (i, Err(e)),
                };
                let not_found = |e: &object_store::Error| matches!(e, object_store::Error::NotFound { .. });
                // A presigned URL signs one method, GET: its size and ETag come from
                // the answer to a one-byte GET.
                let meta = if is_signed_http(arg) {
                    let first_byte = GetOptions {
                        range: Some((0..1).into()),
                        ..Default::default()
                    };
                    match source.store.get_opts(&path, first_byte).await {
                        Ok(got) => Ok((got.meta.size, got.meta.e_tag)),
                        Err(e) if is_empty_object(&e) => Ok((0, None)),
                        Err(e) => Err(e),
                    }
                } else {
                    source.store.head(&path).await.map(|m| (m.size, m.e_tag))
                };
                let files = match meta {
                    Ok((size, etag)) => Ok(vec![RemoteFile {
                        url: arg.clone(),
                        size,
                        etag,
                    }]),
                    // No such object: like a local directory, a prefix gives the NetCDF
                    // files right under it.
                    Err(e) if not_found(&e) && !is_http(arg) => {
                        list_dir_async(&source, arg, &name).await.map_err(|dir| match dir {
                            InputError::NothingMatched { .. } => dir,
                            _ => explain(arg, &e),
                        })
                    }
                    Err(e) => Err(explain(arg, &e)),
                };
                (i, files)
            })
            .buffer_unordered(options.io_concurrency.max(1))
            .collect::<Vec<_>>()
            .await
    });
    // The first failing argument is the one reported, whichever answered first.
    headed.sort_by_key(|(i, _)| *i);
    for (i, files) in headed {
        found[i] = files?;
    }
    let out: Vec<RemoteFile> = found.into_iter().flatten().collect();
    let mut seen = std::collections::HashSet::new();
    for f in &out {
        if !seen.insert(f.url.clone()) {
            return Err(InputError::Duplicate {
                path: PathBuf::from(redact(&f.url)),
            });
        }
    }
    Ok(out)
}

/// True when `url` is an HTTP(S) URL (such servers cannot be listed).
fn is_http(url: &str) -> bool {
    url.starts_with("http://") || url.starts_with("https://")
}

/// The objects of `source` whose names match the glob `pattern` (from `arg`), sorted.
fn list_glob(
    runtime: &tokio::runtime::Runtime,
    source: &Source,
    arg: &str,
    pattern: &str,
) -> Result<Vec<RemoteFile>, InputError> {
    if is_http(arg) {
        return Err(InputError::BadGlob {
            arg: redact(arg),
            message: "HTTP servers cannot be listed: name each file".into(),
        });
    }
    let (folder, pattern) = glob_folder(pattern);
    let found = runtime.block_on(list_matching(source, arg, folder, pattern))?;
    if found.is_empty() {
        return Err(InputError::NothingMatched {
            arg: redact(arg),
            hint: "the pattern matched no objects".into(),
        });
    }
    Ok(found)
}

/// The NetCDF files (by extension, as a local directory gives them) right under the
/// prefix `dir` of `source` (from `arg`), sorted; an error when there are none.
fn list_dir(
    runtime: &tokio::runtime::Runtime,
    source: &Source,
    arg: &str,
    dir: &str,
) -> Result<Vec<RemoteFile>, InputError> {
    runtime.block_on(list_dir_async(source, arg, dir))
}

/// [`list_dir`], awaited.
async fn list_dir_async(source: &Source, arg: &str, dir: &str) -> Result<Vec<RemoteFile>, InputError> {
    let netcdf = |url: &str| {
        url.rsplit_once('.')
            .is_some_and(|(_, e)| NETCDF_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
    };
    let found: Vec<RemoteFile> = list_matching(source, arg, dir, "*")
        .await?
        .into_iter()
        .filter(|f| netcdf(&f.url))
        .collect();
    if found.is_empty() {
        return Err(InputError::NothingMatched {
            arg: redact(arg),
            hint: format!(
                "no such object, and no objects ending in .{} right under this prefix",
                NETCDF_EXTENSIONS.join(", .")
            ),
        });
    }
    Ok(found)
}

/// The objects of `source` under the folder `dir` whose names there match the glob
/// `pattern` (from `arg`), sorted. Only that folder is listed, and only its top level when
/// the pattern has no `/`: a bucket of many objects costs nothing when `dir` is narrow.
async fn list_matching(source: &Source, arg: &str, dir: &str, pattern: &str) -> Result<Vec<RemoteFile>, InputError> {
    let pattern = glob::Pattern::new(pattern).map_err(|e| InputError::BadGlob {
        arg: redact(arg),
        message: e.msg.to_string(),
    })?;
    let folder = [source.prefix.trim_matches('/'), dir.trim_matches('/')]
        .into_iter()
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("/");
    let top_level = !pattern.as_str().contains('/') && !pattern.as_str().contains("**");
    let listed = async {
        let prefix = match folder.as_str() {
            "" => None,
            p => Some(ObjectPath::parse(p)?),
        };
        if top_level {
            Ok(source.store.list_with_delimiter(prefix.as_ref()).await?.objects)
        } else {
            source.store.list(prefix.as_ref()).try_collect::<Vec<_>>().await
        }
    };
    let listed = listed.await.map_err(|e| explain(arg, &e))?;
    let strip = folder.len();
    let options = glob::MatchOptions {
        require_literal_separator: true,
        ..Default::default()
    };
    let under_dir = |name: &str| match dir.trim_matches('/') {
        "" => name.to_string(),
        d => format!("{d}/{name}"),
    };
    let mut found: Vec<RemoteFile> = listed
        .into_iter()
        .filter_map(|m| {
            let full = m.location.as_ref();
            let name = if strip == 0 {
                full
            } else {
                full.get(strip..)?.strip_prefix('/')?
            };
            pattern.matches_with(name, options).then(|| RemoteFile {
                url: source.url(&under_dir(name)),
                size: m.size,
                etag: m.e_tag.clone(),
            })
        })
        .collect();
    found.sort_by(|a, b| a.url.cmp(&b.url));
    Ok(found)
}

/// A glob's folder (its leading parts with no wildcard) and the pattern of the rest.
fn glob_folder(glob: &str) -> (&str, &str) {
    let wild = glob.find(['*', '?', '[']).unwrap_or(glob.len());
    match glob[..wild].rfind('/') {
        Some(slash) => (&glob[..slash], &glob[slash + 1..]),
        None => ("", glob),
    }
}

/// A directory that keeps downloaded remote inputs between runs, found again by URL,
/// ETag and size, so a second command over the same inputs (plan then convert, a run
/// resumed after a crash, the tasks of a split run on one machine) downloads nothing
/// again. Inputs whose server sends no ETag are not kept: nothing would tell a new
/// version from the copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputCache {
    /// The directory.
    pub dir: PathBuf,
    /// What it may hold once a run ends; the least recently used copies go first.
    pub max_bytes: u64,
}

/// Remote inputs downloaded to a temporary directory, removed on drop, or kept in an
/// [`InputCache`].
#[derive(Debug)]
pub struct Staging {
    dir: tempfile::TempDir,
    /// Local copy → the remote file it holds.
    origins: HashMap<PathBuf, RemoteFile>,
    /// Bytes downloaded by this run.
    downloaded: u64,
    /// The cache used, with its lock file, held shared while this run reads from it.
    cache: Option<(InputCache, std::fs::File)>,
}

impl Drop for Staging {
    /// Trims the cache to its size, least recently used copies first, unless another
    /// run is reading from it (it holds the lock shared); then the next run does.
    fn drop(&mut self) {
        let Some((cache, lock)) = self.cache.take() else { return };
        let _ = lock.unlock();
        if lock.try_lock().is_ok() {
            evict(&cache);
        }
    }
}

impl Staging {
    /// The remote file a staged path holds, if it is one.
    pub fn origin(&self, local: &Path) -> Option<&RemoteFile> {
        self.origins.get(local)
    }

    /// Bytes downloaded: the sizes of the files staged that the cache did not hold.
    pub fn bytes(&self) -> u64 {
        self.downloaded
    }

    /// `text` with staged paths replaced by their URLs (for messages).
    pub fn name_urls(&self, text: &str) -> String {
        let mut out = text.to_string();
        for (local, remote) in &self.origins {
            out = out.replace(&local.display().to_string(), &redact(&remote.url));
        }
        out.replace(&self.dir.path().display().to_string(), "(staged inputs)")
    }
}

/// The file name a staged copy keeps (the last part of its URL's path).
fn file_name(url: &str) -> String {
    let path = url.split('?').next().unwrap_or(url);
    let name = path.rsplit('/').next().unwrap_or("input.nc");
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if clean.is_empty() { "input.nc".into() } else { clean }
}

/// One ranged GET of a download, and where its bytes go.
struct Part {
    file: RemoteFile,
    source: Arc<Source>,
    path: ObjectPath,
    out: Arc<std::fs::File>,
    local: PathBuf,
    range: Range<u64>,
}

/// An ETag without the quotes and weak marker some services add in one answer and not
/// in another (Azure's listing and GET differ so).
fn bare_etag(etag: &str) -> &str {
    etag.trim_start_matches("W/").trim_matches('"')
}

/// Fetches one part, pinned to the ETag its file was listed with, and writes it in place.
async fn fetch_part(p: Part) -> Result<(), InputError> {
    let opts = GetOptions {
        range: Some(p.range.clone().into()),
        if_match: p.file.etag.clone(),
        ..Default::default()
    };
    let got = p
        .source
        .store
        .get_opts(&p.path, opts)
        .await
        .map_err(|e| explain(&p.file.url, &e))?;
    // Servers that ignore If-Match (many static HTTP servers) answer with the new
    // version: its ETag or size tells.
    let etag_differs = matches!((&p.file.etag, &got.meta.e_tag), (Some(a), Some(b)) if bare_etag(a) != bare_etag(b));
    if etag_differs || got.meta.size != p.file.size {
        return Err(explain(
            &p.file.url,
            &object_store::Error::Precondition {
                path: p.path.to_string(),
                source: "the ETag or size differs from the listing".into(),
            },
        ));
    }
    let ignored_range = |got: u64| InputError::Io {
        path: PathBuf::from(redact(&p.file.url)),
        message: format!(
            "the server returned {got} bytes for a range of {}: it does not honour Range requests",
            p.range.end - p.range.start
        ),
    };
    if got.range != p.range {
        return Err(ignored_range(got.range.end - got.range.start));
    }
    // Written as it arrives: a part in flight holds a network buffer, not the whole part,
    // so the requests in flight stay within a few MiB whatever the latency.
    use std::os::unix::fs::FileExt;
    let mut at = p.range.start;
    let mut body = got.into_stream();
    while let Some(piece) = body.next().await {
        let piece = piece.map_err(|e| explain(&p.file.url, &e))?;
        if at + piece.len() as u64 > p.range.end {
            return Err(ignored_range(at + piece.len() as u64 - p.range.start));
        }
        p.out.write_all_at(&piece, at).map_err(|e| InputError::Io {
            path: p.local.clone(),
            message: format!("staging remote inputs: {e}"),
        })?;
        at += piece.len() as u64;
    }
    if at != p.range.end {
        return Err(ignored_range(at - p.range.start));
    }
    Ok(())
}

/// The name a copy of `f` has in a cache: its identity, ETag and size hashed, then its
/// file name. `None` without an ETag.
fn cache_name(f: &RemoteFile) -> Option<String> {
    let etag = bare_etag(f.etag.as_deref()?);
    let key = blake3::hash(format!("{}\n{etag}\n{}", identity(&f.url), f.size).as_bytes()).to_hex();
    Some(format!("{}-{}", &key[..32], file_name(&f.url)))
}

/// Removes the least recently used copies in `cache` (by modification time, which a
/// run that uses a copy renews) until it holds at most its size, and downloads left
/// unfinished by a killed run.
fn evict(cache: &InputCache) {
    let Ok(entries) = std::fs::read_dir(&cache.dir) else {
        return;
    };
    let mut copies = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        let Ok(meta) = e.metadata() else { continue };
        if name.starts_with(".partial-") {
            let _ = std::fs::remove_file(e.path());
        } else if meta.is_file() && !name.starts_with('.') {
            copies.push((meta.modified().ok(), meta.len(), e.path()));
        }
    }
    copies.sort();
    let mut held: u64 = copies.iter().map(|c| c.1).sum();
    for (_, size, path) in copies {
        if held <= cache.max_bytes {
            break;
        }
        if std::fs::remove_file(&path).is_ok() {
            held -= size;
        }
    }
}

/// Refuses to stage `bytes` in `dir` when its disk has not that much free, plus a margin.
fn check_room(dir: &Path, bytes: u64, parent: &Path) -> Result<(), InputError> {
    match crate::os::free_bytes(dir) {
        Some(free) if bytes > 0 && free < bytes + (64 << 20) => Err(InputError::Io {
            path: parent.to_path_buf(),
            message: format!(
                "the remote inputs ({}) are staged on local disk before reading, but this directory has {} free; \
                 point --temp-dir (or --input-cache) at a larger disk, or convert fewer files and append the rest",
                crate::units::human_bytes(bytes),
                crate::units::human_bytes(free)
            ),
        }),
        _ => Ok(()),
    }
}

/// Downloads `files` under `parent` (`concurrency` ranged GETs in flight), each pinned to
/// the ETag it was listed with; with a `cache`, those it holds are not downloaded again
/// and those with an ETag are kept there.
pub fn stage(
    files: &[RemoteFile],
    parent: &Path,
    cache: Option<&InputCache>,
    options: &StoreOptions,
    concurrency: usize,
) -> Result<(Staging, Vec<PathBuf>), InputError> {
    let io = |path: &Path, e: std::io::Error| InputError::Io {
        path: path.to_path_buf(),
        message: format!("staging remote inputs: {e}"),
    };
    std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
    let dir = tempfile::Builder::new()
        .prefix("nc2zarr-inputs-")
        .tempdir_in(parent)
        .map_err(|e| io(parent, e))?;
    let cache = match cache {
        Some(c) => {
            std::fs::create_dir_all(&c.dir).map_err(|e| io(&c.dir, e))?;
            let lock_path = c.dir.join(".lock");
            let lock = std::fs::File::create(&lock_path).map_err(|e| io(&lock_path, e))?;
            // Trimmed first when no other run reads from it, so a full cache makes room.
            if lock.try_lock().is_ok() {
                evict(c);
                let _ = lock.unlock();
            }
            lock.lock_shared().map_err(|e| io(&lock_path, e))?;
            Some((c.clone(), lock))
        }
        None => None,
    };
    // Where each file goes: a cached copy already there, a new one for the cache
    // (downloaded beside it, renamed when complete), or the temporary directory.
    let mut locals = Vec::new();
    let mut fetch = Vec::new(); // (index, path written, path renamed to when complete)
    let (mut to_temp, mut to_cache) = (0, 0);
    let mut fetched_once = std::collections::HashSet::new();
    for (i, f) in files.iter().enumerate() {
        let cached = cache.as_ref().and_then(|(c, _)| Some(c.dir.join(cache_name(f)?)));
        match cached {
            // The same file named twice (signed twice): downloaded once.
            Some(path) if fetched_once.contains(&path) => locals.push(path),
            Some(path) if std::fs::metadata(&path).is_ok_and(|m| m.len() == f.size) => {
                // Used now: the last to go when the cache is trimmed.
                if let Ok(file) = std::fs::File::options().append(true).open(&path) {
                    let _ = file.set_modified(std::time::SystemTime::now());
                }
                locals.push(path);
            }
            Some(path) => {
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().to_string())
                    .unwrap_or_default();
                let partial = path.with_file_name(format!(".partial-{}-{name}", std::process::id()));
                fetched_once.insert(path.clone());
                fetch.push((i, partial, Some(path.clone())));
                to_cache += f.size;
                locals.push(path);
            }
            None => {
                let local = dir.path().join(format!("{i:05}")).join(file_name(&f.url));
                fetch.push((i, local.clone(), None));
                to_temp += f.size;
                locals.push(local);
            }
        }
    }
    check_room(dir.path(), to_temp, parent)?;
    if let Some((c, _)) = &cache {
        check_room(&c.dir, to_cache, &c.dir)?;
    }
    let mut staging = Staging {
        dir,
        origins: locals.iter().cloned().zip(files.iter().cloned()).collect(),
        downloaded: to_temp + to_cache,
        cache,
    };
    let runtime = crate::store::runtime().map_err(|e| io(parent, std::io::Error::other(e.to_string())))?;
    let mut sources: HashMap<String, Arc<Source>> = HashMap::new();
    let mut parts = Vec::new();
    for (i, written, _) in &fetch {
        let f = &files[*i];
        let (base, name) = split(&f.url);
        let source = Source::shared(&mut sources, base, options)?;
        std::fs::create_dir_all(written.parent().unwrap_or(staging.dir.path())).map_err(|e| io(written, e))?;
        let file = std::fs::File::create(written).map_err(|e| io(written, e))?;
        file.set_len(f.size).map_err(|e| io(written, e))?;
        let file = Arc::new(file);
        let mut start = 0;
        while start < f.size {
            let end = (start + PART_BYTES).min(f.size);
            parts.push(Part {
                file: f.clone(),
                source: source.clone(),
                path: source.path(&name)?,
                out: file.clone(),
                local: written.clone(),
                range: start..end,
            });
            start = end;
        }
    }
    let fetched = runtime.block_on(async {
        futures::stream::iter(parts)
            .map(fetch_part)
            .buffer_unordered(concurrency.max(1))
            .try_collect::<Vec<()>>()
            .await
    });
    // A copy is kept only once it is on disk whole: a crash can leave no copy of the
    // right size that holds zeros.
    let renamed = fetched.and_then(|_| {
        fetch.iter().try_for_each(|(_, written, kept)| match kept {
            Some(kept) => std::fs::File::open(written)
                .and_then(|f| f.sync_all())
                .and_then(|_| std::fs::rename(written, kept))
                .map_err(|e| io(kept, e)),
            None => Ok(()),
        })
    });
    if let Err(e) = renamed {
        for (_, written, kept) in &fetch {
            if kept.is_some() {
                let _ = std::fs::remove_file(written);
            }
        }
        staging.downloaded = 0;
        return Err(e);
    }
    Ok((staging, locals))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_a_store_and_what_to_find_there() {
        assert_eq!(
            split("s3://bucket/era5/*.nc"),
            ("s3://bucket/era5".to_string(), "*.nc".to_string())
        );
        assert_eq!(
            split("s3://bucket/era5/2020-*/day.nc"),
            ("s3://bucket/era5".to_string(), "2020-*/day.nc".to_string())
        );
        assert_eq!(
            split("https://host/data/a.nc"),
            ("https://host/data".to_string(), "a.nc".to_string())
        );
        assert_eq!(
            split("s3://bucket/a.nc"),
            ("s3://bucket".to_string(), "a.nc".to_string())
        );
        assert_eq!(split("s3://bucket"), ("s3://bucket".to_string(), String::new()));
        assert_eq!(split("s3://bucket/"), ("s3://bucket".to_string(), String::new()));
        assert_eq!(
            split("s3://bucket/era5/"),
            ("s3://bucket/era5".to_string(), String::new())
        );
        assert!(is_remote("gs://b/x.nc") && is_remote("https://h/x.nc") && !is_remote("/data/x.nc"));
        assert_eq!(file_name("s3://b/dir/era5 2020*.nc"), "era5_2020_.nc");
        // A query is no glob; the signature it carries stays out of file names.
        let signed = "https://h/d/a.nc?X-Amz-Signature=abc&X-Amz-Expires=60";
        assert_eq!(split(signed), (signed.to_string(), String::new()));
        assert_eq!(file_name(signed), "a.nc");
        assert_eq!(split("s3://b/a?.nc"), ("s3://b".to_string(), "a?.nc".to_string()));
        assert_eq!(glob_folder("2020/*/day.nc"), ("2020", "*/day.nc"));
        assert_eq!(glob_folder("a/b/*.nc"), ("a/b", "*.nc"));
        assert_eq!(glob_folder("*.nc"), ("", "*.nc"));
    }

    #[test]
    fn a_url_is_known_by_what_names_the_file_not_by_its_signature() {
        let base = "https://h/d/a.nc";
        assert_eq!(identity(base), base);
        assert_eq!(identity("https://u:pw@h/d/a.nc"), base);
        let signed = identity("https://h/d/a.nc?X-Amz-Signature=abc&X-Amz-Date=1");
        assert_eq!(signed, "https://h/d/a.nc?[redacted]");
        assert_eq!(identity("https://h/d/a.nc?sv=1&sig=zz&se=2030"), signed);
        // Without the signature they go with, SAS or CloudFront fields may name the file.
        assert_ne!(identity("https://h/data?st=A"), identity("https://h/data?st=B"));
        assert_eq!(identity("https://h/d/a.nc?Policy=p&Signature=s&Key-Pair-Id=k"), signed);
        assert_ne!(identity("https://h/get?policy=a"), identity("https://h/get?policy=b"));
        let one = identity("https://h/get?file=a.nc&X-Amz-Signature=abc");
        let two = identity("https://h/get?file=b.nc&X-Amz-Signature=abc");
        assert_ne!(one, two);
        assert_eq!(one, identity("https://h/get?X-Amz-Signature=renewed&file=a.nc"));
        assert!(!one.contains("a.nc") && !one.contains("abc"), "{one}");
        // One URL, whatever it holds: a comma does not end it (the signature stays out).
        assert_eq!(
            identity("https://h/a,b.nc?X-Amz-Signature=abc"),
            "https://h/a,b.nc?[redacted]"
        );
        // In object-store URLs `?` is part of the key.
        assert_ne!(identity("s3://b/run?1/a.nc"), identity("s3://b/run?2/a.nc"));
    }

    /// A store that holds `n` objects in `other/` and `n` at its root, and takes 10 ms per
    /// object listed, with `inputs/a.nc` and `inputs/deeper/b.nc`.
    fn throttled(n: usize) -> Source {
        use object_store::throttle::{ThrottleConfig, ThrottledStore};
        let memory = object_store::memory::InMemory::new();
        let runtime = crate::store::runtime().unwrap();
        runtime.block_on(async {
            for i in 0..n {
                for key in [format!("other/{i}.nc"), format!("{i}.nc")] {
                    memory.put(&ObjectPath::from(key), "x".into()).await.unwrap();
                }
            }
            memory.put(&ObjectPath::from("inputs/a.nc"), "x".into()).await.unwrap();
            memory
                .put(&ObjectPath::from("inputs/deeper/b.nc"), "x".into())
                .await
                .unwrap();
        });
        let config = ThrottleConfig {
            wait_list_per_entry: std::time::Duration::from_millis(10),
            wait_list_with_delimiter_per_entry: std::time::Duration::from_millis(10),
            ..Default::default()
        };
        Source {
            store: Arc::new(ThrottledStore::new(memory, config)),
            prefix: String::new(),
            base: "s3://bucket".into(),
        }
    }

    #[test]
    fn a_prefix_or_a_missing_name_lists_its_folder_not_the_bucket() {
        let source = throttled(500);
        let runtime = crate::store::runtime().unwrap();
        let started = std::time::Instant::now();
        let found = runtime
            .block_on(list_dir_async(&source, "s3://bucket/inputs/", "inputs"))
            .unwrap();
        let urls: Vec<&str> = found.iter().map(|f| f.url.as_str()).collect();
        assert_eq!(urls, ["s3://bucket/inputs/a.nc"]);
        let missing = runtime.block_on(list_dir_async(&source, "s3://bucket/typo.nc", "typo.nc"));
        assert!(matches!(missing, Err(InputError::NothingMatched { .. })), "{missing:?}");
        let globbed = runtime
            .block_on(list_matching(&source, "s3://bucket/inputs/*/*.nc", "inputs", "*/*.nc"))
            .unwrap();
        assert_eq!(globbed.len(), 1);
        assert_eq!(globbed[0].url, "s3://bucket/inputs/deeper/b.nc");
        let everything = runtime
            .block_on(list_matching(&source, "s3://bucket/inputs/**", "inputs", "**"))
            .unwrap();
        let urls: Vec<&str> = everything.iter().map(|f| f.url.as_str()).collect();
        assert_eq!(urls, ["s3://bucket/inputs/a.nc", "s3://bucket/inputs/deeper/b.nc"]);
        // Listing the 500 objects of another folder or of the root would take 5 s.
        assert!(
            started.elapsed() < std::time::Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }
}
