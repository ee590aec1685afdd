//! The `kino` binary: parse the command line and hand over to the library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    match kino::cli::execute(kino::cli::Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("kino: {error:#}");
            ExitCode::FAILURE
        }
    }
}
