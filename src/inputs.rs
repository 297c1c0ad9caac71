//! Turns INPUT arguments (files, directories, quoted globs) into a list of files.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::error::InputError;
use crate::settings::NETCDF_EXTENSIONS;

/// The files of a run: local paths to read, remote inputs among them staged on local
/// disk, and the staging that holds those (removed when this is dropped).
#[derive(Debug, Default)]
pub struct Resolved {
    /// Local paths, in argument order (remote inputs after local ones).
    pub files: Vec<PathBuf>,
    /// The staged remote inputs, if any.
    pub staging: Option<crate::remote::Staging>,
}

impl Resolved {
    /// Marks the inventory's staged files with their URLs and ETags.
    pub fn annotate(&self, inv: &mut crate::model::Inventory) {
        if let Some(staging) = &self.staging {
            for f in &mut inv.files {
                if let Some(r) = staging.origin(&f.path) {
                    f.origin = Some((r.url.clone(), r.etag.clone()));
                }
            }
        }
    }

    /// `text` naming remote inputs by their URLs instead of their staged copies.
    pub fn name_urls(&self, text: &str) -> String {
        match &self.staging {
            Some(s) => s.name_urls(text),
            None => text.to_string(),
        }
    }

    /// `e` with remote inputs named by their URLs (same kind of error, same exit code).
    pub fn explain(&self, e: crate::error::Error) -> crate::error::Error {
        use crate::error::Error;
        if self.staging.is_none() {
            return e;
        }
        match e {
            Error::Input(i) => {
                let url = |p: &Path| PathBuf::from(self.name_urls(&p.display().to_string()));
                Error::Input(InputError::Remote {
                    message: self.name_urls(&i.to_string()),
                    file: i.path().map(url),
                    files: i.files_involved().iter().map(|p| url(p)).collect(),
                    variable: i.variable().map(str::to_string),
                })
            }
            Error::Usage(m) => Error::Usage(self.name_urls(&m)),
            Error::Internal(m) => Error::Internal(self.name_urls(&m)),
            other => other,
        }
    }
}

/// Where remote inputs are staged, and how to reach them.
#[derive(Debug, Clone)]
pub struct RemoteSettings {
    /// Store settings of the inputs' stores.
    pub store: crate::store::StoreOptions,
    /// Parent of the staging directory.
    pub staging_parent: PathBuf,
    /// Where downloaded inputs are kept between runs, if anywhere.
    pub cache: Option<crate::remote::InputCache>,
}

impl Default for RemoteSettings {
    fn default() -> Self {
        RemoteSettings {
            store: crate::store::StoreOptions::default(),
            staging_parent: std::env::temp_dir(),
            cache: None,
        }
    }
}

/// Expands INPUT arguments, local (see [`expand`]) and remote (URLs: listed, then
/// downloaded to a staging directory, see [`crate::remote`]).
pub fn resolve(args: &[String], remote: &RemoteSettings) -> Result<Resolved, InputError> {
    let (urls, local): (Vec<String>, Vec<String>) = args.iter().cloned().partition(|a| crate::remote::is_remote(a));
    let mut files = if local.is_empty() { Vec::new() } else { expand(&local)? };
    if urls.is_empty() {
        return Ok(Resolved { files, staging: None });
    }
    let listed = crate::remote::list(&urls, &remote.store)?;
    let (staging, staged) = crate::remote::stage(
        &listed,
        &remote.staging_parent,
        remote.cache.as_ref(),
        &remote.store,
        remote.store.io_concurrency,
    )?;
    files.extend(staged);
    Ok(Resolved {
        files,
        staging: Some(staging),
    })
}

/// Expands INPUT arguments into files, in argument order (directories and globs sorted).
///
/// A directory contributes its files with a NetCDF extension (not recursive); a glob
/// its matches. The same file named twice is an error, as is an argument that matches
/// nothing.
pub fn expand(args: &[String]) -> Result<Vec<PathBuf>, InputError> {
    let mut files = Vec::new();
    for arg in args {
        let path = Path::new(arg);
        if path.is_dir() {
            let mut found = list_dir(path)?;
            if found.is_empty() {
                return Err(InputError::NothingMatched {
                    arg: arg.clone(),
                    hint: format!(
                        "no files ending in .{} in this directory",
                        NETCDF_EXTENSIONS.join(", .")
                    ),
                });
            }
            found.sort();
            files.extend(found);
        } else if path.is_file() {
            files.push(path.to_path_buf());
        } else if path.exists() {
            // A device, FIFO or socket: reading one could block or never end.
            return Err(InputError::Io {
                path: path.to_path_buf(),
                message: "not a regular file (a device, FIFO or socket); give NetCDF files, directories or globs"
                    .into(),
            });
        } else if arg.contains(['*', '?', '[']) {
            let pattern = glob::glob(arg).map_err(|e| InputError::BadGlob {
                arg: arg.clone(),
                message: e.msg.to_string(),
            })?;
            let mut found: Vec<PathBuf> = pattern.filter_map(Result::ok).filter(|p| p.is_file()).collect();
            if found.is_empty() {
                return Err(InputError::NothingMatched {
                    arg: arg.clone(),
                    hint: "the pattern matched no files".into(),
                });
            }
            found.sort();
            files.extend(found);
        } else if let (Ok(_), Err(e)) = (path.symlink_metadata(), path.metadata()) {
            return Err(InputError::Io {
                path: path.to_path_buf(),
                message: format!("{e}: the symbolic link is broken or loops; fix or remove it"),
            });
        } else {
            return Err(InputError::NotFound {
                path: path.to_path_buf(),
            });
        }
    }
    let mut seen = HashSet::new();
    for f in &files {
        let key = f.canonicalize().unwrap_or_else(|_| f.clone());
        if !seen.insert(key) {
            return Err(InputError::Duplicate { path: f.clone() });
        }
    }
    Ok(files)
}

fn list_dir(dir: &Path) -> Result<Vec<PathBuf>, InputError> {
    let entries = std::fs::read_dir(dir).map_err(|e| InputError::Io {
        path: dir.to_path_buf(),
        message: e.to_string(),
    })?;
    Ok(entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && p.extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| NETCDF_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_dirs_globs_and_files() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b.nc", "a.nc4", "c.txt"] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        let d = dir.path().to_string_lossy().to_string();
        let got = expand(std::slice::from_ref(&d)).unwrap();
        assert_eq!(got, vec![dir.path().join("a.nc4"), dir.path().join("b.nc")]);
        let got = expand(&[format!("{d}/*.nc")]).unwrap();
        assert_eq!(got, vec![dir.path().join("b.nc")]);
        let got = expand(&[format!("{d}/c.txt")]).unwrap();
        assert_eq!(got, vec![dir.path().join("c.txt")]);
    }

    #[test]
    fn reports_missing_duplicate_and_empty() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.nc"), b"x").unwrap();
        let a = dir.path().join("a.nc").to_string_lossy().to_string();
        let err = expand(&[a.clone(), a.clone()]).unwrap_err();
        assert!(err.to_string().contains("more than once"), "{err}");
        let err = expand(&[format!("{a}.missing")]).unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
        let err = expand(&[format!("{}/*.zz", dir.path().display())]).unwrap_err();
        assert!(err.to_string().contains("matched no files"), "{err}");
    }

    #[test]
    fn devices_and_fifos_are_refused_or_skipped() {
        let err = expand(&["/dev/zero".to_string()]).unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe.nc");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
        assert!(made.success(), "mkfifo");
        let err = expand(&[fifo.to_string_lossy().to_string()]).unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");
        std::fs::write(dir.path().join("a.nc"), b"x").unwrap();
        let got = expand(&[dir.path().to_string_lossy().to_string()]).unwrap();
        assert_eq!(got, vec![dir.path().join("a.nc")], "a FIFO in a directory is skipped");
    }
}
