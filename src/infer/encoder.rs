//! EfficientNet-Lite0 image encoder: per frame, ImageNet-1k probabilities and the 1280-d pooled embedding.
//! Frames of a clip go through in one batch (the export has a dynamic batch axis).
//!
//! Preprocessing follows the reference: shorter side to 256 (bicubic), centre crop 224, (x − 127) / 128, RGB, NCHW.

use std::path::Path;

use super::preprocess::{centre_crop_box, resize_rgb, Filter};
use super::runtime::{check_signature, InferError, LoadedModel};

pub const INPUT_SIZE: u32 = 224;
const RESIZE_SHORTER: u32 = 256;
pub const NUM_CLASSES: usize = 1000;
pub const EMBEDDING_DIM: usize = 1280;

/// What the encoder says about one frame.
#[derive(Debug, Clone)]
pub struct Encoding {
    /// Softmax over the 1000 ImageNet classes.
    pub probs: Vec<f32>,
    /// Global-average-pooled feature, 1280-d (not normalised).
    pub embedding: Vec<f32>,
}

impl Encoding {
    /// The `k` most probable classes as (index, probability), best first.
    pub fn top_k(&self, k: usize) -> Vec<(usize, f32)> {
        let mut idx: Vec<usize> = (0..self.probs.len()).collect();
        idx.sort_by(|a, b| self.probs[*b].total_cmp(&self.probs[*a]));
        idx.into_iter()
            .take(k)
            .map(|i| (i, self.probs[i]))
            .collect()
    }
}

/// Writes one frame's normalised 3×224×224 input at the end of `out`.
pub fn preprocess_into(rgb: &[u8], w: u32, h: u32, out: &mut Vec<f32>) -> Result<(), InferError> {
    let crop = centre_crop_box(w, h, RESIZE_SHORTER, INPUT_SIZE);
    let px = resize_rgb(
        rgb,
        w,
        h,
        INPUT_SIZE,
        INPUT_SIZE,
        Some(crop),
        Filter::Bicubic,
    )?;
    let plane = (INPUT_SIZE * INPUT_SIZE) as usize;
    let base = out.len();
    out.resize(base + 3 * plane, 0.0);
    let lut: [f32; 256] = std::array::from_fn(|v| (v as f32 - 127.0) / 128.0);
    let (r, rest) = out[base..].split_at_mut(plane);
    let (g, b) = rest.split_at_mut(plane);
    for (((r, g), b), p) in r.iter_mut().zip(g).zip(b).zip(px.chunks_exact(3)) {
        *r = lut[p[0] as usize];
        *g = lut[p[1] as usize];
        *b = lut[p[2] as usize];
    }
    Ok(())
}

pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = logits.iter().map(|l| (l - max).exp()).collect();
    let sum: f32 = exps.iter().sum();
    exps.into_iter()
        .map(|e| e / sum.max(f32::MIN_POSITIVE))
        .collect()
}

pub struct Encoder {
    pub model: LoadedModel,
    input: Vec<f32>,
}

impl Encoder {
    pub fn new(model: LoadedModel) -> Result<Self, InferError> {
        let s = INPUT_SIZE as i64;
        check_signature(
            &model,
            &[("input", &[-1, 3, s, s])],
            &[("logits", &[-1, 1000]), ("embedding", &[-1, 1280])],
        )?;
        Ok(Self {
            model,
            input: Vec::new(),
        })
    }

    /// Encodes a batch of packed RGB frames `(rgb, width, height)`.
    pub fn encode(&mut self, frames: &[(&[u8], u32, u32)]) -> Result<Vec<Encoding>, InferError> {
        self.prepare(frames)?;
        self.run()
    }

    /// Preprocessing alone (timed apart from the model): fills the reusable batch tensor.
    pub fn prepare(&mut self, frames: &[(&[u8], u32, u32)]) -> Result<(), InferError> {
        self.input.clear();
        for (rgb, w, h) in frames {
            preprocess_into(rgb, *w, *h, &mut self.input)?;
        }
        Ok(())
    }

    /// Runs the model on the batch last prepared.
    pub fn run(&mut self) -> Result<Vec<Encoding>, InferError> {
        let s = INPUT_SIZE as usize;
        let n = self.input.len() / (3 * s * s);
        if n == 0 {
            return Ok(Vec::new());
        }
        let run_err = |e: ort::Error| InferError::Run {
            model: "encoder",
            message: e.to_string(),
        };
        // a view: the input buffer is kept and reused for the next clip
        let tensor = ort::value::TensorRef::from_array_view(([n, 3, s, s], self.input.as_slice()))
            .map_err(run_err)?;
        let outputs = self
            .model
            .session
            .run(ort::inputs!["input" => tensor])
            .map_err(run_err)?;
        let (_, logits) = outputs["logits"]
            .try_extract_tensor::<f32>()
            .map_err(run_err)?;
        let (_, emb) = outputs["embedding"]
            .try_extract_tensor::<f32>()
            .map_err(run_err)?;
        if logits.len() != n * NUM_CLASSES || emb.len() != n * EMBEDDING_DIM {
            return Err(InferError::Run {
                model: "encoder",
                message: format!("unexpected output sizes {} / {}", logits.len(), emb.len()),
            });
        }
        Ok((0..n)
            .map(|i| Encoding {
                probs: softmax(&logits[i * NUM_CLASSES..(i + 1) * NUM_CLASSES]),
                embedding: emb[i * EMBEDDING_DIM..(i + 1) * EMBEDDING_DIM].to_vec(),
            })
            .collect())
    }
}

/// ImageNet class names, one per line, in the classifier's order (models/imagenet_classes.txt).
pub fn load_imagenet_labels(path: &Path) -> Result<Vec<String>, InferError> {
    let text = std::fs::read_to_string(path).map_err(|e| InferError::Data {
        what: "imagenet labels",
        message: format!("{}: {e}", path.display()),
    })?;
    let labels: Vec<String> = text.lines().map(|l| l.trim().to_string()).collect();
    if labels.len() != NUM_CLASSES {
        return Err(InferError::Data {
            what: "imagenet labels",
            message: format!(
                "{}: {} lines, expected {NUM_CLASSES}",
                path.display(),
                labels.len()
            ),
        });
    }
    Ok(labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_sums_to_one_and_keeps_order() {
        let p = softmax(&[1.0, 3.0, 2.0]);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(p[1] > p[2] && p[2] > p[0]);
    }

    #[test]
    fn preprocess_normalises_to_minus_one_one() {
        let rgb = [255u8, 127, 0].repeat(300 * 200);
        let mut out = Vec::new();
        preprocess_into(&rgb, 300, 200, &mut out).expect("pre");
        let plane = 224 * 224;
        assert_eq!(out.len(), 3 * plane);
        assert!((out[0] - 128.0 / 128.0).abs() < 1e-3);
        assert!(out[plane].abs() < 1e-3);
        assert!((out[2 * plane] + 127.0 / 128.0).abs() < 1e-3);
    }
}
