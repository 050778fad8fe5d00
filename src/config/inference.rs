//! `[models]` and `[inference]`: the model files and ONNX Runtime library, and how the inference stage spreads
//! its workers and ORT threads over the CPU (`WorkerPlan`).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::camera::RuleVocabulary;
use super::Checks;
use crate::infer::card::{CardError, DetectorCard};
use crate::labels::ClassNames;

/// Which ONNX Runtime execution provider to ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderChoice {
    /// CUDA when the library and GPU allow it, else CPU (what was really used is reported).
    Auto,
    Cuda,
    Cpu,
}

/// Model files and the ONNX Runtime library.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ModelsConfig {
    /// Directory holding the model files; relative file names below are resolved against it.
    pub dir: PathBuf,
    /// Path of libonnxruntime.so. Unset: `$ORT_DYLIB_PATH`, then the paths `setup.sh` installs to.
    pub onnxruntime: Option<PathBuf>,
    pub provider: ProviderChoice,
    /// The detector's model card (`.toml`: format, input size, labels, calibrated thresholds), or its model file
    /// with the card next to it under the same stem (docs/detectors.md).
    pub detector: PathBuf,
    pub encoder: PathBuf,
    pub imagenet_labels: PathBuf,
    pub text_encoder: PathBuf,
    pub tokenizer: PathBuf,
    pub language_head: PathBuf,
    /// MoveNet multipose, loaded only when a rule has a `posture`.
    pub pose: PathBuf,
    /// A card (TOML) describing a CLIP or SigLIP image–text pair the user brings (docs/image_text.md): when set,
    /// it scores the prompts instead of the shipped ConSE head (`encoder`, `text_encoder`, `language_head`), and
    /// EfficientNet is not loaded for prompts. Unset: the ConSE head.
    pub image_text: Option<PathBuf>,
    /// Where label-bank embeddings are cached (keyed by model hash + texts). Unset: no cache.
    pub cache_dir: Option<PathBuf>,
}

impl Default for ModelsConfig {
    fn default() -> Self {
        Self {
            dir: "models".into(),
            onnxruntime: None,
            provider: ProviderChoice::Auto,
            // fp32: the int8 file is 1.3× faster and finds the same people, but its slightly different detections
            // cost the prompt evaluation one of 16 (models/README.md); opt in where prompts do not matter
            detector: "nanodet_g_416.toml".into(),
            encoder: "efficientnet_lite0.onnx".into(),
            imagenet_labels: "imagenet_classes.txt".into(),
            text_encoder: "minilm_l6_v2.onnx".into(),
            tokenizer: "minilm_tokenizer.json".into(),
            language_head: "language_head.onnx".into(),
            pose: "movenet_multipose.onnx".into(),
            image_text: None,
            cache_dir: Some("/var/cache/scenewatch/embeddings".into()),
        }
    }
}

impl ModelsConfig {
    pub fn resolve(&self, file: &Path) -> PathBuf {
        if file.is_absolute() {
            file.to_path_buf()
        } else {
            self.dir.join(file)
        }
    }

    /// The classes rule labels are checked against: the detector card's. A card that cannot be used is a problem
    /// under `models.detector` (and then no label is checked: its labels are unknown). When neither the card nor
    /// the model exists, COCO-80 stands in: the daemon names the missing file when it starts.
    pub(super) fn rule_vocabulary(&self, c: &mut Checks) -> Option<RuleVocabulary> {
        let setting = self.resolve(&self.detector);
        match DetectorCard::for_setting(&setting) {
            Ok(card) => Some(RuleVocabulary {
                classes: card.classes,
                card: Some(card.path),
            }),
            Err(CardError::Missing { model, .. })
                if model.as_deref().is_none_or(|m| !m.exists()) =>
            {
                Some(RuleVocabulary {
                    classes: ClassNames::coco80(),
                    card: None,
                })
            }
            Err(e) => {
                c.bad("models.detector", e.to_string());
                None
            }
        }
    }
}

/// Inference workers.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct InferenceConfig {
    /// Inference workers: threads that each own a copy of the vision models and take the next clip from the
    /// shared clip queue (one camera's clips run one at a time, so its results stay in order). 0 = auto: one per
    /// core, at most one per camera and at most 4. Read at start-up only.
    pub workers: usize,
    /// ORT intra-op threads per worker: of the shared pool, or of each model's own pool. 0 = auto: the cores
    /// divided among the workers (at least 1).
    pub intra_threads: usize,
    /// One intra-op pool shared by all models (default; used when there is one worker), or one per model.
    /// Read at start-up only.
    pub thread_pool: ThreadPool,
    /// Detections below this score are discarded at decode (rules then apply their own `min_score`).
    pub detector_threshold: f32,
    pub nms_iou: f32,
    /// Load the image encoder (ImageNet probabilities + 1280-d embedding per frame) even when no camera has
    /// prompts. It runs only on clips of cameras with prompts, whose language head is its one consumer. Ignored
    /// with `[models] image_text` (the pair's image encoder takes its place; EfficientNet is not loaded, and
    /// `scenewatch detect` prints no ImageNet top-5).
    pub encoder: bool,
    /// Long side (pixels) frames are scaled to for the pose model; small, distant people need ≥ 384.
    pub pose_input: u32,
    /// The image encoder runs on every n-th sampled frame of a clip (1 = all); the frames between reuse the
    /// encoding before them. The language head scores scenes, which change slower than 2 fps: at 2 the 20 vtest
    /// clips keep their top-1 prompt (20/20, |Δscore| ≤ 0.013; docs/performance.md) for half the encoder's cost.
    pub encoder_stride: usize,
    /// Whether ORT's idle intra-op threads spin waiting for work (ORT's default) instead of sleeping. Spinning
    /// saves a wake-up per operator when the models have the cores to themselves; on a box whose cores also
    /// decode video, a spinning thread burns CPU the decoders need. Read at start-up only.
    pub spinning: bool,
    /// Frames per detector run. 1: each worker runs its own detector session frame by frame. Above 1: one
    /// detector session, on a thread of its own, runs the frames of every worker's clips in batches of up to this
    /// many (a clip's frames, and other cameras' frames of the same input size that arrive within
    /// `detector_batch_wait_ms`): the GPU path, where a batch of 16 costs about what one frame does. Needs an export
    /// with a dynamic batch axis (the shipped NanoDet has one). 0 = auto: 16 when the detector runs on CUDA, 1 on
    /// the CPU (batching measured no faster there, and one shared session would serialise the workers;
    /// docs/performance.md). Read at start-up only.
    pub detector_batch: usize,
    /// How long the batcher waits after a request for others to join its batch, in milliseconds (it runs at once
    /// when the batch is full or every worker is waiting).
    pub detector_batch_wait_ms: u64,
    /// Run the detector through an ORT IO binding: on CUDA its input is uploaded from pinned host memory and its
    /// outputs come back into pinned memory (one DMA each way instead of staging copies). Unset = auto: on when
    /// the detector session runs on CUDA, off on the CPU (nothing to save there). Read at start-up only.
    pub io_binding: Option<bool>,
}

/// `detector_batch = 0` on a detector session that runs on CUDA.
pub const AUTO_GPU_DETECTOR_BATCH: usize = 16;

impl Default for InferenceConfig {
    fn default() -> Self {
        Self {
            workers: 0,
            intra_threads: 0,
            thread_pool: ThreadPool::Shared,
            detector_threshold: 0.35,
            nms_iou: 0.6,
            encoder: true,
            pose_input: 384,
            encoder_stride: 2,
            spinning: true,
            detector_batch: 0,
            detector_batch_wait_ms: 4,
            io_binding: None,
        }
    }
}

/// How inference is spread over the CPU: `workers` threads, each running its models on `threads` ORT threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerPlan {
    pub workers: usize,
    pub threads: usize,
}

/// Most workers `workers = 0` (auto) picks: each holds its own sessions of the vision models (≈ 170–200 MB RSS
/// measured for the second worker, docs/performance.md).
pub const AUTO_MAX_WORKERS: usize = 4;

impl InferenceConfig {
    /// Resolves `workers` and `intra_threads` (0 = auto) for `cores` CPUs and `cameras` enabled cameras.
    ///
    /// Why several single-threaded workers rather than one with every core: ORT's intra-op parallelism waits for
    /// its slowest thread at every operator, so when decoding takes a core for a moment the whole model stalls.
    /// Independent workers only slow down one clip. Measured on the 2-vCPU box with 13 cameras decoding:
    /// NanoDet + EfficientNet ran at 21–27 frames/s as one worker × 2 threads and 37–43 as 2 × 1
    /// (docs/performance.md). One camera keeps one worker with all cores, for its latency.
    pub fn plan(&self, cores: usize, cameras: usize) -> WorkerPlan {
        let cores = cores.max(1);
        let workers = match self.workers {
            0 => cores.min(cameras.max(1)).min(AUTO_MAX_WORKERS),
            n => n,
        };
        let threads = match self.intra_threads {
            0 => (cores / workers).max(1),
            n => n,
        };
        WorkerPlan { workers, threads }
    }

    /// Whether a detector session on `provider` runs through an IO binding (`io_binding`, unset = auto).
    pub fn io_binding_for(&self, provider: &str) -> bool {
        self.io_binding
            .unwrap_or(provider == crate::infer::runtime::CUDA)
    }

    /// Frames per detector run for a detector session on `provider` (`detector_batch`, 0 = auto).
    pub fn detector_batch_for(&self, provider: &str) -> usize {
        match self.detector_batch {
            0 if provider == crate::infer::runtime::CUDA => AUTO_GPU_DETECTOR_BATCH,
            0 => 1,
            n => n,
        }
    }

    pub(super) fn validate(&self, c: &mut Checks) {
        c.range("inference.encoder_stride", self.encoder_stride, 1, 16);
        if self.detector_batch > 64 {
            c.bad("inference.detector_batch", "must be in 0..=64 (0 = auto)");
        }
        c.range(
            "inference.detector_batch_wait_ms",
            self.detector_batch_wait_ms,
            0,
            1000,
        );
        if !(128..=1024).contains(&self.pose_input) || self.pose_input % 32 != 0 {
            c.bad(
                "inference.pose_input",
                "must be a multiple of 32 in 128..=1024",
            );
        }
        if self.workers > 64 {
            c.bad("inference.workers", "must be in 0..=64 (0 = auto)");
        }
        if self.intra_threads > 256 {
            c.bad("inference.intra_threads", "must be in 0..=256 (0 = auto)");
        }
        c.range(
            "inference.detector_threshold",
            self.detector_threshold,
            0.05,
            0.99,
        );
        c.range("inference.nms_iou", self.nms_iou, 0.1, 0.95);
    }
}

/// How ORT's intra-op threads are pooled across the models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThreadPool {
    /// One pool for every model (the models run one after another on the inference thread).
    Shared,
    /// A pool per model (ONNX Runtime's default).
    PerModel,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::infer::runtime::{CPU, CUDA};

    #[test]
    fn auto_inference_plan_spreads_cameras_over_cores() {
        let auto = InferenceConfig::default();
        let plan = |cores, cams| {
            let p = auto.plan(cores, cams);
            (p.workers, p.threads)
        };
        // one camera keeps every core on one worker (its latency); many cameras get a worker per core
        assert_eq!(plan(2, 1), (1, 2));
        assert_eq!(plan(2, 13), (2, 1));
        assert_eq!(plan(16, 3), (3, 5));
        assert_eq!(plan(16, 40), (AUTO_MAX_WORKERS, 4));
        assert_eq!(plan(1, 8), (1, 1));
        assert_eq!(plan(4, 0), (1, 4));
        // explicit values win; an unset thread count still divides the cores among the workers
        let set = |workers, intra_threads| InferenceConfig {
            workers,
            intra_threads,
            ..InferenceConfig::default()
        };
        assert_eq!(
            set(3, 2).plan(2, 1),
            WorkerPlan {
                workers: 3,
                threads: 2
            }
        );
        assert_eq!(
            set(2, 0).plan(8, 1),
            WorkerPlan {
                workers: 2,
                threads: 4
            }
        );
    }

    #[test]
    fn detector_batching_and_io_binding_are_on_by_default_only_on_cuda() {
        let auto = InferenceConfig::default();
        assert_eq!(auto.detector_batch_for(CUDA), AUTO_GPU_DETECTOR_BATCH);
        assert_eq!(auto.detector_batch_for(CPU), 1);
        assert!(auto.io_binding_for(CUDA));
        assert!(!auto.io_binding_for(CPU));
        let set = InferenceConfig {
            detector_batch: 4,
            io_binding: Some(false),
            ..Default::default()
        };
        assert_eq!(
            set.detector_batch_for(CPU),
            4,
            "an explicit size holds on the CPU"
        );
        assert_eq!(set.detector_batch_for(CUDA), 4);
        assert!(!set.io_binding_for(CUDA));
    }
}
