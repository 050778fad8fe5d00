//! `scenewatch validate`: loads a config file and lists every problem with its key path (exit 2), or names its
//! cameras.

use std::path::Path;
use std::process::ExitCode;

use crate::config::Config;

/// 0 when the config loads, 2 (and every problem on stderr) when it does not. Prompts with words nothing in
/// scenewatch can check are warnings (stderr), not problems: the head still scores them by text similarity. An image–text card
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
            for w in prompt_warnings(&cfg)
                .into_iter()
                .chain(model_warnings(&cfg))
            {
                eprintln!("{}: warning: {w}", path.display());
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

/// The detector the daemon loads first, when it is not where the config says. Rule labels are then checked
/// against COCO-80 and the config is valid, so this is a warning (a config may be checked on another machine than
/// the one that runs it), but `scenewatch run` with it here stops at start-up: say so now, naming the key and
/// where `models.dir` points (relative paths are the config file's).
pub fn model_warnings(cfg: &Config) -> Vec<String> {
    let setting = cfg.models.resolve(&cfg.models.detector);
    match crate::infer::card::DetectorCard::for_setting(&setting) {
        Err(crate::infer::card::CardError::Missing { .. }) => vec![format!(
            "models.detector: {} is not there (models.dir = {}): `scenewatch run` with this config on this \
             machine stops at start-up; install the models (scripts/deps.sh) or set [models] dir",
            setting.display(),
            cfg.models.dir.display()
        )],
        _ => Vec::new(),
    }
}

/// One line per prompt with words nothing can check, or a note on how it was read (issue 18), naming the key.
pub fn prompt_warnings(cfg: &Config) -> Vec<String> {
    // the ImageNet class names are words the language head has evidence for
    let labels = crate::infer::encoder::load_imagenet_labels(
        &cfg.models.resolve(&cfg.models.imagenet_labels),
    )
    .unwrap_or_default();
    let known = crate::language::parse::known_words(&labels);
    let mut out = Vec::new();
    for (i, cam) in cfg.cameras.iter().enumerate() {
        for (j, p) in cam.programs_with(Some(&known)).iter().enumerate() {
            let key = format!("cameras[{i}].prompts[{j}].text");
            if !p.unchecked.is_empty() {
                out.push(format!(
                    "{key}: '{}': nothing in scenewatch can check {} (only scored by text similarity; see docs/prompts.md)",
                    p.text,
                    p.unchecked_list()
                ));
            }
            for n in &p.notes {
                out.push(format!("{key}: '{}': {n}", p.text));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompts_with_words_nothing_can_check_are_warnings_naming_the_key() {
        let cfg: Config = toml::from_str(
            "[[cameras]]\nname = \"yard\"\nurl = \"test://\"\nprompts = [{ text = \"two people in the yard\" }, { text = \"a man fighting\" }]\n",
        )
        .expect("config");
        let w = prompt_warnings(&cfg);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].starts_with("cameras[0].prompts[1].text: 'a man fighting'")
                && w[0].contains("'fighting'"),
            "{w:?}"
        );
    }
}
