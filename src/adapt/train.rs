//! Training a head from labelled feature vectors: a stratified, group-aware validation split, standardisation
//! with the training split's statistics, and a candle-trained logistic or one-hidden-layer MLP head.
//!
//! Choices, and why:
//! - **Split over groups.** A group is a source file: its augmented copies and all clips of one video share it,
//!   so validation never sees a near-copy of a training example. Augmented examples only ever train.
//! - **AdamW** (candle-nn) with decoupled weight decay on the weight matrices only (biases are not decayed: a
//!   decayed bias only pulls the head towards equal priors).
//! - **Schedule:** linear warm-up over the first [`WARMUP_EPOCHS`] epochs (at most a tenth of `max_epochs`), then
//!   cosine decay towards a twentieth of `lr` at `max_epochs`, set once per epoch. Warm-up keeps Adam's first,
//!   badly estimated steps small; the cosine tail lets a long run settle.
//! - **Class weights:** inverse training-split frequency (`n / (k · n_c)`), in a hand-written weighted
//!   cross-entropy (log-softmax, gather, weighted mean), on both the training and validation loss.
//! - **Early stopping on validation loss**, not macro-F1: with a few dozen validation examples F1 moves in
//!   coarse steps and ties for many epochs, while the loss still tells a confident right answer from a lucky
//!   one. The best epoch's weights are restored.
//! - **Reproducible:** every random choice (split, initial weights, minibatch order) comes from one seeded
//!   SplitMix64 written here, not from a crate whose stream could change between versions; candle's CPU kernels
//!   are deterministic, so the same data, options and seed give the same head, byte for byte.

use std::collections::{BTreeMap, BTreeSet};
use std::io::IsTerminal;

use candle_core::{DType, Device, Tensor, Var, D};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};

use super::head::{FeatureRecipe, HeadFile, HeadKind, ModelHash, Net, TrainedInfo, FORMAT};
use super::report::{classification_report, EpochPoint, TrainReport};
use super::AdaptError;

/// Epochs of linear learning-rate warm-up (capped at a tenth of `max_epochs`).
pub const WARMUP_EPOCHS: usize = 5;
/// The cosine schedule ends at this fraction of the peak learning rate.
const FINAL_LR_FRACTION: f64 = 0.05;
/// A validation loss must drop by more than this to count as better (early stopping).
const MIN_DELTA: f32 = 1e-4;
/// A feature whose training-split standard deviation is below this is constant: it is divided by 1, not by ~0.
const STD_FLOOR: f32 = 1e-6;

/// One labelled feature vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    pub x: Vec<f32>,
    /// Index into the class names.
    pub class: usize,
    /// The source file: its augmented copies and all clips of one video share it, so the split never puts a
    /// file's copies on both sides.
    pub group: String,
    pub augmented: bool,
}

/// How to train. The defaults suit a few dozen to a few hundred examples of ~1,400 features (see `Default`).
#[derive(Debug, Clone, PartialEq)]
pub struct TrainOptions {
    pub head: HeadKind,
    pub max_epochs: usize,
    /// Peak learning rate (after warm-up).
    pub lr: f64,
    /// AdamW's decoupled weight decay, on the weight matrices.
    pub weight_decay: f64,
    /// Epochs without a better validation loss before stopping.
    pub patience: usize,
    /// Share of each class's examples (by group) held out for validation.
    pub val_fraction: f32,
    pub seed: u64,
    pub batch_size: usize,
    /// Weight the loss by inverse class frequency.
    pub class_weights: bool,
    /// Draw a progress bar on stderr (only when it is a terminal).
    pub progress: bool,
}

impl Default for TrainOptions {
    /// Measured with `sweep_learning_rate_and_weight_decay` (below; 3 seeds each on separable 300-d blobs, hard
    /// 1,360-d blobs with 300 examples, and 2 × 15 few-shot 1,360-d blobs):
    /// - logistic head: it matched the MLP on separable and few-shot data, is within a few F1 points on the hard
    ///   set, and trains in well under a second where the MLP (128 hidden) takes seconds;
    /// - lr 1e-3: the best or equal-best on the few-shot set (the use this is for); 3e-3 and 1e-2 stopped within
    ///   ~10 epochs there and lost F1, 3e-4 had not converged in 200 epochs;
    /// - weight decay 0.1 (decoupled): on the hard set it beat 0.01 at every lr (e.g. 0.74/0.73/0.67 vs
    ///   0.71/0.67/0.68 at lr 1e-3), and made no difference elsewhere;
    /// - 200 epochs, patience 20: runs on noisy data stop after 20–160 epochs; separable data keeps lowering the
    ///   validation loss, and stops at 200 with F1 ≥ 0.95;
    /// - batch 32, a quarter of the groups for validation (with ~15 examples a class that is 3–4 to validate on),
    ///   class weights on (labelled sets are rarely balanced).
    fn default() -> Self {
        TrainOptions {
            head: HeadKind::Logistic,
            max_epochs: 200,
            lr: 1e-3,
            weight_decay: 0.1,
            patience: 20,
            val_fraction: 0.25,
            seed: 0x5CE_E5EE,
            batch_size: 32,
            class_weights: true,
            progress: true,
        }
    }
}

/// The result of [`train`]: the kept weights, the standardisation, the report and the head file's summary
/// (its `at` is the time training finished).
#[derive(Debug, Clone)]
pub struct Trained {
    pub net: Net,
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
    pub report: TrainReport,
    pub info: TrainedInfo,
}

/// What a head file needs besides the training result.
#[derive(Debug, Clone)]
pub struct HeadMeta {
    pub name: String,
    pub classes: Vec<String>,
    pub recipe: FeatureRecipe,
    pub models: Vec<ModelHash>,
}

impl Trained {
    /// The head file for this result; checks that the recipe makes vectors of the trained length.
    pub fn into_head(self, meta: HeadMeta) -> Result<HeadFile, AdaptError> {
        if meta.recipe.dim() != self.mean.len() {
            return Err(AdaptError::FeatureDim {
                expected: meta.recipe.dim(),
                got: self.mean.len(),
            });
        }
        let head = HeadFile {
            format: FORMAT,
            name: meta.name,
            classes: meta.classes,
            recipe: meta.recipe,
            models: meta.models,
            trained: self.info,
            mean: self.mean,
            std: self.std,
            net: self.net,
        };
        head.check().map_err(AdaptError::Train)?;
        Ok(head)
    }
}

/// A seeded SplitMix64 (Steele et al. 2014): small, fast, and its stream is fixed by this code.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [0, n); `n` > 0.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_f64() * n as f64) as usize % n.max(1)
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.next_f64().max(f64::MIN_POSITIVE);
        let u2 = self.next_f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i + 1);
            v.swap(i, j);
        }
    }
}

/// A train/validation split: indices into the examples, ascending.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    pub train: Vec<usize>,
    pub val: Vec<usize>,
    pub warnings: Vec<String>,
}

/// Stratified split over groups. For each class (fewest groups first) whole groups, in seeded random order, are
/// held out until about `val_fraction` of the class's un-augmented examples are in validation, as long as every
/// class in a held-out group keeps a training source. Validation is the un-augmented examples of held-out groups
/// (their augmented copies are dropped: they would leak). A class found in a single group has that group split
/// by order instead (the last `val_fraction` of each class's un-augmented examples validate, the rest and the
/// augmented copies train), with a warning. Every class must end with a training and a validation example.
pub fn split(
    examples: &[Example],
    classes: &[String],
    val_fraction: f32,
    seed: u64,
) -> Result<Split, AdaptError> {
    let k = classes.len();
    let name = |c: usize| classes.get(c).map_or("?", String::as_str).to_string();
    if let Some((i, e)) = examples.iter().enumerate().find(|(_, e)| e.class >= k) {
        return Err(AdaptError::Data(format!(
            "example {i} (group «{}») has class index {} but there are {k} classes",
            e.group, e.class
        )));
    }
    if !(val_fraction > 0.0 && val_fraction < 1.0) {
        return Err(AdaptError::Data(format!(
            "the validation fraction must be between 0 and 1, not {val_fraction}"
        )));
    }
    // un-augmented counts per class, and per group per class
    let mut originals = vec![0usize; k];
    let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new(); // group → un-augmented count per class
    let mut present: BTreeMap<&str, BTreeSet<usize>> = BTreeMap::new(); // any example, augmented or not
    for e in examples {
        present.entry(&e.group).or_default().insert(e.class);
        let counts = groups.entry(&e.group).or_insert_with(|| vec![0; k]);
        if !e.augmented {
            counts[e.class] += 1;
            originals[e.class] += 1;
        }
    }
    for (c, &n) in originals.iter().enumerate() {
        if n < 2 {
            return Err(AdaptError::Data(format!(
                "class «{}» has {} labelled example(s) (augmented copies not counted); it needs at least 2, one \
                 to train on and one to validate",
                name(c),
                n
            )));
        }
    }
    let groups_of = |c: usize| -> Vec<&str> {
        groups
            .iter()
            .filter(|(_, counts)| counts[c] > 0)
            .map(|(g, _)| *g)
            .collect()
    };
    #[derive(Clone, Copy, PartialEq)]
    enum Side {
        Train,
        Val,
        Split,
    }
    let mut side: BTreeMap<&str, Side> = BTreeMap::new();
    let mut warnings = Vec::new();
    for (c, &n) in originals.iter().enumerate() {
        let gs = groups_of(c);
        if gs.len() == 1 {
            side.insert(gs[0], Side::Split);
            warnings.push(format!(
                "class «{}»: all {} of its examples come from one source («{}»), so its validation examples are \
                 the last clips of that source and its augmented copies train: its validation figures are not \
                 independent — label a second source",
                name(c),
                n,
                gs[0]
            ));
        }
    }
    // how many un-augmented examples of class c validate, given the current sides
    let split_val =
        |n: usize| ((n as f32 * val_fraction).round() as usize).clamp(1, n.saturating_sub(1));
    let val_count = |side: &BTreeMap<&str, Side>, c: usize| -> usize {
        side.iter()
            .map(|(g, s)| match s {
                Side::Val => groups[g][c],
                Side::Split if groups[g][c] >= 2 => split_val(groups[g][c]),
                _ => 0,
            })
            .sum()
    };
    // whether class c still has a training source if `extra` is also held out
    let trains = |side: &BTreeMap<&str, Side>, c: usize, extra: &str| -> bool {
        present.iter().any(|(g, cs)| {
            cs.contains(&c)
                && *g != extra
                && match side.get(g) {
                    None | Some(Side::Train) => true,
                    Some(Side::Val) => false,
                    // a split group trains on its augmented copies and all but the last of its originals
                    Some(Side::Split) => {
                        groups[g][c] != 1
                            || examples
                                .iter()
                                .any(|e| e.group == *g && e.class == c && e.augmented)
                    }
                }
        })
    };
    let mut rng = Rng::new(seed);
    let mut order: Vec<usize> = (0..k).collect();
    order.sort_by_key(|&c| (groups_of(c).len(), c));
    for c in order {
        let target = ((originals[c] as f32 * val_fraction).round() as usize).max(1);
        let mut candidates: Vec<&str> = groups_of(c)
            .into_iter()
            .filter(|g| !side.contains_key(g))
            .collect();
        rng.shuffle(&mut candidates);
        for g in candidates {
            if val_count(&side, c) >= target {
                break;
            }
            let keeps_training = present[g].iter().all(|&c2| trains(&side, c2, g));
            if keeps_training {
                side.insert(g, Side::Val);
            }
        }
    }
    let mut train = Vec::new();
    let mut val = Vec::new();
    // per split group and class: the un-augmented examples, in order, to cut
    let mut seen: BTreeMap<(&str, usize), usize> = BTreeMap::new();
    for (i, e) in examples.iter().enumerate() {
        match side.get(e.group.as_str()).copied().unwrap_or(Side::Train) {
            Side::Train => train.push(i),
            Side::Val => {
                if !e.augmented {
                    val.push(i);
                }
            }
            Side::Split => {
                if e.augmented {
                    train.push(i);
                } else {
                    let n = groups[e.group.as_str()][e.class];
                    let pos = seen.entry((e.group.as_str(), e.class)).or_insert(0);
                    let n_val = if n >= 2 { split_val(n) } else { 0 };
                    if *pos >= n - n_val {
                        val.push(i);
                    } else {
                        train.push(i);
                    }
                    *pos += 1;
                }
            }
        }
    }
    for (c, &n) in originals.iter().enumerate() {
        let in_train = train.iter().any(|&i| examples[i].class == c);
        let in_val = val.iter().any(|&i| examples[i].class == c);
        if !in_train || !in_val {
            return Err(AdaptError::Data(format!(
                "class «{}» has no {} example after the split ({} labelled examples in {} source(s)); label more \
                 examples of it, from more sources",
                name(c),
                if in_train { "validation" } else { "training" },
                n,
                groups_of(c).len()
            )));
        }
    }
    Ok(Split {
        train,
        val,
        warnings,
    })
}

/// The learning rate for `epoch` (1-based).
pub fn lr_at(epoch: usize, max_epochs: usize, lr: f64) -> f64 {
    let warmup = WARMUP_EPOCHS.min(max_epochs / 10);
    if epoch <= warmup {
        return lr * epoch as f64 / (warmup + 1) as f64;
    }
    let span = (max_epochs - warmup).max(1) as f64;
    let t = ((epoch - warmup - 1) as f64 / span).clamp(0.0, 1.0);
    let floor = lr * FINAL_LR_FRACTION;
    floor + (lr - floor) * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())
}

/// The trainable parameters, as candle variables shaped like [`Net`]'s matrices (`out × in`).
struct Params {
    weights: Vec<Var>,
    biases: Vec<Var>,
    hidden: Option<usize>,
}

impl Params {
    fn init(kind: HeadKind, dim: usize, classes: usize, rng: &mut Rng) -> Result<Self, AdaptError> {
        // uniform(−a, a) with a = sqrt(6 / fan) : Xavier (fan_in + fan_out) for a linear output, He (fan_in)
        // before a ReLU
        let uniform = |rng: &mut Rng, rows: usize, cols: usize, fan: usize| {
            let a = (6.0 / fan as f64).sqrt();
            let v: Vec<f32> = (0..rows * cols)
                .map(|_| ((rng.next_f64() * 2.0 - 1.0) * a) as f32)
                .collect();
            Tensor::from_vec(v, (rows, cols), &Device::Cpu).and_then(|t| Var::from_tensor(&t))
        };
        let zeros = |n: usize| Var::zeros(n, DType::F32, &Device::Cpu);
        Ok(match kind {
            HeadKind::Logistic => Params {
                weights: vec![uniform(rng, classes, dim, dim + classes)?],
                biases: vec![zeros(classes)?],
                hidden: None,
            },
            HeadKind::Mlp { hidden } => {
                if hidden == 0 {
                    return Err(AdaptError::Data(
                        "the MLP head needs hidden units (hidden = 0)".into(),
                    ));
                }
                Params {
                    weights: vec![
                        uniform(rng, hidden, dim, dim)?,
                        uniform(rng, classes, hidden, hidden + classes)?,
                    ],
                    biases: vec![zeros(hidden)?, zeros(classes)?],
                    hidden: Some(hidden),
                }
            }
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let layer = |x: &Tensor, w: &Var, b: &Var| {
            x.matmul(&w.as_tensor().t()?)?.broadcast_add(b.as_tensor())
        };
        match self.hidden {
            None => layer(x, &self.weights[0], &self.biases[0]),
            Some(_) => {
                let h = layer(x, &self.weights[0], &self.biases[0])?.relu()?;
                layer(&h, &self.weights[1], &self.biases[1])
            }
        }
    }

    fn to_net(&self) -> candle_core::Result<Net> {
        let flat = |v: &Var| v.as_tensor().flatten_all()?.to_vec1::<f32>();
        Ok(match self.hidden {
            None => Net::Logistic {
                w: flat(&self.weights[0])?,
                b: flat(&self.biases[0])?,
            },
            Some(hidden) => Net::Mlp {
                hidden,
                w1: flat(&self.weights[0])?,
                b1: flat(&self.biases[0])?,
                w2: flat(&self.weights[1])?,
                b2: flat(&self.biases[1])?,
            },
        })
    }
}

/// Class-weighted mean cross-entropy: `−Σ w_y · log softmax(logits)_y / Σ w_y` (the plain mean when all weights
/// are 1).
fn weighted_cross_entropy(
    logits: &Tensor,
    target: &Tensor,
    weights: &Tensor,
) -> candle_core::Result<Tensor> {
    let logp = candle_nn::ops::log_softmax(logits, D::Minus1)?;
    let picked = logp.gather(&target.unsqueeze(1)?, 1)?.squeeze(1)?;
    let w = weights.index_select(target, 0)?;
    (picked * &w)?.sum_all()?.neg()? / f64::from(w.sum_all()?.to_scalar::<f32>()?)
}

/// Rows of `examples` at `idx`, standardised, as one `n × dim` tensor.
fn matrix(
    examples: &[Example],
    idx: &[usize],
    mean: &[f32],
    std: &[f32],
) -> candle_core::Result<Tensor> {
    let dim = mean.len();
    let mut v = Vec::with_capacity(idx.len() * dim);
    for &i in idx {
        v.extend(
            examples[i]
                .x
                .iter()
                .zip(mean.iter().zip(std))
                .map(|(x, (m, s))| (x - m) / s),
        );
    }
    Tensor::from_vec(v, (idx.len(), dim), &Device::Cpu)
}

/// Training-split mean and standard deviation per feature, floored at the median (std below [`STD_FLOOR`] → 1).
fn standardisation(examples: &[Example], train: &[usize], dim: usize) -> (Vec<f32>, Vec<f32>) {
    let n = train.len().max(1) as f64;
    let mut mean = vec![0f64; dim];
    for &i in train {
        for (m, x) in mean.iter_mut().zip(&examples[i].x) {
            *m += f64::from(*x);
        }
    }
    mean.iter_mut().for_each(|m| *m /= n);
    let mut var = vec![0f64; dim];
    for &i in train {
        for ((v, x), m) in var.iter_mut().zip(&examples[i].x).zip(&mean) {
            *v += (f64::from(*x) - m).powi(2);
        }
    }
    let raw: Vec<f32> = var.iter().map(|v| (v / n).sqrt() as f32).collect();
    // A few dozen examples estimate the spread of 1,400 features badly, and a nearly constant feature (an
    // embedding dimension that barely moves, a class the detector never saw) divided by its tiny spread turns
    // noise into the largest input. Each spread is floored at the median spread, so no feature is blown up more
    // than a typical one (the real-media test's held-apart macro F1: 0.26 without the floor, 1.00 with it;
    // docs/adapt.md).
    let mut sorted: Vec<f32> = raw.iter().copied().filter(|s| *s >= STD_FLOOR).collect();
    sorted.sort_by(f32::total_cmp);
    let floor = sorted.get(sorted.len() / 2).copied().unwrap_or(1.0);
    let std = raw
        .iter()
        .map(|s| if *s < STD_FLOOR { 1.0 } else { s.max(floor) })
        .collect();
    (mean.into_iter().map(|m| m as f32).collect(), std)
}

/// Probabilities from candle's forward pass for standardised rows (what training evaluates with); used by the
/// tests to check [`HeadFile::predict`] against it.
pub fn candle_probabilities(
    net: &Net,
    z: &[Vec<f32>],
    classes: usize,
) -> Result<Vec<Vec<f32>>, AdaptError> {
    let dim = z.first().map_or(0, Vec::len);
    net.check(classes, dim).map_err(AdaptError::Train)?;
    let t = |v: &[f32], r: usize, c: usize| {
        Tensor::from_slice(v, (r, c), &Device::Cpu).and_then(|t| Var::from_tensor(&t))
    };
    let params = match net {
        Net::Logistic { w, b } => Params {
            weights: vec![t(w, classes, dim)?],
            biases: vec![Var::from_tensor(&Tensor::from_slice(
                b,
                classes,
                &Device::Cpu,
            )?)?],
            hidden: None,
        },
        Net::Mlp {
            hidden,
            w1,
            b1,
            w2,
            b2,
        } => Params {
            weights: vec![t(w1, *hidden, dim)?, t(w2, classes, *hidden)?],
            biases: vec![
                Var::from_tensor(&Tensor::from_slice(b1, *hidden, &Device::Cpu)?)?,
                Var::from_tensor(&Tensor::from_slice(b2, classes, &Device::Cpu)?)?,
            ],
            hidden: Some(*hidden),
        },
    };
    let flat: Vec<f32> = z.iter().flatten().copied().collect();
    let x = Tensor::from_vec(flat, (z.len(), dim), &Device::Cpu)?;
    let p = candle_nn::ops::softmax(&params.forward(&x)?, D::Minus1)?;
    Ok(p.to_vec2::<f32>()?)
}

/// Checks the examples: at least two classes, every vector the same non-zero length, every value finite.
fn check_examples(examples: &[Example], classes: &[String]) -> Result<usize, AdaptError> {
    if classes.len() < 2 {
        return Err(AdaptError::Data(format!(
            "{} class(es); a head needs at least 2",
            classes.len()
        )));
    }
    let first = examples
        .first()
        .ok_or_else(|| AdaptError::Data("no examples".into()))?;
    let dim = first.x.len();
    if dim == 0 {
        return Err(AdaptError::Data(format!(
            "example 0 (group «{}») has no features",
            first.group
        )));
    }
    for (i, e) in examples.iter().enumerate() {
        if e.x.len() != dim {
            return Err(AdaptError::Data(format!(
                "example {i} (group «{}») has {} features, example 0 has {dim}",
                e.group,
                e.x.len()
            )));
        }
        if let Some(j) = e.x.iter().position(|v| !v.is_finite()) {
            return Err(AdaptError::Data(format!(
                "example {i} (group «{}»): feature {j} is {}",
                e.group, e.x[j]
            )));
        }
    }
    Ok(dim)
}

/// Trains a head. See the module doc for the method; the report's figures are on the validation split with the
/// kept weights.
pub fn train(
    examples: &[Example],
    classes: &[String],
    opts: &TrainOptions,
) -> Result<Trained, AdaptError> {
    let dim = check_examples(examples, classes)?;
    if opts.max_epochs == 0
        || opts.batch_size == 0
        || opts.lr.is_nan()
        || opts.lr <= 0.0
        || opts.weight_decay.is_nan()
        || opts.weight_decay < 0.0
    {
        return Err(AdaptError::Data(format!(
            "options need max_epochs > 0, batch_size > 0, lr > 0 and weight_decay ≥ 0 (got {}, {}, {}, {})",
            opts.max_epochs, opts.batch_size, opts.lr, opts.weight_decay
        )));
    }
    let k = classes.len();
    let Split {
        train: train_idx,
        val: val_idx,
        mut warnings,
    } = split(examples, classes, opts.val_fraction, opts.seed)?;
    let (mean, std) = standardisation(examples, &train_idx, dim);

    let mut counts = vec![0usize; k];
    train_idx
        .iter()
        .for_each(|&i| counts[examples[i].class] += 1);
    let class_weight: Vec<f32> = if opts.class_weights {
        counts
            .iter()
            .map(|&n| train_idx.len() as f32 / (k as f32 * n.max(1) as f32))
            .collect()
    } else {
        vec![1.0; k]
    };
    let mut val_support = vec![0usize; k];
    val_idx
        .iter()
        .for_each(|&i| val_support[examples[i].class] += 1);
    for (c, &n) in val_support.iter().enumerate() {
        if n < 5 {
            warnings.push(format!(
                "class «{}» has only {n} validation example(s): its figures are rough",
                classes[c]
            ));
        }
    }

    let dev = Device::Cpu;
    let weights_t = Tensor::from_slice(&class_weight, k, &dev)?;
    let x_train = matrix(examples, &train_idx, &mean, &std)?;
    let y_train: Vec<u32> = train_idx
        .iter()
        .map(|&i| examples[i].class as u32)
        .collect();
    let x_val = matrix(examples, &val_idx, &mean, &std)?;
    let y_val_usize: Vec<usize> = val_idx.iter().map(|&i| examples[i].class).collect();
    let y_val = Tensor::from_vec(
        y_val_usize.iter().map(|&c| c as u32).collect::<Vec<_>>(),
        val_idx.len(),
        &dev,
    )?;

    // the split used the seed's stream from the start; the weights and batches use a stream of their own
    let mut rng = Rng::new(opts.seed ^ 0xA5A5_5A5A_C3C3_3C3C);
    let params = Params::init(opts.head, dim, k, &mut rng)?;
    let mut opt_w = AdamW::new(
        params.weights.clone(),
        ParamsAdamW {
            lr: opts.lr,
            weight_decay: opts.weight_decay,
            ..ParamsAdamW::default()
        },
    )?;
    let mut opt_b = AdamW::new(
        params.biases.clone(),
        ParamsAdamW {
            lr: opts.lr,
            weight_decay: 0.0,
            ..ParamsAdamW::default()
        },
    )?;

    let bar = progress_bar(opts);
    let mut curve = Vec::new();
    let mut best: Option<(f32, usize, Net)> = None;
    let mut since_best = 0usize;
    let mut order: Vec<u32> = (0..train_idx.len() as u32).collect();
    for epoch in 1..=opts.max_epochs {
        let lr = lr_at(epoch, opts.max_epochs, opts.lr);
        opt_w.set_learning_rate(lr);
        opt_b.set_learning_rate(lr);
        rng.shuffle(&mut order);
        let mut loss_sum = 0f64;
        for batch in order.chunks(opts.batch_size) {
            let idx = Tensor::from_slice(batch, batch.len(), &dev)?;
            let xb = x_train.index_select(&idx, 0)?;
            let yb = Tensor::from_vec(
                batch
                    .iter()
                    .map(|&i| y_train[i as usize])
                    .collect::<Vec<_>>(),
                batch.len(),
                &dev,
            )?;
            let loss = weighted_cross_entropy(&params.forward(&xb)?, &yb, &weights_t)?;
            let grads = loss.backward()?;
            opt_w.step(&grads)?;
            opt_b.step(&grads)?;
            loss_sum += f64::from(loss.to_scalar::<f32>()?) * batch.len() as f64;
        }
        let train_loss = (loss_sum / train_idx.len() as f64) as f32;
        let logits = params.forward(&x_val)?;
        let val_loss = weighted_cross_entropy(&logits, &y_val, &weights_t)?.to_scalar::<f32>()?;
        if !val_loss.is_finite() || !train_loss.is_finite() {
            return Err(AdaptError::Train(format!(
                "the loss diverged at epoch {epoch} (train {train_loss}, validation {val_loss}); lower the \
                 learning rate (now {})",
                opts.lr
            )));
        }
        let predicted: Vec<usize> = logits
            .argmax(D::Minus1)?
            .to_vec1::<u32>()?
            .into_iter()
            .map(|p| p as usize)
            .collect();
        let (_, _, val_accuracy, val_macro_f1) =
            classification_report(&y_val_usize, &predicted, classes);
        curve.push(EpochPoint {
            epoch,
            train_loss,
            val_loss,
            val_accuracy,
            val_macro_f1,
            lr,
        });
        bar.set_position(epoch as u64);
        bar.set_message(format!(
            "train loss {train_loss:.4}  val loss {val_loss:.4}  val F1 {val_macro_f1:.3}"
        ));
        if best
            .as_ref()
            .is_none_or(|(b, _, _)| val_loss < b - MIN_DELTA)
        {
            best = Some((val_loss, epoch, params.to_net()?));
            since_best = 0;
        } else {
            since_best += 1;
            if since_best >= opts.patience {
                break;
            }
        }
    }
    let epochs_run = curve.len();
    let (_, chosen_epoch, net) = best.ok_or_else(|| AdaptError::Train("no epoch ran".into()))?;
    bar.finish_with_message(format!(
        "stopped after epoch {epochs_run}; kept epoch {chosen_epoch} (lowest validation loss)"
    ));

    // the report is on the kept weights, through the same forward pass
    let z_val: Vec<Vec<f32>> = x_val.to_vec2::<f32>()?;
    let probs = candle_probabilities(&net, &z_val, k)?;
    let predicted: Vec<usize> = probs.iter().map(|p| argmax(p)).collect();
    let (per_class, confusion, accuracy, macro_f1) =
        classification_report(&y_val_usize, &predicted, classes);
    let mut examples_per_class = vec![0usize; k];
    examples
        .iter()
        .filter(|e| !e.augmented)
        .for_each(|e| examples_per_class[e.class] += 1);
    let report = TrainReport {
        classes: classes.to_vec(),
        per_class,
        confusion,
        accuracy,
        macro_f1,
        chosen_epoch,
        epochs_run,
        curve,
        n_train: train_idx.len(),
        n_val: val_idx.len(),
        warnings,
    };
    let info = TrainedInfo {
        at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        seed: opts.seed,
        head: opts.head,
        epochs_run,
        chosen_epoch,
        examples: examples_per_class,
        val_macro_f1: macro_f1,
        val_accuracy: accuracy,
    };
    Ok(Trained {
        net,
        mean,
        std,
        report,
        info,
    })
}

/// The index of the largest value (the first on ties).
fn argmax(p: &[f32]) -> usize {
    p.iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &v)| {
            if v > bv {
                (i, v)
            } else {
                (bi, bv)
            }
        })
        .0
}

fn progress_bar(opts: &TrainOptions) -> indicatif::ProgressBar {
    if !opts.progress || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(opts.max_epochs as u64);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("epoch {pos:>4}/{len} [{bar:30}] {msg}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::adapt::head::FeatureRecipe;

    pub(crate) fn names(k: usize) -> Vec<String> {
        (0..k).map(|c| format!("class{c}")).collect()
    }

    /// Gaussian blobs: class means drawn N(0, sep²) per feature, unit noise; examples come in groups of
    /// `per_group` originals (one "video"), each original with one augmented copy (its vector plus 0.1 noise).
    pub(crate) fn blobs(
        counts: &[usize],
        dim: usize,
        sep: f64,
        per_group: usize,
        seed: u64,
    ) -> Vec<Example> {
        let mut rng = Rng::new(seed);
        let means: Vec<Vec<f64>> = counts
            .iter()
            .map(|_| (0..dim).map(|_| rng.normal() * sep).collect())
            .collect();
        let mut out = Vec::new();
        for (c, &n) in counts.iter().enumerate() {
            for i in 0..n {
                let group = format!("c{c}-g{}", i / per_group);
                let x: Vec<f32> = means[c].iter().map(|m| (m + rng.normal()) as f32).collect();
                let aug: Vec<f32> = x.iter().map(|v| v + (rng.normal() * 0.1) as f32).collect();
                out.push(Example {
                    x,
                    class: c,
                    group: group.clone(),
                    augmented: false,
                });
                out.push(Example {
                    x: aug,
                    class: c,
                    group,
                    augmented: true,
                });
            }
        }
        out
    }

    fn quiet(head: HeadKind) -> TrainOptions {
        TrainOptions {
            head,
            progress: false,
            ..TrainOptions::default()
        }
    }

    fn recipe(dim: usize) -> FeatureRecipe {
        FeatureRecipe {
            version: 1,
            embedding: "test.blobs".into(),
            embedding_dim: dim,
            evidence_classes: 0,
            pose: false,
            region: None,
        }
    }

    fn meta(k: usize, dim: usize) -> HeadMeta {
        HeadMeta {
            name: "blobs".into(),
            classes: names(k),
            recipe: recipe(dim),
            models: vec![ModelHash {
                role: "encoder".into(),
                file: "enc.onnx".into(),
                sha256: "ab".repeat(32),
            }],
        }
    }

    #[test]
    fn separable_blobs_are_learned_by_both_heads_and_shuffled_labels_are_not() {
        let dim = 300;
        let data = blobs(&[60, 60, 60], dim, 0.3, 3, 1);
        for head in [HeadKind::Logistic, HeadKind::Mlp { hidden: 64 }] {
            let t = train(&data, &names(3), &quiet(head)).expect("trained");
            let r = &t.report;
            assert!(
                r.macro_f1 >= 0.95,
                "{head:?}: validation macro-F1 {} on separable blobs\n{}",
                r.macro_f1,
                crate::adapt::report::render_text(r)
            );
            eprintln!(
                "{head:?} separable: macro-F1 {:.3}, kept epoch {} of {}",
                r.macro_f1, r.chosen_epoch, r.epochs_run
            );
            assert!(r.chosen_epoch >= 1 && r.chosen_epoch <= r.epochs_run);
            assert_eq!(r.curve.len(), r.epochs_run);
            assert_eq!(r.n_val, r.confusion.iter().flatten().sum::<usize>());

            // the same vectors with the labels shuffled across groups: nothing to learn, so near chance (1/3)
            let mut rng = Rng::new(99);
            let mut groups: Vec<String> = data.iter().map(|e| e.group.clone()).collect();
            groups.dedup();
            let mut labels: Vec<usize> = (0..groups.len()).map(|g| g % 3).collect();
            rng.shuffle(&mut labels);
            let shuffled: Vec<Example> = data
                .iter()
                .map(|e| {
                    let g = groups.iter().position(|g| *g == e.group).expect("group");
                    // a different "source" per original so the label, not the blob, defines the group
                    Example {
                        class: labels[g],
                        ..e.clone()
                    }
                })
                .collect();
            let t = train(&shuffled, &names(3), &quiet(head)).expect("trained");
            eprintln!(
                "{head:?} shuffled: macro-F1 {:.3}, kept epoch {} of {}",
                t.report.macro_f1, t.report.chosen_epoch, t.report.epochs_run
            );
            assert!(
                t.report.macro_f1 < 0.6,
                "{head:?}: macro-F1 {} on shuffled labels (chance ≈ 0.33)",
                t.report.macro_f1
            );
        }
    }

    #[test]
    fn same_seed_gives_the_same_file_and_another_seed_other_weights() {
        let data = blobs(&[30, 30], 64, 0.3, 2, 7);
        let dir = tempfile::tempdir().expect("tempdir");
        for head in [HeadKind::Logistic, HeadKind::Mlp { hidden: 16 }] {
            let save = |seed: u64, name: &str| {
                let opts = TrainOptions {
                    seed,
                    ..quiet(head)
                };
                let mut t = train(&data, &names(2), &opts).expect("trained");
                t.info.at = "2026-12-01T00:00:00Z".into(); // the one field that is the wall clock
                let h = t.into_head(meta(2, 64)).expect("head");
                let path = dir.path().join(name);
                h.save(&path).expect("saved");
                (std::fs::read(&path).expect("read"), h)
            };
            let (a, ha) = save(5, "a.json");
            let (b, _) = save(5, "b.json");
            assert!(a == b, "{head:?}: same seed, different bytes");
            let (_, hc) = save(6, "c.json");
            assert_ne!(
                ha.net, hc.net,
                "{head:?}: another seed gave the same weights"
            );
            assert_eq!(
                HeadFile::load(&dir.path().join("a.json")).expect("loads"),
                ha
            );
        }
    }

    #[test]
    fn predict_agrees_with_the_training_forward_pass() {
        let dim = 96;
        let data = blobs(&[25, 25, 25], dim, 0.15, 2, 3);
        for head in [HeadKind::Logistic, HeadKind::Mlp { hidden: 32 }] {
            let opts = quiet(head);
            let t = train(&data, &names(3), &opts).expect("trained");
            let sp = split(&data, &names(3), opts.val_fraction, opts.seed).expect("split");
            let h = t.into_head(meta(3, dim)).expect("head");
            let z: Vec<Vec<f32>> = sp
                .val
                .iter()
                .map(|&i| {
                    data[i]
                        .x
                        .iter()
                        .zip(h.mean.iter().zip(&h.std))
                        .map(|(x, (m, s))| (x - m) / s)
                        .collect()
                })
                .collect();
            let reference = candle_probabilities(&h.net, &z, 3).expect("candle");
            for (&i, want) in sp.val.iter().zip(&reference) {
                let got = h.predict(&data[i].x).expect("predict");
                for (g, w) in got.iter().zip(want) {
                    assert!(
                        (g - w).abs() < 1e-4,
                        "{head:?}: predict {got:?} vs candle {want:?}"
                    );
                }
                assert!((got.iter().sum::<f32>() - 1.0).abs() < 1e-5);
            }
            assert!(matches!(
                h.predict(&[0.0; 3]),
                Err(AdaptError::FeatureDim {
                    expected: 96,
                    got: 3
                })
            ));
        }
    }

    fn class_of(data: &[Example], idx: &[usize], c: usize) -> usize {
        idx.iter().filter(|&&i| data[i].class == c).count()
    }

    #[test]
    fn split_keeps_groups_whole_and_augmented_copies_out_of_validation() {
        let data = blobs(&[40, 12, 9], 4, 1.0, 3, 11);
        let classes = names(3);
        let s = split(&data, &classes, 0.25, 1).expect("split");
        let train_groups: BTreeSet<&str> =
            s.train.iter().map(|&i| data[i].group.as_str()).collect();
        let val_groups: BTreeSet<&str> = s.val.iter().map(|&i| data[i].group.as_str()).collect();
        assert!(
            train_groups.is_disjoint(&val_groups),
            "a group on both sides"
        );
        assert!(
            s.val.iter().all(|&i| !data[i].augmented),
            "augmented in validation"
        );
        for c in 0..3 {
            assert!(
                class_of(&data, &s.train, c) > 0 && class_of(&data, &s.val, c) > 0,
                "class {c}"
            );
        }
        // about a quarter of each class's originals validate (whole groups of 3, so within a group)
        for (c, n) in [(0, 40), (1, 12), (2, 9)] {
            let v = class_of(&data, &s.val, c) as f32;
            assert!(
                (v - n as f32 * 0.25).abs() <= 3.0,
                "class {c}: {v} of {n} validate"
            );
        }
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
        // the seed picks the groups
        let other = split(&data, &classes, 0.25, 2).expect("split");
        assert_ne!(s.val, other.val);
        assert_eq!(s, split(&data, &classes, 0.25, 1).expect("split"));
    }

    #[test]
    fn a_class_from_one_source_is_split_by_order_with_a_warning() {
        let mut data = blobs(&[12, 8], 4, 1.0, 3, 5);
        for e in data.iter_mut().filter(|e| e.class == 1) {
            e.group = "one-video.mp4".into();
        }
        let s = split(&data, &names(2), 0.25, 1).expect("split");
        let originals: Vec<usize> = (0..data.len())
            .filter(|&i| data[i].class == 1 && !data[i].augmented)
            .collect();
        let val1: Vec<usize> = s
            .val
            .iter()
            .copied()
            .filter(|&i| data[i].class == 1)
            .collect();
        assert_eq!(
            val1,
            originals[6..].to_vec(),
            "the last quarter of its clips validate"
        );
        assert!(s.val.iter().all(|&i| !data[i].augmented));
        assert_eq!(s.warnings.len(), 1, "{:?}", s.warnings);
        assert!(s.warnings[0].contains("class1") && s.warnings[0].contains("one-video.mp4"));
    }

    #[test]
    fn a_class_with_one_example_is_refused_by_name() {
        let mut data = blobs(&[6, 1], 4, 1.0, 1, 5);
        let err = split(&data, &names(2), 0.25, 1).expect_err("one example");
        let msg = err.to_string();
        assert!(
            msg.contains("class1") && msg.contains("1 labelled example"),
            "{msg}"
        );
        // two examples in one group is enough (one each side)
        data.push(Example {
            augmented: false,
            ..data[data.len() - 1].clone()
        });
        let s = split(&data, &names(2), 0.25, 1).expect("split");
        assert_eq!(class_of(&data, &s.val, 1), 1);
        // a class index out of range
        data[0].class = 7;
        assert!(split(&data, &names(2), 0.25, 1)
            .expect_err("bad index")
            .to_string()
            .contains("class index 7"));
    }

    #[test]
    fn class_weights_raise_minority_recall() {
        // 9:1, overlapping blobs (close means) so the unweighted head can afford to ignore the minority
        let data = blobs(&[180, 20], 200, 0.06, 2, 21);
        let recall = |class_weights: bool| {
            let opts = TrainOptions {
                class_weights,
                ..quiet(HeadKind::Logistic)
            };
            let t = train(&data, &names(2), &opts).expect("trained");
            (t.report.per_class[1].recall, t.report.per_class[1].support)
        };
        let (with, n) = recall(true);
        let (without, _) = recall(false);
        eprintln!("minority recall over {n} validation examples: {with:.3} weighted, {without:.3} unweighted");
        assert!(with >= without, "weighted {with} < unweighted {without}");
    }

    #[test]
    fn bad_training_input_is_named() {
        let mut data = blobs(&[6, 6], 4, 1.0, 1, 5);
        data[3].x[2] = f32::NAN;
        let msg = train(&data, &names(2), &quiet(HeadKind::Logistic))
            .expect_err("NaN")
            .to_string();
        assert!(
            msg.contains("example 3") && msg.contains("feature 2"),
            "{msg}"
        );
        data[3].x = vec![0.0; 5];
        let msg = train(&data, &names(2), &quiet(HeadKind::Logistic))
            .expect_err("length")
            .to_string();
        assert!(
            msg.contains("example 3") && msg.contains("5 features"),
            "{msg}"
        );
        assert!(train(&[], &names(2), &quiet(HeadKind::Logistic)).is_err());
        assert!(train(&data, &names(1), &quiet(HeadKind::Logistic)).is_err());
    }

    #[test]
    fn schedule_warms_up_then_decays() {
        let lr: Vec<f64> = (1..=100).map(|e| lr_at(e, 100, 1e-3)).collect();
        assert!(lr[0] < lr[4] && lr[4] < 1e-3, "warm-up");
        assert!((lr[5] - 1e-3).abs() < 1e-12, "peak right after warm-up");
        assert!(lr.windows(2).skip(5).all(|w| w[1] <= w[0]), "decays");
        assert!(lr[99] >= 1e-3 * FINAL_LR_FRACTION && lr[99] < 1e-3 * 0.1);
    }

    /// `cargo test --release --lib adapt::train::tests::timing -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn timing_300_examples_1360_dims() {
        let data = blobs(&[150, 150], 1360, 0.05, 3, 4);
        let originals: Vec<Example> = data.into_iter().filter(|e| !e.augmented).collect();
        for head in [HeadKind::Logistic, HeadKind::Mlp { hidden: 128 }] {
            let start = std::time::Instant::now();
            let t = train(&originals, &names(2), &quiet(head)).expect("trained");
            eprintln!(
                "{head:?}: {} examples × 1360: {:.2} s, {} epochs (kept {}), val macro-F1 {:.3}",
                originals.len(),
                start.elapsed().as_secs_f64(),
                t.report.epochs_run,
                t.report.chosen_epoch,
                t.report.macro_f1
            );
        }
    }

    /// How the defaults were chosen: `RAYON_NUM_THREADS=1 cargo test --release --lib adapt::train::tests::sweep
    /// -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn sweep_learning_rate_and_weight_decay() {
        let sets: Vec<(&str, Vec<Example>)> = vec![
            ("separable 3×60 300-d", blobs(&[60, 60, 60], 300, 0.3, 3, 1)),
            ("hard 2×150 1360-d", blobs(&[150, 150], 1360, 0.05, 3, 4)),
            ("few-shot 2×15 1360-d", blobs(&[15, 15], 1360, 0.1, 1, 8)),
        ];
        for (name, data) in &sets {
            let k = data.iter().map(|e| e.class).max().unwrap_or(0) + 1;
            for head in [HeadKind::Logistic, HeadKind::Mlp { hidden: 128 }] {
                for lr in [3e-4, 1e-3, 3e-3, 1e-2] {
                    for wd in [0.01, 0.1] {
                        let mut f1 = Vec::new();
                        let mut ep = Vec::new();
                        let start = std::time::Instant::now();
                        for seed in [1, 2, 3] {
                            let opts = TrainOptions {
                                lr,
                                weight_decay: wd,
                                seed,
                                ..quiet(head)
                            };
                            let t = train(data, &names(k), &opts).expect("trained");
                            f1.push(format!("{:.3}", t.report.macro_f1));
                            ep.push(format!("{}/{}", t.report.chosen_epoch, t.report.epochs_run));
                        }
                        eprintln!(
                            "{name:22} {head:?} lr {lr:e} wd {wd}: F1 {} epochs {} ({:.1} s)",
                            f1.join(" "),
                            ep.join(" "),
                            start.elapsed().as_secs_f64()
                        );
                    }
                }
            }
        }
    }
}
