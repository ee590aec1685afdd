//! The `kino` binary: parse the command line and hand over to the library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    match kino::cli::execute(kino::cli::Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("kino: {error:#}");
            // Captured only with RUST_BACKTRACE=1 (or RUST_LIB_BACKTRACE=1).
            let backtrace = error.backtrace();
            if backtrace.status() == std::backtrace::BacktraceStatus::Captured {
                eprintln!("{backtrace}");
            }
            ExitCode::FAILURE
        }
    }
}
