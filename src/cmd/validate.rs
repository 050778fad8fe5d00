//! `scenewatch validate`: loads a config file and lists every problem with its key path (exit 2), or names its
//! cameras.

use std::path::Path;
use std::process::ExitCode;

use crate::config::Config;

/// 0 when the config loads, 2 (and every problem on stderr) when it does not.
pub fn run(path: &Path) -> ExitCode {
    match Config::load(path) {
        Ok(cfg) => {
            println!(
                "{}: OK ({} camera(s): {})",
                path.display(),
                cfg.cameras.len(),
                cfg.cameras
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(2)
        }
    }
}
