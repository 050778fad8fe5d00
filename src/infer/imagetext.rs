//! Bring-your-own image–text pair: a user's CLIP or SigLIP ONNX exports (image encoder, text encoder,
//! `tokenizer.json`) described by a small TOML card (`[models] image_text = "my_clip.toml"`), scoring a camera's
//! prompts in place of the shipped ConSE head (`head.rs`) behind the same interface: a calibrated clip score in
//! 0..1 per prompt, compared with the prompt's `threshold` by the prompt rules, `prompts test` and eval.
//!
//! This module owns the card (parsing, defaults per format, every problem listed with the card's path), the checks
//! of both graphs at load (names, element types, ranks, image size, context length, equal embedding sizes — by
//! declaration and by one probe run each), CLIP/SigLIP preprocessing (a pure function), prompt embedding and the
//! score mapping (pure functions).
//!
//! ## Score mapping
//! Per frame t and prompt k, with unit embeddings, `cos_tk` = image·prompt and `s`, `b` the card's
//! `calibration.scale` and `calibration.bias`:
//! - **SigLIP**: `score_tk = sigmoid(s·cos_tk + b)`. SigLIP was trained with exactly this per-pair sigmoid (its
//!   learned `logit_scale` and `logit_bias`), so the number is already an absolute "does this text describe this
//!   image" level, independent of the camera's other prompts: nothing to add.
//! - **CLIP**: `score_tk = sigmoid(s·cos_tk + b − logsumexp_j(s·cos(image_t, background_j)))`, i.e. CLIP's own
//!   softmax (its trained logit scale, 100 for the OpenAI checkpoints), but of each prompt against a fixed set of
//!   "background" texts — plain scenes without an event (`calibration.background`) — rather than against the
//!   camera's other prompts. With `b = 0` it is exactly the zero-shot probability of the prompt among
//!   {prompt} ∪ background; `b` adds a prior weight `e^b` to the prompt. Why not CLIP zero-shot's softmax over the
//!   camera's prompts: a camera with one prompt would always score 1.0; adding or removing a prompt would move the
//!   others' scores, so thresholds tuned with `prompts test` would drift with the prompt list; and nothing would
//!   say "none of these". CLIP cosines alone are not calibrated across images (their level moves with the
//!   picture), which the per-frame background level cancels. Within a frame the background level is the same for
//!   every prompt, so the ranking of prompts is CLIP zero-shot's ranking.
//!
//! Clip pooling is the ConSE path's: `alpha · mean + (1 − alpha) · max` over the clip's frames (`[language] alpha`),
//! for the scores and for the raw cosines. A frame without an image embedding (the encoder could not run) scores 0
//! and is left out of the pooling; a clip with none scores 0 (no evidence, no alert).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use ort::value::TensorElementType;
use serde::Deserialize;
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

use super::head::{HeadOutput, PromptSet};
use super::preprocess::{centre_crop_box, resize_rgb, Filter};
use super::runtime::{open_model, InferError, LoadedModel, SessionOptions};

/// The "none of these" texts a CLIP prompt competes with when the card names none: plain scenes a camera
/// watches, with no event in them.
pub const CLIP_BACKGROUND: [&str; 8] = [
    "a photo of a room.",
    "a photo of a street.",
    "a photo of a garden.",
    "a photo of a yard.",
    "a photo of a parking lot.",
    "a photo of a building.",
    "a photo of a hallway.",
    "a photo of an office.",
];

/// Which family the pair belongs to: sets the defaults and the score mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Clip,
    Siglip,
}

/// Input and output names of the two graphs (defaults: the Hugging Face names).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Names {
    /// Image encoder input, f32 [B, 3, S, S].
    pub pixel_values: String,
    /// Image encoder output, f32 [B, D].
    pub image_embeds: String,
    /// Text encoder input, i64 [B, L].
    pub input_ids: String,
    /// Text encoder input fed when the graph has it (CLIP exports do, SigLIP's usually not), i64 [B, L].
    pub attention_mask: String,
    /// Text encoder output, f32 [B, D].
    pub text_embeds: String,
}

impl Default for Names {
    fn default() -> Self {
        Self {
            pixel_values: "pixel_values".into(),
            image_embeds: "image_embeds".into(),
            input_ids: "input_ids".into(),
            attention_mask: "attention_mask".into(),
            text_embeds: "text_embeds".into(),
        }
    }
}

/// The card as written. Everything but the format and the three files has a default per format.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct CardFile {
    format: Format,
    image_encoder: PathBuf,
    text_encoder: PathBuf,
    tokenizer: PathBuf,
    image_size: Option<u32>,
    mean: Option<[f32; 3]>,
    std: Option<[f32; 3]>,
    centre_crop: Option<bool>,
    context_length: Option<usize>,
    prompt_template: Option<String>,
    pad_token: Option<String>,
    #[serde(default)]
    names: Names,
    #[serde(default)]
    calibration: CalibrationFile,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CalibrationFile {
    scale: Option<f32>,
    bias: Option<f32>,
    background: Option<Vec<String>>,
}

/// How a frame becomes the image encoder's input.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageSpec {
    /// Input side, pixels (square).
    pub size: u32,
    pub mean: [f32; 3],
    pub std: [f32; 3],
    /// Shorter side to `size` and a centred square crop (CLIP); false: the whole frame stretched to the square
    /// (SigLIP's processor).
    pub centre_crop: bool,
}

/// How a raw cosine becomes the 0..1 score prompts are compared with (module doc).
#[derive(Debug, Clone, PartialEq)]
pub enum Calibration {
    /// CLIP: each prompt against the background texts, `sigmoid(s·cos + b − logsumexp_j(s·cos_bg_j))`.
    Background {
        scale: f32,
        bias: f32,
        texts: Vec<String>,
    },
    /// SigLIP: `sigmoid(s·cos + b)`, absolute by training.
    Sigmoid { scale: f32, bias: f32 },
}

/// A card with every default filled in, paths made absolute (relative to the card's folder) and values checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Card {
    /// The card file itself (named in every error).
    pub path: PathBuf,
    pub format: Format,
    pub image_encoder: PathBuf,
    pub text_encoder: PathBuf,
    pub tokenizer: PathBuf,
    pub image: ImageSpec,
    /// Text tokens every prompt is padded or truncated to.
    pub context_length: usize,
    /// Prompt text → encoder text; `{}` is the prompt.
    pub prompt_template: String,
    /// Token to pad with (None: the tokenizer's own padding token, else id 0).
    pub pad_token: Option<String>,
    pub names: Names,
    pub calibration: Calibration,
}

const CLIP_MEAN: [f32; 3] = [0.481_454_66, 0.457_827_5, 0.408_210_73];
// the published values (0.26130258, 0.27577711) rounded to what an f32 holds
const CLIP_STD: [f32; 3] = [0.268_629_54, 0.261_302_6, 0.275_777_1];

impl Card {
    /// Reads and checks the card at `path`.
    pub fn load(path: &Path) -> Result<Self, InferError> {
        let text = std::fs::read_to_string(path).map_err(|e| InferError::ImageTextCard {
            card: path.to_path_buf(),
            message: format!("cannot read it: {e} (models.image_text in the config)"),
        })?;
        Self::parse(&text, path)
    }

    /// Parses the card's text; `path` names it in errors and anchors its relative file names. Lists every problem.
    pub fn parse(text: &str, path: &Path) -> Result<Self, InferError> {
        let bad = |message: String| InferError::ImageTextCard {
            card: path.to_path_buf(),
            message,
        };
        let f: CardFile = toml::from_str(text).map_err(|e| bad(e.to_string()))?;
        let mut problems: Vec<String> = Vec::new();
        let clip = f.format == Format::Clip;
        let base = path.parent().unwrap_or(Path::new("."));
        let file = |key: &str, p: &Path, problems: &mut Vec<String>| {
            if p.as_os_str().is_empty() {
                problems.push(format!("{key}: must name a file"));
            }
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                base.join(p)
            }
        };
        let image_encoder = file("image_encoder", &f.image_encoder, &mut problems);
        let text_encoder = file("text_encoder", &f.text_encoder, &mut problems);
        let tokenizer = file("tokenizer", &f.tokenizer, &mut problems);
        let size = f.image_size.unwrap_or(224);
        if !(16..=2048).contains(&size) {
            problems.push(format!("image_size: {size}, expected 16..=2048"));
        }
        let (mean, std) = match f.format {
            Format::Clip => (CLIP_MEAN, CLIP_STD),
            Format::Siglip => ([0.5; 3], [0.5; 3]),
        };
        let mean = f.mean.unwrap_or(mean);
        let std = f.std.unwrap_or(std);
        for (i, m) in mean.iter().enumerate() {
            if !m.is_finite() || !(-1.0..=2.0).contains(m) {
                problems.push(format!(
                    "mean[{i}]: {m}, expected a finite value in -1..=2 (pixels are scaled to 0..1 first)"
                ));
            }
        }
        for (i, s) in std.iter().enumerate() {
            if !s.is_finite() || !(0.001..=10.0).contains(s) {
                problems.push(format!("std[{i}]: {s}, expected 0.001..=10"));
            }
        }
        let context_length = f.context_length.unwrap_or(if clip { 77 } else { 64 });
        if !(2..=1024).contains(&context_length) {
            problems.push(format!(
                "context_length: {context_length}, expected 2..=1024"
            ));
        }
        let prompt_template = f.prompt_template.unwrap_or_else(|| "a photo of {}.".into());
        if !prompt_template.contains("{}") {
            problems.push("prompt_template: must contain {} where the prompt goes".into());
        }
        let n = &f.names;
        for (key, v) in [
            ("pixel_values", &n.pixel_values),
            ("image_embeds", &n.image_embeds),
            ("input_ids", &n.input_ids),
            ("attention_mask", &n.attention_mask),
            ("text_embeds", &n.text_embeds),
        ] {
            if v.trim().is_empty() {
                problems.push(format!("names.{key}: must not be empty"));
            }
        }
        if n.input_ids == n.attention_mask {
            problems.push("names.attention_mask: must differ from names.input_ids".into());
        }
        let c = &f.calibration;
        let scale = match (c.scale, f.format) {
            (Some(s), _) => s,
            (None, Format::Clip) => 100.0,
            (None, Format::Siglip) => {
                problems.push(
                    "calibration.scale: required for format = \"siglip\" (the checkpoint's logit_scale.exp(); \
                     docs/image_text.md)"
                        .into(),
                );
                1.0
            }
        };
        let bias = match (c.bias, f.format) {
            (Some(b), _) => b,
            (None, Format::Clip) => 0.0,
            (None, Format::Siglip) => {
                problems.push(
                    "calibration.bias: required for format = \"siglip\" (the checkpoint's logit_bias; \
                     docs/image_text.md)"
                        .into(),
                );
                0.0
            }
        };
        if !scale.is_finite() || !(0.01..=1000.0).contains(&scale) {
            problems.push(format!("calibration.scale: {scale}, expected 0.01..=1000"));
        }
        if !bias.is_finite() || !(-100.0..=100.0).contains(&bias) {
            problems.push(format!("calibration.bias: {bias}, expected -100..=100"));
        }
        let calibration = match f.format {
            Format::Clip => {
                let texts = c
                    .background
                    .clone()
                    .unwrap_or_else(|| CLIP_BACKGROUND.iter().map(|t| t.to_string()).collect());
                if texts.is_empty() || texts.len() > 256 {
                    problems.push(
                        "calibration.background: 1..=256 texts (what a prompt competes with; without any, \
                         every CLIP score would be ≈ 1)"
                            .into(),
                    );
                }
                if texts.iter().any(|t| t.trim().is_empty()) {
                    problems.push("calibration.background: empty text".into());
                }
                Calibration::Background { scale, bias, texts }
            }
            Format::Siglip => {
                if c.background.is_some() {
                    problems.push(
                        "calibration.background: only for format = \"clip\" (SigLIP's sigmoid is absolute)"
                            .into(),
                    );
                }
                Calibration::Sigmoid { scale, bias }
            }
        };
        if !problems.is_empty() {
            return Err(bad(problems.join("; ")));
        }
        Ok(Self {
            path: path.to_path_buf(),
            format: f.format,
            image_encoder,
            text_encoder,
            tokenizer,
            image: ImageSpec {
                size,
                mean,
                std,
                centre_crop: f.centre_crop.unwrap_or(clip),
            },
            context_length,
            prompt_template,
            pad_token: f.pad_token,
            names: f.names,
            calibration,
        })
    }

    /// The card's files that do not exist, as one error naming the card (a check without opening anything).
    pub fn missing_files(&self) -> Result<(), String> {
        let missing: Vec<String> = [
            ("image_encoder", &self.image_encoder),
            ("text_encoder", &self.text_encoder),
            ("tokenizer", &self.tokenizer),
        ]
        .into_iter()
        .filter(|(_, p)| !p.is_file())
        .map(|(k, p)| format!("{k}: {} does not exist", p.display()))
        .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(self
                .err(format!(
                    "{} (file names in the card are relative to the card's folder)",
                    missing.join("; ")
                ))
                .to_string())
        }
    }

    fn err(&self, message: String) -> InferError {
        InferError::ImageTextCard {
            card: self.path.clone(),
            message,
        }
    }
}

/// Writes one frame's normalised 3×S×S input (RGB planes) at the end of `out`: the shorter side to S and a centred
/// S×S crop (or the whole frame stretched to S×S), bicubic, pixel/255, then `(x − mean) / std` per channel.
pub fn preprocess_into(
    rgb: &[u8],
    w: u32,
    h: u32,
    spec: &ImageSpec,
    out: &mut Vec<f32>,
) -> Result<(), InferError> {
    let s = spec.size;
    let crop = spec.centre_crop.then(|| centre_crop_box(w, h, s, s));
    let px = resize_rgb(rgb, w, h, s, s, crop, Filter::Bicubic)?;
    let plane = (s * s) as usize;
    let base = out.len();
    out.resize(base + 3 * plane, 0.0);
    let lut: [[f32; 256]; 3] = std::array::from_fn(|c| {
        std::array::from_fn(|v| (v as f32 / 255.0 - spec.mean[c]) / spec.std[c])
    });
    let (r, rest) = out[base..].split_at_mut(plane);
    let (g, b) = rest.split_at_mut(plane);
    for (((r, g), b), p) in r.iter_mut().zip(g).zip(b).zip(px.chunks_exact(3)) {
        *r = lut[0][p[0] as usize];
        *g = lut[1][p[1] as usize];
        *b = lut[2][p[2] as usize];
    }
    Ok(())
}

/// A graph input or output as declared: name, element type, shape (-1 = dynamic). Plain data, so the checks
/// below are pure.
#[derive(Debug, Clone, PartialEq)]
pub struct Port {
    pub name: String,
    pub ty: Option<TensorElementType>,
    pub shape: Option<Vec<i64>>,
}

impl Port {
    fn of(outlets: &[ort::value::Outlet]) -> Vec<Port> {
        outlets
            .iter()
            .map(|o| Port {
                name: o.name().to_string(),
                ty: o.dtype().tensor_type(),
                shape: o.dtype().tensor_shape().map(|s| s.to_vec()),
            })
            .collect()
    }
}

fn describe(p: &Port) -> String {
    let ty = p.ty.map_or("not a tensor".to_string(), |t| t.to_string());
    match &p.shape {
        Some(s) => format!("'{}' {ty} {s:?}", p.name),
        None => format!("'{}' {ty}", p.name),
    }
}

/// Finds port `name` and checks its element type and rank (and fixed dims: `want` -1 = any).
fn expect_port<'a>(
    what: &str,
    ports: &'a [Port],
    name: &str,
    card_key: &str,
    ty: TensorElementType,
    want: &[i64],
) -> Result<&'a Port, String> {
    let Some(p) = ports.iter().find(|p| p.name == name) else {
        let have: Vec<String> = ports.iter().map(describe).collect();
        return Err(format!(
            "{what}: no '{name}' (expected {ty} {want:?}; it has {}); name it with {card_key} in the card",
            have.join(", ")
        ));
    };
    if p.ty != Some(ty) {
        return Err(format!(
            "{what}: {} — expected element type {ty}",
            describe(p)
        ));
    }
    if let Some(shape) = &p.shape {
        let ok = shape.len() == want.len()
            && shape
                .iter()
                .zip(want)
                .all(|(h, w)| *w < 0 || *h < 0 || h == w);
        if !ok {
            return Err(format!("{what}: {} — expected {want:?}", describe(p)));
        }
    }
    Ok(p)
}

/// The declared embedding size of a [B, D] output (None: dynamic).
fn declared_dim(p: &Port) -> Option<usize> {
    p.shape
        .as_ref()
        .and_then(|s| s.get(1))
        .filter(|d| **d > 0)
        .map(|d| *d as usize)
}

/// Checks the image encoder's declared inputs and outputs against the card; the declared embedding size.
pub fn check_image_ports(
    card: &Card,
    inputs: &[Port],
    outputs: &[Port],
) -> Result<Option<usize>, String> {
    let what = format!("image_encoder {}", card.image_encoder.display());
    let n = &card.names;
    let s = card.image.size as i64;
    expect_port(
        &what,
        inputs,
        &n.pixel_values,
        "names.pixel_values",
        TensorElementType::Float32,
        &[-1, 3, -1, -1],
    )?;
    let p = inputs.iter().find(|p| p.name == n.pixel_values);
    if let Some(shape) = p.and_then(|p| p.shape.as_ref()) {
        if shape[2..].iter().any(|d| *d > 0 && *d != s) {
            return Err(format!(
                "{what}: input '{}' is {shape:?}, but the card's image_size is {s} (expected [-1, 3, {s}, {s}])",
                n.pixel_values
            ));
        }
    }
    if let Some(extra) = inputs.iter().find(|p| p.name != n.pixel_values) {
        return Err(format!(
            "{what}: it also wants input {}, which scenewatch does not feed (only '{}')",
            describe(extra),
            n.pixel_values
        ));
    }
    let out = expect_port(
        &what,
        outputs,
        &n.image_embeds,
        "names.image_embeds",
        TensorElementType::Float32,
        &[-1, -1],
    )?;
    Ok(declared_dim(out))
}

/// Checks the text encoder's declared inputs and outputs against the card: the declared embedding size and
/// whether it takes an attention mask.
pub fn check_text_ports(
    card: &Card,
    inputs: &[Port],
    outputs: &[Port],
) -> Result<(Option<usize>, bool), String> {
    let what = format!("text_encoder {}", card.text_encoder.display());
    let n = &card.names;
    let l = card.context_length as i64;
    let ids = expect_port(
        &what,
        inputs,
        &n.input_ids,
        "names.input_ids",
        TensorElementType::Int64,
        &[-1, -1],
    )?;
    if let Some(shape) = &ids.shape {
        if shape[1] > 0 && shape[1] != l {
            return Err(format!(
                "{what}: input '{}' is {shape:?}, but the card's context_length is {l} (expected [-1, {l}])",
                n.input_ids
            ));
        }
    }
    let mask = inputs.iter().any(|p| p.name == n.attention_mask);
    if mask {
        expect_port(
            &what,
            inputs,
            &n.attention_mask,
            "names.attention_mask",
            TensorElementType::Int64,
            &[-1, -1],
        )?;
    }
    if let Some(extra) = inputs
        .iter()
        .find(|p| p.name != n.input_ids && p.name != n.attention_mask)
    {
        return Err(format!(
            "{what}: it also wants input {}, which scenewatch does not feed (only '{}' and '{}')",
            describe(extra),
            n.input_ids,
            n.attention_mask
        ));
    }
    let out = expect_port(
        &what,
        outputs,
        &n.text_embeds,
        "names.text_embeds",
        TensorElementType::Float32,
        &[-1, -1],
    )?;
    Ok((declared_dim(out), mask))
}

/// The two encoders must embed into one space.
pub fn check_dims(card: &Card, image: Option<usize>, text: Option<usize>) -> Result<(), String> {
    match (image, text) {
        (Some(i), Some(t)) if i != t => Err(format!(
            "image_encoder's '{}' has {i} values per image but text_encoder's '{}' has {t} per text: both must \
             embed into the same space (are they the two halves of one checkpoint?)",
            card.names.image_embeds, card.names.text_embeds
        )),
        _ => Ok(()),
    }
}

/// Scales each `dim`-long row to unit length (a zero row stays zero).
fn normalise_rows(v: &mut [f32], dim: usize) {
    for row in v.chunks_exact_mut(dim.max(1)) {
        let n = row.iter().map(|x| x * x).sum::<f32>().sqrt();
        if n > 1e-12 {
            row.iter_mut().for_each(|x| *x /= n);
        }
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn sigmoid(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

fn logsumexp(xs: impl Iterator<Item = f32>) -> f32 {
    let v: Vec<f32> = xs.collect();
    let m = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if !m.is_finite() {
        return m;
    }
    m + v.iter().map(|x| (x - m).exp()).sum::<f32>().ln()
}

/// What scoring needs besides the embeddings: the mapping, the background texts' embeddings (CLIP) and the
/// pooling weight. Cloned out of the text side so scoring never waits for it.
#[derive(Debug, Clone)]
pub struct Scoring {
    pub calibration: Calibration,
    /// `background texts × dim`, unit rows (empty for SigLIP).
    pub background: Arc<Vec<f32>>,
    pub dim: usize,
    /// Clip score = alpha · mean + (1 − alpha) · max over frames (`[language] alpha`).
    pub alpha: f32,
}

impl Scoring {
    /// Scores `prompts` (unit rows) on a clip's frames: each frame's unit image embedding, or None where the
    /// image encoder did not run.
    pub fn score(&self, frames: &[Option<&[f32]>], prompts: &PromptSet) -> HeadOutput {
        let (t, d) = (frames.len(), self.dim);
        let k = prompts.texts.len();
        if t == 0 || k == 0 || prompts.embeddings.len() != k * d {
            return HeadOutput {
                clip_scores: vec![0.0; k],
                clip_raw: vec![0.0; k],
                frame_scores: vec![0.0; t * k],
            };
        }
        let mut raw = vec![0.0f32; t * k];
        let mut scores = vec![0.0f32; t * k];
        let mut seen = vec![false; t];
        for (i, img) in frames.iter().enumerate() {
            let Some(img) = img.filter(|e| e.len() == d) else {
                continue;
            };
            seen[i] = true;
            let level = match &self.calibration {
                Calibration::Background { scale, bias, .. } => {
                    logsumexp(self.background.chunks_exact(d).map(|b| scale * dot(img, b))) - bias
                }
                Calibration::Sigmoid { bias, .. } => -bias,
            };
            let scale = match &self.calibration {
                Calibration::Background { scale, .. } | Calibration::Sigmoid { scale, .. } => {
                    *scale
                }
            };
            for (j, p) in prompts.embeddings.chunks_exact(d).enumerate() {
                let c = dot(img, p);
                raw[i * k + j] = c;
                scores[i * k + j] = sigmoid(scale * c - level);
            }
        }
        HeadOutput {
            clip_scores: pool(&scores, &seen, k, self.alpha),
            clip_raw: pool(&raw, &seen, k, self.alpha),
            frame_scores: scores,
        }
    }
}

/// `alpha · mean + (1 − alpha) · max` over the frames marked in `seen`, per column of the `frames × k` matrix;
/// 0 where no frame was seen.
pub fn pool(x: &[f32], seen: &[bool], k: usize, alpha: f32) -> Vec<f32> {
    (0..k)
        .map(|j| {
            let col: Vec<f32> = seen
                .iter()
                .enumerate()
                .filter(|(_, s)| **s)
                .filter_map(|(i, _)| x.get(i * k + j).copied())
                .collect();
            if col.is_empty() {
                return 0.0;
            }
            let mean = col.iter().sum::<f32>() / col.len() as f32;
            let max = col.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            alpha * mean + (1.0 - alpha) * max
        })
        .collect()
}

/// Opens one of the pair's graphs; a missing file is a card problem (its key and the resolved path).
fn open_card_model(
    env: &ort::environment::Environment,
    card: &Card,
    name: &'static str,
    key: &str,
    path: &Path,
    opts: SessionOptions,
) -> Result<LoadedModel, InferError> {
    if !path.is_file() {
        return Err(card.err(format!(
            "{key}: {} does not exist (file names in the card are relative to the card's folder)",
            path.display()
        )));
    }
    open_model(env, name, path, opts).map_err(|e| card.err(format!("{key}: {e}")))
}

/// The pair's image encoder: one session per inference worker, run where the EfficientNet runs for ConSE.
pub struct ImageEncoder {
    pub model: LoadedModel,
    spec: ImageSpec,
    input_name: String,
    output_name: String,
    /// Embedding size, as the probe run at load found it.
    pub dim: usize,
    input: Vec<f32>,
}

impl ImageEncoder {
    /// Opens and checks the image encoder: declared signature, then one run on a black frame.
    pub fn open(
        env: &ort::environment::Environment,
        card: &Card,
        opts: SessionOptions,
    ) -> Result<Self, InferError> {
        let model = open_card_model(
            env,
            card,
            "image_text.image_encoder",
            "image_encoder",
            &card.image_encoder,
            opts,
        )?;
        let declared = check_image_ports(
            card,
            &Port::of(model.session.inputs()),
            &Port::of(model.session.outputs()),
        )
        .map_err(|m| card.err(m))?;
        let mut enc = Self {
            model,
            spec: card.image.clone(),
            input_name: card.names.pixel_values.clone(),
            output_name: card.names.image_embeds.clone(),
            dim: declared.unwrap_or(0),
            input: Vec::new(),
        };
        let s = card.image.size;
        let black = vec![0u8; (s * s * 3) as usize];
        enc.prepare(&[(&black, s, s)])?;
        let out = enc.run_raw().map_err(|e| {
            card.err(format!(
                "image_encoder: a probe run on one black frame failed: {e}"
            ))
        })?;
        enc.dim = probe_dim(
            card,
            "image_encoder",
            &card.names.image_embeds,
            "frame",
            out.0,
            declared,
        )?;
        Ok(enc)
    }

    /// Preprocessing alone (timed apart from the model): fills the reusable batch tensor.
    pub fn prepare(&mut self, frames: &[(&[u8], u32, u32)]) -> Result<(), InferError> {
        self.input.clear();
        for (rgb, w, h) in frames {
            preprocess_into(rgb, *w, *h, &self.spec, &mut self.input)?;
        }
        Ok(())
    }

    /// Runs the model on the batch last prepared: one unit embedding per frame.
    pub fn run(&mut self) -> Result<Vec<Arc<[f32]>>, InferError> {
        let ((n, d), mut v) = self.run_raw()?;
        if d != self.dim || v.len() != n * d {
            return Err(InferError::Run {
                model: "image_text.image_encoder",
                message: format!("expected [{n}, {}], got [{n}, {d}]", self.dim),
            });
        }
        normalise_rows(&mut v, d);
        Ok(v.chunks_exact(d.max(1)).map(Arc::from).collect())
    }

    /// The raw output for the prepared batch: ((frames, values per frame), values).
    fn run_raw(&mut self) -> Result<((usize, usize), Vec<f32>), InferError> {
        let s = self.spec.size as usize;
        let n = self.input.len() / (3 * s * s);
        if n == 0 {
            return Ok(((0, self.dim), Vec::new()));
        }
        let run_err = |e: ort::Error| InferError::Run {
            model: "image_text.image_encoder",
            message: e.to_string(),
        };
        let tensor = ort::value::TensorRef::from_array_view(([n, 3, s, s], self.input.as_slice()))
            .map_err(run_err)?;
        let outputs = self
            .model
            .session
            .run(vec![(self.input_name.as_str(), tensor)])
            .map_err(run_err)?;
        embeddings(&outputs, &self.output_name, n, "image_text.image_encoder")
    }
}

/// The embedding size a probe run over one input gave (`shape` = (n, d)), checked against the graph's declared
/// size; an error names the card key, the output and expected vs found.
fn probe_dim(
    card: &Card,
    key: &str,
    output: &str,
    input: &str,
    (n, d): (usize, usize),
    declared: Option<usize>,
) -> Result<usize, InferError> {
    if n != 1 || d == 0 || declared.is_some_and(|want| want != d) {
        return Err(card.err(format!(
            "{key}: '{output}' gave shape [{n}, {d}] for one {input}, expected [1, {}]",
            declared.map_or("D".to_string(), |d| d.to_string())
        )));
    }
    Ok(d)
}

/// Output `name` of a run over `n` inputs as `((n, d), values)`; `d` is 0 when the output is not `[n, d]` (the
/// callers check it against the card's dimension).
fn embeddings(
    outputs: &ort::session::SessionOutputs<'_>,
    name: &str,
    n: usize,
    model: &'static str,
) -> Result<((usize, usize), Vec<f32>), InferError> {
    let out = outputs.get(name).ok_or_else(|| InferError::Run {
        model,
        message: format!("no output '{name}'"),
    })?;
    let (shape, v) = out
        .try_extract_tensor::<f32>()
        .map_err(|e| InferError::Run {
            model,
            message: e.to_string(),
        })?;
    let d = if shape.len() == 2 && shape[0] as usize == n {
        shape[1] as usize
    } else {
        0
    };
    Ok(((n, d), v.to_vec()))
}

/// The pair's text encoder and tokenizer: one copy, shared by the workers (it runs when prompts are embedded).
pub struct TextEncoder {
    pub model: LoadedModel,
    tokenizer: Tokenizer,
    names: Names,
    feeds_mask: bool,
    context_length: usize,
    prompt_template: String,
    pub dim: usize,
}

impl TextEncoder {
    /// Opens and checks the text encoder and tokenizer: declared signature, the tokenizer set to pad and
    /// truncate to `context_length`, then one run on a probe text.
    pub fn open(
        env: &ort::environment::Environment,
        card: &Card,
        opts: SessionOptions,
    ) -> Result<Self, InferError> {
        if !card.tokenizer.is_file() {
            return Err(card.err(format!(
                "tokenizer: {} does not exist (file names in the card are relative to the card's folder)",
                card.tokenizer.display()
            )));
        }
        let mut tokenizer = Tokenizer::from_file(&card.tokenizer).map_err(|e| {
            card.err(format!(
                "tokenizer: {} is not a tokenizer.json the `tokenizers` library reads: {e}",
                card.tokenizer.display()
            ))
        })?;
        let (pad_id, pad_token) = match (&card.pad_token, tokenizer.get_padding()) {
            (Some(t), _) => match tokenizer.token_to_id(t) {
                Some(id) => (id, t.clone()),
                None => {
                    return Err(card.err(format!(
                        "pad_token: '{t}' is not in {}'s vocabulary",
                        card.tokenizer.display()
                    )))
                }
            },
            (None, Some(p)) => (p.pad_id, p.pad_token.clone()),
            (None, None) => (0, tokenizer.id_to_token(0).unwrap_or_default()),
        };
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: card.context_length,
                ..Default::default()
            }))
            .map_err(|e| card.err(format!("tokenizer: cannot truncate: {e}")))?;
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::Fixed(card.context_length),
            pad_id,
            pad_token,
            ..Default::default()
        }));
        let model = open_card_model(
            env,
            card,
            "image_text.text_encoder",
            "text_encoder",
            &card.text_encoder,
            opts,
        )?;
        let (declared, feeds_mask) = check_text_ports(
            card,
            &Port::of(model.session.inputs()),
            &Port::of(model.session.outputs()),
        )
        .map_err(|m| card.err(m))?;
        let mut enc = Self {
            model,
            tokenizer,
            names: card.names.clone(),
            feeds_mask,
            context_length: card.context_length,
            prompt_template: card.prompt_template.clone(),
            dim: declared.unwrap_or(0),
        };
        let probe = enc
            .run_raw(&["a photo.".to_string()])
            .map_err(|e| card.err(format!("text_encoder: a probe run on one text failed: {e}")))?;
        enc.dim = probe_dim(
            card,
            "text_encoder",
            &card.names.text_embeds,
            "text",
            probe.0,
            declared,
        )?;
        Ok(enc)
    }

    /// Unit embeddings of `texts` as written (no template), `texts.len() × dim`. Batches of 32.
    pub fn embed(&mut self, texts: &[String]) -> Result<Vec<f32>, InferError> {
        let mut out = Vec::with_capacity(texts.len() * self.dim);
        for chunk in texts.chunks(32) {
            let ((n, d), v) = self.run_raw(chunk)?;
            if n != chunk.len() || d != self.dim {
                return Err(InferError::Run {
                    model: "image_text.text_encoder",
                    message: format!("expected [{}, {}], got [{n}, {d}]", chunk.len(), self.dim),
                });
            }
            out.extend(v);
        }
        normalise_rows(&mut out, self.dim);
        Ok(out)
    }

    /// The camera's prompts through the card's template, embedded.
    pub fn prompts(&mut self, texts: &[String]) -> Result<PromptSet, InferError> {
        let filled: Vec<String> = texts
            .iter()
            .map(|t| self.prompt_template.replace("{}", t))
            .collect();
        Ok(PromptSet {
            texts: texts.to_vec(),
            embeddings: self.embed(&filled)?,
        })
    }

    /// The text encoder's inputs for `texts` as written: `input_ids` and `attention_mask`, each
    /// `texts.len() × context_length`, truncated (the tokenizer's special tokens kept) and padded.
    pub fn tokenize(&self, texts: &[String]) -> Result<(Vec<i64>, Vec<i64>), InferError> {
        let encs = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| InferError::Data {
                what: "image_text tokenizer",
                message: e.to_string(),
            })?;
        let (n, l) = (texts.len(), self.context_length);
        let (mut ids, mut mask) = (vec![0i64; n * l], vec![0i64; n * l]);
        for (i, e) in encs.iter().enumerate() {
            for (j, (id, m)) in e
                .get_ids()
                .iter()
                .zip(e.get_attention_mask())
                .take(l)
                .enumerate()
            {
                ids[i * l + j] = *id as i64;
                mask[i * l + j] = *m as i64;
            }
        }
        Ok((ids, mask))
    }

    fn run_raw(&mut self, texts: &[String]) -> Result<((usize, usize), Vec<f32>), InferError> {
        let (n, l) = (texts.len(), self.context_length);
        let (ids, mask) = self.tokenize(texts)?;
        let run_err = |e: ort::Error| InferError::Run {
            model: "image_text.text_encoder",
            message: e.to_string(),
        };
        let t = |v: Vec<i64>| ort::value::Tensor::from_array(([n, l], v)).map_err(run_err);
        let mut inputs = vec![(self.names.input_ids.as_str(), t(ids)?)];
        if self.feeds_mask {
            inputs.push((self.names.attention_mask.as_str(), t(mask)?));
        }
        let outputs = self.model.session.run(inputs).map_err(run_err)?;
        embeddings(
            &outputs,
            &self.names.text_embeds,
            n,
            "image_text.text_encoder",
        )
    }
}

/// The shared half of a pair: the text side (behind a lock: embedding prompts needs the session) and what
/// scoring needs (read without it).
pub struct PairText {
    pub card: Arc<Card>,
    pub text: Mutex<TextEncoder>,
    pub scoring: Scoring,
}

impl PairText {
    /// Opens the text side, embeds the background texts (CLIP) and checks its embedding size against the image
    /// encoder's (`image_dim`, from a worker's probe run; None: each worker checks its own with `check_image`).
    pub fn open(
        env: &ort::environment::Environment,
        card: Arc<Card>,
        opts: SessionOptions,
        image_dim: Option<usize>,
        alpha: f32,
    ) -> Result<Self, InferError> {
        let mut text = TextEncoder::open(env, &card, opts)?;
        check_dims(&card, image_dim, Some(text.dim)).map_err(|m| card.err(m))?;
        let background = match &card.calibration {
            Calibration::Background { texts, .. } => text.embed(texts)?,
            Calibration::Sigmoid { .. } => Vec::new(),
        };
        let scoring = Scoring {
            calibration: card.calibration.clone(),
            background: Arc::new(background),
            dim: text.dim,
            alpha,
        };
        Ok(Self {
            card,
            text: Mutex::new(text),
            scoring,
        })
    }

    /// Embeds a camera's prompts.
    pub fn prompts(&self, texts: &[String]) -> Result<PromptSet, InferError> {
        self.text
            .lock()
            .map_err(|_| InferError::Data {
                what: "image_text text encoder",
                message: "a worker panicked while using it".into(),
            })?
            .prompts(texts)
    }

    /// Checks that an image encoder opened later (another worker, a reload) embeds into this pair's space.
    pub fn check_image(&self, image: &ImageEncoder) -> Result<(), InferError> {
        check_dims(&self.card, Some(image.dim), Some(self.scoring.dim))
            .map_err(|m| self.card.err(m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(text: &str) -> Result<Card, InferError> {
        Card::parse(text, Path::new("/srv/models/my_clip.toml"))
    }

    const MINIMAL: &str = "image_encoder = \"img.onnx\"\ntext_encoder = \"txt.onnx\"\ntokenizer = \"tokenizer.json\"\n";

    fn message(e: InferError) -> String {
        e.to_string()
    }

    #[test]
    fn a_minimal_clip_card_gets_clips_defaults_and_paths_next_to_it() {
        let c = card(&format!("format = \"clip\"\n{MINIMAL}")).expect("card");
        assert_eq!(c.image_encoder, Path::new("/srv/models/img.onnx"));
        assert_eq!(c.tokenizer, Path::new("/srv/models/tokenizer.json"));
        assert_eq!(c.image.size, 224);
        assert_eq!(c.image.mean, CLIP_MEAN);
        assert!(c.image.centre_crop);
        assert_eq!(c.context_length, 77);
        assert_eq!(c.names, Names::default());
        match &c.calibration {
            Calibration::Background { scale, bias, texts } => {
                assert_eq!((*scale, *bias), (100.0, 0.0));
                assert_eq!(texts.len(), CLIP_BACKGROUND.len());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_siglip_card_needs_its_scale_and_bias_and_takes_no_background() {
        let e = message(card(&format!("format = \"siglip\"\n{MINIMAL}")).expect_err("no scale"));
        assert!(e.contains("/srv/models/my_clip.toml"), "{e}");
        assert!(e.contains("calibration.scale: required"), "{e}");
        assert!(e.contains("calibration.bias: required"), "{e}");
        let c = card(&format!(
            "format = \"siglip\"\n{MINIMAL}[calibration]\nscale = 117.3\nbias = -12.9\n"
        ))
        .expect("card");
        assert_eq!(c.image.mean, [0.5; 3]);
        assert!(!c.image.centre_crop, "SigLIP's processor stretches");
        assert_eq!(c.context_length, 64);
        assert_eq!(
            c.calibration,
            Calibration::Sigmoid {
                scale: 117.3,
                bias: -12.9
            }
        );
        let e = message(
            card(&format!(
                "format = \"siglip\"\n{MINIMAL}[calibration]\nscale = 1.0\nbias = 0.0\nbackground = [\"x\"]\n"
            ))
            .expect_err("background"),
        );
        assert!(e.contains("only for format = \"clip\""), "{e}");
    }

    #[test]
    fn every_card_problem_is_listed_and_unknown_keys_are_errors() {
        let e = message(
            card(&format!(
                "format = \"clip\"\n{MINIMAL}image_size = 8\nstd = [0.2, 0.0, 0.2]\nprompt_template = \"x\"\n\
                 [calibration]\nbackground = []\n"
            ))
            .expect_err("bad"),
        );
        for want in [
            "image_size: 8",
            "std[1]: 0",
            "prompt_template",
            "calibration.background",
        ] {
            assert!(e.contains(want), "{want} in {e}");
        }
        let e = message(
            card(&format!("format = \"clip\"\n{MINIMAL}imagesize = 224\n")).expect_err("typo"),
        );
        assert!(e.contains("imagesize"), "{e}");
        let e = message(card(&format!("format = \"blip\"\n{MINIMAL}")).expect_err("format"));
        assert!(e.contains("blip"), "{e}");
    }

    fn port(name: &str, ty: TensorElementType, shape: &[i64]) -> Port {
        Port {
            name: name.into(),
            ty: Some(ty),
            shape: Some(shape.to_vec()),
        }
    }

    use TensorElementType::{Float32 as F32, Int32 as I32, Int64 as I64};

    #[test]
    fn image_ports_are_checked_against_the_card() {
        let c = card(&format!("format = \"clip\"\n{MINIMAL}")).expect("card");
        let good_in = [port("pixel_values", F32, &[-1, 3, 224, 224])];
        let good_out = [port("image_embeds", F32, &[-1, 512])];
        assert_eq!(check_image_ports(&c, &good_in, &good_out), Ok(Some(512)));
        let dynamic = [port("pixel_values", F32, &[-1, 3, -1, -1])];
        assert_eq!(
            check_image_ports(&c, &dynamic, &[port("image_embeds", F32, &[-1, -1])]),
            Ok(None)
        );
        let cases: Vec<(Vec<Port>, Vec<Port>, &str)> = vec![
            (
                vec![port("input", F32, &[-1, 3, 224, 224])],
                good_out.to_vec(),
                "no 'pixel_values'",
            ),
            (
                vec![port("pixel_values", F32, &[-1, 3, 336, 336])],
                good_out.to_vec(),
                "image_size is 224",
            ),
            (
                vec![port("pixel_values", F32, &[-1, 224, 224, 3])],
                good_out.to_vec(),
                "expected [-1, 3, -1, -1]",
            ),
            (
                vec![port(
                    "pixel_values",
                    TensorElementType::Float16,
                    &[-1, 3, 224, 224],
                )],
                good_out.to_vec(),
                "expected element type f32",
            ),
            (
                vec![good_in[0].clone(), port("input_ids", I64, &[-1, 77])],
                good_out.to_vec(),
                "also wants input 'input_ids'",
            ),
            (
                good_in.to_vec(),
                vec![port("last_hidden_state", F32, &[-1, 50, 768])],
                "no 'image_embeds'",
            ),
            (
                good_in.to_vec(),
                vec![port("image_embeds", F32, &[-1, 50, 512])],
                "expected [-1, -1]",
            ),
        ];
        for (inputs, outputs, want) in cases {
            let e = check_image_ports(&c, &inputs, &outputs).expect_err(want);
            assert!(e.contains(want), "{want} in {e}");
            assert!(e.contains("/srv/models/img.onnx"), "{e}");
        }
    }

    #[test]
    fn text_ports_are_checked_against_the_card() {
        let c = card(&format!("format = \"clip\"\n{MINIMAL}")).expect("card");
        let out = [port("text_embeds", F32, &[-1, 512])];
        let clip_in = [
            port("input_ids", I64, &[-1, -1]),
            port("attention_mask", I64, &[-1, -1]),
        ];
        assert_eq!(check_text_ports(&c, &clip_in, &out), Ok((Some(512), true)));
        let siglip_like = [port("input_ids", I64, &[-1, 77])];
        assert_eq!(
            check_text_ports(&c, &siglip_like, &out),
            Ok((Some(512), false))
        );
        let cases: Vec<(Vec<Port>, &str)> = vec![
            (
                vec![port("input_ids", I32, &[-1, -1])],
                "expected element type i64",
            ),
            (
                vec![port("input_ids", I64, &[-1, 64])],
                "context_length is 77",
            ),
            (vec![port("ids", I64, &[-1, -1])], "no 'input_ids'"),
            (
                vec![
                    port("input_ids", I64, &[-1, -1]),
                    port("token_type_ids", I64, &[-1, -1]),
                ],
                "also wants input 'token_type_ids'",
            ),
        ];
        for (inputs, want) in cases {
            let e = check_text_ports(&c, &inputs, &out).expect_err(want);
            assert!(e.contains(want), "{want} in {e}");
        }
        assert!(check_dims(&c, Some(512), Some(512)).is_ok());
        assert!(
            check_dims(&c, Some(512), None).is_ok(),
            "known after the probe run"
        );
        let e = check_dims(&c, Some(512), Some(384)).expect_err("dims");
        assert!(e.contains("512") && e.contains("384"), "{e}");
    }

    fn spec(size: u32, centre_crop: bool) -> ImageSpec {
        ImageSpec {
            size,
            mean: CLIP_MEAN,
            std: CLIP_STD,
            centre_crop,
        }
    }

    #[test]
    fn preprocessing_scales_normalises_and_writes_rgb_planes() {
        let red = [255u8, 0, 0].repeat(40 * 30);
        let mut out = Vec::new();
        preprocess_into(&red, 40, 30, &spec(8, true), &mut out).expect("pre");
        assert_eq!(out.len(), 3 * 64);
        let want = |c: usize, v: f32| (v - CLIP_MEAN[c]) / CLIP_STD[c];
        assert!(out[..64].iter().all(|x| (x - want(0, 1.0)).abs() < 1e-5));
        assert!(out[64..128].iter().all(|x| (x - want(1, 0.0)).abs() < 1e-5));
        assert!(out[128..].iter().all(|x| (x - want(2, 0.0)).abs() < 1e-5));
        // a second frame is appended after the first (a batch)
        preprocess_into(&[0u8; 3 * 4 * 4], 4, 4, &spec(8, true), &mut out).expect("pre");
        assert_eq!(out.len(), 6 * 64);
        assert!((out[3 * 64] - want(0, 0.0)).abs() < 1e-5);
        assert!(preprocess_into(&[0u8; 5], 4, 4, &spec(8, true), &mut out).is_err());
    }

    #[test]
    fn centre_crop_keeps_the_middle_and_stretch_keeps_everything() {
        // 60×20: blue | red | blue in thirds; the centred 20×20 crop is all red
        let (w, h) = (60u32, 20u32);
        let mut rgb = Vec::new();
        for _ in 0..h {
            for x in 0..w {
                rgb.extend_from_slice(if (20..40).contains(&x) {
                    &[255, 0, 0]
                } else {
                    &[0, 0, 255]
                });
            }
        }
        let red_r = (1.0 - CLIP_MEAN[0]) / CLIP_STD[0];
        let mut crop = Vec::new();
        preprocess_into(&rgb, w, h, &spec(10, true), &mut crop).expect("crop");
        let r = &crop[..100];
        // the crop's edge pixels may blend a little with their neighbours; the middle is red
        assert!(
            r.iter().skip(2).step_by(10).all(|x| *x > red_r - 0.3),
            "{r:?}"
        );
        let mut stretch = Vec::new();
        preprocess_into(&rgb, w, h, &spec(9, false), &mut stretch).expect("stretch");
        let row: Vec<f32> = stretch[..9].to_vec();
        assert!(row[0] < 0.0 && row[8] < 0.0, "blue at both edges: {row:?}");
        assert!((row[4] - red_r).abs() < 1e-3, "red in the middle: {row:?}");
    }

    fn unit(v: &[f32]) -> Vec<f32> {
        let mut v = v.to_vec();
        let d = v.len();
        normalise_rows(&mut v, d);
        v
    }

    fn set(rows: &[&[f32]]) -> PromptSet {
        PromptSet {
            texts: (0..rows.len()).map(|i| format!("p{i}")).collect(),
            embeddings: rows.iter().flat_map(|r| unit(r)).collect(),
        }
    }

    #[test]
    fn siglip_scores_are_the_sigmoid_of_scaled_cosine_plus_bias() {
        let s = Scoring {
            calibration: Calibration::Sigmoid {
                scale: 10.0,
                bias: -5.0,
            },
            background: Arc::default(),
            dim: 2,
            alpha: 0.5,
        };
        let img = unit(&[1.0, 0.0]);
        let out = s.score(&[Some(&img)], &set(&[&[1.0, 0.0], &[0.0, 1.0]]));
        assert!((out.frame_scores[0] - sigmoid(5.0)).abs() < 1e-6);
        assert!((out.frame_scores[1] - sigmoid(-5.0)).abs() < 1e-6);
        assert_eq!(out.clip_raw, vec![1.0, 0.0]);
        // a prompt's score does not depend on the camera's other prompts
        let alone = s.score(&[Some(&img)], &set(&[&[1.0, 0.0]]));
        assert_eq!(alone.clip_scores[0], out.clip_scores[0]);
    }

    #[test]
    fn clip_scores_are_each_prompts_softmax_against_the_background() {
        let background = [unit(&[0.0, 1.0, 0.0]), unit(&[0.0, 0.0, 1.0])].concat();
        let s = Scoring {
            calibration: Calibration::Background {
                scale: 10.0,
                bias: 0.0,
                texts: vec!["b0".into(), "b1".into()],
            },
            background: Arc::new(background),
            dim: 3,
            alpha: 1.0,
        };
        let img = unit(&[1.0, 1.0, 0.0]);
        let prompts = set(&[&[1.0, 0.0, 0.0], &[1.0, 1.0, 0.0], &[0.0, 0.0, 1.0]]);
        let out = s.score(&[Some(&img)], &prompts);
        // by hand: exp(10·cos_k) / (exp(10·cos_k) + Σ_j exp(10·cos_bg_j))
        let c = |v: &[f32]| dot(&img, &unit(v)) * 10.0;
        let bg = c(&[0.0, 1.0, 0.0]).exp() + c(&[0.0, 0.0, 1.0]).exp();
        for (k, p) in [[1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
            .iter()
            .enumerate()
        {
            let want = c(p).exp() / (c(p).exp() + bg);
            assert!((out.frame_scores[k] - want).abs() < 1e-5, "{k}: {out:?}");
        }
        // ranking within the frame is the cosine's; the exact description beats the background
        assert!(out.clip_scores[1] > 0.5 && out.clip_scores[1] > out.clip_scores[0]);
        assert!(out.clip_scores[2] < out.clip_scores[0]);
        // and adding a prompt leaves the others' scores alone
        let fewer = s.score(&[Some(&img)], &set(&[&[1.0, 0.0, 0.0]]));
        assert_eq!(fewer.clip_scores[0], out.clip_scores[0]);
    }

    #[test]
    fn clip_pooling_mixes_mean_and_max_and_skips_frames_without_an_embedding() {
        let s = Scoring {
            calibration: Calibration::Sigmoid {
                scale: 1.0,
                bias: 0.0,
            },
            background: Arc::default(),
            dim: 2,
            alpha: 0.5,
        };
        let (a, b) = (unit(&[1.0, 0.0]), unit(&[0.0, 1.0]));
        let prompts = set(&[&[1.0, 0.0]]);
        let out = s.score(&[Some(&a), None, Some(&b)], &prompts);
        let (hi, lo) = (sigmoid(1.0), sigmoid(0.0));
        assert_eq!(out.frame_scores, vec![hi, 0.0, lo]);
        assert!((out.clip_scores[0] - (0.5 * (hi + lo) / 2.0 + 0.5 * hi)).abs() < 1e-6);
        assert!((out.clip_raw[0] - 0.75).abs() < 1e-6);
        // no frame with an embedding: no evidence, score 0
        let none = s.score(&[None, None], &prompts);
        assert_eq!(none.clip_scores, vec![0.0]);
        assert_eq!(none.frame_scores, vec![0.0, 0.0]);
        assert_eq!(pool(&[], &[], 2, 0.5), vec![0.0, 0.0]);
    }
}
