//! Stage 5: append. Add new input files along the concat dimension of a store
//! nc2zarr wrote, without rewriting what is there.
//!
//! Files already in the store (recognised by their fingerprints in the manifest) are
//! skipped, so re-running the same command is a no-op. New data must continue the
//! store: same variables, types and grid, times later than the store's last (in the
//! store's units, re-encoding when the new files use others). The partly filled last
//! object along the concat dimension is read back, completed and rewritten; chunk
//! shapes never change. Until the new consolidated metadata is written, readers see
//! the store as it was: rewritten objects keep their old values inside the old shape,
//! and new objects lie outside it.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use bytes::Bytes;

use crate::cftime::{Calendar, TimeUnits};
use crate::error::{Error, InputError, Result, TargetError};
use crate::existing::{self, FoundArray};
use crate::journal;
use crate::json::Json;
use crate::manifest::{self, Manifest, Sameness};
use crate::meta::{self, Fill};
use crate::model::Decoding;
use crate::model::ZarrFormat;
use crate::model::{AttrValue, DType, attr};
use crate::model::{GroupInfo, Inventory, SourceFile, VarInfo};
use crate::packing;
use crate::pipeline::{AppendRegion, ArrayJob};
use crate::plan::{self, Resources};
use crate::scan;
use crate::slab::Block;
use crate::store::Target;
use crate::write::{ConvertOptions, Prepared};

/// Options of an append.
#[derive(Debug, Clone)]
pub struct AppendOptions {
    /// Conversion settings (memory, workers, store, output); chunks and codecs come from the store.
    pub convert: ConvertOptions,
    /// Accept a gap between the store's last time and the first new one.
    pub allow_gaps: bool,
    /// The concat dimension, when the manifest does not name one.
    pub concat_dim: Option<String>,
    /// The group of the new files read as the dataset's root; must be the store's.
    pub group: Option<String>,
    /// Refuse new files that pack a variable differently, instead of unpacking it.
    pub refuse_encoding_drift: bool,
    /// Check everything and report what would be appended, writing nothing.
    pub dry_run: bool,
    /// Prepare a split append for this many tasks (`nc2zarr task`, `nc2zarr commit`)
    /// instead of writing.
    pub tasks: Option<usize>,
    /// How remote inputs are reached and where they are staged.
    pub remote: crate::inputs::RemoteSettings,
    /// With `tasks`: how the tasks reach remote inputs (see
    /// [`crate::job::InputStore::for_inputs`]).
    pub input_store: Option<crate::job::InputStore>,
}

/// What an append did.
#[derive(Debug, Clone, Default)]
pub struct AppendSummary {
    /// Target as shown.
    pub target: String,
    /// Files appended, in order.
    pub appended: Vec<String>,
    /// Files skipped because the store has them already.
    pub already_present: usize,
    /// Length along the concat dimension before and after.
    pub length: (u64, u64),
    /// First and last new coordinate value (in the store's units) and those units.
    pub range: Option<(f64, f64, String)>,
    /// Objects written.
    pub objects: u64,
    /// Bytes written.
    pub bytes_out: u64,
    /// Uncompressed bytes appended.
    pub bytes_in: u64,
    /// Objects found written by an interrupted run.
    pub resumed_objects: u64,
    /// Wall time.
    pub seconds: f64,
    /// Notes.
    pub notes: Vec<String>,
    /// Nothing was written: this says what an append would do.
    pub dry_run: bool,
    /// A split append was prepared for this many tasks; nothing else was written.
    pub prepared_tasks: Option<usize>,
}

impl AppendSummary {
    /// True when there was nothing new.
    pub fn nothing_to_do(&self) -> bool {
        self.appended.is_empty()
    }

    /// The `--json` form.
    pub fn to_json(&self) -> Json {
        crate::json_obj! {
            "status" => match (self.nothing_to_do(), self.dry_run, self.prepared_tasks) {
                (true, _, _) => "nothing to append",
                (false, true, _) => "dry run",
                (false, false, Some(_)) => "prepared",
                (false, false, None) => "ok",
            },
            "dry_run" => self.dry_run,
            "tasks" => self.prepared_tasks,
            "target" => self.target.as_str(),
            "files_appended" => self.appended.clone(),
            "files_already_present" => self.already_present,
            "length_before" => self.length.0,
            "length_after" => self.length.1,
            "first_new" => self.range.as_ref().map(|r| r.0),
            "last_new" => self.range.as_ref().map(|r| r.1),
            "units" => self.range.as_ref().map(|r| r.2.clone()),
            "objects" => self.objects,
            "resumed_objects" => self.resumed_objects,
            "bytes_in" => self.bytes_in,
            "bytes_out" => self.bytes_out,
            "seconds" => self.seconds,
            "notes" => self.notes.clone(),
        }
    }

    /// Human-readable lines.
    pub fn to_text(&self) -> String {
        if self.nothing_to_do() {
            let mut s = format!(
                "nothing to append: all {} input file(s) are already in {}\n",
                self.already_present, self.target
            );
            for n in &self.notes {
                s.push_str(&format!("  note: {n}\n"));
            }
            return s;
        }
        let mut s = format!(
            "{} {} file(s) to {}: length {} -> {}",
            if self.dry_run || self.prepared_tasks.is_some() {
                "would append"
            } else {
                "appended"
            },
            self.appended.len(),
            self.target,
            self.length.0,
            self.length.1
        );
        if let Some((a, b, units)) = &self.range {
            s.push_str(&format!(", new values {a} .. {b} ({units})"));
        }
        if let Some(n) = self.prepared_tasks {
            s.push_str(&format!(
                "\n  prepared for {n} task(s): run `nc2zarr task {t} --index I` for I in 0..{last} (or as a job array), \
                 then `nc2zarr commit {t}`; until the commit readers see the store as it was\n",
                t = self.target,
                last = n - 1
            ));
        } else if self.dry_run {
            s.push_str("\n  dry run: nothing was written\n");
            for f in &self.appended {
                s.push_str(&format!("  + {f}\n"));
            }
        } else {
            s.push_str(&format!(
                "\n  {} object(s), {} written in {:.1} s\n",
                self.objects,
                crate::units::human_bytes(self.bytes_out),
                self.seconds
            ));
        }
        if self.resumed_objects > 0 {
            s.push_str(&format!(
                "  resumed: {} object(s) were already written\n",
                self.resumed_objects
            ));
        }
        for n in &self.notes {
            s.push_str(&format!("  note: {n}\n"));
        }
        s
    }
}

fn inconsistent(message: String) -> Error {
    Error::Input(InputError::inconsistent(message))
}

/// Appends the files named by `args` to `target`. Remote inputs the manifest holds (by
/// URL, size and ETag) are skipped without being downloaded.
pub fn append(args: &[String], target: &str, opts: &AppendOptions) -> Result<AppendSummary> {
    let (urls, local): (Vec<String>, Vec<String>) = args.iter().cloned().partition(|a| crate::remote::is_remote(a));
    let local = if local.is_empty() {
        Vec::new()
    } else {
        crate::inputs::expand(&local)?
    };
    let listed = if urls.is_empty() {
        Vec::new()
    } else {
        crate::remote::list(&urls, &opts.remote.store)?
    };
    let mut resolved = crate::inputs::Resolved::default();
    match append_files(local, listed, &mut resolved, target, opts) {
        Ok(mut summary) => {
            summary.notes = summary.notes.iter().map(|n| resolved.name_urls(n)).collect();
            Ok(summary)
        }
        Err(e) => Err(resolved.explain(e)),
    }
}

fn append_files(
    files: Vec<std::path::PathBuf>,
    listed: Vec<crate::remote::RemoteFile>,
    resolved: &mut crate::inputs::Resolved,
    target: &str,
    opts: &AppendOptions,
) -> Result<AppendSummary> {
    let started = Instant::now();
    let copts = &opts.convert;
    let mut files = files;
    let store = Target::open_existing(target, &copts.store)?;
    // A dry run writes nothing, so it needs no lock (and works while a job holds it).
    let _lock = if opts.dry_run {
        None
    } else {
        Some(crate::lock::acquire(&store, copts.stale_lock_after)?)
    };
    // An append killed during its commit left its intent: finish that commit first.
    let finished_commit = !opts.dry_run && finish_commit(&store)? > 0;
    let manifest = existing::read_manifest(&store)?;
    let marker = existing::read_json(&store, manifest::IN_PROGRESS_KEY)?;
    match marker.as_ref().and_then(|m| m.get("mode")).and_then(Json::as_str) {
        None | Some("append") => {}
        Some("tasks") if copts.restart && opts.tasks.is_some() => {}
        Some("tasks") => {
            return Err(existing::invalid(
                store.display(),
                "holds a prepared split run; finish it with `nc2zarr task` and `nc2zarr commit` (or pass --tasks N \
                 --restart to prepare this append instead)"
                    .into(),
            ));
        }
        Some(_) => {
            return Err(existing::invalid(
                store.display(),
                "holds an interrupted conversion; finish it by re-running convert before appending".into(),
            ));
        }
    }

    // Which inputs are new? Remote ones the manifest lists by URL, size and ETag are not
    // even downloaded; the others are staged and checked like local files.
    let mut summary = AppendSummary {
        target: store.display().to_string(),
        ..Default::default()
    };
    if finished_commit {
        summary
            .notes
            .push("an earlier append was interrupted during its commit; its commit was finished first".into());
    }
    let (known, unknown): (Vec<_>, Vec<_>) = listed.into_iter().partition(|r| {
        manifest.inputs.iter().any(|i| {
            i.path == crate::remote::identity(&r.url)
                && i.size == r.size
                && (i.etag.is_none() || r.etag.is_none() || i.etag == r.etag)
        })
    });
    summary.already_present += known.len();
    if !unknown.is_empty() {
        let (staging, staged) = crate::remote::stage(
            &unknown,
            &opts.remote.staging_parent,
            opts.remote.cache.as_ref(),
            &opts.remote.store,
            opts.remote.store.io_concurrency,
        )?;
        files.extend(staged);
        resolved.staging = Some(staging);
    }
    let origin = |f: &std::path::Path| {
        resolved
            .staging
            .as_ref()
            .and_then(|s| s.origin(f))
            .map(|r| crate::remote::identity(&r.url))
    };
    // The new files are read from the group the store was made from.
    let trimmed = |g: &Option<String>| {
        g.as_deref()
            .map(|g| g.trim_matches('/').to_string())
            .filter(|g| !g.is_empty())
    };
    if opts.group.is_some() && trimmed(&opts.group) != trimmed(&manifest.group) {
        return Err(Error::Usage(format!(
            "{} was made from the inputs' {}, not their group '{}' (--group): the new files must be read as the \
             store's were",
            store.display(),
            manifest
                .group
                .as_deref()
                .map_or("root".to_string(), |g| format!("group '{g}'")),
            opts.group.as_deref().unwrap_or_default()
        )));
    }
    let group = manifest.group.clone().unwrap_or_default();
    let mut new_files = Vec::new();
    let mut rewritten = 0;
    for f in &files {
        let fp = manifest::file_fingerprint(f).map_err(|e| InputError::Io {
            path: f.clone(),
            message: e.to_string(),
        })?;
        let coordinate = match &manifest.concat_dim {
            Some(dim) => scan::coordinate_hash(f, &group, dim)?,
            None => None,
        };
        let path = origin(f).unwrap_or_else(|| f.display().to_string());
        let known = manifest.inputs.iter().find(|i| i.is(&fp, coordinate.as_deref()));
        let sameness = match known {
            Some(k) => Some(k.holds_the_same(f).map_err(|e| InputError::Io {
                path: f.clone(),
                message: e.to_string(),
            })?),
            None => None,
        };
        match (sameness, manifest.inputs.iter().find(|i| i.path == path)) {
            (Some(Sameness::Untouched), _) => summary.already_present += 1,
            (Some(Sameness::Rewritten), _) => {
                summary.already_present += 1;
                rewritten += 1;
            }
            (Some(Sameness::Changed), _) | (None, Some(_)) => {
                return Err(inconsistent(format!(
                    "{path} is already in the store but its contents changed since; a store cannot take back data \
                     (convert again with --overwrite to rebuild it)"
                )));
            }
            (None, None) => new_files.push(f.clone()),
        }
    }
    if rewritten > 0 {
        summary.notes.push(format!(
            "{rewritten} file(s) already in the store were modified since they were converted, but hold the same bytes"
        ));
    }
    if new_files.is_empty() {
        let n = stored_length(&store, manifest.concat_dim.as_deref())?;
        summary.length = (n, n);
        summary.seconds = started.elapsed().as_secs_f64();
        return Ok(summary);
    }
    let concat_dim = manifest.concat_dim.clone().or(opts.concat_dim.clone()).ok_or_else(|| {
        existing::invalid(
            store.display(),
            "has no concat dimension recorded; pass --concat-dim DIM to name the dimension to append along".into(),
        )
    })?;
    let mut inv_new = scan::scan(
        &new_files,
        &scan::ScanOptions {
            concat_dim: Some(concat_dim.clone()),
            refuse_encoding_drift: opts.refuse_encoding_drift,
            group: manifest.group.clone(),
        },
    )?;
    let (format, found) = existing::read_arrays(&store)?;
    let found: HashMap<String, FoundArray> = found.into_iter().map(|a| (a.path.clone(), a)).collect();
    repeat_as_stored(&mut inv_new, &found, &concat_dim);
    pad_strings_as_stored(&mut inv_new, &found, &mut summary.notes)?;
    keep_stored_coordinate_types(&mut inv_new, &found);
    let existing_len = check_structure(&inv_new, &found, &concat_dim)?;
    check_units_and_sign(&inv_new, &found)?;
    check_static_values(&store, &inv_new, &found)?;
    let mut inv = inv_new.clone();
    resolved.annotate(&mut inv);
    let reencoded = align_time_units(&mut inv, &found, &mut summary.notes)?;
    align_packing(&mut inv, &found, stored_format(&store), &mut summary.notes)?;
    check_dtypes(&inv, &found)?;
    let range = check_continuation(&store, &mut inv, &found, &concat_dim, existing_len, opts.allow_gaps)?;
    check_re_encoded_times(&inv)?;
    extend(&mut inv, existing_len);

    let groups = inv.root.walk();
    let prepared = prepare(&inv, &groups, &found, existing_len, copts)?;
    // What is appended, the same whether it is written, prepared for tasks or a dry run.
    summary.appended = inv.files.iter().map(SourceFile::shown).collect();
    summary.length = (existing_len, existing_len + inv.concat_extent());
    summary.range = range;
    summary.notes.extend(prepared.notes.iter().cloned());
    if opts.dry_run {
        summary.dry_run = true;
        summary.seconds = started.elapsed().as_secs_f64();
        return Ok(summary);
    }
    let inputs = crate::records::input_entries(&inv)?;
    if store.is_transactional() {
        // An Icechunk session takes chunks only inside an array's shape: grow it first
        // (uncommitted, so readers still see the old shapes).
        for (path, shape) in grown_shapes(&inv, &prepared) {
            let key = meta::join(&path, "zarr.json");
            if let Some(doc) = existing::read_json(&store, &key)? {
                store.put(&key, Bytes::from(with_shape(&doc, &shape).to_pretty()))?;
            }
        }
    }
    if let Some(tasks) = opts.tasks {
        if marker.is_some() && !copts.restart {
            return Err(existing::invalid(
                store.display(),
                "holds an interrupted append; finish it by running the same append again, or pass --restart to \
                 discard it"
                    .into(),
            ));
        }
        let settings = ConvertOptions {
            format: stored_format(&store),
            ..copts.clone()
        };
        let input_store = opts.input_store.clone();
        crate::job::save_append(&store, &inv, inputs, existing_len, &settings, tasks, input_store)?;
        // As the tasks will: the plan made again from what the job saved.
        let saved = prepare_from_store(&inv, &store, existing_len, &settings)?;
        summary
            .notes
            .extend(crate::share::write_spanning(&store, &inv, &saved, &settings, tasks)?);
        summary.prepared_tasks = Some(tasks);
        summary.seconds = started.elapsed().as_secs_f64();
        return Ok(summary);
    }
    let inputs_fp = crate::records::inputs_fingerprint(&inputs);
    let plan_fp = blake3::hash(format!("{existing_len}:{reencoded}:{}", prepared.jobs.len()).as_bytes())
        .to_hex()
        .to_string();
    let (done, segments) = match marker {
        Some(m)
            if !copts.restart
                && m.get("inputs_fingerprint").and_then(Json::as_str) == Some(inputs_fp.as_str())
                && m.get("plan_fingerprint").and_then(Json::as_str) == Some(plan_fp.as_str()) =>
        {
            if store.is_transactional() && !store.resume_session()? {
                // The interrupted append committed nothing (else `finish_commit` settled
                // it) and left no session to resume: what its journal lists went with its
                // session. Write it all again.
                journal::clear(&store, journal::JOURNAL_PREFIX)?;
                (HashMap::new(), 0)
            } else {
                let (entries, segments) = journal::load(&store)?;
                let sizes: HashMap<String, u64> = store.list("")?.into_iter().map(|l| (l.key, l.size)).collect();
                let done = entries
                    .into_iter()
                    .filter(|(k, e)| e.blake3.is_none() || sizes.get(k) == Some(&e.size))
                    .collect();
                (done, segments)
            }
        }
        Some(_) if !copts.restart => {
            return Err(existing::invalid(
                store.display(),
                "holds an interrupted append of other files; pass --restart to discard it".into(),
            ));
        }
        other => {
            if other.is_some() {
                journal::clear(&store, journal::JOURNAL_PREFIX)?;
            }
            let m = crate::json_obj! {
                "tool" => format!("nc2zarr {}", env!("CARGO_PKG_VERSION")),
                "mode" => "append",
                "inputs_fingerprint" => inputs_fp.as_str(),
                "plan_fingerprint" => plan_fp.as_str(),
                "run" => crate::records::new_run(&format!("{inputs_fp}:{plan_fp}")),
            };
            store.put(manifest::IN_PROGRESS_KEY, Bytes::from(m.to_pretty()))?;
            (HashMap::new(), 0)
        }
    };
    let total: u64 = prepared
        .jobs
        .iter()
        .map(|j| {
            let v = &groups[j.group].vars[j.var];
            let axis = j.append.map_or(0, |a| a.axis);
            v.nbytes() / v.shape[axis].max(1) * (v.shape[axis] - existing_len)
        })
        .sum();
    let copts_quiet = ConvertOptions {
        format,
        ..copts.clone()
    };

    // The new files' bytes are hashed beside the append, as convert does.
    let (collected, hashes) = std::thread::scope(|scope| {
        let hashing = scope.spawn(|| crate::records::content_hashes(&inv));
        let collected = crate::write::run_engine(
            &inv,
            &groups,
            &prepared,
            &store,
            &copts_quiet,
            done,
            segments,
            total,
            None,
        );
        (collected, hashing.join().expect("hashing thread"))
    });
    let collected = collected?;
    let mut inputs = inputs;
    crate::records::record_content(&mut inputs, hashes?);

    // Commit: array documents with the new shapes, the manifest, consolidated metadata last.
    let mut manifest = manifest;
    for (job, entry) in prepared.jobs.iter().zip(collected.arrays) {
        merge_entry(&mut manifest, &job.path, entry);
    }
    manifest.inputs.extend(inputs);
    // A store made from one file records the dimension it was first appended along.
    manifest.concat_dim = manifest.concat_dim.clone().or_else(|| inv.concat_dim.clone());
    let run = crate::records::current_run(&store)?;
    let meta_bytes = commit(&store, format, &inv, &prepared, &manifest, &run)?;
    summary.objects = collected.objects;
    summary.resumed_objects = collected.resumed;
    summary.bytes_out = collected.bytes_out + meta_bytes;
    summary.bytes_in = total;
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

/// The store's length along `concat_dim` (0 without one).
fn stored_length(store: &Target, concat_dim: Option<&str>) -> Result<u64> {
    let Some(dim) = concat_dim else { return Ok(0) };
    let (_, found) = existing::read_arrays(store)?;
    Ok(found
        .iter()
        .find_map(|a| a.dims.iter().position(|d| d == dim).map(|i| a.shape[i]))
        .unwrap_or(0))
}

/// Variables the new files hold without the concat dimension that the store holds along
/// it (their values differed between the files it was made of) grow like the others,
/// each new file's values repeated over its steps.
fn repeat_as_stored(inv: &mut Inventory, found: &HashMap<String, FoundArray>, concat_dim: &str) {
    let len = inv.concat_extent();
    for g in inv.root.walk().iter().map(|g| g.path.clone()).collect::<Vec<_>>() {
        let group = find_group_mut(&mut inv.root, &g);
        let path = |name: &str| group.var_path(name);
        let repeat: Vec<String> = group
            .vars
            .iter()
            .filter(|v| v.concat_axis.is_none() && v.unsupported.is_none())
            .filter(|v| {
                found.get(&path(&v.name)).is_some_and(|a| {
                    a.dims.first().map(String::as_str) == Some(concat_dim) && a.dims[1..] == v.dims[..]
                })
            })
            .map(|v| v.name.clone())
            .collect();
        for v in group.vars.iter_mut().filter(|v| repeat.contains(&v.name)) {
            v.repeat_along(concat_dim, len);
        }
    }
}

/// Char arrays whose strings the store holds longer than the new files do are read
/// NUL-padded to the store's length, as the files of a conversion are. New files that
/// declare longer strings are read at the store's length when what lies beyond it is
/// NUL padding in every one of them (a wider `name_strlen` holding the same names);
/// longer strings themselves are refused: the store's arrays cannot widen.
fn pad_strings_as_stored(
    inv: &mut Inventory,
    found: &HashMap<String, FoundArray>,
    notes: &mut Vec<String>,
) -> Result<()> {
    let files = inv.files.clone();
    for g in inv.root.walk().iter().map(|g| g.path.clone()).collect::<Vec<_>>() {
        let group = find_group_mut(&mut inv.root, &g);
        let source = group.source_path().to_string();
        let mut widened: Vec<(String, u64, u64)> = Vec::new();
        for v in group
            .vars
            .iter_mut()
            .filter(|v| v.source_dtype == DType::Char && !v.shape.is_empty())
        {
            let path = if g.is_empty() {
                v.name.clone()
            } else {
                format!("{g}/{}", v.name)
            };
            let Some(a) = found.get(&path).filter(|a| a.dims == v.dims) else {
                continue; // reported by check_structure
            };
            let last = v.shape.len() - 1;
            let (new, stored) = (v.shape[last], a.shape[last]);
            if new > stored {
                let holding: Vec<&SourceFile> = match &v.files {
                    Some(indices) => indices.iter().map(|&i| &files[i]).collect(),
                    None => files.iter().collect(),
                };
                for f in holding {
                    beyond_is_padding(f, &source, v, stored).map_err(|why| {
                        inconsistent(format!(
                            "variable '{path}' holds strings longer than the store's {stored} characters ('{}') in {}: \
                             {why}; the store's arrays cannot widen: convert all the files again",
                            v.dims[last],
                            f.shown()
                        ))
                    })?;
                }
                v.shape[last] = stored;
            } else if new < stored {
                let lens = v
                    .string_lens
                    .take()
                    .unwrap_or_else(|| vec![new; held_by(v, files.len())]);
                v.string_lens = Some(lens);
                v.shape[last] = stored;
                widened.push((v.dims[last].clone(), new, stored));
            }
        }
        for (dim, new, stored) in widened {
            if let Some(d) = group.dims.iter_mut().find(|d| d.name == dim && d.len != stored) {
                notes.push(format!(
                    "dimension '{dim}': the new files' strings (up to {new}) are padded with NUL bytes to the \
                     store's {stored}"
                ));
                d.len = stored;
            }
        }
    }
    Ok(())
}

/// Checks that in file `f` the char array `v` (of group `source` in the file) holds only
/// NUL bytes past the first `keep` characters of its strings; says what it holds else.
fn beyond_is_padding(f: &SourceFile, source: &str, v: &VarInfo, keep: u64) -> std::result::Result<(), String> {
    let file = crate::nc::open_input(&f.path).map_err(|e| e.to_string())?;
    let var = file
        .group_at(source)
        .and_then(|g| g.variable(&v.name))
        .map_err(|e| e.message)?;
    let mut count: Vec<u64> = var
        .header()
        .map_err(|e| e.message)?
        .dims
        .iter()
        .map(|d| d.len)
        .collect();
    let last = count.len() - 1;
    if count[last] <= keep {
        return Ok(());
    }
    let mut start = vec![0u64; count.len()];
    start[last] = keep;
    count[last] -= keep;
    let mut tail = vec![0u8; count.iter().product::<u64>() as usize];
    var.read_raw(&start, &count, &mut tail).map_err(|e| e.message)?;
    match tail.iter().position(|&b| b != 0) {
        None => Ok(()),
        Some(_) => Err(format!("a string there is longer than {keep} characters")),
    }
}

/// A root coordinate the new files store as another plain number type than the store
/// (`lat` double in new files, float in the store) is read into the store's type, as a
/// conversion keeps the first file's; its values must then still equal the store's
/// (see `check_static_values`), each converted exactly or refused.
fn keep_stored_coordinate_types(inv: &mut Inventory, found: &HashMap<String, FoundArray>) {
    let plain = |t: DType| t.is_float() || t.is_integer();
    for v in inv.root.vars.iter_mut() {
        let coordinate = v.dims.len() == 1 && v.dims[0] == v.name && v.concat_axis.is_none();
        if let Some(a) = found.get(&v.name)
            && coordinate
            && v.unsupported.is_none()
            && a.dtype != v.dtype
            && plain(a.dtype)
            && plain(v.dtype)
            && v.unpack.is_none()
        {
            v.dtype = a.dtype;
        }
    }
}

/// Checks the new files against the store; returns the store's length along the concat dim.
fn check_structure(inv: &Inventory, found: &HashMap<String, FoundArray>, concat_dim: &str) -> Result<u64> {
    let mut existing_len = None;
    for (g, v) in inv.variables() {
        let path = g.var_path(&v.name);
        if v.unsupported.is_some() {
            continue;
        }
        let Some(a) = found.get(&path) else {
            return Err(inconsistent(format!(
                "variable '{path}' of {} is not in the store",
                inv.files[0].path.display()
            )));
        };
        if a.dims != v.dims {
            return Err(inconsistent(format!(
                "variable '{path}' has dimensions ({}) in the new files but ({}) in the store",
                v.dims.join(", "),
                a.dims.join(", ")
            )));
        }
        for (axis, (n_new, n_old)) in v.shape.iter().zip(&a.shape).enumerate() {
            if Some(axis) == v.concat_axis {
                match existing_len {
                    None => existing_len = Some(*n_old),
                    Some(l) if l != *n_old => {
                        return Err(existing::invalid(
                            &path,
                            format!("length {n_old} along '{concat_dim}' differs from {l}"),
                        ));
                    }
                    _ => {}
                }
            } else if n_new != n_old {
                return Err(inconsistent(format!(
                    "dimension '{}' of variable '{path}' has length {n_new} in the new files but {n_old} in the store",
                    v.dims[axis]
                )));
            }
        }
    }
    // Arrays without the concat dimension (a grid or mask from a file of its own) stay
    // as they are; every array along it must grow.
    let mut missing: Vec<&String> = found
        .iter()
        .filter(|(p, a)| {
            a.dims.iter().any(|d| d == concat_dim) && !inv.variables().iter().any(|(g, v)| &g.var_path(&v.name) == *p)
        })
        .map(|(p, _)| p)
        .collect();
    missing.sort();
    if !missing.is_empty() {
        return Err(inconsistent(format!(
            "the store has variable(s) {} that the new files lack",
            missing.iter().map(|p| format!("'{p}'")).collect::<Vec<_>>().join(", ")
        )));
    }
    existing_len.ok_or_else(|| inconsistent(format!("no variable uses the concat dimension '{concat_dim}'")))
}

/// Variables without the concat dimension (grids, masks) must hold the store's values.
fn check_static_values(store: &Target, inv: &Inventory, found: &HashMap<String, FoundArray>) -> Result<()> {
    let format = stored_format(store);
    for (g, v) in inv.variables() {
        let path = g.var_path(&v.name);
        if v.concat_axis.is_some() || v.unsupported.is_some() {
            continue;
        }
        let Some(a) = found.get(&path) else { continue };
        // Times in other units than the store's compare as instants, in the store's units.
        let mut retimed = v.clone();
        if let Some(t) = to_store_units(g, v, &path, found)?
            && t.to_store != (1.0, 0.0)
        {
            retimed.time_fix = Some(vec![t.to_store; held_by(v, inv.files.len())]);
            retimed.dtype = a.dtype;
        }
        let problems = crate::verify::compare_with_source(store, format, a, (inv, g, &retimed))?;
        if let Some(p) = problems.first() {
            let dim = inv.concat_dim.as_deref().unwrap_or("the concat dimension");
            return Err(inconsistent(format!(
                "variable '{path}' does not depend on '{dim}' but {} holds other values than the store ({p}); \
                 the new files are on another grid, or '{path}' changes from file to file: then convert all the \
                 files again (nc2zarr stores such a variable along '{dim}'; a store that holds it without \
                 '{dim}' cannot grow it)",
                inv.files[0].path.display()
            )));
        }
    }
    Ok(())
}

/// New files must pack each variable as the store does. Where the store holds a
/// variable unpacked (as floats without packing attributes), new packed files are
/// unpacked into it; where the store holds packed values, new files packed otherwise
/// are refused: their raw values would mean something else under the store's attributes.
fn align_packing(
    inv: &mut Inventory,
    found: &HashMap<String, FoundArray>,
    format: ZarrFormat,
    notes: &mut Vec<String>,
) -> Result<()> {
    let files: Vec<String> = inv.files.iter().map(|f| f.path.display().to_string()).collect();
    for g in inv.root.walk().iter().map(|g| g.path.clone()).collect::<Vec<_>>() {
        let group = find_group_mut(&mut inv.root, &g);
        let gpath = group.path.clone();
        for v in group.vars.iter_mut().filter(|v| v.unsupported.is_none()) {
            let path = if gpath.is_empty() {
                v.name.clone()
            } else {
                format!("{gpath}/{}", v.name)
            };
            let Some(a) = found.get(&path) else { continue };
            if !(a.dtype.is_float() || a.dtype.is_integer()) {
                continue;
            }
            let stored = a.coding_attrs(format);
            let new = packing::coding_attrs(&v.attrs);
            if v.unpack.is_none() && a.dtype == v.dtype && packing::same_coding(&new, &stored) {
                continue;
            }
            if v.unpack.is_none()
                && packing::same_coding(&new, &stored)
                && packing::promote(v.dtype, a.dtype) == a.dtype
            {
                // A narrower type than the store's: converted exactly, as numpy would.
                if v.file_dtypes.is_none() {
                    v.file_dtypes = Some(vec![v.source_dtype; held_by(v, files.len())]);
                }
                notes.push(format!(
                    "variable '{path}': the new files hold {}, converted to the store's {}",
                    v.dtype.cdl_name(),
                    a.dtype.cdl_name()
                ));
                v.dtype = a.dtype;
                continue;
            }
            if v.unpack.is_none() && packing::same_coding(&new, &stored) {
                continue; // only the type differs, and it cannot be converted: check_dtypes says so
            }
            let store_unpacked =
                a.dtype.is_float() && !stored.iter().any(|(k, _)| k == "scale_factor" || k == "add_offset");
            if !store_unpacked {
                return Err(inconsistent(format!(
                    "variable '{path}' is stored packed ({}) but {} packs it otherwise ({}); appended raw values \
                     would change meaning. Convert the store again from all files (differently packed files are \
                     then stored unpacked)",
                    packing::describe(&stored),
                    files[v.files.as_ref().map_or(0, |f| f[0])],
                    packing::describe(&new)
                )));
            }
            if v.time_fix.is_some() {
                // Unpacking would skip the re-encoding into the store's units.
                return Err(inconsistent(format!(
                    "variable '{path}': the new files give it other time units than the store and code it otherwise \
                     ({} against the store's {}); nc2zarr does not unpack and re-encode times at once: give the new \
                     files the store's units or coding",
                    packing::describe(&new),
                    packing::describe(&stored)
                )));
            }
            if v.unpack.is_none() {
                let decoding = Decoding::of(v.source_dtype, &new);
                v.unpack = Some(vec![decoding; held_by(v, files.len())]);
            }
            v.dtype = a.dtype;
            notes.push(format!(
                "variable '{path}': the store holds it unpacked ({}), so the new files' values are decoded into it",
                a.dtype.cdl_name()
            ));
        }
    }
    Ok(())
}

/// How many of the `all` new files hold `v` (the length of its per-file lists).
fn held_by(v: &VarInfo, all: usize) -> usize {
    v.files.as_ref().map_or(all, Vec::len)
}

/// Every variable must have the store's element type (time already aligned).
fn check_dtypes(inv: &Inventory, found: &HashMap<String, FoundArray>) -> Result<()> {
    for (g, v) in inv.variables() {
        let path = g.var_path(&v.name);
        if let Some(a) = found.get(&path)
            && v.unsupported.is_none()
            && a.dtype != v.dtype
        {
            return Err(inconsistent(format!(
                "variable '{path}' is {} in the new files but {} in the store",
                v.dtype.cdl_name(),
                a.dtype.cdl_name()
            )));
        }
    }
    Ok(())
}

/// Units (and calendar) of a variable: its own, or those of the variable naming it as `bounds`.
fn units_of(group: &GroupInfo, v: &VarInfo) -> Option<(String, Option<String>)> {
    let text = |a: &crate::model::Attrs, k: &str| attr(a, k).and_then(AttrValue::as_text).map(str::to_string);
    let parent = group
        .vars
        .iter()
        .find(|p| crate::model::names_as_bounds(&p.attrs, &v.name));
    let parent_calendar = || parent.and_then(|p| text(&p.attrs, "calendar"));
    match text(&v.attrs, "units") {
        // Bounds without a calendar of their own take their variable's (CF, xarray).
        Some(u) => Some((u, text(&v.attrs, "calendar").or_else(parent_calendar))),
        None => Some((text(&parent?.attrs, "units")?, parent_calendar())),
    }
}

fn stored_text(a: &FoundArray, k: &str) -> Option<String> {
    a.attrs.get(k).and_then(Json::as_str).map(str::to_string)
}

/// New files must give a variable along the concat dimension the store's units and
/// `_Unsigned` marking, as convert requires of all files: values in other units (`degC`
/// into a `degK` store), or bytes of other signedness, would be read as the store's.
/// Time units are re-encoded instead (see [`align_time_units`]).
fn check_units_and_sign(inv: &Inventory, found: &HashMap<String, FoundArray>) -> Result<()> {
    for (g, v) in inv.variables() {
        let path = g.var_path(&v.name);
        let (Some(a), Some(_)) = (found.get(&path), v.concat_axis) else {
            continue;
        };
        let text = |k: &str| attr(&v.attrs, k).and_then(AttrValue::as_text).map(str::to_string);
        let file = || inv.files_of(v).first().map(|f| f.shown()).unwrap_or_default();
        if let (Some(new), Some(stored)) = (text("units"), stored_text(a, "units"))
            && new != stored
            && !(TimeUnits::parse(&new).is_some() && TimeUnits::parse(&stored).is_some())
        {
            return Err(inconsistent(format!(
                "variable '{path}' has units {new:?} in {} but {stored:?} in the store; appended, its values \
                 would be read as {stored:?}. Give the new files the store's units",
                file()
            )));
        }
        let unsigned = |t: Option<String>| t.is_some_and(|t| t.eq_ignore_ascii_case("true"));
        let (new, stored) = (unsigned(text("_Unsigned")), unsigned(stored_text(a, "_Unsigned")));
        if new != stored {
            let marked = |m: bool| if m { "marked _Unsigned" } else { "not marked _Unsigned" };
            return Err(inconsistent(format!(
                "variable '{path}' is {} in {} but {} in the store; appended, its bytes would be read with the \
                 other sign. Convert the files that agree into separate stores",
                marked(new),
                file(),
                marked(stored)
            )));
        }
    }
    Ok(())
}

/// Re-encodes time variables of the new files into the store's units. Returns how many.
fn align_time_units(
    inv: &mut Inventory,
    found: &HashMap<String, FoundArray>,
    notes: &mut Vec<String>,
) -> Result<usize> {
    let mut changed = 0;
    let paths: Vec<(String, String)> = inv
        .root
        .walk()
        .iter()
        .map(|g| (g.path.clone(), g.path.clone()))
        .collect();
    for (gpath, _) in paths {
        let group = find_group(&inv.root, &gpath).clone();
        for v in group
            .vars
            .iter()
            .filter(|v| v.concat_axis.is_some() && v.unsupported.is_none())
        {
            let path = group.var_path(&v.name);
            let Some(StoreTimes {
                to_store,
                units,
                store_units,
            }) = to_store_units(&group, v, &path, found)?
            else {
                continue;
            };
            let store_dtype = found.get(&path).map_or(v.dtype, |a| a.dtype);
            if to_store == (1.0, 0.0) && v.time_fix.is_none() && store_dtype == v.dtype {
                continue;
            }
            let per_file: Vec<(f64, f64)> = (0..held_by(v, inv.files.len()))
                .map(|i| {
                    let (s1, o1) = v.time_fix.as_ref().map_or((1.0, 0.0), |f| f[i]);
                    (s1 * to_store.0, o1 * to_store.0 + to_store.1)
                })
                .collect();
            // Whether the store's type holds each re-encoded value (144 hours as 6 whole
            // days, not 6.5 days as int32) is checked value by value as they are read.
            let var = find_group_mut(&mut inv.root, &gpath)
                .vars
                .iter_mut()
                .find(|x| x.name == v.name)
                .expect("exists");
            var.time_fix = Some(per_file);
            var.dtype = store_dtype;
            changed += 1;
            if to_store != (1.0, 0.0) {
                notes.push(format!(
                    "variable '{path}': new values re-encoded from {units:?} to the store's {store_units:?}"
                ));
            }
        }
    }
    Ok(changed)
}

/// How times of variable `v` (at `path`, of `group` of the new files) are re-encoded into
/// the store's units.
struct StoreTimes {
    /// `(scale, offset)` from the new files' units into the store's.
    to_store: (f64, f64),
    /// The new files' units.
    units: String,
    /// The store's units.
    store_units: String,
}

/// [`StoreTimes`] of variable `v`, when both it and the store's array (or the array it
/// bounds) have time units; refuses calendars that disagree.
fn to_store_units(
    group: &GroupInfo,
    v: &VarInfo,
    path: &str,
    found: &HashMap<String, FoundArray>,
) -> Result<Option<StoreTimes>> {
    let Some((units, calendar)) = units_of(group, v) else {
        return Ok(None);
    };
    let Some(new_units) = TimeUnits::parse(&units) else {
        return Ok(None);
    };
    // The store's units and calendar: its own, or those of the array naming it as bounds.
    let stored = |key: &str| {
        found.get(path).and_then(|a| stored_text(a, key)).or_else(|| {
            group
                .vars
                .iter()
                .find(|p| crate::model::names_as_bounds(&p.attrs, &v.name))
                .and_then(|p| found.get(&group.var_path(&p.name)))
                .and_then(|a| stored_text(a, key))
        })
    };
    let Some(store_units) = stored("units") else {
        return Ok(None);
    };
    let Some(target) = TimeUnits::parse(&store_units) else {
        return Ok(None);
    };
    let cal = Calendar::parse(calendar.as_deref()).map_err(|e| inconsistent(format!("variable '{path}': {e}")))?;
    let store_calendar = stored("calendar");
    let agree = Calendar::parse(store_calendar.as_deref())
        .is_ok_and(|c| c.agrees_with(cal, &new_units) && c.agrees_with(cal, &target));
    if !agree {
        return Err(inconsistent(format!(
            "variable '{path}' uses calendar {:?} in the new files but {:?} in the store: the same numbers \
             are other dates; set the store's calendar in the new files",
            calendar.as_deref().unwrap_or("standard (none given)"),
            store_calendar.as_deref().unwrap_or("standard (none given)"),
        )));
    }
    let to_store = new_units
        .transform_to(&target, cal)
        .map_err(|e| inconsistent(format!("variable '{path}': {e}")))?;
    // Packed times stay packed (the store's packing is the new files'): the raw
    // values are re-encoded.
    let to_store = crate::packing::on_packed(to_store, &v.attrs);
    Ok(Some(StoreTimes {
        to_store,
        units,
        store_units,
    }))
}

fn find_group<'g>(root: &'g GroupInfo, path: &str) -> &'g GroupInfo {
    root.walk().into_iter().find(|g| g.path == path).expect("group exists")
}

fn find_group_mut<'g>(root: &'g mut GroupInfo, path: &str) -> &'g mut GroupInfo {
    root.group_mut(path).expect("group exists")
}

/// Checks that the new coordinate values continue the store's (later, no overlap, no
/// gap unless allowed); returns the new range in the store's units.
fn check_continuation(
    store: &Target,
    inv: &mut Inventory,
    found: &HashMap<String, FoundArray>,
    concat_dim: &str,
    existing_len: u64,
    allow_gaps: bool,
) -> Result<Option<(f64, f64, String)>> {
    let Some(stored) = found.get(concat_dim) else {
        return Ok(None);
    };
    let Some(var) = inv
        .root
        .vars
        .iter()
        .find(|v| v.name == concat_dim && v.dims.len() == 1)
        .cloned()
    else {
        return Ok(None);
    };
    if existing_len == 0 {
        return Ok(None);
    }
    // The store's values of the coordinate in a range of steps.
    let values = existing::numbers;
    let os = stored.object_shape[0];
    let format = stored_format(store);
    let stored_values = |range: std::ops::Range<u64>| -> Result<Vec<f64>> {
        let mut out = Vec::new();
        for c in range.start / os..range.end.div_ceil(os) {
            let key = meta::chunk_key(format, concat_dim, &[c]);
            let block = match store.get(&key)? {
                Some(b) => stored.codec.decode(&b, &stored.object_shape),
                None => stored.codec.decode_fill(&stored.object_shape),
            }
            .map_err(|e| Error::Internal(format!("decoding {key}: {e}")))?;
            let from = (c * os).max(range.start);
            let to = ((c + 1) * os).min(range.end);
            out.extend_from_slice(&values(&block, stored.dtype)[(from - c * os) as usize..(to - c * os) as usize]);
        }
        Ok(out)
    };
    let tail = stored_values(existing_len.saturating_sub(2)..existing_len)?;
    let last = tail[tail.len() - 1];
    let prev = tail[0];
    // The new values, in the store's units.
    let group = inv.root.clone();
    let mut reader = crate::read::Reader::new();
    let n = inv.concat_extent();
    let block = reader.read(inv, &group, &var, &[0], &[n])?;
    let new = values(&block, var.dtype);
    let (Some(&first), Some(&end)) = (new.first(), new.last()) else {
        return Ok(None);
    };
    let units = stored_text(stored, "units").unwrap_or_default();
    // ", UNITS" after numbers, or nothing when the coordinate has no units.
    let in_units = if units.is_empty() {
        String::new()
    } else {
        format!(", {units}")
    };
    let file_at = |i: usize| {
        inv.files
            .iter()
            .find(|f| f.concat_start <= i as u64 && (i as u64) < f.concat_start + f.concat_len)
            .map(SourceFile::shown)
            .unwrap_or_default()
    };
    if let Some(i) = new.iter().position(|x| x.is_nan()) {
        return Err(inconsistent(format!(
            "the new files' '{concat_dim}' holds a missing (NaN) value at step {i} (in {}): a coordinate needs a value \
             at every step",
            file_at(i)
        )));
    }
    // Which way the axis runs: the store's, else the new files' (a store of one step).
    let direction = |a: f64, b: f64| (a != b).then_some(b > a);
    let stored_up = (existing_len >= 2).then(|| direction(prev, last)).flatten();
    let new_up = new.get(1).and_then(|&second| direction(first, second));
    if let (Some(s), Some(n)) = (stored_up, new_up)
        && s != n
    {
        return Err(inconsistent(format!(
            "the store's '{concat_dim}' {} ({prev} then {last}{in_units}) but the new files' {} ({first} then {}): \
             appended, the axis would not be monotonic",
            if s { "increases" } else { "decreases" },
            if n { "increases" } else { "decreases" },
            new[1]
        )));
    }
    let up = stored_up.or(new_up).unwrap_or(true);
    // The new files' own axis runs one way, a value at every step, as convert checks.
    let wrong_way = |i: usize| if up { new[i] <= new[i - 1] } else { new[i] >= new[i - 1] };
    if let Some(i) = (1..new.len()).find(|&i| wrong_way(i)) {
        let file = file_at(i);
        return Err(inconsistent(format!(
            "the new files' '{concat_dim}' is not strictly {} at steps {} and {} ({} then {}{in_units}; in {file}): \
             appended, the store's axis would not be monotonic. Check the file's '{concat_dim}' values (a fill value \
             or a step out of order)",
            if up { "increasing" } else { "decreasing" },
            i - 1,
            i,
            new[i - 1],
            new[i]
        )));
    }
    // Measured along the axis: a decreasing one continues below its last value. Dates
    // written as numbers (`day as %Y%m%d.%f`) are measured in days.
    let linear = |x: f64| crate::cftime::absolute_day(&units, x).unwrap_or(x);
    let (first_l, last_l, prev_l) = (linear(first), linear(last), linear(prev));
    let (first_ahead, step) = if up {
        (first_l - last_l, last_l - prev_l)
    } else {
        (last_l - first_l, prev_l - last_l)
    };
    if first_ahead <= 0.0 {
        let stored_all = stored_values(0..existing_len)?;
        return Err(overlap_refusal(concat_dim, &new, &stored_all, up, &in_units, file_at));
    }
    if step > 0.0 && first_ahead > 1.5 * step && !allow_gaps {
        return Err(inconsistent(format!(
            "the new files start at {first} but the store ends at {last} with steps of {step}{in_units}: \
             {} step(s) are missing; append the missing files first, or pass --allow-gaps",
            (first_ahead / step).round() as i64 - 1
        )));
    }
    Ok(Some((first, end, units)))
}

/// The refusal of new files whose first steps do not lie beyond the store's last
/// (`stored`, in the store's order; `up` when the axis increases): it says whether the
/// steps are already in the store (all of them, or only the first few, which `ncks` can
/// drop), or fall in a gap of the store, which an append cannot fill.
fn overlap_refusal(
    concat_dim: &str,
    new: &[f64],
    stored: &[f64],
    up: bool,
    in_units: &str,
    file_at: impl Fn(usize) -> String,
) -> Error {
    let last = stored[stored.len() - 1];
    let behind = new
        .iter()
        .take_while(|&&x| if up { x <= last } else { x >= last })
        .count();
    let held = |x: &f64| stored.iter().any(|s| s == x);
    let first = new[0];
    let (lo, hi) = stored.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
        (lo.min(x), hi.max(x))
    });
    let message = if let Some(i) = (0..behind).find(|&i| !held(&new[i])) {
        if (lo..=hi).contains(&new[i]) {
            format!(
                "the new files' '{concat_dim}' value {}{in_units} (in {}) lies inside the store's range ({} .. \
                 {last}) at a step the store does not hold (a gap left by --allow-gaps?): an append only adds steps \
                 after the last one. Convert again with --overwrite to fill the gap, and append the files after it \
                 separately",
                new[i],
                file_at(i),
                stored[0]
            )
        } else {
            format!(
                "the new files start at {first}{in_units} (in {}), before the store's first step {} (it runs from {} \
                 to {last}): an append only adds steps after the last one. Convert all the files together \
                 (--overwrite) to put them first",
                file_at(0),
                stored[0],
                stored[0]
            )
        }
    } else if behind == new.len() {
        format!(
            "every step of the new files ({first} .. {}{in_units}) is already in the store, which ends at {last}: \
             remove the files whose data is already in the store",
            new[new.len() - 1]
        )
    } else if file_at(behind - 1) != file_at(0) {
        format!(
            "the new files' first {behind} step(s) ({first} .. {}{in_units}, in {} .. {}) are already in the store, \
             which ends at {last}: remove the files whose data is all in the store, and drop the shared steps from \
             the one that continues it",
            new[behind - 1],
            file_at(0),
            file_at(behind - 1)
        )
    } else {
        let file = file_at(0);
        format!(
            "the first {behind} step(s) of {file} ({first} .. {}{in_units}) are already in the store, which ends at \
             {last}: drop them from the file (e.g. `ncks -d {concat_dim},{behind}, {file} trimmed.nc`) and append the \
             rest",
            new[behind - 1]
        )
    };
    inconsistent(message)
}

/// Reads every re-encoded time variable of the new files (bounds, auxiliary times)
/// before anything is written, so that a value the store's type cannot hold is refused
/// with the store untouched, not in the middle of the append. Variables over 256 MiB are
/// left to the check made as they are written.
fn check_re_encoded_times(inv: &Inventory) -> Result<()> {
    let mut reader = crate::read::Reader::new();
    for (g, v) in inv.variables() {
        let bytes = v.shape.iter().product::<u64>() * v.dtype.planning_size();
        if v.time_fix.is_none() || v.unsupported.is_some() || bytes > 256 << 20 {
            continue;
        }
        reader.read(inv, g, v, &vec![0; v.shape.len()], &v.shape)?;
    }
    Ok(())
}

/// Shifts the new files behind the existing data and grows the concat dimension.
fn extend(inv: &mut Inventory, existing_len: u64) {
    for f in &mut inv.files {
        f.concat_start += existing_len;
    }
    fn grow(g: &mut GroupInfo, existing_len: u64) {
        for d in g.dims.iter_mut().filter(|d| d.concat) {
            d.len += existing_len;
        }
        for v in &mut g.vars {
            if let Some(axis) = v.concat_axis {
                v.shape[axis] += existing_len;
            }
        }
        for c in &mut g.groups {
            grow(c, existing_len);
        }
    }
    grow(&mut inv.root, existing_len);
}

/// The append jobs of `inv` (new files already shifted behind the `existing_len` steps
/// of `store`), with the layouts and codecs the store's metadata gives: what a task of
/// a split append writes. The store's metadata does not change until the commit.
pub fn prepare_from_store(
    inv: &Inventory,
    store: &Target,
    existing_len: u64,
    opts: &ConvertOptions,
) -> Result<Prepared> {
    let (_, found) = existing::read_arrays(store)?;
    let found: HashMap<String, FoundArray> = found.into_iter().map(|a| (a.path.clone(), a)).collect();
    prepare(inv, &inv.root.walk(), &found, existing_len, opts)
}

/// The format of the store nc2zarr wrote in `store`.
pub fn stored_format(store: &Target) -> ZarrFormat {
    if store.get("zarr.json").ok().flatten().is_some() {
        ZarrFormat::V3
    } else {
        ZarrFormat::V2
    }
}

/// Jobs for the arrays along the concat dimension, with the store's layout and codecs.
fn prepare(
    inv: &Inventory,
    groups: &[&GroupInfo],
    found: &HashMap<String, FoundArray>,
    existing_len: u64,
    opts: &ConvertOptions,
) -> Result<Prepared> {
    let mut inputs = Vec::new();
    let mut selected = Vec::new();
    for (gi, g) in groups.iter().enumerate() {
        for (vi, v) in g.vars.iter().enumerate() {
            let Some(axis) = v.concat_axis else { continue };
            if v.unsupported.is_some() {
                continue;
            }
            let a = &found[&g.var_path(&v.name)];
            let mut input = crate::write::array_input(inv, groups, g, v);
            input.fixed_layout = Some((a.object_shape.clone(), None));
            inputs.push(input);
            selected.push((gi, vi, axis));
        }
    }
    let resources = Resources {
        max_mem: opts.max_mem,
        workers: opts.workers,
        io_concurrency: opts.store.io_concurrency,
    };
    let job_plan = plan::plan(&inputs, &opts.policy, resources).map_err(|e| Error::Usage(e.to_string()))?;
    let mut jobs = Vec::new();
    for ((gi, vi, axis), ap) in selected.into_iter().zip(&job_plan.arrays) {
        let g = groups[gi];
        let path = g.var_path(&g.vars[vi].name);
        let a = &found[&path];
        let fill = if a.has_fill {
            match a.codec.decode_fill(&[1]).map_err(|e| Error::Internal(e.to_string()))? {
                Block::Fixed(b) => Some(Fill::Bytes(b)),
                Block::Strings(_) => Some(Fill::EmptyString),
            }
        } else {
            None
        };
        let chunk = a.object_shape[axis];
        let meta = meta::ArrayMeta {
            documents: Vec::new(),
            codec_metadata: Json::Null,
            object_shape: a.object_shape.clone(),
            fill,
            notes: Vec::new(),
        };
        let codec = crate::codec::ChunkCodec::new(&a.doc, a.dtype).map_err(|e| Error::Internal(e.to_string()))?;
        jobs.push(ArrayJob {
            path,
            group: gi,
            var: vi,
            plan: ap.clone(),
            meta,
            codec,
            append: Some(AppendRegion {
                axis,
                existing_len,
                from: existing_len / chunk * chunk,
            }),
        });
    }
    Ok(Prepared {
        jobs,
        plan: job_plan,
        notes: Vec::new(),
        skipped: Vec::new(),
    })
}

/// Replaces the shapes of `shapes` arrays in an array or consolidated document.
fn patch_shapes(doc: &Json, format: ZarrFormat, base: &str, shapes: &HashMap<String, Vec<u64>>) -> Json {
    let full = |rel: &str| meta::join(base, rel);
    match doc {
        Json::Obj(fields) => Json::Obj(
            fields
                .iter()
                .map(|(k, v)| {
                    let v = match (format, k.as_str()) {
                        (ZarrFormat::V3, "consolidated_metadata") => {
                            let entries = v.get("metadata").cloned().unwrap_or(Json::Obj(vec![]));
                            let Json::Obj(entries) = entries else {
                                return (k.clone(), v.clone());
                            };
                            let patched = entries
                                .into_iter()
                                .map(|(rel, d)| {
                                    let d = match shapes.get(&full(&rel)) {
                                        Some(s) => with_shape(&d, s),
                                        None => d,
                                    };
                                    (rel, d)
                                })
                                .collect();
                            replace_field(v, "metadata", Json::Obj(patched))
                        }
                        (ZarrFormat::V2, "metadata") => {
                            let Json::Obj(entries) = v else {
                                return (k.clone(), v.clone());
                            };
                            Json::Obj(
                                entries
                                    .iter()
                                    .map(|(key, d)| {
                                        let d = match key.strip_suffix("/.zarray").and_then(|p| shapes.get(&full(p))) {
                                            Some(s) => with_shape(d, s),
                                            None => d.clone(),
                                        };
                                        (key.clone(), d)
                                    })
                                    .collect(),
                            )
                        }
                        _ => v.clone(),
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

fn replace_field(doc: &Json, key: &str, value: Json) -> Json {
    match doc {
        Json::Obj(fields) => Json::Obj(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), if k == key { value.clone() } else { v.clone() }))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn with_shape(doc: &Json, shape: &[u64]) -> Json {
    replace_field(doc, "shape", Json::from(shape.to_vec()))
}

/// Records the objects an append wrote for array `path` in `manifest`: rewritten and
/// new objects replace their old entries.
pub fn merge_entry(manifest: &mut Manifest, path: &str, entry: manifest::ArrayEntry) {
    let m = manifest.arrays.entry(path.to_string()).or_default();
    for (k, o) in entry.objects {
        m.empty.retain(|e| e != &k);
        m.objects.insert(k, o);
    }
    for k in entry.empty {
        m.objects.remove(&k);
        if !m.empty.contains(&k) {
            m.empty.push(k);
        }
    }
    m.empty.sort();
}

/// Where an append's commit records what it is about to write, so that a run killed
/// part-way through the commit is finished by the next one.
const COMMIT_KEY: &str = ".nc2zarr/commit.json";

/// Commits an append: records the intent (the new manifest, the arrays' new shapes and
/// the groups), then writes the grown array documents, the manifest and, last, the
/// consolidated metadata (deepest groups first, the root last), and removes the marker,
/// journal and intent. Shapes come from `inv`. Returns the bytes written.
pub fn commit(
    store: &Target,
    format: ZarrFormat,
    inv: &Inventory,
    prepared: &Prepared,
    manifest: &Manifest,
    run: &str,
) -> Result<u64> {
    let groups = inv.root.walk();
    let shapes: BTreeMap<String, Json> = grown_shapes(inv, prepared)
        .into_iter()
        .map(|(path, shape)| (path, Json::Arr(shape.iter().map(|&n| Json::from(n)).collect())))
        .collect();
    let manifest_bytes = manifest.to_bytes();
    let written = manifest_bytes.len() as u64;
    store.put(manifest::NEXT_MANIFEST_KEY, Bytes::from(manifest_bytes))?;
    let intent = crate::json_obj! {
        "zarr_format" => format.number(),
        "shapes" => Json::Obj(shapes.into_iter().collect()),
        "groups" => groups.iter().map(|g| g.path.clone()).collect::<Vec<String>>(),
    };
    store.put(COMMIT_KEY, Bytes::from(intent.to_pretty()))?;
    let new_inputs = &manifest.inputs[manifest.inputs.len().saturating_sub(inv.files.len())..];
    let message = crate::records::commit_message("append", new_inputs);
    Ok(written + apply_commit(store, Some((&message, run)))?)
}

/// Every appended array's path and shape after the append.
fn grown_shapes(inv: &Inventory, prepared: &Prepared) -> Vec<(String, Vec<u64>)> {
    let groups = inv.root.walk();
    prepared
        .jobs
        .iter()
        .map(|j| (j.path.clone(), groups[j.group].vars[j.var].shape.clone()))
        .collect()
}

/// Finishes a commit that an earlier append started and did not finish (a no-op
/// returning 0 when there is none); returns the bytes written.
///
/// On a plain store the recorded intent is applied again: every step writes absolute
/// values, so running it after a crash part-way gives the same store. On an Icechunk
/// target the commit either happened (the tip of `main` names the run: only the records
/// beside the repository are left to update) or did not (nothing of the append is in the
/// repository, and the append runs again).
pub fn finish_commit(store: &Target) -> Result<u64> {
    if !store.is_transactional() {
        return apply_commit(store, None);
    }
    let Some(marker) = existing::read_json(store, manifest::IN_PROGRESS_KEY)? else {
        return Ok(0);
    };
    if !store.committed_by(&crate::records::run_of_marker(&marker))? {
        store.delete(manifest::NEXT_MANIFEST_KEY)?;
        store.delete(COMMIT_KEY)?;
        return Ok(0);
    }
    let written = store.get(manifest::NEXT_MANIFEST_KEY)?.map_or(0, |b| b.len() as u64);
    crate::records::finish_records(store)?;
    store.delete(COMMIT_KEY)?;
    Ok(written.max(1))
}

/// Applies the commit intent recorded in the store (a no-op returning 0 when there is
/// none): the grown array documents, the manifest and the consolidated metadata; for an
/// Icechunk target, commits the session as `commit_as` (message, run) and only then
/// writes the manifest, which must not list inputs the branch does not hold.
fn apply_commit(store: &Target, commit_as: Option<(&str, &str)>) -> Result<u64> {
    let Some(intent) = existing::read_json(store, COMMIT_KEY)? else {
        return Ok(0);
    };
    let damaged = || {
        existing::invalid(
            store.display(),
            format!("{COMMIT_KEY} is damaged; convert again with --overwrite"),
        )
    };
    let format = match intent.get("zarr_format").and_then(Json::as_u64) {
        Some(2) => ZarrFormat::V2,
        Some(3) => ZarrFormat::V3,
        _ => return Err(damaged()),
    };
    let mut shapes: HashMap<String, Vec<u64>> = HashMap::new();
    if let Some(Json::Obj(fields)) = intent.get("shapes") {
        for (path, shape) in fields {
            let dims = shape.as_array().ok_or_else(damaged)?;
            shapes.insert(
                path.clone(),
                dims.iter()
                    .map(|d| d.as_u64().ok_or_else(damaged))
                    .collect::<Result<_>>()?,
            );
        }
    }
    let group_list = intent.get("groups").and_then(Json::as_array).ok_or_else(damaged)?;
    let mut group_paths: Vec<&str> = group_list.iter().filter_map(Json::as_str).collect();
    let shapes = &shapes;
    let mut written = 0u64;
    let mut put = |key: &str, doc: &Json| -> Result<()> {
        let text = doc.to_pretty();
        written += text.len() as u64;
        store.put(key, Bytes::from(text)).map_err(Error::from)
    };
    let array_doc = match format {
        ZarrFormat::V3 => "zarr.json",
        ZarrFormat::V2 => ".zarray",
    };
    for (path, shape) in shapes {
        let key = meta::join(path, array_doc);
        let doc = existing::read_json(store, &key)?.ok_or_else(|| {
            Error::Target(TargetError::Invalid {
                target: store.display().into(),
                message: format!("{key} is missing"),
            })
        })?;
        put(&key, &with_shape(&doc, shape))?;
    }
    if !store.is_transactional()
        && let Some(next) = store.get(manifest::NEXT_MANIFEST_KEY)?
    {
        store.put(manifest::MANIFEST_KEY, next)?;
    }
    if crate::settings::failpoint_is("append-commit") {
        std::process::abort(); // a kill between the manifest and the consolidated metadata
    }
    let consolidated = match format {
        ZarrFormat::V3 => "zarr.json",
        ZarrFormat::V2 => ".zmetadata",
    };
    group_paths.sort_by_key(|p| std::cmp::Reverse(if p.is_empty() { 0 } else { p.matches('/').count() + 1 }));
    for gp in group_paths {
        let key = meta::join(gp, consolidated);
        if let Some(doc) = existing::read_json(store, &key)? {
            put(&key, &patch_shapes(&doc, format, gp, shapes))?;
        }
    }
    if let Some((message, run)) = commit_as {
        store.commit(message, run)?;
    }
    if crate::settings::failpoint_is("after-commit") {
        std::process::abort(); // a kill after the commit, before the records beside it
    }
    crate::records::finish_records(store)?;
    store.delete(COMMIT_KEY)?;
    Ok(written)
}
