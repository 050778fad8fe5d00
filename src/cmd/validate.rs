//! `scenewatch validate`: loads a config file and lists every problem with its key path (exit 2), or names its
//! cameras.

use std::path::Path;
use std::process::ExitCode;

use crate::config::Config;

/// 0 when the config loads, 2 (and every problem on stderr) when it does not. An image–text card
/// (`[models] image_text`) is read and its files looked for too (its graphs are checked when they are opened).
///
/// `writable_paths`: instead of the summary line, print the directories the daemon writes (the media directory and
/// the spool's), one per line — what the systemd unit's `ReadWritePaths=` must allow when they lie outside its
/// `StateDirectory` (deploy/configure-unit.sh reads it).
pub fn run(path: &Path, writable_paths: bool) -> ExitCode {
    match Config::load(path) {
        Ok(cfg) if writable_paths => {
            let mut dirs = vec![cfg.media.resolved_dir()];
            if let Some(d) = cfg.spool.resolved_path().parent() {
                dirs.push(d.to_path_buf());
            }
            dirs.dedup();
            for d in dirs {
                println!("{}", d.display());
            }
            ExitCode::SUCCESS
        }
        Ok(cfg) => {
            if let Some(card) = &cfg.models.image_text {
                let card = cfg.models.resolve(card);
                let problem = match crate::infer::imagetext::Card::load(&card) {
                    Ok(c) => c.missing_files().err(),
                    Err(e) => Some(e.to_string()),
                };
                if let Some(problem) = problem {
                    crate::journal::eprint_error(&format!(
                        "{}: models.image_text: {problem}",
                        path.display()
                    ));
                    return ExitCode::from(2);
                }
            }
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
            crate::journal::eprint_error(&e.to_string());
            ExitCode::from(2)
        }
    }
}
