//! # nc2zarr
//!
//! Converts NetCDF archives (one file or many, concatenated along a dimension) into
//! Zarr v2 or v3 stores that `xarray.open_zarr` reads back identical to
//! `xarray.open_mfdataset` on the sources.
//!
//! The stages pass plain data one way:
//!
//! 1. [`scan`] reads every input's header and merges them into an [`model::Inventory`],
//!    refusing inconsistent inputs before anything is written;
//! 2. [`plan`] chooses chunk shapes and read blocks (pure functions);
//! 3. [`write`] reads blocks ([`read`]), encodes objects in parallel ([`codec`]), stores
//!    them ([`store`]) and commits metadata ([`meta`]) with consolidated metadata last;
//! 4. [`verify`] proves a store complete, intact and (optionally) equal to its sources.
//!
//! ```no_run
//! use nc2zarr::{inputs, scan, write};
//! let files = inputs::expand(&["data/".to_string()])?;
//! let inventory = scan::scan(&files, &scan::ScanOptions::default())?;
//! let summary = write::convert(&inventory, "out.zarr", &write::ConvertOptions::default())?;
//! println!("{}", summary.to_text());
//! # Ok::<(), nc2zarr::error::Error>(())
//! ```

#![deny(unsafe_code)]

pub mod append;
pub mod cdf;
pub mod cftime;
pub mod cli;
pub mod codec;
#[allow(unsafe_code)]
pub mod direct;
pub mod error;
pub mod existing;
pub mod inputs;
pub mod job;
pub mod journal;
pub mod json;
pub mod lock;
pub mod manifest;
pub mod meta;
pub mod model;
#[allow(unsafe_code)]
pub mod nc;
#[allow(unsafe_code)]
pub mod os;
pub mod packing;
pub mod pipeline;
pub use nc2zarr_plan::plan;
pub mod preset;
pub mod progress;
pub mod read;
pub mod records;
pub mod remote;
pub mod report;
pub mod scan;
pub mod secrets;
pub mod settings;
pub mod share;
pub use nc2zarr_plan::slab;
pub mod slurm;
pub mod split;
pub mod stac;
pub mod store;
pub use nc2zarr_plan::units;
pub mod verify;
pub mod write;

use cli::{Cli, Command};
use error::{Error, Result};

/// What a command printed and how the process should exit.
pub struct Outcome {
    /// Text for stdout.
    pub stdout: String,
    /// An error to print on stderr (a report on stdout may come with it).
    pub error: Option<Error>,
    /// Exit code.
    pub code: i32,
}

impl Outcome {
    /// A successful command's output.
    fn ok(stdout: String) -> Outcome {
        Outcome {
            stdout,
            error: None,
            code: error::exit_code::OK,
        }
    }
}

fn emit(json: bool, as_json: impl FnOnce() -> json::Json, as_text: impl FnOnce() -> String) -> String {
    if json { as_json().to_pretty() + "\n" } else { as_text() }
}

/// Where remote inputs of a command are staged and how they are reached: the input
/// flags, else the target's store settings (`target`), staged under `temp_dir` with
/// `io_concurrency` requests in flight (the command's `--io-concurrency`).
fn remote_settings(
    input: &cli::RemoteInputArgs,
    target: Option<&cli::StoreArgs>,
    temp_dir: Option<&std::path::Path>,
    io_concurrency: usize,
) -> inputs::RemoteSettings {
    let mut store = input.store_options(target);
    store.io_concurrency = io_concurrency;
    inputs::RemoteSettings {
        store,
        staging_parent: temp_dir.map_or_else(std::env::temp_dir, std::path::Path::to_path_buf),
        cache: input.cache.cache(),
    }
}

/// Resolves and scans the inputs; the returned [`inputs::Resolved`] keeps staged remote
/// inputs on disk while they are read.
fn scan_inputs(
    args: &[String],
    options: &scan::ScanOptions,
    remote: &inputs::RemoteSettings,
) -> Result<(model::Inventory, inputs::Resolved)> {
    let resolved = inputs::resolve(args, remote)?;
    let mut inv = scan::scan(&resolved.files, options).map_err(|e| resolved.explain(e.into()))?;
    resolved.annotate(&mut inv);
    Ok((inv, resolved))
}

/// `result` with remote inputs named by their URLs.
fn named(resolved: &inputs::Resolved, result: Result<Outcome>) -> Result<Outcome> {
    match result {
        Ok(mut o) => {
            o.stdout = resolved.name_urls(&o.stdout);
            o.error = o.error.map(|e| resolved.explain(e));
            Ok(o)
        }
        Err(e) => Err(resolved.explain(e)),
    }
}

/// Runs a parsed command line. A `--json` run that fails prints the error as JSON on
/// stdout too ([`report::error_json`]), so cron jobs read one format.
pub fn run(cli: Cli) -> Result<Outcome> {
    let json = cli.command.json();
    match dispatch(cli) {
        Err(e) if json => Ok(Outcome {
            stdout: report::error_json(&e).to_pretty() + "\n",
            code: e.exit_code(),
            error: Some(e),
        }),
        result => result,
    }
}

fn dispatch(cli: Cli) -> Result<Outcome> {
    // Blocks cover whole source chunks, so HDF5's per-variable chunk cache (64 MiB by
    // default, per variable and open file) would only cost memory.
    nc::set_default_chunk_cache(plan::HDF5_CHUNK_CACHE_BYTES)
        .map_err(|e| Error::Internal(format!("cannot set the HDF5 chunk cache: {e}")))?;
    match cli.command {
        Command::Scan(a) => scan_command(&a),
        Command::Plan(a) => {
            let opts = a.options().map_err(Error::Usage)?;
            let remote = remote_settings(&a.input.remote, None, None, opts.store.io_concurrency);
            plan_command(
                &a.input,
                &remote,
                &a.target.target,
                &opts,
                a.json,
                a.tasks.map(|n| n as usize),
            )
        }
        Command::Convert(a) if a.dry_run => {
            // What convert would refuse (an existing target, …), it refuses here too.
            let opts = a.options().map_err(Error::Usage)?;
            write::check_target(&a.target.target, &opts)?;
            let remote = remote_settings(
                &a.input.remote,
                Some(&a.write.store),
                Some(&opts.temp_dir),
                opts.store.io_concurrency,
            );
            plan_command(&a.input, &remote, &a.target.target, &opts, a.write.json, None)
        }
        Command::Append(a) => append_command(&a),
        Command::Prepare(a) => {
            let opts = a.options().map_err(Error::Usage)?;
            let remote = remote_settings(
                &a.input.remote,
                Some(&a.store),
                a.temp_dir.as_deref(),
                opts.store.io_concurrency,
            );
            let input_store = job::InputStore::for_inputs(&a.input.inputs, &remote.store)?;
            let (mut inv, resolved) = scan_inputs(&a.input.inputs, &a.input.scan_options(), &remote)?;
            // The job keeps no path of the staged copies, which are gone when the tasks run.
            inv.notes = inv.notes.iter().map(|n| resolved.name_urls(n)).collect();
            let tasks = a.tasks as usize;
            let result = split::prepare(&inv, &a.target.target, &opts, tasks, input_store).and_then(|s| {
                let stdout = emit(a.json, || report::prepare_json(&s), || report::prepare_text(&s));
                slurm_step(&a.slurm, &a.target.target, tasks, &opts, a.json, stdout)
            });
            named(&resolved, result)
        }
        Command::Task(a) => {
            let index = split::task_index(a.index, |k| std::env::var(k).ok())?;
            let local = split::TaskOptions {
                store: a.store.options(),
                temp_dir: a.temp_dir.clone(),
                input_cache: a.cache.cache(),
                quiet: a.quiet,
                json: a.json,
            };
            let s = split::run_task(&a.target, index, &local)?;
            Ok(Outcome::ok(emit(
                a.json,
                || report::task_json(&s),
                || report::task_text(&s),
            )))
        }
        Command::Commit(a) => {
            let s = split::commit(&a.target, &a.store.options())?;
            Ok(Outcome::ok(emit(
                a.json,
                || report::commit_json(&s),
                || report::commit_text(&s),
            )))
        }
        Command::Convert(a) => {
            let opts = a.options().map_err(Error::Usage)?;
            if a.write.stac.is_some() {
                stac::check_target(&a.target.target)?;
            }
            let remote = remote_settings(
                &a.input.remote,
                Some(&a.write.store),
                Some(&opts.temp_dir),
                opts.store.io_concurrency,
            );
            let (inv, resolved) = scan_inputs(&a.input.inputs, &a.input.scan_options(), &remote)?;
            let result = write::convert(&inv, &a.target.target, &opts)
                .map(|summary| emit(a.write.json, || summary.to_json(), || summary.to_text()))
                .map(|stdout| stac_step(&a.write, &a.target.target, stdout));
            named(&resolved, result)
        }
        Command::Stac(a) => {
            let files = stac::write(&a.target, &a.store.options(), &a.dir, a.id.as_deref())?;
            Ok(Outcome::ok(emit(
                a.json,
                || report::stac_json(&files),
                || report::stac_text(&files),
            )))
        }
        Command::Run(r) => {
            let argv = cli::job_command_line(&r.job).map_err(Error::Usage)?;
            let parsed = <Cli as clap::Parser>::try_parse_from(&argv)
                .map_err(|e| Error::Usage(format!("job file {}: {}", r.job.display(), e.to_string().trim())))?;
            if matches!(parsed.command, Command::Run(_)) {
                return Err(Error::Usage("a job file cannot run another job file".into()));
            }
            run(parsed)
        }
        Command::ReadHeaders { group } => Ok(Outcome {
            stdout: String::new(),
            error: None,
            code: scan::serve_worker(&group),
        }),
        Command::Presets => {
            let mut s = String::new();
            for p in preset::builtin() {
                s.push_str(&format!("{:<12} {}\n", p.name, p.description));
            }
            s.push_str(
                "\nUse --preset NAME, or --preset FILE.toml for your own (see presets/*.toml for the format).\n",
            );
            Ok(Outcome::ok(s))
        }
        Command::Verify(a) => {
            let (inv, resolved) = if a.source.is_empty() {
                (None, inputs::Resolved::default())
            } else {
                let remote = remote_settings(
                    &a.remote,
                    Some(&a.store),
                    a.temp_dir.as_deref(),
                    usize::from(a.io_concurrency),
                );
                // Without --concat-dim or --group, the sources are read as the store
                // records it was made from them (`convert` flags need not be repeated).
                let recorded = recorded_manifest(&a.target, &a.store);
                let options = scan::ScanOptions {
                    concat_dim: a
                        .concat_dim
                        .clone()
                        .or_else(|| recorded.as_ref().and_then(|m| m.concat_dim.clone())),
                    group: a.group.clone().or_else(|| recorded.and_then(|m| m.group)),
                    ..Default::default()
                };
                let (inv, resolved) = scan_inputs(&a.source, &options, &remote)?;
                (Some(inv), resolved)
            };
            let report =
                verify::verify(&a.target, &a.store.options(), inv.as_ref()).map_err(|e| resolved.explain(e))?;
            let code = if report.ok() {
                error::exit_code::OK
            } else {
                error::exit_code::VERIFY_FAILED
            };
            Ok(Outcome {
                stdout: resolved.name_urls(&emit(a.json, || report.to_json(), || report.to_text())),
                error: None,
                code,
            })
        }
    }
}

/// The manifest of the store at `target`, if it has one.
fn recorded_manifest(target: &str, store: &cli::StoreArgs) -> Option<manifest::Manifest> {
    let store = store::Target::open_existing(target, &store.options()).ok()?;
    existing::read_manifest(&store).ok()
}

/// `scan`: the merged dataset and how the files differ; when they do not form one
/// dataset, the differences on stdout and the reason on stderr (exit 3).
fn scan_command(a: &cli::ScanArgs) -> Result<Outcome> {
    let remote = remote_settings(&a.input.remote, None, None, usize::from(a.io_concurrency));
    let resolved = inputs::resolve(&a.input.inputs, &remote)?;
    named(&resolved, survey_command(a, &resolved))
}

fn survey_command(a: &cli::ScanArgs, resolved: &inputs::Resolved) -> Result<Outcome> {
    let survey = scan::survey(&resolved.files, &a.input.scan_options())?;
    match survey.result {
        Ok(mut inv) => {
            inv.drift = survey.drift;
            resolved.annotate(&mut inv);
            Ok(Outcome::ok(emit(
                a.json,
                || report::inventory_json(&inv),
                || report::inventory_text(&inv),
            )))
        }
        Err(e) => {
            let e = Error::Input(e);
            let stdout = emit(
                a.json,
                || {
                    let mut doc = report::error_json(&e);
                    if let json::Json::Obj(fields) = &mut doc {
                        fields.push(("drift".into(), report::drift_json(&survey.drift)));
                    }
                    doc
                },
                || report::drift_text(&survey.drift),
            );
            Ok(Outcome {
                stdout,
                code: e.exit_code(),
                error: Some(e),
            })
        }
    }
}

/// `append`.
fn append_command(a: &cli::AppendArgs) -> Result<Outcome> {
    let convert = a.options().map_err(Error::Usage)?;
    let remote = remote_settings(
        &a.input.remote,
        Some(&a.write.store),
        a.write.temp_dir.as_deref(),
        convert.store.io_concurrency,
    );
    let opts = append::AppendOptions {
        convert,
        allow_gaps: a.allow_gaps,
        concat_dim: a.input.concat_dim.clone(),
        group: a.input.group.clone(),
        refuse_encoding_drift: a.input.on_encoding_drift == cli::EncodingDrift::Refuse,
        dry_run: a.dry_run,
        tasks: a.tasks.map(|n| n as usize),
        input_store: match a.tasks {
            Some(_) => job::InputStore::for_inputs(&a.input.inputs, &remote.store)?,
            None => None,
        },
        remote,
    };
    if a.write.stac.is_some() {
        stac::check_target(&a.target.target)?;
    }
    if a.write.stac.is_some() && a.tasks.is_some() {
        return Err(Error::Usage(
            "--stac describes a finished store, and a split append finishes at its commit: run \
             `nc2zarr stac TARGET --dir DIR` after `nc2zarr commit`"
                .into(),
        ));
    }
    if a.slurm.slurm.is_some() && a.tasks.is_none() {
        return Err(Error::Usage(
            "--slurm needs --tasks N: it writes the scripts of a split append".into(),
        ));
    }
    let summary = append::append(&a.input.inputs, &a.target.target, &opts)?;
    let stdout = emit(a.write.json, || summary.to_json(), || summary.to_text());
    match summary.prepared_tasks {
        Some(tasks) => slurm_step(&a.slurm, &a.target.target, tasks, &opts.convert, a.write.json, stdout),
        None if a.dry_run => Ok(Outcome::ok(stdout)),
        None => Ok(stac_step(&a.write, &a.target.target, stdout)),
    }
}

/// After a write (its report in `stdout`): with `--stac DIR`, describes the store there.
/// The report gains the files written (under `"stac"` in JSON). When that fails, the
/// write's report is still printed, with the error and its exit code.
fn stac_step(args: &cli::WriteArgs, target: &str, stdout: String) -> Outcome {
    let Some(dir) = &args.stac else {
        return Outcome::ok(stdout);
    };
    let described = stac::write(target, &args.store.options(), dir, None).and_then(|files| {
        add_to_report(
            args.json,
            stdout.clone(),
            "stac",
            report::stac_json(&files),
            &report::stac_text(&files),
        )
    });
    match described {
        Ok(stdout) => Outcome::ok(stdout),
        Err(e) => Outcome {
            stdout,
            code: e.exit_code(),
            error: Some(e),
        },
    }
}

/// A report (`stdout`) with one more part: a field of the JSON object, or text lines.
fn add_to_report(json: bool, stdout: String, key: &str, as_json: json::Json, as_text: &str) -> Result<String> {
    if !json {
        return Ok(stdout + as_text);
    }
    let mut doc = json::Json::parse(&stdout).map_err(|e| Error::Internal(format!("report: {e}")))?;
    if let json::Json::Obj(fields) = &mut doc {
        fields.push((key.into(), as_json));
    }
    Ok(doc.to_pretty() + "\n")
}

/// After a split run was prepared (its report in `stdout`): with `--slurm DIR`, writes
/// the batch scripts and, with `--submit`, submits them. The report gains what was
/// written and submitted (under `"slurm"` in JSON); a failed submission leaves the
/// prepared job and the scripts, and exits with the scheduler's code.
fn slurm_step(
    args: &cli::SlurmArgs,
    target: &str,
    tasks: usize,
    opts: &write::ConvertOptions,
    json: bool,
    stdout: String,
) -> Result<Outcome> {
    let Some(dir) = &args.slurm else {
        return Ok(Outcome::ok(stdout));
    };
    // A local target as an absolute path (the tasks run elsewhere), keeping the
    // icechunk+ prefix of a repository.
    let target = match store::parse_location(target)? {
        store::Location::Local(p) => {
            let absolute = std::path::absolute(&p).map_err(|e| Error::Usage(format!("{}: {e}", p.display())))?;
            let scheme = if crate::store::icechunk::strip_scheme(target).is_some() {
                crate::store::icechunk::SCHEME
            } else {
                ""
            };
            format!("{scheme}{}", absolute.display())
        }
        _ => target.to_string(),
    };
    let job = slurm::SlurmJob {
        target,
        tasks,
        workers: opts.workers,
        max_mem: opts.max_mem,
        store: opts.store.clone(),
        temp_dir: args.task_temp_dir.clone(),
        sbatch_options: args.sbatch_options.clone(),
    };
    let mut scripts = slurm::write_scripts(dir, &job)?;
    let error = if args.submit {
        slurm::submit(&mut scripts).err()
    } else {
        None
    };
    let stdout = add_to_report(
        json,
        stdout,
        "slurm",
        report::slurm_json(&scripts),
        &slurm::describe(&scripts),
    )?;
    Ok(Outcome {
        stdout,
        code: error.as_ref().map_or(error::exit_code::OK, Error::exit_code),
        error,
    })
}

/// `plan` / `convert --dry-run`: everything convert decides, nothing written.
fn plan_command(
    input: &cli::InputArgs,
    remote: &inputs::RemoteSettings,
    target: &str,
    opts: &write::ConvertOptions,
    json: bool,
    tasks: Option<usize>,
) -> Result<Outcome> {
    crate::store::parse_location(target)?;
    let (inv, resolved) = scan_inputs(&input.inputs, &input.scan_options(), remote)?;
    let result = write::prepare(&inv, opts).map(|prepared| {
        let groups = inv.root.walk().len();
        let split = tasks.map(|n| share::task_totals(&inv, &prepared, n));
        Outcome::ok(emit(
            json,
            || report::plan_json(&prepared, opts, groups, split.as_deref()),
            || report::plan_text(&prepared, opts, groups, split.as_deref()),
        ))
    });
    named(&resolved, result)
}

/// Formats an error for stderr (one line, no backtrace) and picks its exit code.
pub fn describe_error(e: &Error) -> (String, i32) {
    (secrets::redact(&format!("nc2zarr: error: {e}")), e.exit_code())
}
