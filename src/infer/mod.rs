//! Inference stage: owns the ORT sessions (on a dedicated OS thread, never the async runtime) and turns each
//! clip into a `ClipResult`: detections and image-encoder outputs per frame.
//!
//! Prompts are scored by one of two heads (`PromptHead`): the shipped ConSE language head (EfficientNet per
//! frame, MiniLM for the prompts; `head.rs`), or the CLIP/SigLIP pair a user brings with `[models] image_text`
//! (its image encoder per frame, its text encoder for the prompts; `imagetext.rs`). Both give the same
//! `PromptScores`, so prompt rules, `prompts test` and eval do not know which one ran.
//!
//! What runs on a camera's clips (its embedded prompts, whether the pose model runs) is the camera's
//! `CameraSetup`: made at start-up and again by a reload (`Language::setup_for`), and carried to the workers
//! in-band on the clip queue, so a reload's new prompts and posture rules apply from the camera's first new clip.

pub mod batcher;
pub mod card;
pub mod classify;
pub mod decode;
pub mod detector;
pub mod encoder;
pub mod head;
pub mod imagetext;
pub mod pose;
pub mod preprocess;
pub mod runtime;
pub mod text;
pub mod worker;

/// The label vocabulary moved to the crate root (config reads it too); kept here under its old path.
pub use crate::labels;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::clip::Clip;
use crate::config::Config;
use detector::{DecodeParams, Detection, Detector, MAX_DETECTIONS};
use encoder::{Encoder, Encoding};
use head::{LanguageHead, PromptSet};
use runtime::{InferError, LoadedModel, SessionOptions};

/// Per-frame results.
#[derive(Debug, Clone)]
pub struct FrameResult {
    pub seq: u64,
    pub pts: Duration,
    pub wall: DateTime<Utc>,
    pub width: u32,
    pub height: u32,
    pub detections: Vec<Detection>,
    /// What the prompt head's image side said about the frame (None when no prompts are scored).
    pub encoding: Option<FrameEncoding>,
    /// Posture per detection, aligned with `detections` (empty when the pose model did not run on this frame).
    pub postures: Vec<Option<pose::Posture>>,
    /// People only the pose model found (for posture rules).
    pub pose_only: Vec<pose::PoseOnly>,
    /// The frame's pixels (shared with ingest, not copied), for snapshots of alerts.
    pub pixels: Pixels,
}

/// One frame's image-side output, for the camera's prompt head.
#[derive(Debug, Clone)]
pub enum FrameEncoding {
    /// EfficientNet: ImageNet probabilities + pooled feature (the ConSE head's input).
    Classifier(Encoding),
    /// The image–text pair's image embedding, unit length.
    ImageText(Arc<[f32]>),
}

/// Packed RGB8 pixels of a frame; `Debug` prints only the size.
#[derive(Clone, Default)]
pub struct Pixels(pub Arc<Vec<u8>>);

impl std::fmt::Debug for Pixels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pixels({} bytes)", self.0.len())
    }
}

/// Time spent per phase for one clip, milliseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ClipTimings {
    /// Scaling and normalisation for the detector and the encoder (the models' times exclude it).
    pub preprocess_ms: f64,
    pub detector_ms: f64,
    pub encoder_ms: f64,
    pub pose_ms: f64,
    pub head_ms: f64,
    pub total_ms: f64,
    /// Each frame's own times (the per-frame latency histograms observe these, not the clip's average).
    #[serde(skip)]
    pub frames: Vec<FrameTimings>,
}

/// One frame's time in the per-frame phases, milliseconds (the encoder runs once per clip as a batch).
#[derive(Debug, Clone, Copy, Default)]
pub struct FrameTimings {
    pub preprocess_ms: f64,
    pub detector_ms: f64,
    /// 0 when the pose model did not run on this frame.
    pub pose_ms: f64,
}

/// Everything the inference stage knows about one clip.
#[derive(Debug, Clone)]
pub struct ClipResult {
    pub camera: Arc<str>,
    pub clip_index: u64,
    pub start: Duration,
    pub end: Duration,
    pub frames: Vec<FrameResult>,
    /// Prompt scores from the language head (cameras with prompts).
    pub prompts: Option<PromptScores>,
    /// Each task head's class probabilities (`[[cameras.classifiers]]`).
    pub classifiers: Vec<classify::ClassifierOut>,
    pub timings: ClipTimings,
}

/// The language head's verdict on one clip.
#[derive(Debug, Clone)]
pub struct PromptScores {
    pub texts: Arc<Vec<String>>,
    /// Calibrated clip score per prompt (0..1).
    pub clip: Vec<f32>,
    /// Raw pooled cosine per prompt.
    pub raw: Vec<f32>,
    /// frames × prompts calibrated scores: which frames drove each prompt.
    pub frames: Vec<f32>,
}

impl PromptScores {
    /// Per-frame scores of prompt `k`.
    pub fn frame_scores(&self, k: usize) -> Vec<f32> {
        let n = self.texts.len().max(1);
        self.frames.iter().skip(k).step_by(n).copied().collect()
    }
}

/// What a still clip (motion gate) repeats: the last inferred frame's findings and the clip's prompt scores.
#[derive(Debug, Clone)]
pub struct Carried {
    pub detections: Vec<Detection>,
    pub postures: Vec<Option<pose::Posture>>,
    pub pose_only: Vec<pose::PoseOnly>,
    pub prompts: Option<PromptScores>,
    pub classifiers: Vec<classify::ClassifierOut>,
}

impl Carried {
    /// What an inferred clip leaves for the still clips after it (None for a clip without frames).
    pub fn from_result(r: &ClipResult) -> Option<Self> {
        let last = r.frames.last()?;
        Some(Self {
            detections: last.detections.clone(),
            postures: last.postures.clone(),
            pose_only: last.pose_only.clone(),
            prompts: r.prompts.clone(),
            classifiers: r.classifiers.clone(),
        })
    }

    /// The result of a still clip without running a model: its own frames (times, pixels for snapshots), the
    /// findings of the last inferred frame. Nothing moved, so nothing appeared, left or changed posture.
    pub fn result_for(&self, clip: &Clip) -> ClipResult {
        ClipResult {
            camera: clip.camera.clone(),
            clip_index: clip.index,
            start: clip.start,
            end: clip.end,
            frames: clip
                .frames
                .iter()
                .map(|f| FrameResult {
                    seq: f.seq,
                    pts: f.pts,
                    wall: f.wall,
                    width: f.width,
                    height: f.height,
                    detections: self.detections.clone(),
                    encoding: None,
                    postures: self.postures.clone(),
                    pose_only: self.pose_only.clone(),
                    pixels: Pixels(f.rgb.clone()),
                })
                .collect(),
            prompts: self.prompts.clone(),
            classifiers: self.classifiers.clone(),
            timings: ClipTimings::default(),
        }
    }
}

/// What a user needs to know about a loaded model (logged, and published on `<prefix>/info`).
#[derive(Debug, Clone, Serialize)]
pub struct ModelReport {
    pub name: &'static str,
    pub path: String,
    pub sha256: String,
    pub provider: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback_reason: Option<String>,
    pub load_ms: f64,
}

impl From<&LoadedModel> for ModelReport {
    fn from(m: &LoadedModel) -> Self {
        Self {
            name: m.name,
            path: m.path.display().to_string(),
            sha256: m.sha256.clone(),
            provider: m.provider,
            fallback_reason: m.fallback_reason.clone(),
            load_ms: m.load_ms,
        }
    }
}

/// What scores prompts: the shipped ConSE language head, or the user's image–text pair (`[models] image_text`).
#[derive(Clone)]
pub enum PromptHead {
    Conse(Arc<Mutex<LanguageHead>>),
    Pair(Arc<imagetext::PairText>),
}

impl PromptHead {
    /// Embeds prompts for this head.
    pub fn prompts(&self, texts: &[String]) -> Result<PromptSet, InferError> {
        match self {
            Self::Conse(h) => locked(h)?.prompts(texts),
            Self::Pair(p) => p.prompts(texts),
        }
    }

    fn reports(&self) -> Vec<ModelReport> {
        match self {
            Self::Conse(h) => h
                .lock()
                .map(|h| {
                    vec![
                        ModelReport::from(&h.text.model),
                        ModelReport::from(&h.model),
                    ]
                })
                .unwrap_or_default(),
            Self::Pair(p) => p
                .text
                .lock()
                .map(|t| vec![ModelReport::from(&t.model)])
                .unwrap_or_default(),
        }
    }
}

/// A camera's prompts, embedded, with the head that scores them.
pub struct PromptBinding {
    pub texts: Arc<Vec<String>>,
    pub set: PromptSet,
    pub head: PromptHead,
}

impl std::fmt::Debug for PromptBinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PromptBinding")
            .field("texts", &self.texts)
            .finish_non_exhaustive()
    }
}

/// What the inference workers run on one camera's clips besides the detector. Made at start-up and by a reload
/// (`Language::setup_for`); a reload hands it to the workers in its `ClipMsg::Configure`.
#[derive(Debug, Clone, Default)]
pub struct CameraSetup {
    /// The prompt head's image side + the head on every clip (None: the camera has no prompts and does not pay
    /// for them).
    pub prompts: Option<Arc<PromptBinding>>,
    /// Pose model on every frame (some rule has a `posture`).
    pub pose: bool,
    /// The image encoder on the clip's frames although there are no prompts: the unusual-scene baseline learns
    /// from its embeddings (`[cameras.unusual]`), and whole-frame task heads are fed from them.
    pub embed: bool,
    /// Task heads (`[[cameras.classifiers]]`), scored on EfficientNet features of every clip.
    pub classifiers: Vec<Arc<classify::ClassifierBinding>>,
}

/// The models one worker runs.
pub struct Models {
    pub detector: Detector,
    /// The shared detector batcher (`inference.detector_batch` > 1): this worker's detector then only letterboxes.
    pub batcher: Option<batcher::BatchClient>,
    /// EfficientNet, the ConSE head's image side (not loaded with an image–text pair).
    pub encoder: Option<Encoder>,
    /// The image–text pair's image encoder (`[models] image_text`), a session per worker like the detector.
    pub pair_image: Option<imagetext::ImageEncoder>,
    /// The image–text card, read at start-up (None: the ConSE head scores prompts).
    pub card: Option<Arc<imagetext::Card>>,
    pub imagenet_labels: Arc<Vec<String>>,
    /// The prompt head: one copy, shared by the inference workers (a clip's ConSE head run is ≈ 0.2 ms, so they
    /// hardly wait on each other, and MiniLM is the largest model; a pair's text encoder runs only when prompts
    /// are embedded).
    pub head: Option<PromptHead>,
    /// Each camera's embedded prompts at start-up (the workers then keep them per camera, see `camera_setups`).
    pub prompt_sets: HashMap<String, (Arc<Vec<String>>, PromptSet)>,
    /// The pose model (loaded when some rule has a `posture`) and the cameras it runs for at start-up.
    pub pose: Option<pose::PoseModel>,
    pub pose_cameras: std::collections::HashSet<String>,
    /// Cameras whose clips are encoded for their unusual-scene baseline or task heads, at start-up.
    pub embed_cameras: std::collections::HashSet<String>,
    /// Each camera's task heads at start-up.
    pub classifier_sets: HashMap<String, Vec<Arc<classify::ClassifierBinding>>>,
    /// Encode every n-th frame of a clip (`inference.encoder_stride`).
    pub encoder_stride: usize,
    /// The config the models were loaded from: a reload can give a camera prompts or a posture rule when no
    /// camera had them at start-up, and the worker then opens its encoder or pose session from it
    /// (`[models]` and `[inference]` changes need a restart, so the start-up values are the ones to use).
    source: Arc<Config>,
    /// Models this worker failed to open on demand: logged once, not retried on every clip.
    failed: std::collections::HashSet<&'static str>,
}

/// Opens the detector `[models] detector` names (its card, or a model with its card next to it).
pub fn open_detector(cfg: &Config) -> Result<Detector, InferError> {
    let env = runtime::init_for(cfg)?;
    let det = Detector::open(
        env,
        &cfg.models.resolve(&cfg.models.detector),
        SessionOptions::from_config(cfg),
        DecodeParams {
            threshold: cfg.inference.detector_threshold,
            nms_iou: cfg.inference.nms_iou,
            max_detections: MAX_DETECTIONS,
        },
    )?;
    let mut det = det;
    if cfg.inference.io_binding_for(det.model.provider) {
        match det.use_io_binding() {
            Ok(()) => tracing::info!(provider = det.model.provider, "detector: IO binding on"),
            // the plain run is always there: say so, and go on without
            Err(e) if cfg.inference.io_binding.is_none() => {
                tracing::warn!(error = %e, "detector: IO binding could not be set up; plain runs")
            }
            Err(e) => return Err(e),
        }
    }
    let card = det.card();
    let thresholds = card.thresholds();
    tracing::info!(
        card = %card.path.display(),
        calibration = card.calibration_method().unwrap_or("(none given)"),
        "detector: {}",
        card.summary()
    );
    // detections below the decode floor never reach the rules, whatever the card says
    let floor = cfg.inference.detector_threshold;
    for (label, t) in thresholds
        .per_label
        .iter()
        .map(|(l, t)| (l.as_str(), t))
        .chain([("default", &thresholds.fallback)])
    {
        if t.track < floor {
            tracing::warn!(
                card = %card.path.display(),
                "[thresholds.{label}] track = {} is below inference.detector_threshold = {floor}: detections between them are dropped at decode",
                t.track
            );
        }
    }
    Ok(det)
}

fn open_encoder(cfg: &Config) -> Result<Encoder, InferError> {
    let env = runtime::init_for(cfg)?;
    let path = cfg.models.resolve(&cfg.models.encoder);
    Encoder::new(runtime::open_model(
        env,
        "encoder",
        &path,
        SessionOptions::from_config(cfg),
    )?)
}

/// Reads the image–text card of `[models] image_text`, if set.
fn load_card(cfg: &Config) -> Result<Option<Arc<imagetext::Card>>, InferError> {
    cfg.models
        .image_text
        .as_ref()
        .map(|p| imagetext::Card::load(&cfg.models.resolve(p)).map(Arc::new))
        .transpose()
}

fn open_pair_image(
    cfg: &Config,
    card: &imagetext::Card,
) -> Result<imagetext::ImageEncoder, InferError> {
    let env = runtime::init_for(cfg)?;
    imagetext::ImageEncoder::open(env, card, SessionOptions::from_config(cfg))
}

/// Opens the pair's text side; `image_dim` (when an image encoder is open) is checked against its embedding size.
fn open_pair_text(
    cfg: &Config,
    card: &Arc<imagetext::Card>,
    image_dim: Option<usize>,
) -> Result<PromptHead, InferError> {
    let env = runtime::init_for(cfg)?;
    let pair = imagetext::PairText::open(
        env,
        card.clone(),
        SessionOptions::from_config(cfg),
        image_dim,
        cfg.language.alpha,
    )?;
    Ok(PromptHead::Pair(Arc::new(pair)))
}

fn locked(
    head: &Mutex<LanguageHead>,
) -> Result<std::sync::MutexGuard<'_, LanguageHead>, InferError> {
    head.lock().map_err(|_| InferError::Data {
        what: "language head",
        message: "a worker panicked while using it".into(),
    })
}

/// Opens the sentence encoder and the language head (and embeds the label banks, cached on disk).
fn open_head(
    cfg: &Config,
    imagenet_labels: &[String],
) -> Result<Arc<Mutex<LanguageHead>>, InferError> {
    let env = runtime::init_for(cfg)?;
    let opts = SessionOptions::from_config(cfg);
    let text_model = runtime::open_model(
        env,
        "text_encoder",
        &cfg.models.resolve(&cfg.models.text_encoder),
        opts,
    )?;
    let text = text::TextEncoder::new(text_model, &cfg.models.resolve(&cfg.models.tokenizer))?;
    // the head is tiny; CPU avoids a host↔device round trip per clip
    let head_opts = SessionOptions {
        provider: crate::config::ProviderChoice::Cpu,
        intra_threads: 1,
        shared_pool: false,
        spinning: true,
    };
    let head_model = runtime::open_model(
        env,
        "language_head",
        &cfg.models.resolve(&cfg.models.language_head),
        head_opts,
    )?;
    Ok(Arc::new(Mutex::new(LanguageHead::new(
        head_model,
        text,
        cfg.language.clone(),
        imagenet_labels,
        cfg.models.cache_dir.as_deref(),
    )?)))
}

/// Scores a camera's prompts on already-inferred frames.
fn score_prompts(b: &PromptBinding, frames: &[FrameResult]) -> Result<PromptScores, InferError> {
    let out = match &b.head {
        PromptHead::Conse(h) => {
            let mut probs = Vec::with_capacity(frames.len() * 1000);
            let mut det = Vec::with_capacity(frames.len() * 80);
            for f in frames {
                match &f.encoding {
                    Some(FrameEncoding::Classifier(e)) => probs.extend_from_slice(&e.probs),
                    _ => probs.extend(std::iter::repeat_n(1.0 / 1000.0, 1000)),
                }
                det.extend_from_slice(&head::detection_evidence(&f.detections));
            }
            locked(h)?.score(&probs, &det, frames.len(), &b.set)?
        }
        PromptHead::Pair(p) => {
            let images: Vec<Option<&[f32]>> = frames
                .iter()
                .map(|f| match &f.encoding {
                    Some(FrameEncoding::ImageText(e)) => Some(&e[..]),
                    _ => None,
                })
                .collect();
            p.scoring.score(&images, &b.set)
        }
    };
    Ok(PromptScores {
        texts: b.texts.clone(),
        clip: out.clip_scores,
        raw: out.clip_raw,
        frames: out.frame_scores,
    })
}

/// Makes camera setups for a reload: embeds the camera's prompts, opening the prompt head the first time a
/// camera needs it (no camera had prompts at start-up). Blocking (MiniLM, and the label banks when their cache is
/// cold, take seconds): run it on a thread of its own, never on the async runtime.
pub struct Language {
    cfg: Arc<Config>,
    card: Option<Arc<imagetext::Card>>,
    head: Mutex<Option<PromptHead>>,
    /// What task heads are checked against: the detector's hash and class count, the encoder's hash (when open).
    detector_hash: crate::adapt::head::ModelHash,
    detector_classes: usize,
    encoder_hash: Option<crate::adapt::head::ModelHash>,
}

impl Language {
    pub fn setup_for(&self, cam: &crate::config::CameraConfig) -> Result<CameraSetup, InferError> {
        let pose = cam.wants_pose();
        let embed = cam.wants_embedding();
        // a reload reads the heads again: a retrained head file is picked up
        let classifiers = if cam.enabled && !cam.classifiers.is_empty() {
            classify::load_heads(
                &self.cfg,
                cam,
                &self.hashes()?,
                encoder::EMBEDDING_DIM,
                self.detector_classes,
            )?
        } else {
            Vec::new()
        };
        if !cam.enabled || cam.prompts.is_empty() {
            return Ok(CameraSetup {
                prompts: None,
                pose,
                embed,
                classifiers,
            });
        }
        let head = {
            let mut slot = self.head.lock().map_err(|_| InferError::Data {
                what: "language head",
                message: "a reload panicked while opening it".into(),
            })?;
            match slot.as_ref() {
                Some(h) => h.clone(),
                None => {
                    tracing::info!(camera = %cam.name, "reload: opening the prompt head for the first camera with prompts");
                    let h = match &self.card {
                        // each worker checks its own image encoder against it when it opens one
                        Some(card) => open_pair_text(&self.cfg, card, None)?,
                        None => {
                            let labels = encoder::load_imagenet_labels(
                                &self.cfg.models.resolve(&self.cfg.models.imagenet_labels),
                            )?;
                            PromptHead::Conse(open_head(&self.cfg, &labels)?)
                        }
                    };
                    *slot = Some(h.clone());
                    h
                }
            }
        };
        // the head scores each prompt's free text (the whole prompt when no part was understood)
        let programs = cam.programs();
        let texts: Vec<String> = programs.iter().map(|p| p.text.clone()).collect();
        let head_texts: Vec<String> = programs.iter().map(|p| p.head_text.clone()).collect();
        let set = head.prompts(&head_texts)?;
        Ok(CameraSetup {
            prompts: Some(Arc::new(PromptBinding {
                texts: Arc::new(texts),
                set,
                head,
            })),
            pose,
            embed,
            classifiers,
        })
    }

    /// The model hashes task heads are checked against (the encoder's file is hashed here when no worker opened
    /// it at start-up).
    fn hashes(&self) -> Result<Vec<crate::adapt::head::ModelHash>, InferError> {
        let mut out = vec![self.detector_hash.clone()];
        match &self.encoder_hash {
            Some(h) => out.push(h.clone()),
            None => {
                let path = self.cfg.models.resolve(&self.cfg.models.encoder);
                let bytes = std::fs::read(&path).map_err(|_| InferError::ModelMissing {
                    model: "encoder",
                    path: path.clone(),
                })?;
                use sha2::Digest;
                out.push(crate::adapt::head::ModelHash {
                    role: "encoder".into(),
                    file: path
                        .file_name()
                        .map(|f| f.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                    sha256: runtime::hex(&sha2::Sha256::digest(&bytes)),
                });
            }
        }
        Ok(out)
    }
}

impl Models {
    /// Loads the ORT library and every configured model; fails with an error naming the model and file.
    pub fn load(cfg: &Config) -> Result<Self, InferError> {
        // the card first: a wrong card is a start-up error even before any camera has prompts
        let card = load_card(cfg)?;
        let detector = open_detector(cfg)?;
        let want_head = cfg
            .cameras
            .iter()
            .any(|c| c.enabled && !c.prompts.is_empty());
        let want_classifiers = cfg
            .cameras
            .iter()
            .any(|c| c.enabled && !c.classifiers.is_empty());
        let (encoder, imagenet_labels) = if card.is_none() && (cfg.inference.encoder || want_head) {
            let labels =
                encoder::load_imagenet_labels(&cfg.models.resolve(&cfg.models.imagenet_labels))?;
            (Some(open_encoder(cfg)?), labels)
        } else if want_classifiers {
            // task heads are trained on EfficientNet's features, with or without an image-text pair
            (Some(open_encoder(cfg)?), Vec::new())
        } else {
            (None, Vec::new())
        };
        let pose_cameras: std::collections::HashSet<String> = cfg
            .cameras
            .iter()
            .filter(|c| c.wants_pose())
            .map(|c| c.name.clone())
            .collect();
        let want_pose = !pose_cameras.is_empty();
        let embed_cameras = cfg
            .cameras
            .iter()
            .filter(|c| c.wants_embedding())
            .map(|c| c.name.clone())
            .collect();
        let mut models = Self {
            detector,
            batcher: None,
            encoder,
            pair_image: None,
            card,
            imagenet_labels: Arc::new(imagenet_labels),
            head: None,
            prompt_sets: HashMap::new(),
            pose: None,
            pose_cameras,
            embed_cameras,
            classifier_sets: HashMap::new(),
            encoder_stride: cfg.inference.encoder_stride.max(1),
            source: Arc::new(cfg.clone()),
            failed: Default::default(),
        };
        if let Some(e) = models.encoder.as_ref().filter(|_| want_classifiers) {
            let hashes = classify::model_hashes(&models.detector.model, &e.model);
            let classes = models.detector.card().classes.len();
            for cam in cfg
                .cameras
                .iter()
                .filter(|c| c.enabled && !c.classifiers.is_empty())
            {
                let heads =
                    classify::load_heads(cfg, cam, &hashes, encoder::EMBEDDING_DIM, classes)?;
                models.classifier_sets.insert(cam.name.clone(), heads);
            }
        }
        if want_pose {
            models.load_pose(cfg)?;
        }
        if want_head {
            models.load_head(cfg)?;
            for cam in cfg
                .cameras
                .iter()
                .filter(|c| c.enabled && !c.prompts.is_empty())
            {
                models.set_programs(&cam.name, &cam.programs())?;
            }
        }
        Ok(models)
    }

    /// The models for every inference worker of the config's plan: the first loaded as `load` does, the others
    /// with sessions of their own for the per-frame models and the language head and prompts shared. With
    /// `inference.detector_batch` above 1 (or auto on CUDA) also the detector batcher every worker then sends its
    /// frames to (not started yet).
    pub fn load_workers(cfg: &Config) -> Result<(Vec<Self>, Option<batcher::Batcher>), InferError> {
        let mut all = vec![Self::load(cfg)?];
        for _ in 1..cfg.inference_plan().workers {
            let next = all[0].sibling(cfg)?;
            all.push(next);
        }
        let first = &all[0].detector;
        let batch = cfg.inference.detector_batch_for(first.model.provider);
        if batch <= 1 {
            return Ok((all, None));
        }
        if cfg.inference.detector_batch == 0 && !first.batch_axis() {
            tracing::warn!(
                model = %first.model.path.display(),
                "the detector export has a tensor whose batch axis is fixed: no detector batching on {} (inference.detector_batch auto)",
                first.model.provider
            );
            return Ok((all, None));
        }
        // the shared session may land elsewhere than worker 0's (auto: a CUDA session can fall back on its own)
        let shared = open_detector(cfg)?;
        let batch = cfg.inference.detector_batch_for(shared.model.provider);
        if batch <= 1 {
            tracing::warn!(
                provider = shared.model.provider,
                "the shared detector session is not on CUDA: no detector batching (inference.detector_batch auto)"
            );
            return Ok((all, None));
        }
        let wait = Duration::from_millis(cfg.inference.detector_batch_wait_ms);
        let (batcher, client) = batcher::Batcher::new(shared, batch, wait, all.len())?;
        tracing::info!(
            frames = batch,
            wait_ms = cfg.inference.detector_batch_wait_ms,
            workers = all.len(),
            "detector batching: one shared detector session"
        );
        for m in &mut all {
            m.batcher = Some(client.clone());
        }
        Ok((all, Some(batcher)))
    }

    /// Another copy for a second worker: new sessions of the detector, encoder and pose model; the rest shared.
    pub fn sibling(&self, cfg: &Config) -> Result<Self, InferError> {
        let mut m = Self {
            detector: open_detector(cfg)?,
            batcher: self.batcher.clone(),
            encoder: self
                .encoder
                .as_ref()
                .map(|_| open_encoder(cfg))
                .transpose()?,
            pair_image: match (&self.pair_image, &self.card) {
                (Some(_), Some(card)) => Some(open_pair_image(cfg, card)?),
                _ => None,
            },
            card: self.card.clone(),
            imagenet_labels: self.imagenet_labels.clone(),
            head: self.head.clone(),
            prompt_sets: self.prompt_sets.clone(),
            pose: None,
            pose_cameras: self.pose_cameras.clone(),
            embed_cameras: self.embed_cameras.clone(),
            classifier_sets: self.classifier_sets.clone(),
            encoder_stride: self.encoder_stride,
            source: self.source.clone(),
            failed: Default::default(),
        };
        if self.pose.is_some() {
            m.load_pose(cfg)?;
        }
        Ok(m)
    }

    /// Opens the image encoder (EfficientNet) if it is not open: task heads use it with or without prompts.
    pub fn ensure_encoder(&mut self, cfg: &Config) -> Result<(), InferError> {
        if self.encoder.is_none() {
            self.encoder = Some(open_encoder(cfg)?);
        }
        Ok(())
    }

    /// Loads the pose model (MoveNet multipose).
    pub fn load_pose(&mut self, cfg: &Config) -> Result<(), InferError> {
        let env = runtime::init_for(cfg)?;
        let path = cfg.models.resolve(&cfg.models.pose);
        self.pose = Some(pose::PoseModel::new(
            runtime::open_model(env, "pose", &path, SessionOptions::from_config(cfg))?,
            cfg.inference.pose_input,
        )?);
        Ok(())
    }

    /// Loads what scoring prompts needs: with an image–text card, the pair's image and text encoders (checked
    /// against each other); otherwise EfficientNet, the sentence encoder and the language head (and embeds the
    /// label banks, cached on disk).
    pub fn load_head(&mut self, cfg: &Config) -> Result<(), InferError> {
        if let Some(card) = self.card.clone() {
            if self.pair_image.is_none() {
                self.pair_image = Some(open_pair_image(cfg, &card)?);
            }
            let dim = self.pair_image.as_ref().map(|e| e.dim);
            self.head = Some(open_pair_text(cfg, &card, dim)?);
            return Ok(());
        }
        if self.imagenet_labels.is_empty() {
            self.imagenet_labels = Arc::new(encoder::load_imagenet_labels(
                &cfg.models.resolve(&cfg.models.imagenet_labels),
            )?);
        }
        if self.encoder.is_none() {
            self.encoder = Some(open_encoder(cfg)?);
        }
        self.head = Some(PromptHead::Conse(open_head(cfg, &self.imagenet_labels)?));
        Ok(())
    }

    /// A handle that makes camera setups for reloads, sharing this worker's prompt head (if loaded).
    pub fn language(&self) -> Language {
        let (detector_hash, encoder_hash) = match &self.encoder {
            Some(e) => {
                let mut h = classify::model_hashes(&self.detector.model, &e.model).into_iter();
                (h.next(), h.next())
            }
            None => (None, None),
        };
        Language {
            cfg: self.source.clone(),
            card: self.card.clone(),
            head: Mutex::new(self.head.clone()),
            detector_hash: detector_hash.unwrap_or_else(|| crate::adapt::head::ModelHash {
                role: "detector".into(),
                file: self
                    .detector
                    .model
                    .path
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                sha256: self.detector.model.sha256.clone(),
            }),
            detector_classes: self.detector.card().classes.len(),
            encoder_hash,
        }
    }

    /// Each camera's setup at start-up (cameras with prompts or a posture rule), for the workers.
    pub fn camera_setups(&self) -> HashMap<String, CameraSetup> {
        self.prompt_sets
            .keys()
            .chain(self.pose_cameras.iter())
            .chain(self.embed_cameras.iter())
            .chain(self.classifier_sets.keys())
            .map(|c| (c.clone(), self.setup_of(c)))
            .collect()
    }

    /// The setup of `camera` from this worker's own start-up tables (for `prompts test`, `detect` and `bench`, which
    /// run clips without the workers' per-camera setups).
    pub fn setup_of(&self, camera: &str) -> CameraSetup {
        let prompts = match (&self.head, self.prompt_sets.get(camera)) {
            (Some(head), Some((texts, set))) => Some(Arc::new(PromptBinding {
                texts: texts.clone(),
                set: set.clone(),
                head: head.clone(),
            })),
            _ => None,
        };
        CameraSetup {
            prompts,
            pose: self.pose_cameras.contains(camera),
            embed: self.embed_cameras.contains(camera),
            classifiers: self
                .classifier_sets
                .get(camera)
                .cloned()
                .unwrap_or_default(),
        }
    }

    /// Opens what `setup` needs and this worker has not opened: the prompt head's image encoder, the pose model
    /// for posture rules (a reload gave a camera the first of them). A model that cannot be opened is logged once
    /// and left out; the clip still gets its detections.
    fn open_for(&mut self, setup: &CameraSetup) {
        let cfg = self.source.clone();
        let pair = setup.prompts.as_ref().and_then(|b| match &b.head {
            PromptHead::Pair(p) => Some(p.clone()),
            PromptHead::Conse(_) => None,
        });
        if let Some(pair) = pair.filter(|_| self.pair_image.is_none()) {
            if !self.failed.contains("image_text.image_encoder") {
                let opened = open_pair_image(&cfg, &pair.card)
                    .and_then(|e| pair.check_image(&e).map(|()| e));
                match opened {
                    Ok(e) => {
                        tracing::info!(
                            provider = e.model.provider,
                            "image-text image encoder opened for a reloaded camera's prompts"
                        );
                        self.pair_image = Some(e);
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "could not open the image-text image encoder: prompts are not scored by this worker");
                        self.failed.insert("image_text.image_encoder");
                    }
                }
            }
        }
        let conse = setup
            .prompts
            .as_ref()
            .is_some_and(|b| matches!(b.head, PromptHead::Conse(_)))
            || !setup.classifiers.is_empty();
        if conse && self.encoder.is_none() && !self.failed.contains("encoder") {
            match open_encoder(&cfg) {
                Ok(e) => {
                    tracing::info!(
                        provider = e.model.provider,
                        "encoder opened for a reloaded camera's prompts"
                    );
                    self.encoder = Some(e);
                }
                Err(e) => {
                    tracing::error!(error = %e, "could not open the encoder: prompts are not scored by this worker");
                    self.failed.insert("encoder");
                }
            }
        }
        if setup.pose && self.pose.is_none() && !self.failed.contains("pose") {
            if let Err(e) = self.load_pose(&cfg) {
                tracing::error!(error = %e, "could not open the pose model: posture rules see no postures from this worker");
                self.failed.insert("pose");
            } else {
                tracing::info!("pose model opened for a reloaded camera's posture rule");
            }
        }
    }

    /// Embeds and installs a camera's prompts, parsed as for a camera without zones.
    pub fn set_prompts(&mut self, camera: &str, texts: &[String]) -> Result<(), InferError> {
        let ctx = crate::language::ParseContext::default();
        let programs: Vec<_> = texts
            .iter()
            .map(|t| crate::language::parse(t, &ctx))
            .collect();
        self.set_programs(camera, &programs)
    }

    /// Embeds and installs a camera's parsed prompts: the head embeds each one's head text (its free text); a
    /// prompt about posture makes the pose model run on the camera's frames (opened now if it is not yet).
    pub fn set_programs(
        &mut self,
        camera: &str,
        programs: &[crate::language::Program],
    ) -> Result<(), InferError> {
        let head = self.head.as_ref().ok_or(InferError::Data {
            what: "prompts",
            message: "prompt head not loaded".into(),
        })?;
        let head_texts: Vec<String> = programs.iter().map(|p| p.head_text.clone()).collect();
        let set = head.prompts(&head_texts)?;
        let texts: Vec<String> = programs.iter().map(|p| p.text.clone()).collect();
        self.prompt_sets
            .insert(camera.to_string(), (Arc::new(texts), set));
        if programs.iter().any(|p| p.needs_pose()) {
            if self.pose.is_none() {
                let cfg = self.source.clone();
                self.load_pose(&cfg)?;
            }
            self.pose_cameras.insert(camera.to_string());
        }
        Ok(())
    }

    /// Scores a camera's prompts on already-inferred frames.
    pub fn score_prompts(
        &mut self,
        camera: &str,
        frames: &[FrameResult],
    ) -> Result<Option<PromptScores>, InferError> {
        match self.setup_of(camera).prompts {
            Some(b) => score_prompts(&b, frames).map(Some),
            None => Ok(None),
        }
    }

    pub fn reports(&self) -> Vec<ModelReport> {
        let mut r = vec![ModelReport::from(&self.detector.model)];
        if let Some(e) = &self.encoder {
            r.push(ModelReport::from(&e.model));
        }
        if let Some(e) = &self.pair_image {
            r.push(ModelReport::from(&e.model));
        }
        if let Some(p) = &self.pose {
            r.push(ModelReport::from(&p.model));
        }
        if let Some(h) = &self.head {
            r.extend(h.reports());
        }
        r
    }

    /// Runs every model on the clip's frames, with the camera's setup from this worker's start-up tables.
    pub fn infer_clip(&mut self, clip: &Clip) -> Result<ClipResult, InferError> {
        let setup = self.setup_of(&clip.camera);
        self.infer_clip_with(clip, &setup)
    }

    /// Runs the detector, and what `setup` asks for (pose model, encoder + language head), on the clip's frames.
    pub fn infer_clip_with(
        &mut self,
        clip: &Clip,
        setup: &CameraSetup,
    ) -> Result<ClipResult, InferError> {
        self.open_for(setup);
        let t0 = Instant::now();
        let mut preprocess = Duration::ZERO;
        let mut frames = Vec::with_capacity(clip.frames.len());
        let mut per_frame = Vec::with_capacity(clip.frames.len());
        let detected = match &self.batcher {
            Some(b) => detect_batched(&self.detector, b, clip)?,
            None => detect_each(&mut self.detector, clip)?,
        };
        for (f, (detections, timing)) in clip.frames.iter().zip(detected) {
            preprocess += Duration::from_secs_f64(timing.preprocess_ms / 1e3);
            per_frame.push(timing);
            frames.push(FrameResult {
                seq: f.seq,
                pts: f.pts,
                wall: f.wall,
                width: f.width,
                height: f.height,
                detections,
                encoding: None,
                postures: Vec::new(),
                pose_only: Vec::new(),
                pixels: Pixels(f.rgb.clone()),
            });
        }
        let detector_ms = (t0.elapsed() - preprocess).as_secs_f64() * 1e3;
        let tp = Instant::now();
        if let Some(pm) = self.pose.as_mut().filter(|_| setup.pose) {
            for ((fr, f), t) in frames.iter_mut().zip(&clip.frames).zip(&mut per_frame) {
                // every frame: a person lying down is often missed by the detector but found by the pose model
                let tf = Instant::now();
                let poses = pm.poses(&f.rgb, f.width, f.height)?;
                t.pose_ms = tf.elapsed().as_secs_f64() * 1e3;
                (fr.postures, fr.pose_only) = pose::match_poses(&fr.detections, &poses);
            }
        }
        let pose_ms = tp.elapsed().as_secs_f64() * 1e3;
        // the image encoder's consumers are the prompt head and the unusual-scene baseline: other cameras do not
        // pay for it
        let enc: Option<&mut dyn FrameEncoder> = match setup.prompts.as_ref().map(|b| &b.head) {
            Some(PromptHead::Conse(_)) => self.encoder.as_mut().map(|e| e as _),
            Some(PromptHead::Pair(_)) => self.pair_image.as_mut().map(|e| e as _),
            None if setup.embed => match (self.encoder.as_mut(), self.pair_image.as_mut()) {
                (Some(e), _) => Some(e as _),
                (None, Some(p)) => Some(p as _),
                (None, None) => None,
            },
            None => None,
        };
        let mut encoder_ms = 0.0;
        if let Some(enc) = enc {
            let (prep, ms) = encode_strided(enc, clip, &mut frames, self.encoder_stride)?;
            preprocess += prep;
            encoder_ms = ms;
        }
        let t2 = Instant::now();
        let prompts = match &setup.prompts {
            Some(b) => Some(score_prompts(b, &frames)?),
            None => None,
        };
        let head_ms = t2.elapsed().as_secs_f64() * 1e3;
        let mut classifiers = Vec::new();
        if let Some(enc) = self
            .encoder
            .as_mut()
            .filter(|_| !setup.classifiers.is_empty())
        {
            // the task heads' own cost (a product of ≈1400 × hidden) is in the encoder's time with their crops
            let (outs, spent) =
                classify::run(enc, clip, &frames, &setup.classifiers, self.encoder_stride)?;
            classifiers = outs;
            encoder_ms += spent.as_secs_f64() * 1e3;
        }
        Ok(ClipResult {
            prompts,
            classifiers,
            camera: clip.camera.clone(),
            clip_index: clip.index,
            start: clip.start,
            end: clip.end,
            frames,
            timings: ClipTimings {
                preprocess_ms: preprocess.as_secs_f64() * 1e3,
                detector_ms,
                encoder_ms,
                pose_ms,
                head_ms,
                total_ms: t0.elapsed().as_secs_f64() * 1e3,
                frames: per_frame,
            },
        })
    }
}

/// A prompt head's image side: EfficientNet (ConSE) or the pair's image encoder. Preprocessing is timed apart.
trait FrameEncoder {
    fn prepare(&mut self, frames: &[(&[u8], u32, u32)]) -> Result<(), InferError>;
    fn encode(&mut self) -> Result<Vec<FrameEncoding>, InferError>;
}

impl FrameEncoder for Encoder {
    fn prepare(&mut self, frames: &[(&[u8], u32, u32)]) -> Result<(), InferError> {
        Encoder::prepare(self, frames)
    }
    fn encode(&mut self) -> Result<Vec<FrameEncoding>, InferError> {
        Ok(self
            .run()?
            .into_iter()
            .map(FrameEncoding::Classifier)
            .collect())
    }
}

impl FrameEncoder for imagetext::ImageEncoder {
    fn prepare(&mut self, frames: &[(&[u8], u32, u32)]) -> Result<(), InferError> {
        imagetext::ImageEncoder::prepare(self, frames)
    }
    fn encode(&mut self) -> Result<Vec<FrameEncoding>, InferError> {
        Ok(self
            .run()?
            .into_iter()
            .map(FrameEncoding::ImageText)
            .collect())
    }
}

/// The detector on each frame of the clip in turn, with each frame's preprocessing and model time.
fn detect_each(
    detector: &mut Detector,
    clip: &Clip,
) -> Result<Vec<(Vec<Detection>, FrameTimings)>, InferError> {
    let mut out = Vec::with_capacity(clip.frames.len());
    for f in &clip.frames {
        let tp = Instant::now();
        detector.prepare(&f.rgb, f.width, f.height)?;
        let prep = tp.elapsed();
        let td = Instant::now();
        let detections = detector.run()?;
        out.push((
            detections,
            FrameTimings {
                preprocess_ms: prep.as_secs_f64() * 1e3,
                detector_ms: td.elapsed().as_secs_f64() * 1e3,
                pose_ms: 0.0,
            },
        ));
    }
    Ok(out)
}

/// The clip's frames letterboxed here and detected by the shared batcher, in requests of at most its batch size
/// (a clip's frames share one input size); a frame's model time is its share of the batched run.
fn detect_batched(
    detector: &Detector,
    batcher: &batcher::BatchClient,
    clip: &Clip,
) -> Result<Vec<(Vec<Detection>, FrameTimings)>, InferError> {
    let mut out = Vec::with_capacity(clip.frames.len());
    // a request holds frames of one input size (a camera that changes resolution mid-clip gives two), at most
    // the batch size
    let sizes: Vec<(u32, u32)> = clip
        .frames
        .iter()
        .map(|f| detector.letterbox(f.width, f.height))
        .map(|lb| (lb.in_w, lb.in_h))
        .collect();
    for range in batcher::runs_of_equal(&sizes, batcher.max_frames().max(1)) {
        let chunk = &clip.frames[range];
        let mut input = Vec::new();
        let mut items = Vec::with_capacity(chunk.len());
        let mut preps = Vec::with_capacity(chunk.len());
        for f in chunk {
            let tp = Instant::now();
            items.push(detector.prepare_item(&f.rgb, f.width, f.height, &mut input)?);
            preps.push(tp.elapsed());
        }
        let n = chunk.len();
        let done = batcher.detect(input, items)?;
        if done.detections.len() != n {
            return Err(InferError::Data {
                what: "detector",
                message: format!(
                    "the batcher answered {} frames for {n}",
                    done.detections.len()
                ),
            });
        }
        let each = done.run.as_secs_f64() * 1e3 / n as f64;
        for (detections, prep) in done.detections.into_iter().zip(preps) {
            out.push((
                detections,
                FrameTimings {
                    preprocess_ms: prep.as_secs_f64() * 1e3,
                    detector_ms: each,
                    pose_ms: 0.0,
                },
            ));
        }
    }
    Ok(out)
}

/// Encodes every `stride`-th frame of the clip in one batch; the frames between reuse the encoding before them.
/// Returns the preprocessing time and the model's milliseconds.
fn encode_strided(
    enc: &mut dyn FrameEncoder,
    clip: &Clip,
    frames: &mut [FrameResult],
    stride: usize,
) -> Result<(Duration, f64), InferError> {
    let stride = stride.max(1);
    let batch: Vec<(&[u8], u32, u32)> = clip
        .frames
        .iter()
        .step_by(stride)
        .map(|f| (f.rgb.as_slice(), f.width, f.height))
        .collect();
    let tp = Instant::now();
    enc.prepare(&batch)?;
    let prep = tp.elapsed();
    let t1 = Instant::now();
    let encodings = enc.encode()?;
    for (i, fr) in frames.iter_mut().enumerate() {
        fr.encoding = encodings.get(i / stride).cloned();
    }
    Ok((prep, t1.elapsed().as_secs_f64() * 1e3))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::frame::Frame;

    fn frame(seq: u64, byte: u8) -> Frame {
        Frame {
            camera: Arc::from("cam"),
            seq,
            pts: Duration::from_millis(500 * seq),
            wall: Utc::now(),
            width: 2,
            height: 1,
            rgb: Arc::new(vec![byte; 6]),
            moved: Some(false),
        }
    }

    #[test]
    fn a_still_clip_repeats_the_last_findings_with_its_own_frames() {
        let person = Detection {
            class_id: 0,
            label: "person",
            score: 0.8,
            bbox: detector::BBox {
                x1: 1.0,
                y1: 2.0,
                x2: 3.0,
                y2: 4.0,
            },
        };
        let inferred = ClipResult {
            camera: Arc::from("cam"),
            clip_index: 0,
            start: Duration::ZERO,
            end: Duration::from_secs(1),
            frames: vec![
                FrameResult {
                    seq: 0,
                    pts: Duration::ZERO,
                    wall: Utc::now(),
                    width: 2,
                    height: 1,
                    detections: Vec::new(),
                    encoding: None,
                    postures: Vec::new(),
                    pose_only: Vec::new(),
                    pixels: Pixels::default(),
                },
                FrameResult {
                    seq: 1,
                    pts: Duration::from_millis(500),
                    wall: Utc::now(),
                    width: 2,
                    height: 1,
                    detections: vec![person.clone()],
                    encoding: None,
                    postures: vec![Some(pose::Posture::Standing)],
                    pose_only: Vec::new(),
                    pixels: Pixels::default(),
                },
            ],
            prompts: Some(PromptScores {
                texts: Arc::new(vec!["people walking".into()]),
                clip: vec![0.7],
                raw: vec![0.5],
                frames: vec![0.6, 0.8],
            }),
            classifiers: Vec::new(),
            timings: ClipTimings::default(),
        };
        // what carries over is the *last* frame's findings (the state the scene stopped moving in)
        let carried = Carried::from_result(&inferred).expect("frames");
        let still = Clip {
            camera: Arc::from("cam"),
            index: 1,
            start: Duration::from_secs(1),
            end: Duration::from_secs(2),
            frames: vec![frame(2, 7), frame(3, 9)],
        };
        assert!(still.still());
        let r = carried.result_for(&still);
        assert_eq!((r.clip_index, r.start, r.end), (1, still.start, still.end));
        assert_eq!(r.frames.len(), 2);
        for (fr, f) in r.frames.iter().zip(&still.frames) {
            assert_eq!((fr.seq, fr.pts), (f.seq, f.pts), "the clip's own times");
            assert_eq!(
                fr.pixels.0.as_slice(),
                f.rgb.as_slice(),
                "the clip's own pixels"
            );
            assert_eq!(fr.detections, vec![person.clone()]);
            assert_eq!(fr.postures, vec![Some(pose::Posture::Standing)]);
        }
        assert_eq!(r.prompts.map(|p| p.clip), Some(vec![0.7]));
        // a clip with one moving frame, or a camera without a gate, is not still
        let mut moving = still.clone();
        moving.frames[1].moved = Some(true);
        assert!(!moving.still());
        let mut ungated = still;
        ungated.frames.iter_mut().for_each(|f| f.moved = None);
        assert!(!ungated.still());
    }
}
