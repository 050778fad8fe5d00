//! `scenewatch eval MANIFEST`: plays the manifest's labelled media through the daemon and reports the figures of
//! `crate::eval::metrics` (docs/eval.md).
//!
//! Every entry becomes a camera of one generated config (`video_N`, `photo_N`, `prompt_N`: the manifest's camera
//! keys with `url` and `name` set), loaded and validated by the daemon's own config loader, so a bad camera key
//! gets the daemon's message (with the entry named instead of `cameras[i]`). Videos run together through
//! `supervisor::run_with` — GStreamer, the inference workers and the events stage, as `run` does — with the
//! publisher replaced by an in-process sink (no broker, no spool) and an observer on inference's output for the
//! per-frame scores of the plots; files are read as fast as inference takes them. Photos go through the detector
//! as in `scenewatch detect`, prompts through the language head as in `scenewatch prompts test`. Held-apart
//! entries are scored on their own and never mixed into the tuning figures.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use tokio::sync::mpsc;

use crate::clip::Clip;
use crate::clock::SystemClock;
use crate::config::{CameraConfig, Config, ConfigError};
use crate::eval::manifest::Manifest;
use crate::eval::metrics::{
    Alert, Detection, EvalInput, Interval, PhotoResult, PromptResult, Report, Thresholds,
    VideoResult,
};
use crate::eval::plot::{self, ScoreSeries, Timeline};
use crate::eval::sweep;
use crate::infer::worker::InferOut;
use crate::infer::Models;
use crate::ingest::CameraStatus;
use crate::labels::label_matches;
use crate::publish::{MsgClass, OutMsg};
use crate::shutdown::Shutdown;
use crate::supervisor::{run_with, RunOptions};

/// Options of `eval`.
pub struct EvalArgs {
    pub manifest: PathBuf,
    /// One JSON object instead of the table.
    pub json: bool,
    /// Directory for one SVG timeline per video.
    pub plot: Option<PathBuf>,
    /// Calibration sweep of this label's rule (docs/eval.md): `min_score` over `sweep_scores` × `sweep_frames`.
    pub sweep: Option<String>,
    /// `(lo, hi, step)` of the swept `min_score`.
    pub sweep_scores: (f32, f32, f32),
    pub sweep_frames: Vec<usize>,
}

/// What one video's run produced, by camera name.
#[derive(Default)]
struct Observed {
    /// `(stream seconds, rule label, best score of that label in the frame)`, per camera.
    scores: HashMap<String, Vec<(f64, String, f32)>>,
    /// The end of the last clip (seconds of stream time), per camera.
    end_s: HashMap<String, f64>,
    /// Every inference output (frames without pixels), per camera, when a sweep will replay them.
    outputs: Option<HashMap<String, Vec<InferOut>>>,
}

/// An alert between its `new` and `end` messages.
struct OpenAlert {
    camera: String,
    alert: Alert,
}

fn camera_name(kind: &str, i: usize) -> String {
    format!("{kind}_{i}")
}

/// A manifest that cannot be used: every problem listed (exit code 2, as a bad config for `run`).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadManifest(String);

/// `run` as an exit code: 0 ok, 1 the run failed, 2 the manifest (or a camera key in it) is bad.
pub fn exit_code(args: EvalArgs) -> std::process::ExitCode {
    match run(args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            if e.is::<BadManifest>() {
                std::process::ExitCode::from(2)
            } else {
                std::process::ExitCode::FAILURE
            }
        }
    }
}

/// Runs the manifest and prints the report; the manifest or the generated config being bad is a [`BadManifest`]
/// naming every problem.
pub fn run(args: EvalArgs) -> anyhow::Result<()> {
    let manifest = Manifest::load(&args.manifest).map_err(|e| BadManifest(e.to_string()))?;
    let cfg = load_config(&manifest)?;
    let cameras: HashMap<String, CameraConfig> = cfg
        .cameras
        .iter()
        .map(|c| (c.name.clone(), c.clone()))
        .collect();
    let camera = |kind: &str, i: usize| camera_of(&cameras, kind, i);
    // a label present in a video that no rule of its camera watches can never be found
    let mut unwatched = Vec::new();
    for (i, e) in manifest.videos.iter().enumerate() {
        let rules = camera("video", i)?.effective_rules();
        for (label, intervals) in &e.truth {
            if !intervals.is_empty() && !rules.iter().any(|r| &r.label == label) {
                unwatched.push(format!(
                    "  video[{i}] ({}): truth.{label}: the camera has no rule for '{label}' (add one to camera.rules)",
                    e.file
                ));
            }
        }
    }
    if !unwatched.is_empty() {
        return Err(BadManifest(format!(
            "{}: {} problem(s):\n{}",
            manifest.path.display(),
            unwatched.len(),
            unwatched.join("\n")
        ))
        .into());
    }

    let videos = if manifest.videos.is_empty() {
        Vec::new()
    } else {
        run_videos(&manifest, &cfg, args.sweep.is_some())?
    };
    let (photos, raw_photos, prompts) = run_stills(&manifest, &cfg, &cameras)?;

    // the detector's levels for rules that set none (its model card)
    let detector =
        crate::infer::card::DetectorCard::for_setting(&cfg.models.resolve(&cfg.models.detector))?
            .thresholds();
    if let Some(dir) = &args.plot {
        for (i, (v, scores, _)) in videos.iter().enumerate() {
            let cam = camera("video", i)?;
            let series = cam
                .effective_rules()
                .iter()
                .filter(|r| r.posture.is_none())
                .map(|r| ScoreSeries {
                    label: r.label.clone(),
                    points: scores
                        .iter()
                        .filter(|(_, l, _)| l == &r.label)
                        .map(|(t, _, s)| (*t, *s))
                        .collect(),
                    threshold: r.levels(&detector).alert,
                })
                .collect();
            let t = Timeline {
                title: v.file.clone(),
                duration_s: v.duration_s,
                truth: v.truth.clone(),
                alerts: v.alerts.clone(),
                scores: series,
            };
            let path = plot::write_svg(dir, &plot::file_name(i, &v.file), &t)?;
            tracing::info!(path = %path.display(), "timeline written");
        }
    }

    // photo detections were filtered by each photo's own rule threshold already
    let thresholds = Thresholds {
        per_label: BTreeMap::new(),
        default: 0.0,
    };
    let split = |held: bool| EvalInput {
        videos: manifest
            .videos
            .iter()
            .zip(&videos)
            .filter(|(e, _)| e.held_apart == held)
            .map(|(_, (v, _, _))| v.clone())
            .collect(),
        photos: manifest
            .photos
            .iter()
            .zip(&photos)
            .filter(|(e, _)| e.held_apart == held)
            .map(|(_, p)| p.clone())
            .collect(),
        prompts: manifest
            .prompts
            .iter()
            .zip(&prompts)
            .filter(|(e, _)| e.held_apart == held)
            .map(|(_, p)| p.clone())
            .collect(),
        thresholds: thresholds.clone(),
    };
    let tuning = Report::compute(&split(false));
    let held_apart = Report::compute(&split(true));
    let any_held = manifest.videos.iter().any(|e| e.held_apart)
        || manifest.photos.iter().any(|e| e.held_apart)
        || manifest.prompts.iter().any(|e| e.held_apart);
    if args.json {
        let mut out = serde_json::to_value(&tuning)?;
        if let Some(obj) = out.as_object_mut() {
            obj.insert(
                "held_apart".into(),
                if any_held {
                    serde_json::to_value(&held_apart)?
                } else {
                    serde_json::Value::Null
                },
            );
        }
        println!("{out}");
    } else {
        println!("Tuning entries\n{}", tuning.table());
        if any_held {
            println!(
                "\nHeld-apart entries (never tune on these)\n{}",
                held_apart.table()
            );
        }
    }
    if let Some(label) = &args.sweep {
        let (lo, hi, step) = args.sweep_scores;
        let settings = sweep::grid(lo, hi, step, &args.sweep_frames);
        let svideos: Vec<sweep::SweepVideo> = manifest
            .videos
            .iter()
            .zip(videos)
            .enumerate()
            .map(|(i, (e, (result, _, outputs)))| {
                Ok(sweep::SweepVideo {
                    rec: sweep::Recorded {
                        camera: camera("video", i)?.clone(),
                        outputs,
                    },
                    result,
                    held_apart: e.held_apart,
                })
            })
            .collect::<anyhow::Result<_>>()?;
        let sphotos: Vec<sweep::SweepPhoto> = manifest
            .photos
            .iter()
            .zip(raw_photos)
            .map(|(e, raw)| sweep::SweepPhoto {
                raw,
                held_apart: e.held_apart,
            })
            .collect();
        let points = sweep::sweep(label, &settings, &svideos, &sphotos, &detector);
        if args.json {
            println!(
                "{}",
                serde_json::json!({ "sweep": { "label": label, "points": points } })
            );
        } else {
            println!("\n{}", sweep::table(label, &points));
        }
    }
    Ok(())
}

/// The generated camera of entry `kind[i]`.
fn camera_of<'a>(
    cameras: &'a HashMap<String, CameraConfig>,
    kind: &str,
    i: usize,
) -> anyhow::Result<&'a CameraConfig> {
    cameras
        .get(&camera_name(kind, i))
        .with_context(|| format!("the generated config has no camera for {kind}[{i}]"))
}

/// The daemon config for the manifest: one camera per entry (only videos enabled), written to a temporary file
/// and loaded by `Config::load`, so the environment's `SCENEWATCH__…` overrides apply and problems are the
/// daemon's own. No broker is used; evidence files and summaries are off. Models come from `./models` unless
/// `SCENEWATCH__MODELS__DIR` says otherwise.
fn load_config(manifest: &Manifest) -> anyhow::Result<Config> {
    let mut cams = Vec::new();
    let mut names = Vec::new();
    let mut add = |kind: &str, i: usize, file: &str, path: &Path, camera: &toml::Table, video| {
        let mut t = manifest.camera_for(camera);
        t.insert("name".into(), camera_name(kind, i).into());
        t.insert("url".into(), format!("file://{}", path.display()).into());
        t.insert("enabled".into(), toml::Value::Boolean(video));
        cams.push(toml::Value::Table(t));
        names.push(format!("{kind}[{i}] ({file})"));
    };
    for (i, e) in manifest.videos.iter().enumerate() {
        add("video", i, &e.file, &e.path, &e.camera, true);
    }
    for (i, e) in manifest.photos.iter().enumerate() {
        add("photo", i, &e.file, &e.path, &e.camera, false);
    }
    for (i, e) in manifest.prompts.iter().enumerate() {
        add("prompt", i, &e.file, &e.path, &e.camera, false);
    }
    let models = std::env::current_dir()
        .context("the working directory")?
        .join("models");
    let doc = toml::toml! {
        [models]
        dir = (models.display().to_string())
        [media]
        snapshots = false
        clips = false
        [summaries]
        enabled = false
        [homeassistant]
        enabled = false
    };
    let mut doc = doc;
    doc.insert("cameras".into(), toml::Value::Array(cams));
    let text = toml::to_string(&doc)?;
    let dir = tempfile_dir()?;
    let path = dir.join("eval.toml");
    std::fs::write(&path, text).with_context(|| path.display().to_string())?;
    let loaded = Config::load(&path);
    let _ = std::fs::remove_dir_all(&dir);
    match loaded {
        Ok(c) => Ok(c),
        Err(ConfigError::Invalid { problems, .. }) => {
            let lines: Vec<String> = problems
                .iter()
                .map(|p| {
                    let key = entry_key(&p.key, &names);
                    format!("  {key}: {}", p.message)
                })
                .collect();
            Err(BadManifest(format!(
                "{}: the camera keys are not a valid camera ({} problem(s)):\n{}",
                manifest.path.display(),
                lines.len(),
                lines.join("\n")
            ))
            .into())
        }
        Err(e) => Err(anyhow::anyhow!("{}: {e}", manifest.path.display())),
    }
}

/// `cameras[3].sample_fps` → `photo[1] (x.png): camera.sample_fps`; other keys as they are.
fn entry_key(key: &str, names: &[String]) -> String {
    let parsed = key.strip_prefix("cameras[").and_then(|rest| {
        let (n, tail) = rest.split_once(']')?;
        Some((n.parse::<usize>().ok()?, tail))
    });
    match parsed.and_then(|(n, tail)| Some((names.get(n)?, tail))) {
        Some((name, tail)) => format!("{name}: camera{tail}"),
        None => key.to_string(),
    }
}

/// A fresh private directory for the generated config.
fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "scenewatch-eval-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    std::fs::create_dir_all(&dir).with_context(|| dir.display().to_string())?;
    Ok(dir)
}

type ScorePoints = Vec<(f64, String, f32)>;

/// Runs every video as its own camera in one `run_with`; per video its result and per-frame scores.
fn run_videos(
    manifest: &Manifest,
    cfg: &Config,
    record: bool,
) -> anyhow::Result<Vec<(VideoResult, ScorePoints, Vec<InferOut>)>> {
    let rules: HashMap<String, Vec<String>> = cfg
        .cameras
        .iter()
        .filter(|c| c.enabled)
        .map(|c| {
            let labels = c
                .effective_rules()
                .into_iter()
                .filter(|r| r.posture.is_none())
                .map(|r| r.label)
                .collect();
            (c.name.clone(), labels)
        })
        .collect();
    let observed = Arc::new(Mutex::new(Observed {
        outputs: record.then(HashMap::new),
        ..Default::default()
    }));
    let obs = observed.clone();
    let observe = Box::new(move |msg: &InferOut| {
        let InferOut::Result(r) = msg else { return };
        let Some(labels) = rules.get(&*r.camera) else {
            return;
        };
        let Ok(mut o) = obs.lock() else { return };
        if let Some(outputs) = o.outputs.as_mut() {
            // the replay needs the detections, never the pixels (a frame's copy would hold them all in memory)
            let mut r = r.clone();
            for f in r.frames.iter_mut() {
                f.pixels = Default::default();
            }
            outputs
                .entry(r.camera.to_string())
                .or_default()
                .push(InferOut::Result(r));
        }
        let end = o.end_s.entry(r.camera.to_string()).or_insert(0.0);
        *end = end.max(r.end.as_secs_f64());
        let series = o.scores.entry(r.camera.to_string()).or_default();
        for f in &r.frames {
            for label in labels {
                let best = f
                    .detections
                    .iter()
                    .filter(|d| label_matches(label, d.label))
                    .map(|d| d.score)
                    .fold(0.0f32, f32::max);
                series.push((f.pts.as_secs_f64(), label.clone(), best));
            }
        }
    });

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .worker_threads(2)
        .build()
        .context("could not start the async runtime")?;
    let (sink, mut messages) = mpsc::channel::<OutMsg>(256);
    let statuses: Arc<Mutex<Vec<Arc<CameraStatus>>>> = Arc::default();
    let opts = RunOptions {
        sink: Some(sink),
        observe: Some(observe),
        statuses: Some(statuses.clone()),
        ..Default::default()
    };
    let run_cfg = cfg.clone();
    let alerts = rt.block_on(async move {
        let reader = tokio::spawn(async move {
            let mut open: HashMap<String, OpenAlert> = HashMap::new();
            let mut done: Vec<OpenAlert> = Vec::new();
            while let Some(m) = messages.recv().await {
                if m.class != MsgClass::Alert {
                    continue;
                }
                read_alert(&m.payload, &mut open, &mut done);
            }
            // alerts the stream did not end (there should be none: the end of a file ends them)
            done.extend(open.into_values());
            done
        });
        let report = run_with(run_cfg, Shutdown::new(), Arc::new(SystemClock), opts).await;
        let alerts = reader.await.context("the alert reader failed")?;
        report.context("running the videos")?;
        anyhow::Ok(alerts)
    })?;

    // a video that failed part-way would be scored as if nothing had been there: refuse the figures instead
    let statuses = statuses.lock().map(|v| v.clone()).unwrap_or_default();
    for st in &statuses {
        let entry = st
            .name
            .strip_prefix("video_")
            .and_then(|n| n.parse::<usize>().ok())
            .and_then(|n| manifest.videos.get(n))
            .map_or_else(|| st.name.to_string(), |e| e.file.clone());
        if st.failed.load(Ordering::Relaxed) {
            let reason = st.info().reason.unwrap_or_default();
            anyhow::bail!("{entry}: the video could not be played to its end: {reason}");
        }
        let dropped = st.queue.dropped.load(Ordering::Relaxed);
        if dropped > 0 {
            tracing::warn!(video = %entry, dropped, "frames were dropped before inference (the camera's drop policy): the figures miss them");
        }
    }
    let mut observed = std::mem::take(
        &mut *observed
            .lock()
            .map_err(|_| anyhow::anyhow!("the score observer panicked"))?,
    );
    Ok(manifest
        .videos
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let name = camera_name("video", i);
            let duration_s = observed.end_s.get(&name).copied().unwrap_or(0.0);
            let alerts = alerts
                .iter()
                .filter(|a| a.camera == name)
                .map(|a| Alert {
                    stream_end: if a.alert.stream_end.is_finite() {
                        a.alert.stream_end
                    } else {
                        duration_s
                    },
                    ..a.alert.clone()
                })
                .collect();
            let truth = e
                .truth
                .iter()
                .map(|(l, iv)| {
                    (
                        l.clone(),
                        iv.iter().map(|[s, t]| Interval::new(*s, *t)).collect(),
                    )
                })
                .collect();
            let v = VideoResult {
                file: e.file.clone(),
                duration_s,
                truth,
                alerts,
            };
            let outputs = observed
                .outputs
                .as_mut()
                .and_then(|o| o.remove(&name))
                .unwrap_or_default();
            (
                v,
                observed.scores.remove(&name).unwrap_or_default(),
                outputs,
            )
        })
        .collect())
}

/// Label alerts from one alert payload: `new` opens, `end` closes (by id); other types are ignored.
fn read_alert(payload: &[u8], open: &mut HashMap<String, OpenAlert>, done: &mut Vec<OpenAlert>) {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(payload) else {
        tracing::warn!("eval: an alert that is not JSON");
        return;
    };
    let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
    if s("kind") != "label" {
        return;
    }
    let id = s("id");
    match s("type").as_str() {
        "new" => {
            let alert = Alert {
                label: s("label"),
                stream_start: v
                    .get("stream_start")
                    .and_then(|x| x.as_f64())
                    .unwrap_or(0.0),
                stream_end: f64::NAN,
                noticed: v
                    .pointer("/clip/stream_end")
                    .and_then(|x| x.as_f64())
                    .unwrap_or(f64::NAN),
            };
            open.insert(
                id,
                OpenAlert {
                    camera: s("camera"),
                    alert,
                },
            );
        }
        "end" => {
            if let Some(mut a) = open.remove(&id) {
                a.alert.stream_end = v
                    .get("stream_end")
                    .and_then(|x| x.as_f64())
                    .unwrap_or(f64::NAN);
                done.push(a);
            }
        }
        _ => {}
    }
}

/// Photos through the detector (each label's count at its rule's `min_score`) and prompt entries through the
/// language head (top-1 of the camera's prompts).
fn run_stills(
    manifest: &Manifest,
    cfg: &Config,
    cameras: &HashMap<String, CameraConfig>,
) -> anyhow::Result<(Vec<PhotoResult>, Vec<PhotoResult>, Vec<PromptResult>)> {
    let camera = |kind: &str, i: usize| camera_of(cameras, kind, i);
    if manifest.photos.is_empty() && manifest.prompts.is_empty() {
        return Ok((Vec::new(), Vec::new(), Vec::new()));
    }
    let mut cfg = cfg.clone();
    let need_prompts = !manifest.prompts.is_empty();
    cfg.inference.encoder |= need_prompts;
    // prompts are set per entry below
    for c in cfg.cameras.iter_mut() {
        c.prompts.clear();
    }
    let mut models = Models::load(&cfg)?;
    if need_prompts {
        models.load_head(&cfg)?;
    }
    let read = |path: &Path| -> anyhow::Result<image::RgbImage> {
        Ok(image::open(path)
            .with_context(|| path.display().to_string())?
            .to_rgb8())
    };

    let mut photos = Vec::new();
    // every detection of each scored label, whatever its score (for sweeps)
    let mut raw = Vec::new();
    // the detector's levels for rules that set none (its model card)
    let detector = models.detector.card().thresholds();
    for (i, e) in manifest.photos.iter().enumerate() {
        let rules = camera("photo", i)?.effective_rules();
        let img = read(&e.path)?;
        let (w, h) = img.dimensions();
        let dets = models.detector.detect(img.as_raw(), w, h)?;
        let mut detections = Vec::new();
        let mut all = Vec::new();
        for label in e.truth.keys() {
            // a photo is one frame: its detections count at the rule's alert level
            let threshold = rules
                .iter()
                .find(|r| &r.label == label && r.posture.is_none())
                .cloned()
                .unwrap_or_else(|| crate::config::RuleConfig::with_label(label))
                .levels(&detector)
                .alert;
            all.extend(
                dets.iter()
                    .filter(|d| label_matches(label, d.label))
                    .map(|d| Detection {
                        label: label.clone(),
                        score: d.score,
                    }),
            );
            detections.extend(
                all.iter()
                    .filter(|d| &d.label == label && d.score >= threshold)
                    .cloned(),
            );
        }
        photos.push(PhotoResult {
            truth: e.truth.clone(),
            detections,
        });
        raw.push(PhotoResult {
            truth: e.truth.clone(),
            detections: all,
        });
    }

    let mut prompts = Vec::new();
    let mut current: Option<Vec<crate::language::Program>> = None;
    let known = crate::language::parse::known_words(&models.imagenet_labels);
    let alpha = cfg.language.alpha;
    for (i, e) in manifest.prompts.iter().enumerate() {
        // the entry camera's prompts, parsed against its zones and scored as the events engine scores them
        let cam = camera("prompt", i)?;
        let programs = cam.programs_with(Some(&known));
        if current.as_ref() != Some(&programs) {
            models.set_programs("eval", &programs)?;
            current = Some(programs.clone());
        }
        let img = read(&e.path)?;
        let (w, h) = img.dimensions();
        let clip = Clip::of_photo("eval", w, h, img.into_raw());
        let r = models.infer_clip(&clip)?;
        let p = r
            .prompts
            .as_ref()
            .with_context(|| format!("{}: no prompt scores", e.file))?;
        let tz = crate::events::schedule::parse_tz(&cam.timezone).map_err(anyhow::Error::msg)?;
        let ctx = crate::language::ScoreContext {
            levels: &detector,
            zones: &cam.zones,
            tz,
            alpha,
        };
        let fused = crate::language::score::fuse_all(&programs, p, &r.frames, &ctx, None);
        let top1 = fused
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.clip.total_cmp(&b.1.clip))
            .and_then(|(k, _)| p.texts.get(k).cloned());
        prompts.push(PromptResult {
            file: e.file.clone(),
            expect: e.expect.clone(),
            top1,
        });
    }
    Ok((photos, raw, prompts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_keys_name_the_entry() {
        let names = vec![
            "video[0] (a.mp4)".to_string(),
            "photo[0] (b.png)".to_string(),
        ];
        assert_eq!(
            entry_key("cameras[1].rules[0].min_score", &names),
            "photo[0] (b.png): camera.rules[0].min_score"
        );
        assert_eq!(entry_key("cameras[7].x", &names), "cameras[7].x");
        assert_eq!(entry_key("mqtt.host", &names), "mqtt.host");
    }

    #[test]
    fn alerts_pair_new_and_end_by_id() {
        let (mut open, mut done) = (HashMap::new(), Vec::new());
        let msg = |t: &str, id: &str, kind: &str, s: f64, e: Option<f64>| {
            serde_json::json!({"type": t, "id": id, "kind": kind, "camera": "video_0", "label": "person",
                               "stream_start": s, "stream_end": e, "clip": {"stream_end": 4.0}})
            .to_string()
            .into_bytes()
        };
        read_alert(&msg("new", "a", "label", 1.0, None), &mut open, &mut done);
        read_alert(&msg("new", "p", "prompt", 1.0, None), &mut open, &mut done);
        read_alert(
            &msg("update", "a", "label", 1.0, None),
            &mut open,
            &mut done,
        );
        read_alert(b"not json", &mut open, &mut done);
        read_alert(
            &msg("end", "a", "label", 1.0, Some(9.5)),
            &mut open,
            &mut done,
        );
        assert!(open.is_empty());
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].camera, "video_0");
        assert_eq!(
            done[0].alert,
            Alert {
                label: "person".into(),
                stream_start: 1.0,
                stream_end: 9.5,
                noticed: 4.0
            }
        );
    }
}
