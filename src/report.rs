//! Reports: what `scan`, `plan` and the write commands print, as text or `--json`.

/// The `scan --json` document.
pub fn inventory_json(inv: &crate::model::Inventory) -> crate::json::Json {
    use crate::json::Json;
    use crate::json_obj;
    use crate::model::attrs_json;
    fn group(g: &crate::model::GroupInfo) -> Json {
        json_obj! {
            "name" => g.name.as_str(),
            "path" => format!("/{}", g.path),
            "dimensions" => Json::Arr(g.dims.iter().map(|d| json_obj! {
                "name" => d.name.as_str(), "length" => d.len, "unlimited" => d.unlimited, "concat" => d.concat,
            }).collect()),
            "variables" => Json::Arr(g.vars.iter().map(|v| json_obj! {
                "name" => v.name.as_str(),
                "dimensions" => v.dims.clone(),
                "shape" => v.shape.clone(),
                "dtype" => v.dtype.cdl_name(),
                "bytes" => v.nbytes(),
                "source_chunks" => v.storage.chunks.clone(),
                "source_filters" => v.storage.filters.clone(),
                "unsupported" => v.unsupported.clone(),
                "time_reencoded" => v.time_fix.is_some(),
                "repeated_per_file" => v.repeated,
                "attributes" => attrs_json(&v.attrs),
            }).collect()),
            "attributes" => attrs_json(&g.attrs),
            "groups" => Json::Arr(g.groups.iter().map(group).collect()),
        }
    }
    let supplied = inv.supplied();
    json_obj! {
        "files" => Json::Arr(inv.files.iter().enumerate().map(|(i, f)| json_obj! {
            "path" => f.path.display().to_string(),
            "size" => f.size,
            "format" => f.format.as_str(),
            "concat_start" => f.concat_start,
            "concat_length" => f.concat_len,
            "supplies" => supplied.as_ref().map(|s| s[i].clone()),
        }).collect()),
        "concat_dim" => inv.concat_dim.clone(),
        "concat_reason" => inv.concat_reason.as_str(),
        "bytes" => inv.nbytes(),
        "root" => group(&inv.root),
        "notes" => inv.notes.clone(),
        "drift" => drift_json(&inv.drift),
        "unsupported_attributes" => Json::Arr(inv.unsupported_attrs.iter().map(|(l, r)| Json::from(format!("{l} {r}"))).collect()),
    }
}

/// The human-readable `scan` report.
pub fn inventory_text(inv: &crate::model::Inventory) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let on_disk: u64 = inv.files.iter().map(|f| f.size).sum();
    let _ = writeln!(
        s,
        "{} file(s), {} on disk, {} uncompressed{}",
        inv.files.len(),
        crate::units::human_bytes(on_disk),
        crate::units::human_bytes(inv.nbytes()),
        match &inv.concat_dim {
            Some(d) => format!(", concatenated along '{d}' ({})", inv.concat_reason),
            None => format!(" ({})", inv.concat_reason),
        }
    );
    let supplied = inv.supplied();
    for (i, f) in inv.files.iter().enumerate() {
        let _ = writeln!(
            s,
            "  {}  {}  {}{}{}",
            f.path.display(),
            f.format.as_str(),
            crate::units::human_bytes(f.size),
            if inv.concat_dim.is_some() {
                format!("  [{}..{})", f.concat_start, f.concat_start + f.concat_len)
            } else {
                String::new()
            },
            match &supplied {
                Some(vars) if !vars[i].is_empty() => format!("  supplies {}", vars[i].join(", ")),
                _ => String::new(),
            }
        );
    }
    for g in inv.root.walk() {
        let _ = writeln!(s, "group /{}", g.path);
        for d in &g.dims {
            let _ = writeln!(
                s,
                "  dim {} = {}{}{}",
                d.name,
                d.len,
                if d.unlimited { " (unlimited)" } else { "" },
                if d.concat { " (concat)" } else { "" }
            );
        }
        for v in &g.vars {
            let mut storage = match &v.storage.chunks {
                Some(c) => format!(
                    "chunks ({})",
                    c.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")
                ),
                None => "contiguous".into(),
            };
            if !v.storage.filters.is_empty() {
                storage.push_str(&format!(", {}", v.storage.filters.join(", ")));
            }
            let _ = writeln!(
                s,
                "  var {} {}({}) shape [{}] {} {}{}",
                v.name,
                v.dtype.cdl_name(),
                v.dims.join(", "),
                v.shape.iter().map(u64::to_string).collect::<Vec<_>>().join(", "),
                crate::units::human_bytes(v.nbytes()),
                storage,
                match &v.unsupported {
                    Some(r) => format!("  UNSUPPORTED: {r}"),
                    None => String::new(),
                }
            );
            for (k, a) in &v.attrs {
                let _ = writeln!(s, "      {k} = {}", a.display());
            }
        }
        for (k, a) in &g.attrs {
            let _ = writeln!(s, "  :{k} = {}", a.display());
        }
    }
    s.push_str(&drift_text(&inv.drift));
    for n in &inv.notes {
        let _ = writeln!(s, "note: {n}");
    }
    for (l, r) in &inv.unsupported_attrs {
        let _ = writeln!(s, "unsupported: {l} {r}");
    }
    s
}

/// An error as `--json` runs print it on stdout: the message (as on stderr), its kind
/// and exit code, and the input file (`file`, or `files` for an inconsistency between
/// several) and variable when it names them.
pub fn error_json(e: &crate::error::Error) -> crate::json::Json {
    use crate::error::Error;
    use crate::json::Json;
    let mut fields = vec![
        ("error".to_string(), Json::from(crate::describe_error(e).0)),
        ("kind".to_string(), Json::from(e.kind())),
        ("exit_code".to_string(), Json::from(i64::from(e.exit_code()))),
    ];
    if let Error::Input(i) = e {
        let shown = |p: &std::path::Path| Json::from(crate::secrets::redact(&p.display().to_string()));
        if let Some(path) = i.path() {
            fields.push(("file".into(), shown(path)));
        }
        if !i.files_involved().is_empty() {
            let files = i.files_involved().iter().map(|p| shown(p)).collect();
            fields.push(("files".into(), Json::Arr(files)));
        }
        if let Some(variable) = i.variable() {
            fields.push(("variable".into(), Json::from(variable)));
        }
    }
    Json::Obj(fields)
}

/// The `drift` list of `scan --json`.
pub fn drift_json(drift: &[crate::model::Drift]) -> crate::json::Json {
    use crate::json::Json;
    use crate::json_obj;
    Json::Arr(
        drift
            .iter()
            .map(|d| {
                json_obj! {
                    "category" => d.category,
                    "location" => d.location.as_str(),
                    "item" => d.item.as_str(),
                    "action" => d.action.as_str(),
                    "groups" => Json::Arr(d.groups.iter().map(|g| json_obj! {
                        "value" => g.value.as_str(),
                        "files" => g.files,
                        "examples" => g.examples.clone(),
                    }).collect()),
                }
            })
            .collect(),
    )
}

/// How the files differ, one block per aspect, with what convert does about it.
pub fn drift_text(drift: &[crate::model::Drift]) -> String {
    use std::fmt::Write as _;
    if drift.is_empty() {
        return String::new();
    }
    let mut s = format!(
        "{} aspect(s) differ between files (action: what convert does about it):\n",
        drift.len()
    );
    for d in drift {
        let item = if d.item.is_empty() || d.item == d.category {
            String::new()
        } else {
            format!(" {}", d.item)
        };
        let _ = writeln!(s, "  {} {}{}  [{}]", d.location, d.category, item, d.action.as_str());
        for g in &d.groups {
            let more = if g.files > g.examples.len() { ", ..." } else { "" };
            let _ = writeln!(
                s,
                "      {}: {} file(s) ({}{more})",
                g.value,
                g.files,
                g.examples.join(", ")
            );
        }
    }
    s
}

/// Price used to estimate request cost: US dollars per 1,000 PUT requests (S3 Standard).
pub const PUT_PRICE_PER_1000: f64 = 0.005;

/// PUT requests a conversion makes: objects plus metadata, marker, manifest and journal.
pub fn put_requests(prepared: &crate::write::Prepared, format: crate::model::ZarrFormat, groups: usize) -> u64 {
    let docs_per_array = if format == crate::model::ZarrFormat::V2 { 2 } else { 1 };
    let docs_per_group = if format == crate::model::ZarrFormat::V2 { 3 } else { 1 };
    let objects = prepared.plan.objects;
    objects + prepared.jobs.len() as u64 * docs_per_array + groups as u64 * docs_per_group + 2 + objects.div_ceil(512)
}

fn strategy_name(s: &crate::plan::Strategy) -> &'static str {
    match s {
        crate::plan::Strategy::Direct { .. } => "direct",
        crate::plan::Strategy::TwoPass { .. } => "two-pass",
    }
}

/// The `plan --json` document; `tasks` adds the split of a run over tasks: each task's
/// uncompressed bytes and objects, and last what `prepare` writes itself.
pub fn plan_json(
    prepared: &crate::write::Prepared,
    opts: &crate::write::ConvertOptions,
    groups: usize,
    tasks: Option<&[(u64, u64)]>,
) -> crate::json::Json {
    use crate::json::Json;
    use crate::json_obj;
    let p = &prepared.plan;
    let puts = put_requests(prepared, opts.format, groups);
    json_obj! {
        "zarr_format" => opts.format.number(),
        "compression" => opts.compression.to_string(),
        "variables" => Json::Arr(prepared.jobs.iter().map(|j| {
            let a = &j.plan;
            json_obj! {
                "name" => j.path.as_str(),
                "chunks" => a.chunks.clone(),
                "shards" => a.shards.clone(),
                "strategy" => strategy_name(&a.strategy),
                "objects" => a.objects,
                "bytes" => a.bytes,
                "read_amplification" => a.read_amplification,
                "intermediate_bytes" => a.intermediate_bytes,
                "peak_memory_bytes" => a.peak_memory,
            }
        }).collect()),
        "max_mem_bytes" => p.max_mem,
        "peak_memory_bytes" => p.peak_memory,
        "workers" => p.workers,
        "io_concurrency" => p.io_concurrency,
        "read_amplification" => p.read_amplification,
        "intermediate_bytes" => p.intermediate_bytes,
        "objects" => p.objects,
        "put_requests" => puts,
        "put_price_per_1000_usd" => PUT_PRICE_PER_1000,
        "estimated_request_cost_usd" => puts as f64 / 1000.0 * PUT_PRICE_PER_1000,
        "tasks" => tasks.map(|t| Json::Arr(t[..t.len() - 1].iter().enumerate().map(|(i, &(bytes, objects))| json_obj! {
            "index" => i,
            "bytes" => bytes,
            "objects" => objects,
            "peak_memory_bytes" => p.peak_memory,
        }).collect())),
        "written_by_prepare" => tasks.and_then(|t| t.last()).map(|&(bytes, objects)| json_obj! {
            "bytes" => bytes,
            "objects" => objects,
        }),
        "notes" => prepared.notes.clone(),
        "skipped" => prepared.skipped.clone(),
    }
}

/// The human-readable plan; `tasks` adds the split of a run over tasks (as in
/// [`plan_json`]).
pub fn plan_text(
    prepared: &crate::write::Prepared,
    opts: &crate::write::ConvertOptions,
    groups: usize,
    tasks: Option<&[(u64, u64)]>,
) -> String {
    use std::fmt::Write as _;
    let shape = |v: &[u64]| v.iter().map(u64::to_string).collect::<Vec<_>>().join("x");
    let mut s = String::new();
    let p = &prepared.plan;
    let _ = writeln!(
        s,
        "plan: Zarr v{}, {}, {} array(s)",
        opts.format.number(),
        opts.compression,
        prepared.jobs.len()
    );
    for j in &prepared.jobs {
        let a = &j.plan;
        let _ = writeln!(
            s,
            "  {:<24} chunks {:<18} shards {:<18} {:>8} objects {:>10}  {}{}",
            j.path,
            shape(&a.chunks),
            a.shards.as_deref().map_or("-".to_string(), shape),
            a.objects,
            crate::units::human_bytes(a.bytes),
            strategy_name(&a.strategy),
            if a.read_amplification > 1.001 {
                format!(" (read amplification {:.1}x)", a.read_amplification)
            } else {
                String::new()
            }
        );
    }
    let puts = put_requests(prepared, opts.format, groups);
    let _ = writeln!(
        s,
        "memory: predicted peak {} of --max-mem {} ({} worker(s), {} request(s) in flight)",
        crate::units::human_bytes(p.peak_memory),
        crate::units::human_bytes(p.max_mem),
        p.workers,
        p.io_concurrency
    );
    let _ = writeln!(
        s,
        "reads: amplification {:.2}x; intermediate data {}",
        p.read_amplification,
        crate::units::human_bytes(p.intermediate_bytes)
    );
    let _ = writeln!(
        s,
        "requests: {} objects, {} PUT requests, about ${:.4} at ${} per 1,000 PUTs",
        p.objects,
        puts,
        puts as f64 / 1000.0 * PUT_PRICE_PER_1000,
        PUT_PRICE_PER_1000
    );
    if let Some((&(prepare_bytes, prepare_objects), t)) = tasks.and_then(<[_]>::split_last) {
        let _ = writeln!(
            s,
            "split over {} task(s), each with the plan's predicted peak memory ({}):",
            t.len(),
            crate::units::human_bytes(p.peak_memory)
        );
        let _ = writeln!(
            s,
            "  prepare: {} uncompressed, {prepare_objects} object(s) (small arrays that span the files)",
            crate::units::human_bytes(prepare_bytes)
        );
        for (i, &(bytes, objects)) in t.iter().enumerate() {
            let _ = writeln!(
                s,
                "  task {i}: {} uncompressed, {objects} object(s)",
                crate::units::human_bytes(bytes)
            );
        }
    }
    for n in &prepared.notes {
        let _ = writeln!(s, "note: {n}");
    }
    for n in &prepared.skipped {
        let _ = writeln!(s, "skipped: {n}");
    }
    s
}

/// The `prepare --json` document.
pub fn prepare_json(s: &crate::split::PrepareSummary) -> crate::json::Json {
    use crate::json::Json;
    crate::json_obj! {
        "target" => s.target.as_str(),
        "tasks" => Json::Arr(s.tasks.iter().enumerate().map(|(i, (bytes, objects))| crate::json_obj! {
            "index" => i,
            "bytes" => *bytes,
            "objects" => *objects,
            "peak_memory_bytes" => s.peak_memory,
        }).collect()),
        "notes" => s.notes.clone(),
    }
}

/// The `"slurm"` part of a `prepare --slurm` report: the scripts and submitted job ids.
pub fn slurm_json(s: &crate::slurm::Scripts) -> crate::json::Json {
    crate::json_obj! {
        "tasks_script" => s.tasks.display().to_string(),
        "commit_script" => s.commit.display().to_string(),
        "array_job" => s.submitted.as_ref().map(|(a, _)| a.clone()),
        "commit_job" => s.submitted.as_ref().map(|(_, c)| c.clone()),
    }
}

/// The STAC documents written (`stac`, `--stac`).
pub fn stac_json(f: &crate::stac::StacFiles) -> crate::json::Json {
    crate::json_obj! {
        "collection" => f.collection.display().to_string(),
        "item" => f.item.display().to_string(),
    }
}

/// The STAC documents written, as text lines.
pub fn stac_text(f: &crate::stac::StacFiles) -> String {
    format!(
        "STAC: {} and {} describe the store\n",
        f.collection.display(),
        f.item.display()
    )
}

/// What `prepare` prints.
pub fn prepare_text(s: &crate::split::PrepareSummary) -> String {
    use std::fmt::Write as _;
    let n = s.tasks.len();
    let mut out = format!(
        "prepared {n} task(s) in {} (each at most {} of memory):\n",
        s.target,
        crate::units::human_bytes(s.peak_memory)
    );
    for (i, (bytes, objects)) in s.tasks.iter().enumerate() {
        let _ = writeln!(
            out,
            "  task {i}: {} uncompressed, {objects} object(s)",
            crate::units::human_bytes(*bytes)
        );
    }
    let _ = writeln!(
        out,
        "next: run `nc2zarr task {} --index I` for I = 0..{} (anywhere, in any order; under a job array the index \
         comes from SLURM_ARRAY_TASK_ID, JOB_COMPLETION_INDEX or AWS_BATCH_JOB_ARRAY_INDEX), then `nc2zarr commit {}`",
        s.target,
        n - 1,
        s.target
    );
    for note in &s.notes {
        let _ = writeln!(out, "note: {note}");
    }
    out
}

/// The `task --json` document.
pub fn task_json(s: &crate::split::TaskSummary) -> crate::json::Json {
    crate::json_obj! {
        "index" => s.index,
        "tasks" => s.tasks,
        "status" => if s.ran { "done" } else { "already done" },
        "objects" => s.objects,
        "resumed_objects" => s.resumed,
        "bytes_out" => s.bytes_out,
        "inputs_staged" => s.staged.0,
        "bytes_staged" => s.staged.1,
    }
}

/// What `task` prints.
pub fn task_text(s: &crate::split::TaskSummary) -> String {
    if !s.ran {
        return format!("task {} of {} had already finished; nothing to do\n", s.index, s.tasks);
    }
    let mut out = format!(
        "task {} of {} done: {} object(s), {} written\n",
        s.index,
        s.tasks,
        s.objects,
        crate::units::human_bytes(s.bytes_out)
    );
    if s.resumed > 0 {
        out.push_str(&format!("  resumed: {} object(s) were already written\n", s.resumed));
    }
    if s.staged.0 > 0 {
        out.push_str(&format!(
            "  downloaded the {} remote input(s) its part reads ({})\n",
            s.staged.0,
            crate::units::human_bytes(s.staged.1)
        ));
    }
    out
}

/// The `commit --json` document.
pub fn commit_json(s: &crate::split::CommitSummary) -> crate::json::Json {
    crate::json_obj! {
        "target" => s.target.as_str(),
        "tasks" => s.tasks,
        "arrays" => s.arrays,
        "objects" => s.objects,
    }
}

/// What `commit` prints.
pub fn commit_text(s: &crate::split::CommitSummary) -> String {
    format!(
        "committed {} task(s) into {}: {} array(s), {} object(s)\n",
        s.tasks, s.target, s.arrays, s.objects
    )
}
