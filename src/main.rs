//! The `nc2zarr` binary: parse arguments, run, map errors to exit codes.

use std::io::Write;

use clap::Parser;

fn main() {
    let cli = nc2zarr::cli::Cli::parse();
    let code = match nc2zarr::run(cli) {
        Ok(outcome) => {
            let mut out = std::io::stdout().lock();
            // A closed pipe (e.g. `| head`) is not an error.
            let _ = out.write_all(outcome.stdout.as_bytes()).and_then(|()| out.flush());
            outcome.code
        }
        Err(e) => {
            let (message, code) = nc2zarr::describe_error(&e);
            eprintln!("{message}");
            code
        }
    };
    std::process::exit(code);
}
