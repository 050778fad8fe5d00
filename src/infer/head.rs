//! The fused language head: an ONNX graph (models/export/build_head.py) that maps a clip's visual evidence —
//! per-frame ImageNet probabilities (ConSE over class-name embeddings) and detections (score-weighted COCO
//! class-name embeddings), plus an absence-of-detections signal — into MiniLM's text-embedding space and scores
//! the user's prompts there, calibrated per prompt against the label banks.

use super::runtime::{check_signature, InferError, LoadedModel};
use super::text::{TextEncoder, DIM};
use super::{encoder, labels::COCO_LABELS};
use crate::config::LanguageConfig;

/// The head's settings are the `[language]` config section; this is their former name.
pub use crate::config::LanguageConfig as HeadConfig;

/// Prompts embedded once (per camera), by the ConSE head's MiniLM or an image–text pair's text encoder.
#[derive(Debug, Clone)]
pub struct PromptSet {
    pub texts: Vec<String>,
    /// `texts.len() × D`, unit rows (D = 384 for MiniLM; the pair's embedding size).
    pub embeddings: Vec<f32>,
}

/// Scores of one clip (either head).
#[derive(Debug, Clone, Default)]
pub struct HeadOutput {
    /// Calibrated clip score per prompt, 0..1 (ConSE: 0.5 = as close as an average class name).
    pub clip_scores: Vec<f32>,
    /// Raw pooled cosine per prompt.
    pub clip_raw: Vec<f32>,
    /// `frames × prompts`, calibrated.
    pub frame_scores: Vec<f32>,
}

pub struct LanguageHead {
    pub model: LoadedModel,
    pub text: TextEncoder,
    pub cfg: LanguageConfig,
    imagenet_bank: Vec<f32>,
    coco_bank: Vec<f32>,
    empty: Vec<f32>,
}

impl LanguageHead {
    pub fn new(
        model: LoadedModel,
        mut text: TextEncoder,
        cfg: LanguageConfig,
        imagenet_labels: &[String],
        cache_dir: Option<&std::path::Path>,
    ) -> Result<Self, InferError> {
        check_signature(
            &model,
            &[
                ("imagenet_probs", &[-1, 1000]),
                ("det_evidence", &[-1, 80]),
                ("prompts", &[-1, DIM as i64]),
            ],
            &[("clip_scores", &[-1]), ("frame_scores", &[-1, -1])],
        )?;
        let fill = |t: &str, x: &str| t.replace("{}", x);
        let inet: Vec<String> = imagenet_labels
            .iter()
            .map(|l| fill(&cfg.label_template, l))
            .collect();
        let coco: Vec<String> = COCO_LABELS
            .iter()
            .map(|l| fill(&cfg.label_template, l))
            .collect();
        if inet.len() != encoder::NUM_CLASSES {
            return Err(InferError::Data {
                what: "language head",
                message: "the ImageNet label list must have 1000 names".into(),
            });
        }
        let imagenet_bank = text.embed_cached(&inet, cache_dir)?;
        let coco_bank = text.embed_cached(&coco, cache_dir)?;
        let empty = text.embed(std::slice::from_ref(&cfg.empty_text))?;
        Ok(Self {
            model,
            text,
            cfg,
            imagenet_bank,
            coco_bank,
            empty,
        })
    }

    pub fn prompts(&mut self, texts: &[String]) -> Result<PromptSet, InferError> {
        let filled: Vec<String> = texts
            .iter()
            .map(|t| self.cfg.prompt_template.replace("{}", t))
            .collect();
        Ok(PromptSet {
            texts: texts.to_vec(),
            embeddings: self.text.embed(&filled)?,
        })
    }

    /// Scores `prompts` for a clip of `frames` frames: `probs` is frames × 1000, `det` frames × 80.
    pub fn score(
        &mut self,
        probs: &[f32],
        det: &[f32],
        frames: usize,
        prompts: &PromptSet,
    ) -> Result<HeadOutput, InferError> {
        let k = prompts.texts.len();
        if frames == 0 || k == 0 {
            return Ok(HeadOutput::default());
        }
        let run_err = |e: ort::Error| InferError::Run {
            model: "language head",
            message: e.to_string(),
        };
        use ort::value::TensorRef;
        let c = &self.cfg;
        let topk = [c.top_k.clamp(1, 1000) as i64];
        let weights = [
            c.w_classifier,
            c.w_detections,
            c.w_empty,
            c.alpha,
            c.temperature,
        ];
        // views, not copies: the 1.6 MB of label banks are borrowed on every clip
        let outputs = self
            .model
            .session
            .run(ort::inputs![
                "imagenet_probs" => TensorRef::from_array_view(([frames, 1000], probs)).map_err(run_err)?,
                "det_evidence" => TensorRef::from_array_view(([frames, 80], det)).map_err(run_err)?,
                "imagenet_bank" => TensorRef::from_array_view(([1000, DIM], self.imagenet_bank.as_slice())).map_err(run_err)?,
                "coco_bank" => TensorRef::from_array_view(([80, DIM], self.coco_bank.as_slice())).map_err(run_err)?,
                "empty_embedding" => TensorRef::from_array_view(([1, DIM], self.empty.as_slice())).map_err(run_err)?,
                "prompts" => TensorRef::from_array_view(([k, DIM], prompts.embeddings.as_slice())).map_err(run_err)?,
                "topk" => TensorRef::from_array_view(([1usize], &topk[..])).map_err(run_err)?,
                "weights" => TensorRef::from_array_view(([5usize], &weights[..])).map_err(run_err)?,
            ])
            .map_err(run_err)?;
        let get = |name: &str| -> Result<Vec<f32>, InferError> {
            outputs[name]
                .try_extract_tensor::<f32>()
                .map(|(_, d)| d.to_vec())
                .map_err(run_err)
        };
        Ok(HeadOutput {
            clip_scores: get("clip_scores")?,
            clip_raw: get("clip_raw")?,
            frame_scores: get("frame_scores")?,
        })
    }
}

/// Per-frame detection evidence: the best score of each COCO class among the frame's detections. By label name,
/// not class id: a detector with its own labels (model card) contributes the classes COCO shares with it.
pub fn detection_evidence(dets: &[super::detector::Detection]) -> [f32; 80] {
    let mut ev = [0.0f32; 80];
    for d in dets {
        if let Some(i) = crate::labels::coco_label_index(d.label) {
            ev[i] = ev[i].max(d.score);
        }
    }
    ev
}
