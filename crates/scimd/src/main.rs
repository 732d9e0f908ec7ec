//! `scimd`: parse the command line and run it.

use std::io::Write;

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
        // The reader of the output went away (`scimd token list | head
        // -n1`): it took what it wanted, so this is success, not an error.
        Err(err) if err.is_broken_pipe() => std::process::ExitCode::SUCCESS,
        Err(err) => {
            // Not `eprintln!`, which panics when stderr is closed too.
            let _ = writeln!(std::io::stderr(), "scimd: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}
