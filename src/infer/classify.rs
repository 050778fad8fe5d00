//! Task heads in the inference workers (`[[cameras.classifiers]]`, trained by `scenewatch adapt train`): which
//! heads a camera has, and their features and class probabilities per clip. The features come from
//! [`crate::adapt::features::clip_feature`], the same function `adapt train` calls, over the same encoder and
//! detector outputs, so a head is served the numbers it was trained on.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::adapt::features::{self, FrameDets};
use crate::adapt::head::{FeatureRecipe, HeadFile, ModelHash};
use crate::clip::Clip;
use crate::config::{CameraConfig, Config};

use super::encoder::Encoder;
use super::runtime::InferError;
use super::{FrameEncoding, FrameResult};

/// One head on one camera (or, with no head, a feature request: `adapt train` computes features this way).
#[derive(Debug, Clone)]
pub struct ClassifierBinding {
    /// The rule and topic name (`[[cameras.classifiers]] name`, else the file's stem).
    pub name: String,
    pub head: Option<Arc<HeadFile>>,
    pub recipe: FeatureRecipe,
}

/// A head's verdict on one clip.
#[derive(Debug, Clone)]
pub struct ClassifierOut {
    pub name: String,
    pub classes: Arc<Vec<String>>,
    /// Class probabilities in the order of `classes` (empty for a feature request).
    pub probs: Vec<f32>,
    /// The clip's feature (what `adapt train` learns from).
    pub feature: Vec<f32>,
}

impl ClassifierOut {
    /// The most probable class and its probability.
    pub fn top(&self) -> Option<(&str, f32)> {
        self.probs
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .and_then(|(i, p)| self.classes.get(i).map(|c| (c.as_str(), *p)))
    }
}

/// The hashes a head is trained on and checked against: the detector's and the image encoder's model files.
pub fn model_hashes(
    detector: &super::runtime::LoadedModel,
    encoder: &super::runtime::LoadedModel,
) -> Vec<ModelHash> {
    [("detector", detector), ("encoder", encoder)]
        .into_iter()
        .map(|(role, m)| ModelHash {
            role: role.into(),
            file: m
                .path
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default(),
            sha256: m.sha256.clone(),
        })
        .collect()
}

/// Where a `[[cameras.classifiers]] file` is: relative paths are under `[models] dir`.
pub fn head_path(cfg: &Config, file: &Path) -> PathBuf {
    cfg.models.resolve(file)
}

/// Reads and checks a camera's heads: each must load, be trained on these models (`hashes`), use this recipe
/// version and know every `alert_on` class. The error names the camera and the file.
pub fn load_heads(
    cfg: &Config,
    cam: &CameraConfig,
    hashes: &[ModelHash],
    embedding_dim: usize,
    detector_classes: usize,
) -> Result<Vec<Arc<ClassifierBinding>>, InferError> {
    cam.classifiers
        .iter()
        .map(|c| {
            let path = head_path(cfg, &c.file);
            let err = |message: String| InferError::Classifier {
                camera: cam.name.clone(),
                path: path.clone(),
                message,
            };
            let head = HeadFile::load(&path).map_err(|e| err(e.to_string()))?;
            head.check_models(&path, hashes)
                .map_err(|e| err(e.to_string()))?;
            let want = features::recipe(embedding_dim, detector_classes, head.recipe.region);
            if head.recipe != want {
                return Err(err(format!(
                    "it was trained on features {:?}, this daemon computes {:?}: retrain it with `scenewatch adapt train`",
                    head.recipe, want
                )));
            }
            if let Some(missing) = c.alert_on.iter().find(|a| !head.classes.contains(a)) {
                return Err(err(format!(
                    "alert_on names '{missing}', which is not one of its classes ({})",
                    head.classes.join(", ")
                )));
            }
            Ok(Arc::new(ClassifierBinding {
                name: c.rule_name(),
                recipe: head.recipe.clone(),
                head: Some(Arc::new(head)),
            }))
        })
        .collect()
}

/// Features (and, with a head, class probabilities) of every binding on one clip. Whole-frame recipes reuse the
/// frames' EfficientNet encodings when the clip has them; region recipes encode the region's crop of every
/// `stride`-th frame. Returns the outputs and the time spent encoding.
pub fn run(
    encoder: &mut Encoder,
    clip: &Clip,
    frames: &[FrameResult],
    bindings: &[Arc<ClassifierBinding>],
    stride: usize,
) -> Result<(Vec<ClassifierOut>, Duration), InferError> {
    let t0 = Instant::now();
    let stride = stride.max(1);
    let dets: Vec<FrameDets<'_>> = frames
        .iter()
        .map(|f| FrameDets {
            width: f.width,
            height: f.height,
            detections: &f.detections,
        })
        .collect();
    let mut out = Vec::with_capacity(bindings.len());
    for b in bindings {
        let embeddings: Vec<Vec<f32>> = match b.recipe.region {
            None => {
                let reused: Vec<Vec<f32>> = frames
                    .iter()
                    .step_by(stride)
                    .filter_map(|f| match &f.encoding {
                        Some(FrameEncoding::Classifier(e)) => Some(e.embedding.clone()),
                        _ => None,
                    })
                    .collect();
                if reused.is_empty() {
                    encode(encoder, clip, stride, None)?
                } else {
                    reused
                }
            }
            Some(region) => encode(encoder, clip, stride, Some(&region))?,
        };
        let refs: Vec<&[f32]> = embeddings.iter().map(|e| e.as_slice()).collect();
        let data = |e: crate::adapt::AdaptError| InferError::Data {
            what: "classifier feature",
            message: format!("{}: {e}", b.name),
        };
        let feature = features::clip_feature(&b.recipe, &refs, &dets).map_err(data)?;
        let (classes, probs) = match &b.head {
            Some(h) => (
                Arc::new(h.classes.clone()),
                h.predict(&feature).map_err(data)?,
            ),
            None => (Arc::new(Vec::new()), Vec::new()),
        };
        out.push(ClassifierOut {
            name: b.name.clone(),
            classes,
            probs,
            feature,
        });
    }
    Ok((out, t0.elapsed()))
}

/// EfficientNet embeddings of every `stride`-th frame of the clip (of the region's crop, when given), one batch.
fn encode(
    encoder: &mut Encoder,
    clip: &Clip,
    stride: usize,
    region: Option<&[f32; 4]>,
) -> Result<Vec<Vec<f32>>, InferError> {
    let crops: Vec<(std::borrow::Cow<'_, [u8]>, u32, u32)> = clip
        .frames
        .iter()
        .step_by(stride)
        .map(|f| match region {
            None => Ok((
                std::borrow::Cow::Borrowed(f.rgb.as_slice()),
                f.width,
                f.height,
            )),
            Some(r) => features::crop(&f.rgb, f.width, f.height, r)
                .map(|(c, w, h)| (std::borrow::Cow::Owned(c), w, h))
                .map_err(|e| InferError::Data {
                    what: "classifier region",
                    message: e.to_string(),
                }),
        })
        .collect::<Result<_, _>>()?;
    let batch: Vec<(&[u8], u32, u32)> =
        crops.iter().map(|(c, w, h)| (c.as_ref(), *w, *h)).collect();
    encoder.prepare(&batch)?;
    Ok(encoder.run()?.into_iter().map(|e| e.embedding).collect())
}
