//! `scenewatch prompts test`: scores prompts on photos or a video so a user can tune prompts and thresholds before
//! deploying. One JSON line per photo or per clip of a video (`--json`), or a readable table.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use serde::Serialize;

use crate::clip::{Clip, ClipAssembler};
use crate::clock::SystemClock;
use crate::config::{Config, DropPolicy};
use crate::infer::{FrameResult, Models, PromptScores};
use crate::ingest::{frame::Frame, pipeline, source::SourceKind};
use crate::language::score::{fuse_all, Fused, Hold, PartScore, ScoreContext};
use crate::language::Program;
use crate::shutdown::Shutdown;

#[derive(Debug, Serialize)]
pub struct Scored {
    pub prompt: String,
    /// The fused score (the head's calibrated score for a prompt with no understood part).
    pub score: f32,
    /// The head's raw pooled cosine for the prompt's head text.
    pub raw: f32,
    /// Each part and its score on this photo or clip (`null` score: not measured on this input).
    pub parts: Vec<PartScore>,
}

/// How a prompt was understood (printed once, before the scores; `--json`: one `{"parsed": …}` line each).
#[derive(Debug, Serialize)]
pub struct Parsed {
    pub prompt: String,
    /// The parts the product checks from its own evidence.
    pub understood: Vec<String>,
    /// What the language head scores (the free text), or null when every content word was understood.
    pub head_text: Option<String>,
    /// Words nothing in the product can check.
    pub unchecked: Vec<String>,
    pub notes: Vec<String>,
}

impl Parsed {
    pub fn of(p: &Program) -> Self {
        Self {
            prompt: p.text.clone(),
            understood: if p.structured {
                p.describe()
            } else {
                Vec::new()
            },
            head_text: p.uses_head.then(|| p.head_text.clone()),
            unchecked: p.unchecked.clone(),
            notes: p.notes.clone(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Line {
    pub input: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clip: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_start: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_end: Option<f64>,
    pub detections: Vec<String>,
    pub scores: Vec<Scored>,
}

/// Options of `prompts test`.
pub struct TestArgs {
    pub config: PathBuf,
    pub camera: Option<String>,
    pub prompts: Vec<String>,
    pub inputs: Vec<PathBuf>,
    pub json: bool,
}

fn round3(x: f32) -> f32 {
    (x * 1000.0).round() / 1000.0
}

fn sorted(p: &PromptScores, fused: Vec<Fused>) -> Vec<Scored> {
    let mut v: Vec<Scored> = p
        .texts
        .iter()
        .zip(fused)
        .enumerate()
        .map(|(k, (t, f))| Scored {
            prompt: t.clone(),
            score: round3(f.clip),
            raw: round3(p.raw.get(k).copied().unwrap_or(0.0)),
            parts: f
                .parts
                .into_iter()
                .map(|mut part| {
                    part.score = part.score.map(round3);
                    part
                })
                .collect(),
        })
        .collect();
    v.sort_by(|a, b| b.score.total_cmp(&a.score));
    v
}

fn det_summary(frames: &[FrameResult]) -> Vec<String> {
    let mut labels: Vec<String> = frames
        .iter()
        .flat_map(|f| {
            f.detections
                .iter()
                .filter(|d| d.score >= 0.5)
                .map(|d| d.label.to_string())
        })
        .collect();
    labels.sort();
    labels.dedup();
    labels
}

pub fn run(args: TestArgs) -> anyhow::Result<Vec<Line>> {
    let mut cfg = Config::load(&args.config)?;
    // the camera whose prompts and clip shape are tested: --camera, else the first with prompts, else the first
    let cam = match &args.camera {
        Some(name) => Some(
            cfg.cameras
                .iter()
                .find(|c| &c.name == name)
                .with_context(|| format!("no camera named {name}"))?,
        ),
        None => cfg.cameras.iter().find(|c| !c.prompts.is_empty()),
    };
    let prompts: Vec<String> = if !args.prompts.is_empty() {
        args.prompts.clone()
    } else {
        cam.context("no camera in the config has [[cameras.prompts]]; pass --prompt TEXT")?
            .prompts
            .iter()
            .map(|p| p.text.clone())
            .collect()
    };
    let (sample_fps, clip_s) = cam
        .or(cfg.cameras.first())
        .map(|c| (c.sample_fps, c.clip_seconds))
        .unwrap_or((2.0, 4.0));
    // the prompts are parsed against that camera's zones and scored in its time zone
    let mut scene = cam.or(cfg.cameras.first()).cloned().unwrap_or_else(|| {
        toml::from_str("name = \"test\"\nurl = \"test://\"").expect("a minimal camera parses")
    });
    scene.prompts = prompts
        .iter()
        .map(|t| crate::config::PromptConfig {
            text: t.clone(),
            threshold: 0.75,
            exit_threshold: None,
            enter_clips: 1,
            exit_clips: 2,
        })
        .collect();
    anyhow::ensure!(!prompts.is_empty(), "no prompts to test");
    cfg.inference.encoder = true;
    // the daemon's per-camera prompts are not needed here
    for c in cfg.cameras.iter_mut() {
        c.prompts.clear();
    }
    let mut models = Models::load(&cfg)?;
    models.load_head(&cfg)?;
    let known = crate::language::parse::known_words(&models.imagenet_labels);
    let programs = scene.programs_with(Some(&known));
    models.set_programs("test", &programs)?;
    let levels = models.detector.card().thresholds();
    let tz = crate::events::schedule::parse_tz(&scene.timezone).map_err(anyhow::Error::msg)?;
    let ctx = ScoreContext {
        levels: &levels,
        zones: &scene.zones,
        tz,
        alpha: cfg.language.alpha,
    };
    let parsed: Vec<Parsed> = programs.iter().map(Parsed::of).collect();
    for p in &parsed {
        if args.json {
            println!("{}", serde_json::json!({ "parsed": p }));
        } else {
            println!("prompt '{}'", p.prompt);
            if p.understood.is_empty() {
                println!("  understood: object nouns only; scored by the language head as a whole (and by the presence of person or vehicle nouns)");
            }
            for u in &p.understood {
                println!("  understood: {u}");
            }
            if let (Some(h), false) = (&p.head_text, p.understood.is_empty()) {
                println!("  free text for the language head: '{h}'");
            }
            if !p.unchecked.is_empty() {
                println!(
                    "  warning: nothing in scenewatch can check {} (scored only by text similarity)",
                    crate::language::parse::quoted(&p.unchecked)
                );
            }
            for n in &p.notes {
                println!("  note: {n}");
            }
        }
    }
    let mut lines = Vec::new();
    for input in &args.inputs {
        let is_image = matches!(
            input
                .extension()
                .and_then(|e| e.to_str())
                .map(|e| e.to_ascii_lowercase())
                .as_deref(),
            Some("png" | "jpg" | "jpeg")
        );
        if is_image {
            let img = image::open(input)
                .with_context(|| input.display().to_string())?
                .to_rgb8();
            let (w, h) = img.dimensions();
            let clip = Clip::of_photo("test", w, h, img.into_raw());
            let r = models.infer_clip(&clip)?;
            let p = r.prompts.as_ref().context("no prompt scores")?;
            let fused = fuse_all(&programs, p, &r.frames, &ctx, None);
            lines.push(Line {
                input: input.display().to_string(),
                clip: None,
                stream_start: None,
                stream_end: None,
                detections: det_summary(&r.frames),
                scores: sorted(p, fused),
            });
        } else {
            // durations are held across the clips of one video
            let mut holds = vec![Hold::default(); programs.len()];
            for_each_video_clip(input, sample_fps, clip_s, |clip| {
                let r = models.infer_clip(&clip)?;
                let p = r.prompts.as_ref().context("no prompt scores")?;
                let fused = fuse_all(&programs, p, &r.frames, &ctx, Some(&mut holds));
                lines.push(Line {
                    input: input.display().to_string(),
                    clip: Some(clip.index),
                    stream_start: Some(clip.start.as_secs_f64()),
                    stream_end: Some(clip.end.as_secs_f64()),
                    detections: det_summary(&r.frames),
                    scores: sorted(p, fused),
                });
                Ok(())
            })?;
        }
    }
    for l in &lines {
        if args.json {
            println!("{}", serde_json::to_string(l)?);
        } else {
            let at = l
                .clip
                .map(|c| {
                    format!(
                        " clip {c} ({:.0}-{:.0} s)",
                        l.stream_start.unwrap_or(0.0),
                        l.stream_end.unwrap_or(0.0)
                    )
                })
                .unwrap_or_default();
            println!("{}{at}  detections: {}", l.input, l.detections.join(", "));
            for s in &l.scores {
                println!("  {:.3}  (raw {:+.3})  {}", s.score, s.raw, s.prompt);
                if !s.parts.is_empty() {
                    for p in &s.parts {
                        let score = p
                            .score
                            .map_or_else(|| "  -  ".to_string(), |v| format!("{v:.3}"));
                        let note = p
                            .note
                            .as_deref()
                            .map(|n| format!(" ({n})"))
                            .unwrap_or_default();
                        println!("         {score}  {}{note}", p.part);
                    }
                }
            }
        }
    }
    Ok(lines)
}

/// Decodes a video file with the daemon's own ingest pipeline (on its own thread) and calls `on_clip` for each
/// clip as it is completed, so only a clip's frames are in memory at a time.
pub fn for_each_video_clip(
    path: &Path,
    sample_fps: f64,
    clip_seconds: f64,
    mut on_clip: impl FnMut(Clip) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    gstreamer::init()?;
    let kind = SourceKind::parse(&path.display().to_string()).map_err(anyhow::Error::msg)?;
    let (tx, rx, _) = crate::queue::bounded::<Frame>(16, DropPolicy::Block);
    let shared = pipeline::SinkShared::new(
        Arc::from("test"),
        Arc::new(SystemClock),
        sample_fps,
        tx,
        (0, Default::default()),
    );
    let p = pipeline::build(&kind, false, &shared)?;
    let stop = Shutdown::new();
    let decoder = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            // the daemon's default limits: a file that hangs fails here too instead of blocking the command
            let d = crate::config::IngestConfig::default();
            let limits = pipeline::Watchdog {
                startup: std::time::Duration::from_secs_f64(d.startup_timeout_secs),
                stall: std::time::Duration::from_secs_f64(d.watchdog_secs),
            };
            let outcome = pipeline::run(&p, &shared, limits, &stop, &mut || {});
            drop(p);
            // closing the queue ends the loop below
            drop(shared.take_queue());
            outcome
        })
    };
    let mut asm = ClipAssembler::new(clip_seconds, 0.0);
    let mut result = Ok(());
    for f in rx.iter() {
        for clip in asm.push(f) {
            if result.is_ok() {
                result = on_clip(clip);
            }
        }
        if result.is_err() {
            // stop decoding; keep draining so the pipeline thread is never blocked on a full queue
            stop.trigger();
        }
    }
    if let (Ok(()), Some(clip)) = (&result, asm.flush()) {
        result = on_clip(clip);
    }
    let outcome = decoder
        .join()
        .map_err(|_| anyhow::anyhow!("decoder thread failed"))?;
    result?;
    match outcome {
        pipeline::RunOutcome::Failed(e) => anyhow::bail!("{e}"),
        pipeline::RunOutcome::StartTimeout(d, why) => anyhow::bail!(
            "{}: no frame within {:.0} s: {why}",
            path.display(),
            d.as_secs_f64()
        ),
        pipeline::RunOutcome::Stalled(d) => anyhow::bail!(
            "{}: no frame decoded for {:.0} s",
            path.display(),
            d.as_secs_f64()
        ),
        pipeline::RunOutcome::Eos | pipeline::RunOutcome::Stopped => {}
    }
    Ok(())
}
