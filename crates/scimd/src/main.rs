//! `scimd`: parse the command line and run it.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = scimd::cli::Cli::parse();
    match scimd::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("scimd: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}
