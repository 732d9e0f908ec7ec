//! `scimd`: parse the command line and run it.

use clap::Parser;

/// mimalloc instead of the system allocator: a request allocates many
/// small short-lived buffers (JSON, SQL, headers), where glibc malloc
/// showed up as ~12% of a GET's CPU profile (docs/BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
