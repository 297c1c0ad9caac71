//! Error types per stage and the exit codes they map to.

use std::path::PathBuf;

/// Exit codes of the `nc2zarr` binary.
pub mod exit_code {
    /// Success, or nothing to do.
    pub const OK: i32 = 0;
    /// An unexpected internal error (a bug: please report it).
    pub const INTERNAL: i32 = 1;
    /// Bad command-line usage or option values.
    pub const USAGE: i32 = 2;
    /// A problem with the inputs: unreadable, inconsistent or unsupported.
    pub const INPUT: i32 = 3;
    /// A problem with the target: exists, unwritable, unreachable.
    pub const TARGET: i32 = 4;
    /// `verify` found missing, corrupt or different data.
    pub const VERIFY_FAILED: i32 = 5;
    /// Another nc2zarr job holds the target's lock.
    pub const LOCKED: i32 = 6;
    /// `commit` of a split run: some tasks have not finished (the message names them).
    pub const TASKS_UNFINISHED: i32 = 7;
    /// The scheduler refused a submission (`sbatch` missing or failing); the job is
    /// prepared and its scripts are written.
    pub const SCHEDULER: i32 = 8;
}

/// A problem with the input files.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// A named file does not exist.
    #[error("{}: file does not exist", path.display())]
    NotFound {
        /// The path.
        path: PathBuf,
    },
    /// The same file was named more than once.
    #[error("{}: named more than once in the inputs; list each file once", path.display())]
    Duplicate {
        /// The path.
        path: PathBuf,
    },
    /// A directory or glob produced no files.
    #[error("{arg}: {hint}")]
    NothingMatched {
        /// The argument.
        arg: String,
        /// What was looked for.
        hint: String,
    },
    /// A glob pattern could not be parsed.
    #[error("{arg}: bad glob pattern: {message}")]
    BadGlob {
        /// The argument.
        arg: String,
        /// Why.
        message: String,
    },
    /// The operating system refused an operation.
    #[error("{}: {message}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS message.
        message: String,
    },
    /// The netCDF library cannot read the file.
    #[error("{}: cannot read as NetCDF: {message}", path.display())]
    Unreadable {
        /// The path.
        path: PathBuf,
        /// The library's message and a hint.
        message: String,
    },
    /// Reading data from a variable failed.
    #[error("{}: reading variable '{variable}'{region} failed: {message}", path.display())]
    Read {
        /// The path.
        path: PathBuf,
        /// The variable's full name (group path included).
        variable: String,
        /// The box being read, in the file's indices, as ` (time 24..48, lat 0..721)`;
        /// empty for whole-variable reads of headers and coordinates.
        region: String,
        /// The library's message.
        message: String,
    },
    /// The files do not form one dataset.
    #[error("inconsistent inputs: {message}")]
    Inconsistent {
        /// What differs, naming the files and the variable.
        message: String,
        /// The files involved, when the message is about particular ones.
        files: Vec<PathBuf>,
        /// The variable involved (full name, group path included), if one.
        variable: Option<String>,
    },
    /// A variable or attribute cannot be written to Zarr.
    #[error("{0}")]
    Unsupported(String),
    /// An input error whose message names remote inputs by their URLs.
    #[error("{message}")]
    Remote {
        /// The message.
        message: String,
        /// The input it is about, by URL, if one.
        file: Option<PathBuf>,
        /// The inputs that disagree, by URL.
        files: Vec<PathBuf>,
        /// The variable involved, if one.
        variable: Option<String>,
    },
}

/// A problem with the target store.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// The target exists and holds data.
    #[error("target {target} already exists and is not empty; pass --overwrite to replace it")]
    Exists {
        /// The target as given (redacted).
        target: String,
    },
    /// The target string could not be understood.
    #[error("target {target}: {message}")]
    BadUrl {
        /// The target as given (redacted).
        target: String,
        /// Why.
        message: String,
    },
    /// A store operation failed.
    #[error("target {target}: {operation} {key} failed: {message}")]
    Store {
        /// The target (redacted).
        target: String,
        /// What was being done.
        operation: &'static str,
        /// The key involved.
        key: String,
        /// The store's message.
        message: String,
    },
    /// The target is not an nc2zarr/Zarr store or is damaged.
    #[error("target {target}: {message}")]
    Invalid {
        /// The target (redacted).
        target: String,
        /// What is wrong.
        message: String,
    },
}

/// Any error nc2zarr reports.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Input problem.
    #[error(transparent)]
    Input(#[from] InputError),
    /// Target problem.
    #[error(transparent)]
    Target(#[from] TargetError),
    /// Bad option value.
    #[error("{0}")]
    Usage(String),
    /// Verification found problems (the report lists them).
    #[error("verification failed: {0}")]
    VerifyFailed(String),
    /// Another job holds the target's lock.
    #[error("{0}")]
    Locked(String),
    /// A split run's commit found tasks that have not finished.
    #[error("{0}")]
    TasksUnfinished(String),
    /// The scheduler refused a submission.
    #[error("{0}")]
    Scheduler(String),
    /// A bug.
    #[error("internal error: {0}")]
    Internal(String),
}

impl InputError {
    /// Files that do not form one dataset, and why (`message` names them).
    pub fn inconsistent(message: impl Into<String>) -> InputError {
        InputError::Inconsistent {
            message: message.into(),
            files: Vec::new(),
            variable: None,
        }
    }

    /// This error with the files it is about (an inconsistency between them).
    pub fn files<P: AsRef<std::path::Path>>(mut self, paths: impl IntoIterator<Item = P>) -> InputError {
        if let InputError::Inconsistent { files, .. } = &mut self {
            files.extend(paths.into_iter().map(|p| p.as_ref().to_path_buf()));
        }
        self
    }

    /// This error with the variable it is about (an inconsistency in it).
    pub fn about(mut self, name: &str) -> InputError {
        if let InputError::Inconsistent { variable, .. } = &mut self {
            *variable = Some(name.to_string());
        }
        self
    }

    /// The files an inconsistency is about (empty for other errors, see [`Self::path`]).
    pub fn files_involved(&self) -> &[PathBuf] {
        match self {
            InputError::Inconsistent { files, .. } | InputError::Remote { files, .. } => files,
            _ => &[],
        }
    }

    /// The variable the error is about, when it names one.
    pub fn variable(&self) -> Option<&str> {
        match self {
            InputError::Read { variable, .. } => Some(variable),
            InputError::Inconsistent { variable, .. } | InputError::Remote { variable, .. } => variable.as_deref(),
            _ => None,
        }
    }

    /// The input file the error is about, when it names one.
    pub fn path(&self) -> Option<&std::path::Path> {
        match self {
            InputError::NotFound { path }
            | InputError::Duplicate { path }
            | InputError::Io { path, .. }
            | InputError::Unreadable { path, .. }
            | InputError::Read { path, .. } => Some(path),
            InputError::Remote { file, .. } => file.as_deref(),
            _ => None,
        }
    }
}

impl Error {
    /// What kind of problem this is, as `--json` reports name it: `input`, `target`,
    /// `usage`, `verify_failed`, `locked`, `tasks_unfinished`, `scheduler` or `internal`.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Input(_) => "input",
            Error::Target(_) => "target",
            Error::Usage(_) => "usage",
            Error::VerifyFailed(_) => "verify_failed",
            Error::Locked(_) => "locked",
            Error::TasksUnfinished(_) => "tasks_unfinished",
            Error::Scheduler(_) => "scheduler",
            Error::Internal(_) => "internal",
        }
    }

    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Input(_) => exit_code::INPUT,
            Error::Target(_) => exit_code::TARGET,
            Error::Usage(_) => exit_code::USAGE,
            Error::VerifyFailed(_) => exit_code::VERIFY_FAILED,
            Error::Locked(_) => exit_code::LOCKED,
            Error::TasksUnfinished(_) => exit_code::TASKS_UNFINISHED,
            Error::Scheduler(_) => exit_code::SCHEDULER,
            Error::Internal(_) => exit_code::INTERNAL,
        }
    }
}

/// Result with nc2zarr's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
