//! The command-line subcommands, one file each, built on the library's stages; `main` only parses arguments and
//! calls these. The dependency runs one way: nothing outside `cmd` imports from it.

pub mod adapt;
pub mod bench;
pub mod bench_inputs;
pub mod detect;
pub mod eval;
pub mod prompts;
pub mod run;
pub mod soak;
pub mod validate;

use std::process::ExitCode;

/// 0 on success; otherwise the error with its causes on stderr and 1.
pub fn exit_code(r: anyhow::Result<()>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
