//! The progress bar of long runs.
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
}
