//! Draws a camera's unusual-scene score over stream time from a daemon log, with the crate's eval plotter
//! (`docs/unusual_timeline.svg` was made with it), and prints the figures `docs/unusual.md` quotes.
//!
//! The log is the daemon's stderr with the events task's debug lines on
//! (`RUST_LOG=info,scenewatch::events::task=debug`): one `unusual-scene score … stream_start=S unusualness=Some(U)`
//! per clip (`None` while warming up).
//!
//! ```text
//! cargo run --release --example unusual_timeline -- LOG OUT.svg --camera street --threshold 0.97 \
//!     --insertion 300:320 [--alert 300:324] [--title TEXT]
//! ```

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use scenewatch::eval::metrics::{Alert, Interval};
use scenewatch::eval::plot::{write_svg, ScoreSeries, Timeline};

/// `key=value` of a log line's field (values without spaces).
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
}

fn span(s: &str) -> Result<(f64, f64), String> {
    let (a, b) = s
        .split_once(':')
        .ok_or_else(|| format!("'{s}': want START:END seconds"))?;
    let num = |x: &str| {
        x.parse::<f64>()
            .map_err(|e| format!("'{s}': {e} (want START:END seconds)"))
    };
    Ok((num(a)?, num(b)?))
}

/// (clip start, score) per scored clip, and the warm-up's end (the first scored clip's start).
fn scores(log: &str, camera: &str) -> Vec<(f64, Option<f32>)> {
    log.lines()
        .filter(|l| l.contains("unusual-scene score") && field(l, "camera") == Some(camera))
        .filter_map(|l| {
            let start = field(l, "stream_start")?.parse::<f64>().ok()?;
            let u = field(l, "unusualness")?;
            let u = u
                .strip_prefix("Some(")
                .and_then(|x| x.strip_suffix(')'))
                .and_then(|x| x.parse::<f32>().ok());
            Some((start, u))
        })
        .collect()
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut pos = Vec::new();
    let mut opts: BTreeMap<String, String> = BTreeMap::new();
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        if let Some(k) = a.strip_prefix("--") {
            let v = it.next().ok_or_else(|| format!("--{k} needs a value"))?;
            opts.insert(k.to_string(), v);
        } else {
            pos.push(a);
        }
    }
    let [log, out] = pos.as_slice() else {
        return Err("usage: unusual_timeline LOG OUT.svg --camera NAME --threshold Q --insertion START:END [--alert START:END] [--title TEXT] [--clip-seconds S]".into());
    };
    let camera = opts.get("camera").map_or("street", String::as_str);
    let threshold: f32 = opts
        .get("threshold")
        .map_or(Ok(0.995), |t| t.parse())
        .map_err(|e| format!("--threshold: {e}"))?;
    let clip_s: f64 = opts
        .get("clip-seconds")
        .map_or(Ok(4.0), |t| t.parse())
        .map_err(|e| format!("--clip-seconds: {e}"))?;
    let insertion = span(
        opts.get("insertion")
            .ok_or("--insertion START:END is needed")?,
    )?;
    let text = std::fs::read_to_string(log).map_err(|e| format!("{log}: {e}"))?;
    let all = scores(&text, camera);
    if all.is_empty() {
        return Err(format!(
            "{log}: no 'unusual-scene score' lines for camera '{camera}' (RUST_LOG=info,scenewatch::events::task=debug)"
        ));
    }
    let scored: Vec<(f64, f32)> = all.iter().filter_map(|(t, u)| Some((*t, (*u)?))).collect();
    let warm_from = scored.first().map_or(f64::NAN, |s| s.0);
    let duration = all.iter().map(|(t, _)| t + clip_s).fold(0.0, f64::max);

    // figures: clips wholly inside the insertion, and clips not touching it
    let inside: Vec<f32> = scored
        .iter()
        .filter(|(t, _)| *t >= insertion.0 && t + clip_s <= insertion.1)
        .map(|s| s.1)
        .collect();
    let empty: Vec<(f64, f32)> = scored
        .iter()
        .filter(|(t, _)| t + clip_s <= insertion.0 || *t >= insertion.1)
        .copied()
        .collect();
    let max_empty = empty
        .iter()
        .copied()
        .fold((f64::NAN, f32::MIN), |m, s| if s.1 > m.1 { s } else { m });
    println!(
        "clips: {} ({} scored, warm from {warm_from} s)",
        all.len(),
        scored.len()
    );
    println!(
        "empty parts after the warm-up: {} clips, max {:.3} (clip at {} s), above {threshold}: {}",
        empty.len(),
        max_empty.1,
        max_empty.0,
        empty.iter().filter(|s| s.1 >= threshold).count()
    );
    if !inside.is_empty() {
        let min = inside.iter().copied().fold(f32::MAX, f32::min);
        let mean = inside.iter().sum::<f32>() / inside.len() as f32;
        println!(
            "insertion {}–{} s: {} clips, min {min:.3}, mean {mean:.3}, scores {:?}",
            insertion.0,
            insertion.1,
            inside.len(),
            inside
        );
    }
    let around: Vec<String> = scored
        .iter()
        .filter(|(t, _)| *t >= insertion.0 - 3.0 * clip_s && *t < insertion.1 + 3.0 * clip_s)
        .map(|(t, u)| format!("{t}:{u:.3}"))
        .collect();
    println!("around the insertion: {}", around.join(" "));

    let alerts = match opts.get("alert") {
        Some(a) => {
            let (s, e) = span(a)?;
            vec![Alert {
                label: "unusual".into(),
                stream_start: s,
                stream_end: e,
                noticed: s,
            }]
        }
        None => Vec::new(),
    };
    let t = Timeline {
        title: opts.get("title").cloned().unwrap_or_else(|| {
            format!("unusual-scene score of camera '{camera}' (one point per {clip_s} s clip, from the end of the warm-up)")
        }),
        duration_s: duration,
        truth: [(
            "unusual".to_string(),
            vec![Interval::new(insertion.0, insertion.1)],
        )]
        .into(),
        alerts,
        scores: vec![ScoreSeries {
            label: "unusual".into(),
            points: scored,
            threshold,
        }],
    };
    let out = Path::new(out);
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = out
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| format!("{}: not a file name", out.display()))?;
    let path = write_svg(dir, name, &t).map_err(|e| e.to_string())?;
    println!("wrote {}", path.display());
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("unusual_timeline: {e}");
            ExitCode::FAILURE
        }
    }
}
