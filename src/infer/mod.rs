//! Inference stage: owns the ORT sessions (on a dedicated OS thread, never the async runtime) and turns each
//! clip into a `ClipResult`: detections and image-encoder outputs per frame.

pub mod detector;
pub mod encoder;
pub mod labels;
pub mod preprocess;
pub mod runtime;
pub mod worker;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::clip::Clip;
use crate::config::Config;
use detector::{DecodeParams, Detection, Detector, MAX_DETECTIONS};
use encoder::{Encoder, Encoding};
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
    /// ImageNet probabilities + embedding (None when the encoder is off).
    pub encoding: Option<Encoding>,
}

/// Time spent per phase for one clip, milliseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ClipTimings {
    pub detector_ms: f64,
    pub encoder_ms: f64,
    pub total_ms: f64,
}

/// Everything the inference stage knows about one clip.
#[derive(Debug, Clone)]
pub struct ClipResult {
    pub camera: Arc<str>,
    pub clip_index: u64,
    pub start: Duration,
    pub end: Duration,
    pub frames: Vec<FrameResult>,
    pub timings: ClipTimings,
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

/// The models one worker runs.
pub struct Models {
    pub detector: Detector,
    pub encoder: Option<Encoder>,
    pub imagenet_labels: Arc<Vec<String>>,
}

impl Models {
    /// Loads the ORT library and every configured model; fails with an error naming the model and file.
    pub fn load(cfg: &Config) -> Result<Self, InferError> {
        let env = runtime::init(cfg.models.onnxruntime.as_deref())?;
        let opts = SessionOptions {
            provider: cfg.models.provider,
            intra_threads: cfg.inference.intra_threads,
        };
        let det_path = cfg.models.resolve(&cfg.models.detector);
        let det = runtime::open_model(env, "detector", &det_path, opts)?;
        let detector = Detector::new(
            det,
            DecodeParams {
                threshold: cfg.inference.detector_threshold,
                nms_iou: cfg.inference.nms_iou,
                max_detections: MAX_DETECTIONS,
            },
        )?;
        let (encoder, imagenet_labels) = if cfg.inference.encoder {
            let enc_path = cfg.models.resolve(&cfg.models.encoder);
            let enc = Encoder::new(runtime::open_model(env, "encoder", &enc_path, opts)?)?;
            let labels =
                encoder::load_imagenet_labels(&cfg.models.resolve(&cfg.models.imagenet_labels))?;
            (Some(enc), labels)
        } else {
            (None, Vec::new())
        };
        Ok(Self {
            detector,
            encoder,
            imagenet_labels: Arc::new(imagenet_labels),
        })
    }

    pub fn reports(&self) -> Vec<ModelReport> {
        let mut r = vec![ModelReport::from(&self.detector.model)];
        if let Some(e) = &self.encoder {
            r.push(ModelReport::from(&e.model));
        }
        r
    }

    /// Runs every model on the clip's frames.
    pub fn infer_clip(&mut self, clip: &Clip) -> Result<ClipResult, InferError> {
        let t0 = Instant::now();
        let mut frames = Vec::with_capacity(clip.frames.len());
        for f in &clip.frames {
            let detections = self.detector.detect(&f.rgb, f.width, f.height)?;
            frames.push(FrameResult {
                seq: f.seq,
                pts: f.pts,
                wall: f.wall,
                width: f.width,
                height: f.height,
                detections,
                encoding: None,
            });
        }
        let detector_ms = t0.elapsed().as_secs_f64() * 1e3;
        let t1 = Instant::now();
        if let Some(enc) = self.encoder.as_mut() {
            let batch: Vec<(&[u8], u32, u32)> = clip
                .frames
                .iter()
                .map(|f| (f.rgb.as_slice(), f.width, f.height))
                .collect();
            for (fr, e) in frames.iter_mut().zip(enc.encode(&batch)?) {
                fr.encoding = Some(e);
            }
        }
        let encoder_ms = t1.elapsed().as_secs_f64() * 1e3;
        Ok(ClipResult {
            camera: clip.camera.clone(),
            clip_index: clip.index,
            start: clip.start,
            end: clip.end,
            frames,
            timings: ClipTimings {
                detector_ms,
                encoder_ms,
                total_ms: t0.elapsed().as_secs_f64() * 1e3,
            },
        })
    }
}
