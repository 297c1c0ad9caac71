//! Slurm batch scripts for a split run: a job array of `nc2zarr task` and a commit job,
//! written for users who do not write batch scripts, and optionally submitted with
//! `sbatch` (the commit depends on every task with `afterok`).
//!
//! The scripts hold no secrets: credentials reach the tasks through the environment,
//! which `sbatch` passes on by default (`--export=ALL`).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Error, Result};
use crate::store::StoreOptions;

/// What the scripts run and with what resources.
#[derive(Debug, Clone)]
pub struct SlurmJob {
    /// The target the split run was prepared in (local paths made absolute).
    pub target: String,
    /// Tasks in the run.
    pub tasks: usize,
    /// Encoding threads of each task: its `--cpus-per-task`.
    pub workers: usize,
    /// `--max-mem` of each task: its `--mem` is this plus headroom.
    pub max_mem: u64,
    /// How tasks reach the target (no secret options).
    pub store: StoreOptions,
    /// Scratch directory for two-pass arrays, shared or node-local.
    pub temp_dir: Option<PathBuf>,
    /// Extra `sbatch` options for both scripts (`--partition=…`, `--time=…`, `--account=…`).
    pub sbatch_options: Vec<String>,
}

/// The scripts written, and the job ids when submitted.
#[derive(Debug, Clone)]
pub struct Scripts {
    /// The job-array script.
    pub tasks: PathBuf,
    /// The commit script.
    pub commit: PathBuf,
    /// Job ids of the array and of the commit, when submitted.
    pub submitted: Option<(String, String)>,
}

/// Memory Slurm reserves per task: `--max-mem` plus 10% and 128 MiB for what the
/// process holds outside its budget (binary, libraries, allocator slack).
fn mem_mib(max_mem: u64) -> u64 {
    (max_mem + max_mem / 10).div_ceil(1 << 20) + 128
}

/// Quotes `s` for a POSIX shell.
fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=@,+%".contains(&b))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The `nc2zarr` arguments that reach the target, refusing secrets.
fn store_flags(store: &StoreOptions) -> Result<Vec<String>> {
    let mut flags = Vec::new();
    if let Some(e) = &store.endpoint {
        flags.extend(["--endpoint".to_string(), e.clone()]);
    }
    for (k, v) in &store.options {
        if crate::store::is_secret_option(k) {
            return Err(Error::Usage(format!(
                "--storage-option {k}=… would be written into the batch scripts in clear; pass credentials through \
                 the environment instead (AWS_SECRET_ACCESS_KEY, AZURE_STORAGE_ACCOUNT_KEY, …), which Slurm passes \
                 on to the tasks"
            )));
        }
        flags.extend(["--storage-option".to_string(), format!("{k}={v}")]);
    }
    flags.extend(["--retry-timeout".to_string(), store.retry_timeout.as_secs().to_string()]);
    Ok(flags)
}

fn command_line(words: &[String]) -> String {
    words.iter().map(|w| quote(w)).collect::<Vec<_>>().join(" ")
}

fn header(name: &str, dir: &Path, log: &str, job: &SlurmJob) -> Result<String> {
    let cwd = std::env::current_dir().map_err(|e| Error::Usage(format!("the current directory: {e}")))?;
    let mut s = format!(
        "#!/bin/bash\n#SBATCH --job-name={name}\n#SBATCH --chdir={}\n#SBATCH --output={}\n",
        quote(&cwd.display().to_string()),
        quote(&dir.join(log).display().to_string())
    );
    for o in &job.sbatch_options {
        if o.contains('\n') || !o.starts_with('-') {
            return Err(Error::Usage(format!(
                "--sbatch {o:?} is not an sbatch option (like --partition=compute)"
            )));
        }
        s.push_str(&format!("#SBATCH {o}\n"));
    }
    Ok(s)
}

/// Writes `tasks.sbatch` (the job array) and `commit.sbatch` into `dir`.
pub fn write_scripts(dir: &Path, job: &SlurmJob) -> Result<Scripts> {
    let io = |what: &str, e: std::io::Error| Error::Usage(format!("cannot write {what}: {e}"));
    std::fs::create_dir_all(dir).map_err(|e| io(&dir.display().to_string(), e))?;
    let dir = std::path::absolute(dir).map_err(|e| io(&dir.display().to_string(), e))?;
    let exe = std::env::current_exe()
        .map_err(|e| Error::Internal(format!("cannot find the nc2zarr binary: {e}")))?
        .display()
        .to_string();
    let flags = store_flags(&job.store)?;

    let mut task = vec![exe.clone(), "task".into(), job.target.clone(), "--quiet".into()];
    task.extend(flags.iter().cloned());
    if let Some(t) = &job.temp_dir {
        task.extend(["--temp-dir".to_string(), t.display().to_string()]);
    }
    let tasks_path = dir.join("tasks.sbatch");
    let mut text = header("nc2zarr-tasks", &dir, "task-%a.out", job)?;
    text.push_str(&format!(
        "#SBATCH --array=0-{last}\n#SBATCH --ntasks=1\n#SBATCH --cpus-per-task={cpus}\n#SBATCH --mem={mem}M\n\
         # The tasks of the split run prepared in {target} (written by nc2zarr {version}).\n\
         # The index comes from SLURM_ARRAY_TASK_ID. Re-run one task alone: sbatch --array=I {this}\n\
         exec {cmd}\n",
        last = job.tasks - 1,
        cpus = job.workers.max(1),
        mem = mem_mib(job.max_mem),
        target = job.target,
        version = env!("CARGO_PKG_VERSION"),
        this = tasks_path.display(),
        cmd = command_line(&task),
    ));
    std::fs::write(&tasks_path, text).map_err(|e| io(&tasks_path.display().to_string(), e))?;

    let mut commit = vec![exe, "commit".into(), job.target.clone()];
    commit.extend(flags);
    let commit_path = dir.join("commit.sbatch");
    let mut text = header("nc2zarr-commit", &dir, "commit.out", job)?;
    text.push_str(&format!(
        "#SBATCH --ntasks=1\n#SBATCH --cpus-per-task=1\n#SBATCH --mem=1024M\n\
         # The commit of the split run prepared in {target}: it refuses (exit 7, naming them) until every task\n\
         # has finished. Submit it after the array: sbatch --dependency=afterok:ARRAY_JOB_ID {this}\n\
         exec {cmd}\n",
        target = job.target,
        this = commit_path.display(),
        cmd = command_line(&commit),
    ));
    std::fs::write(&commit_path, text).map_err(|e| io(&commit_path.display().to_string(), e))?;
    Ok(Scripts {
        tasks: tasks_path,
        commit: commit_path,
        submitted: None,
    })
}

/// Runs `sbatch --parsable ARGS…` and returns the job id.
fn sbatch(args: &[&str]) -> Result<String> {
    let out = Command::new("sbatch")
        .arg("--parsable")
        .args(args)
        .output()
        .map_err(|e| {
            Error::Scheduler(format!(
                "cannot run sbatch ({e}): submit the scripts from a Slurm login node, or run `sbatch {}` there",
                args.last().copied().unwrap_or_default()
            ))
        })?;
    if !out.status.success() {
        return Err(Error::Scheduler(format!(
            "sbatch {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    // `--parsable` prints "ID" or "ID;CLUSTER".
    let id = text.trim().split(';').next().unwrap_or_default().to_string();
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::Scheduler(format!("sbatch printed no job id: {:?}", text.trim())));
    }
    Ok(id)
}

/// Submits the array, then the commit with `afterok` on the whole array; the commit job
/// is cancelled when a task fails (`--kill-on-invalid-dep=yes`) rather than pending forever.
pub fn submit(scripts: &mut Scripts) -> Result<()> {
    let tasks = scripts.tasks.display().to_string();
    let commit = scripts.commit.display().to_string();
    let array = sbatch(&[&tasks])?;
    let dependency = format!("--dependency=afterok:{array}");
    let commit_id = sbatch(&[&dependency, "--kill-on-invalid-dep=yes", &commit])?;
    scripts.submitted = Some((array, commit_id));
    Ok(())
}

/// Lines telling the user what was written or submitted, and how to re-run a failed task.
pub fn describe(scripts: &Scripts) -> String {
    let (t, c) = (scripts.tasks.display(), scripts.commit.display());
    let mut s = match &scripts.submitted {
        Some((array, commit)) => format!(
            "  slurm: submitted the tasks as job array {array} and the commit as job {commit} (runs when every task \
             succeeded)\n  if a task fails, the commit job is cancelled; re-run that index, then commit after it:\n    \
             sbatch --array=I {t}    # prints NEW\n    sbatch --dependency=afterok:NEW {c}\n"
        ),
        None => format!(
            "  slurm: wrote {t} and {c}; submit them with\n    ID=$(sbatch --parsable {t})\n    \
             sbatch --dependency=afterok:$ID --kill-on-invalid-dep=yes {c}\n  re-run a failed index alone with \
             sbatch --array=I {t}, then submit the commit again\n"
        ),
    };
    s.push_str("  logs: one file per task beside the scripts (task-I.out, commit.out)\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_quoted_for_the_shell() {
        assert_eq!(quote("s3://bucket/x.zarr"), "s3://bucket/x.zarr");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote("$HOME"), "'$HOME'");
        assert_eq!(quote(""), "''");
    }

    #[test]
    fn secret_options_are_refused_and_others_kept() {
        for k in [
            "aws_secret_access_key",
            "aws_session_token",
            "azure_storage_account_key",
            "azure_storage_sas_key",
            "google_service_account_key",
            "azure_client_secret",
        ] {
            let store = StoreOptions {
                options: vec![(k.into(), "x".into())],
                ..Default::default()
            };
            let e = store_flags(&store).unwrap_err().to_string();
            assert!(e.contains(k) && e.contains("environment"), "{k}: {e}");
        }
        let store = StoreOptions {
            endpoint: Some("http://127.0.0.1:9000".into()),
            options: vec![
                ("aws_region".into(), "eu-west-1".into()),
                ("aws_access_key_id".into(), "AKIA".into()),
            ],
            ..Default::default()
        };
        assert_eq!(
            store_flags(&store).unwrap(),
            [
                "--endpoint",
                "http://127.0.0.1:9000",
                "--storage-option",
                "aws_region=eu-west-1",
                "--storage-option",
                "aws_access_key_id=AKIA",
                "--retry-timeout",
                "45"
            ]
        );
    }

    fn job(sbatch_options: Vec<String>) -> SlurmJob {
        SlurmJob {
            target: "s3://bucket/era5.zarr".into(),
            tasks: 16,
            workers: 4,
            max_mem: 8 << 30,
            store: StoreOptions {
                endpoint: Some("http://127.0.0.1:9000".into()),
                ..Default::default()
            },
            temp_dir: Some(PathBuf::from("/scratch/nc2zarr tmp")),
            sbatch_options,
        }
    }

    #[test]
    fn scripts_carry_the_array_resources_options_and_scratch() {
        let dir = tempfile::tempdir().unwrap();
        let opts = vec!["--partition=compute".to_string(), "--time=02:00:00".to_string()];
        let scripts = write_scripts(dir.path(), &job(opts)).unwrap();
        let tasks = std::fs::read_to_string(&scripts.tasks).unwrap();
        for line in [
            "#SBATCH --array=0-15",
            "#SBATCH --cpus-per-task=4",
            &format!("#SBATCH --mem={}M", mem_mib(8 << 30)),
            "#SBATCH --partition=compute",
            "#SBATCH --time=02:00:00",
        ] {
            assert!(tasks.lines().any(|l| l == line), "{line} missing:\n{tasks}");
        }
        let exec = tasks.lines().find(|l| l.starts_with("exec ")).unwrap();
        assert!(
            exec.ends_with(
                "task s3://bucket/era5.zarr --quiet --endpoint http://127.0.0.1:9000 --retry-timeout 45 --temp-dir \
                 '/scratch/nc2zarr tmp'"
            ),
            "{exec}"
        );
        let commit = std::fs::read_to_string(&scripts.commit).unwrap();
        assert!(commit.contains("#SBATCH --partition=compute"), "{commit}");
        assert!(
            commit
                .lines()
                .any(|l| l.starts_with("exec ") && l.contains(" commit s3://bucket/era5.zarr --endpoint")),
            "{commit}"
        );
        // Something that is not an sbatch option is refused, and so is a line break.
        for bad in ["partition=compute", "--time=1\n#SBATCH --x"] {
            let e = write_scripts(dir.path(), &job(vec![bad.to_string()])).unwrap_err();
            assert!(e.to_string().contains("is not an sbatch option"), "{e}");
        }
    }

    #[test]
    fn tasks_reserve_their_budget_and_headroom() {
        assert_eq!(mem_mib(1 << 30), 1127 + 128); // 1.1 GiB rounded up, plus 128 MiB
    }
}
