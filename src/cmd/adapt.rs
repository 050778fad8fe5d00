//! `scenewatch adapt train` and `adapt test`: teach a camera a task ("is the gate open") from a few labelled
//! photos and videos, and try the head before deploying it. Features are computed by the inference workers' own
//! path (`Models::infer_clip_with` with a feature request, `infer::classify`), clip by clip with the camera's
//! sampling and clip length, so the head is trained on the numbers the daemon will serve it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use serde::Serialize;

use crate::adapt::examples::{self, Source};
use crate::adapt::features;
use crate::adapt::head::{HeadFile, HeadKind};
use crate::adapt::report;
use crate::adapt::train::{self, Example, HeadMeta, TrainOptions};
use crate::clip::Clip;
use crate::config::Config;
use crate::infer::classify::{self, ClassifierBinding, ClassifierOut};
use crate::infer::{CameraSetup, Models};

/// `adapt train`'s arguments (parsed by clap in `main.rs`).
#[derive(clap::Args)]
pub struct TrainArgs {
    #[arg(long, short, default_value = "/etc/scenewatch/scenewatch.toml")]
    pub config: PathBuf,
    /// Take sampling and clip length from this camera (default: the first).
    #[arg(long)]
    pub camera: Option<String>,
    /// One sub-folder per class (photos, videos), and optionally ranges.csv (file,start,end,class).
    #[arg(long)]
    pub examples: PathBuf,
    /// The head file to write (JSON).
    #[arg(long)]
    pub out: PathBuf,
    /// Train on a region of the frame: x0,y0,x1,y1 normalised (default: the whole frame).
    #[arg(long, value_parser = features::parse_region)]
    pub region: Option<[f32; 4]>,
    /// logistic or mlp.
    #[arg(long = "head", default_value = "logistic", value_parser = ["logistic", "mlp"])]
    pub head_kind: String,
    /// Hidden units of the mlp head.
    #[arg(long, default_value_t = 64)]
    pub hidden: usize,
    /// Augmented copies per photo (flip, crop, brightness; 0 = none).
    #[arg(long, default_value_t = 4)]
    pub augment: u32,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    #[arg(long)]
    pub max_epochs: Option<usize>,
    #[arg(long)]
    pub val_fraction: Option<f32>,
    /// Peak learning rate (AdamW).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Epochs without a better validation loss before training stops.
    #[arg(long)]
    pub patience: Option<usize>,
    /// Control run: train on shuffled labels (its report must then be near chance).
    #[arg(long)]
    pub shuffle_labels: bool,
    /// One JSON line with the report instead of the table.
    #[arg(long)]
    pub json: bool,
}

impl TrainArgs {
    fn head(&self) -> HeadKind {
        match self.head_kind.as_str() {
            "mlp" => HeadKind::Mlp {
                hidden: self.hidden,
            },
            _ => HeadKind::Logistic,
        }
    }
}

/// `adapt test`'s arguments.
#[derive(clap::Args)]
pub struct TestArgs {
    #[arg(long, short, default_value = "/etc/scenewatch/scenewatch.toml")]
    pub config: PathBuf,
    #[arg(long)]
    pub camera: Option<String>,
    #[arg(long)]
    pub head: PathBuf,
    /// Photos (PNG/JPEG) or video files.
    pub inputs: Vec<PathBuf>,
    /// A labelled folder (as for train): print precision, recall, F1 and the confusion matrix on it.
    #[arg(long)]
    pub examples: Option<PathBuf>,
    /// {"input", "clip", "scores": [{"class", "score"}…]} per line, sorted by score.
    #[arg(long)]
    pub json: bool,
}

/// The models and the camera shape features are computed with.
struct Extractor {
    models: Models,
    setup: CameraSetup,
    sample_fps: f64,
    clip_seconds: f64,
    hashes: Vec<crate::adapt::head::ModelHash>,
    recipe: crate::adapt::head::FeatureRecipe,
}

impl Extractor {
    /// Loads the detector and the image encoder of `config` (nothing else: no prompts, no pose, no heads) and
    /// takes the sampling and clip length of `camera` (default: the first camera).
    fn open(config: &Path, camera: Option<&str>, region: Option<[f32; 4]>) -> anyhow::Result<Self> {
        let mut cfg = Config::load(config)?;
        let cam = match camera {
            Some(name) => cfg
                .cameras
                .iter()
                .find(|c| c.name == name)
                .with_context(|| format!("{}: no camera named {name}", config.display()))?,
            None => cfg
                .cameras
                .first()
                .with_context(|| format!("{}: no camera", config.display()))?,
        };
        let (sample_fps, clip_seconds) = (cam.sample_fps, cam.clip_seconds);
        for c in cfg.cameras.iter_mut() {
            c.prompts.clear();
            c.classifiers.clear();
            c.rules.retain(|r| r.posture.is_none());
            c.unusual.enabled = false;
        }
        let mut models = Models::load(&cfg)?;
        models.ensure_encoder(&cfg)?;
        let encoder = models
            .encoder
            .as_ref()
            .context("the image encoder did not open")?;
        let hashes = classify::model_hashes(&models.detector.model, &encoder.model);
        let recipe = features::recipe(
            crate::infer::encoder::EMBEDDING_DIM,
            models.detector.card().classes.len(),
            region,
        );
        let setup = CameraSetup {
            classifiers: vec![Arc::new(ClassifierBinding {
                name: "adapt".into(),
                head: None,
                recipe: recipe.clone(),
            })],
            ..Default::default()
        };
        Ok(Self {
            models,
            setup,
            sample_fps,
            clip_seconds,
            hashes,
            recipe,
        })
    }

    /// Serves a head instead of a feature request (`adapt test`).
    fn with_head(mut self, head: HeadFile) -> Self {
        self.setup.classifiers = vec![Arc::new(ClassifierBinding {
            name: "adapt".into(),
            recipe: head.recipe.clone(),
            head: Some(Arc::new(head)),
        })];
        self
    }

    fn run(&mut self, clip: &Clip) -> anyhow::Result<ClassifierOut> {
        let r = self.models.infer_clip_with(clip, &self.setup)?;
        r.classifiers
            .into_iter()
            .next()
            .context("no classifier output for the clip")
    }

    /// A photo as a one-frame clip.
    fn photo(&mut self, rgb: Vec<u8>, w: u32, h: u32) -> anyhow::Result<ClassifierOut> {
        self.run(&Clip::of_photo("adapt", w, h, rgb))
    }

    /// Each clip of a video (wholly inside `range`, when given) with its output.
    fn video(
        &mut self,
        path: &Path,
        range: Option<(f64, f64)>,
        mut on_clip: impl FnMut(&Clip, ClassifierOut),
    ) -> anyhow::Result<()> {
        let (fps, secs) = (self.sample_fps, self.clip_seconds);
        super::prompts::for_each_video_clip(path, fps, secs, |clip| {
            let inside = range.is_none_or(|(a, b)| {
                clip.start.as_secs_f64() >= a - 1e-6 && clip.end.as_secs_f64() <= b + 1e-6
            });
            if inside && !clip.frames.is_empty() {
                let out = self.run(&clip)?;
                on_clip(&clip, out);
            }
            Ok(())
        })
        .with_context(|| path.display().to_string())
    }
}

fn open_photo(path: &Path) -> anyhow::Result<(Vec<u8>, u32, u32)> {
    let img = image::open(path)
        .with_context(|| format!("{}: not a readable photo", path.display()))?
        .to_rgb8();
    let (w, h) = img.dimensions();
    Ok((img.into_raw(), w, h))
}

/// Files written next to the head: `<stem>.report.txt`, `<stem>.report.json`, `<stem>.curve.svg`.
pub fn report_paths(out: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let stem = out
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "head".into());
    let dir = out.parent().unwrap_or(Path::new("."));
    (
        dir.join(format!("{stem}.report.txt")),
        dir.join(format!("{stem}.report.json")),
        dir.join(format!("{stem}.curve.svg")),
    )
}

/// What `adapt train --json` prints.
#[derive(Serialize)]
struct TrainOutput<'a> {
    head: String,
    report_text: String,
    curve_svg: String,
    examples: usize,
    clips_from_videos: usize,
    photos: usize,
    report: &'a report::TrainReport,
}

pub fn train(args: TrainArgs) -> anyhow::Result<()> {
    let set = examples::scan(&args.examples)?;
    for s in &set.skipped {
        eprintln!("skipped (not a photo or video): {}", s.display());
    }
    let mut ex = Extractor::open(&args.config, args.camera.as_deref(), args.region)?;
    let mut data: Vec<Example> = Vec::new();
    let (mut photos, mut clips) = (0usize, 0usize);
    let total = set.items.len();
    for (i, item) in set.items.iter().enumerate() {
        match &item.source {
            Source::Photo(path) => {
                let (rgb, w, h) = open_photo(path)?;
                for v in 0..=args.augment {
                    let (a, aw, ah) = features::augment(&rgb, w, h, v, args.seed);
                    let out = ex.photo(a, aw, ah)?;
                    data.push(Example {
                        x: out.feature,
                        class: item.class,
                        group: item.group.clone(),
                        augmented: v > 0,
                    });
                }
                photos += 1;
            }
            Source::Video { path, range } => {
                let before = data.len();
                ex.video(path, *range, |_, out| {
                    data.push(Example {
                        x: out.feature,
                        class: item.class,
                        group: item.group.clone(),
                        augmented: false,
                    });
                })?;
                anyhow::ensure!(
                    data.len() > before,
                    "{}: no whole clip of {} s{} (check the file and its range)",
                    path.display(),
                    ex.clip_seconds,
                    range
                        .map(|(a, b)| format!(" inside {a}-{b} s"))
                        .unwrap_or_default()
                );
                clips += data.len() - before;
            }
        }
        eprintln!(
            "features {}/{total}: {} ({})",
            i + 1,
            match &item.source {
                Source::Photo(p) | Source::Video { path: p, .. } => p.display().to_string(),
            },
            set.classes[item.class]
        );
    }
    if args.shuffle_labels {
        shuffle_labels(&mut data, args.seed);
    }
    let defaults = TrainOptions::default();
    let opts = TrainOptions {
        head: args.head(),
        max_epochs: args.max_epochs.unwrap_or(defaults.max_epochs),
        val_fraction: args.val_fraction.unwrap_or(defaults.val_fraction),
        lr: args.lr.unwrap_or(defaults.lr),
        patience: args.patience.unwrap_or(defaults.patience),
        seed: args.seed,
        progress: !args.json,
        ..defaults
    };
    let trained = train::train(&data, &set.classes, &opts)?;
    let name = args
        .out
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "head".into());
    let rep = trained.report.clone();
    let head = trained.into_head(HeadMeta {
        name,
        classes: set.classes.clone(),
        recipe: ex.recipe.clone(),
        models: ex.hashes.clone(),
    })?;
    head.save(&args.out)?;
    let (txt, json, svg) = report_paths(&args.out);
    let text = report::render_text(&rep);
    std::fs::write(&txt, &text).with_context(|| txt.display().to_string())?;
    std::fs::write(&json, serde_json::to_vec_pretty(&rep)?)
        .with_context(|| json.display().to_string())?;
    std::fs::write(&svg, report::learning_curve_svg(&rep)?)
        .with_context(|| svg.display().to_string())?;
    if args.json {
        let o = TrainOutput {
            head: args.out.display().to_string(),
            report_text: txt.display().to_string(),
            curve_svg: svg.display().to_string(),
            examples: data.len(),
            clips_from_videos: clips,
            photos,
            report: &rep,
        };
        println!("{}", serde_json::to_string(&o)?);
    } else {
        println!("{text}");
        println!(
            "head written to {} ({} examples: {photos} photos with {} augmented copies each, {clips} video clips)",
            args.out.display(),
            data.len(),
            args.augment
        );
        println!(
            "report: {}  learning curve: {}",
            txt.display(),
            svg.display()
        );
    }
    Ok(())
}

/// Shuffles the class labels over the examples (Fisher–Yates, seeded): a control run whose report must fall to
/// chance, proof that a good report is earned.
fn shuffle_labels(data: &mut [Example], seed: u64) {
    let mut labels: Vec<usize> = data.iter().map(|e| e.class).collect();
    train::Rng::new(seed ^ 0xA5A5_5A5A_DEAD_BEEF).shuffle(&mut labels);
    for (e, l) in data.iter_mut().zip(labels) {
        e.class = l;
    }
}

#[derive(Debug, Serialize)]
pub struct ClassScore {
    pub class: String,
    pub score: f32,
}

/// One line of `adapt test --json`.
#[derive(Debug, Serialize)]
pub struct TestLine {
    pub input: String,
    /// The clip's index for a video, null for a photo.
    pub clip: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_start: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_end: Option<f64>,
    pub scores: Vec<ClassScore>,
}

fn sorted_scores(out: &ClassifierOut) -> Vec<ClassScore> {
    let mut v: Vec<ClassScore> = out
        .classes
        .iter()
        .zip(&out.probs)
        .map(|(c, p)| ClassScore {
            class: c.clone(),
            score: (p * 1000.0).round() / 1000.0,
        })
        .collect();
    v.sort_by(|a, b| b.score.total_cmp(&a.score));
    v
}

pub fn test(args: TestArgs) -> anyhow::Result<()> {
    let head = HeadFile::load(&args.head)?;
    let ex = Extractor::open(&args.config, args.camera.as_deref(), head.recipe.region)?;
    head.check_models(&args.head, &ex.hashes)?;
    anyhow::ensure!(
        head.recipe == ex.recipe,
        "{}: trained on features {:?}, these models give {:?}: retrain it",
        args.head.display(),
        head.recipe,
        ex.recipe
    );
    let classes = head.classes.clone();
    let mut ex = ex.with_head(head);
    let mut lines: Vec<TestLine> = Vec::new();
    let mut emit = |l: TestLine, json: bool| {
        if json {
            if let Ok(s) = serde_json::to_string(&l) {
                println!("{s}");
            }
        } else {
            let at = match (l.clip, l.stream_start, l.stream_end) {
                (Some(c), Some(a), Some(b)) => format!(" clip {c} ({a:.0}-{b:.0} s)"),
                _ => String::new(),
            };
            let s: Vec<String> = l
                .scores
                .iter()
                .map(|s| format!("{} {:.3}", s.class, s.score))
                .collect();
            println!("{}{at}: {}", l.input, s.join(", "));
        }
        lines.push(l);
    };
    for input in &args.inputs {
        if examples::is_photo(input) {
            let (rgb, w, h) = open_photo(input)?;
            let out = ex.photo(rgb, w, h)?;
            emit(
                TestLine {
                    input: input.display().to_string(),
                    clip: None,
                    stream_start: None,
                    stream_end: None,
                    scores: sorted_scores(&out),
                },
                args.json,
            );
        } else {
            ex.video(input, None, |clip, out| {
                emit(
                    TestLine {
                        input: input.display().to_string(),
                        clip: Some(clip.index),
                        stream_start: Some(clip.start.as_secs_f64()),
                        stream_end: Some(clip.end.as_secs_f64()),
                        scores: sorted_scores(&out),
                    },
                    args.json,
                )
            })?;
        }
    }
    if let Some(dir) = &args.examples {
        let set = examples::scan(dir)?;
        let (mut truth, mut predicted) = (Vec::new(), Vec::new());
        for item in &set.items {
            // the folder's class names, mapped to the head's; a class the head does not know is an error
            let name = &set.classes[item.class];
            let t = classes.iter().position(|c| c == name).with_context(|| {
                format!(
                    "{}: class '{name}' is not one of the head's ({})",
                    dir.display(),
                    classes.join(", ")
                )
            })?;
            let mut push = |out: &ClassifierOut| {
                if let Some(p) = out
                    .probs
                    .iter()
                    .enumerate()
                    .max_by(|a, b| a.1.total_cmp(b.1))
                    .map(|(i, _)| i)
                {
                    truth.push(t);
                    predicted.push(p);
                }
            };
            match &item.source {
                Source::Photo(path) => {
                    let (rgb, w, h) = open_photo(path)?;
                    push(&ex.photo(rgb, w, h)?);
                }
                Source::Video { path, range } => ex.video(path, *range, |_, out| push(&out))?,
            }
        }
        let (per_class, confusion, accuracy, macro_f1) =
            report::classification_report(&truth, &predicted, &classes);
        let r = serde_json::json!({
            "examples": dir.display().to_string(),
            "n": truth.len(),
            "accuracy": accuracy,
            "macro_f1": macro_f1,
            "per_class": per_class,
            "confusion": confusion,
        });
        if args.json {
            println!("{}", serde_json::json!({ "report": r }));
        } else {
            println!(
                "{} on {} examples: accuracy {accuracy:.3}, macro F1 {macro_f1:.3}",
                dir.display(),
                truth.len()
            );
            for m in &per_class {
                println!(
                    "  {:<20} precision {:.3}  recall {:.3}  F1 {:.3}  support {}",
                    m.class, m.precision, m.recall, m.f1, m.support
                );
            }
            println!(
                "  confusion (rows = truth, columns = predicted, order {}): {confusion:?}",
                classes.join(", ")
            );
        }
    }
    anyhow::ensure!(
        !lines.is_empty() || args.examples.is_some(),
        "nothing to score: give photos or videos"
    );
    Ok(())
}
