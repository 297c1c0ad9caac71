//! Progress display and human-readable formatting.
//!
//! A progress bar is drawn only when stderr is a terminal, `--json` is off and no
//! `CI` variable is set; otherwise nc2zarr stays quiet until its summary.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Whether to draw a progress bar, from where we run. Pure, so it can be tested.
pub fn show_progress(stderr_is_terminal: bool, json: bool, ci: bool, quiet: bool) -> bool {
    stderr_is_terminal && !json && !ci && !quiet
}

/// Progress of a conversion: bytes of uncompressed input encoded and objects written.
#[derive(Clone)]
pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    /// A bar over `total_bytes` when [`show_progress`] says so, else a silent counter.
    pub fn new(total_bytes: u64, json: bool, quiet: bool) -> Progress {
        let ci = std::env::var_os("CI").is_some();
        if !show_progress(std::io::stderr().is_terminal(), json, ci, quiet) {
            return Progress { bar: None };
        }
        let bar = ProgressBar::with_draw_target(Some(total_bytes), ProgressDrawTarget::stderr_with_hz(4));
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({bytes_per_sec}, ETA {eta}) {msg}",
            )
            .expect("valid template"),
        );
        bar.enable_steady_tick(Duration::from_millis(250));
        Progress { bar: Some(bar) }
    }

    /// Records `bytes` of input done and the running object count.
    pub fn advance(&self, bytes: u64, objects_done: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(bytes);
            bar.set_message(format!("{objects_done} objects"));
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// `1.5 GiB`-style sizes.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Parses sizes such as `512MiB`, `2GiB`, `1GB`, `100k`, `4096`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("size {s:?} is not a number with an optional unit (e.g. 512MiB, 2GiB, 1GB)"))?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "t" | "tb" => 1e12,
        "ki" | "kib" => 1024.0,
        "mi" | "mib" => 1024.0 * 1024.0,
        "gi" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "ti" | "tib" => 1024f64.powi(4),
        other => {
            return Err(format!(
                "unknown size unit {other:?} in {s:?}; use B, KiB, MiB, GiB, TiB, kB, MB, GB or TB"
            ));
        }
    };
    let bytes = value * mult;
    if !(1.0..=1e18).contains(&bytes) {
        return Err(format!("size {s:?} is out of range"));
    }
    Ok(bytes as u64)
}

/// The `scan --json` document.
pub fn inventory_json(inv: &crate::scan::Inventory) -> crate::json::Json {
    use crate::json::Json;
    use crate::json_obj;
    use crate::model::attrs_json;
    fn group(g: &crate::scan::GroupInfo) -> Json {
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
                "attributes" => attrs_json(&v.attrs),
            }).collect()),
            "attributes" => attrs_json(&g.attrs),
            "groups" => Json::Arr(g.groups.iter().map(group).collect()),
        }
    }
    json_obj! {
        "files" => Json::Arr(inv.files.iter().map(|f| json_obj! {
            "path" => f.path.display().to_string(),
            "size" => f.size,
            "format" => f.format.as_str(),
            "concat_start" => f.concat_start,
            "concat_length" => f.concat_len,
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
pub fn inventory_text(inv: &crate::scan::Inventory) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let on_disk: u64 = inv.files.iter().map(|f| f.size).sum();
    let _ = writeln!(
        s,
        "{} file(s), {} on disk, {} uncompressed{}",
        inv.files.len(),
        human_bytes(on_disk),
        human_bytes(inv.nbytes()),
        match &inv.concat_dim {
            Some(d) => format!(", concatenated along '{d}' ({})", inv.concat_reason),
            None => format!(" ({})", inv.concat_reason),
        }
    );
    for f in &inv.files {
        let _ = writeln!(
            s,
            "  {}  {}  {}{}",
            f.path.display(),
            f.format.as_str(),
            human_bytes(f.size),
            if inv.concat_dim.is_some() {
                format!("  [{}..{})", f.concat_start, f.concat_start + f.concat_len)
            } else {
                String::new()
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
                human_bytes(v.nbytes()),
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

/// The `drift` list of `scan --json`.
pub fn drift_json(drift: &[crate::scan::Drift]) -> crate::json::Json {
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
pub fn drift_text(drift: &[crate::scan::Drift]) -> String {
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
pub fn put_requests(prepared: &crate::write::Prepared, format: crate::meta::ZarrFormat, groups: usize) -> u64 {
    let docs_per_array = if format == crate::meta::ZarrFormat::V2 { 2 } else { 1 };
    let docs_per_group = if format == crate::meta::ZarrFormat::V2 { 3 } else { 1 };
    let objects = prepared.plan.objects;
    objects + prepared.jobs.len() as u64 * docs_per_array + groups as u64 * docs_per_group + 2 + objects.div_ceil(512)
}

fn strategy_name(s: &crate::plan::Strategy) -> &'static str {
    match s {
        crate::plan::Strategy::Direct { .. } => "direct",
        crate::plan::Strategy::TwoPass { .. } => "two-pass",
    }
}

/// The `plan --json` document.
pub fn plan_json(
    prepared: &crate::write::Prepared,
    opts: &crate::write::ConvertOptions,
    groups: usize,
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
        "notes" => prepared.notes.clone(),
        "skipped" => prepared.skipped.clone(),
    }
}

/// The human-readable plan.
pub fn plan_text(prepared: &crate::write::Prepared, opts: &crate::write::ConvertOptions, groups: usize) -> String {
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
            human_bytes(a.bytes),
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
        human_bytes(p.peak_memory),
        human_bytes(p.max_mem),
        p.workers,
        p.io_concurrency
    );
    let _ = writeln!(
        s,
        "reads: amplification {:.2}x; intermediate data {}",
        p.read_amplification,
        human_bytes(p.intermediate_bytes)
    );
    let _ = writeln!(
        s,
        "requests: {} objects, {} PUT requests, about ${:.4} at ${} per 1,000 PUTs",
        p.objects,
        puts,
        puts as f64 / 1000.0 * PUT_PRICE_PER_1000,
        PUT_PRICE_PER_1000
    );
    for n in &prepared.notes {
        let _ = writeln!(s, "note: {n}");
    }
    for n in &prepared.skipped {
        let _ = writeln!(s, "skipped: {n}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_only_on_an_interactive_terminal() {
        assert!(show_progress(true, false, false, false));
        assert!(!show_progress(false, false, false, false));
        assert!(!show_progress(true, true, false, false));
        assert!(!show_progress(true, false, true, false));
        assert!(!show_progress(true, false, false, true));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512MiB").unwrap(), 512 << 20);
        assert_eq!(parse_size("2GiB").unwrap(), 2 << 30);
        assert_eq!(parse_size("1GB").unwrap(), 1_000_000_000);
        assert_eq!(parse_size("1.5k").unwrap(), 1500);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert!(parse_size("lots").unwrap_err().contains("not a number"));
        assert!(parse_size("5 parsecs").unwrap_err().contains("unknown size unit"));
        assert!(parse_size("0").is_err());
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(12), "12 B");
    }
}
