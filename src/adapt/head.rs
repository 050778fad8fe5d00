//! The head file: a trained task head as JSON (class names, the feature recipe, the hashes of the models whose
//! features it was trained on, the training-split standardisation and the weights), its checks at load, and
//! scoring in plain Rust. Scoring needs no candle: a head is one or two small matrix-vector products, so the
//! daemon scores in microseconds without the training library.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::AdaptError;

/// The head-file format this build writes and reads.
pub const FORMAT: u32 = 1;

/// How many values the pose part of a feature vector has when [`FeatureRecipe::pose`] is on (recipe version 1).
/// The feature extractor defines what they are; the head only needs the count to be fixed per recipe version.
pub const POSE_DIM: usize = 4;

/// How a clip's feature vector is made; a head is only valid for vectors made the same way. Layout:
/// `embedding_dim` embedding values, then `evidence_classes` detector evidence scores, then [`POSE_DIM`] pose
/// values when `pose` is on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureRecipe {
    pub version: u32,
    /// e.g. `efficientnet_lite0.pooled.mean_l2`
    pub embedding: String,
    pub embedding_dim: usize,
    /// The detector's per-class evidence scores, 0 = none.
    pub evidence_classes: usize,
    pub pose: bool,
    /// Crop `x0, y0, x1, y1`, normalised to the frame, before the encoder; `None` = the whole frame.
    pub region: Option<[f32; 4]>,
}

impl FeatureRecipe {
    /// The length of a feature vector made by this recipe.
    pub fn dim(&self) -> usize {
        self.embedding_dim + self.evidence_classes + if self.pose { POSE_DIM } else { 0 }
    }
}

/// One model file a head depends on, by role (`detector`, `encoder`, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelHash {
    pub role: String,
    pub file: String,
    pub sha256: String,
}

/// The shape of a head, as asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum HeadKind {
    /// Multinomial logistic regression on the standardised features.
    Logistic,
    /// One ReLU hidden layer of `hidden` units, then a linear layer to the classes.
    Mlp { hidden: usize },
}

/// The trained weights, row-major (`out × in`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Net {
    /// `w`: classes × dim, `b`: classes.
    Logistic { w: Vec<f32>, b: Vec<f32> },
    /// `w1`: hidden × dim, `b1`: hidden, ReLU, `w2`: classes × hidden, `b2`: classes.
    Mlp {
        hidden: usize,
        w1: Vec<f32>,
        b1: Vec<f32>,
        w2: Vec<f32>,
        b2: Vec<f32>,
    },
}

impl Net {
    /// Checks every size against `classes` and `dim` and that every weight is finite.
    pub fn check(&self, classes: usize, dim: usize) -> Result<(), String> {
        let sized = |name: &str, v: &[f32], want: usize| -> Result<(), String> {
            if v.len() != want {
                return Err(format!("{name} has {} values, expected {want}", v.len()));
            }
            if let Some(i) = v.iter().position(|x| !x.is_finite()) {
                return Err(format!("{name}[{i}] is {} (not a finite number)", v[i]));
            }
            Ok(())
        };
        match self {
            Net::Logistic { w, b } => {
                sized("net.w", w, classes * dim)?;
                sized("net.b", b, classes)
            }
            Net::Mlp {
                hidden,
                w1,
                b1,
                w2,
                b2,
            } => {
                if *hidden == 0 {
                    return Err("net.hidden is 0".into());
                }
                sized("net.w1", w1, hidden * dim)?;
                sized("net.b1", b1, *hidden)?;
                sized("net.w2", w2, classes * hidden)?;
                sized("net.b2", b2, classes)
            }
        }
    }

    /// The logits for one standardised feature vector `z` (length `dim`); sizes are assumed checked.
    pub fn logits(&self, z: &[f32], classes: usize) -> Vec<f32> {
        let affine = |w: &[f32], b: &[f32], x: &[f32], rows: usize| -> Vec<f32> {
            (0..rows)
                .map(|r| {
                    let row = &w[r * x.len()..(r + 1) * x.len()];
                    b[r] + row.iter().zip(x).map(|(a, b)| a * b).sum::<f32>()
                })
                .collect()
        };
        match self {
            Net::Logistic { w, b } => affine(w, b, z, classes),
            Net::Mlp {
                hidden,
                w1,
                b1,
                w2,
                b2,
            } => {
                let h: Vec<f32> = affine(w1, b1, z, *hidden)
                    .into_iter()
                    .map(|v| v.max(0.0))
                    .collect();
                affine(w2, b2, &h, classes)
            }
        }
    }

    pub fn kind(&self) -> HeadKind {
        match self {
            Net::Logistic { .. } => HeadKind::Logistic,
            Net::Mlp { hidden, .. } => HeadKind::Mlp { hidden: *hidden },
        }
    }
}

/// How and when a head was trained (what the report said, in brief).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainedInfo {
    /// RFC 3339, UTC.
    pub at: String,
    pub seed: u64,
    pub head: HeadKind,
    pub epochs_run: usize,
    /// The epoch whose weights were kept (lowest validation loss), 1-based.
    pub chosen_epoch: usize,
    /// Labelled examples per class (order of `classes`), augmented copies not counted.
    pub examples: Vec<usize>,
    pub val_macro_f1: f32,
    pub val_accuracy: f32,
}

/// A head file. Field order is the file's: the small, readable parts first, the weights last.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeadFile {
    pub format: u32,
    pub name: String,
    pub classes: Vec<String>,
    pub recipe: FeatureRecipe,
    pub models: Vec<ModelHash>,
    pub trained: TrainedInfo,
    /// Per-feature mean and standard deviation of the training split; features are standardised with them.
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
    pub net: Net,
}

impl HeadFile {
    /// Reads and checks a head file: format, at least two distinct classes, every size consistent with the
    /// recipe and the classes, every number finite, positive standard deviations.
    pub fn load(path: &Path) -> Result<Self, AdaptError> {
        let text = std::fs::read_to_string(path).map_err(|source| AdaptError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let bad = |message: String| AdaptError::BadHeadFile {
            path: path.to_path_buf(),
            message,
        };
        // read the format first so a newer file says so rather than failing on a field it does not know
        #[derive(Deserialize)]
        struct Format {
            format: Option<u32>,
        }
        let format = serde_json::from_str::<Format>(&text)
            .map_err(|e| bad(format!("not a head file (JSON): {e}")))?
            .format;
        match format {
            Some(FORMAT) => {}
            Some(other) => {
                return Err(bad(format!(
                    "format {other} is not supported (this build reads format {FORMAT})"
                )))
            }
            None => return Err(bad("no \"format\" field: not a head file".into())),
        }
        let head: HeadFile = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        head.check().map_err(bad)?;
        Ok(head)
    }

    /// Everything [`load`](Self::load) checks after parsing.
    pub fn check(&self) -> Result<(), String> {
        if self.classes.len() < 2 {
            return Err(format!(
                "{} class(es); a head needs at least 2",
                self.classes.len()
            ));
        }
        for (i, c) in self.classes.iter().enumerate() {
            if c.trim().is_empty() {
                return Err(format!("class {i} has an empty name"));
            }
            if self.classes[..i].contains(c) {
                return Err(format!("class «{c}» is listed twice"));
            }
        }
        let dim = self.recipe.dim();
        if dim == 0 {
            return Err("the feature recipe makes no features (dim 0)".into());
        }
        for (name, v) in [("mean", &self.mean), ("std", &self.std)] {
            if v.len() != dim {
                return Err(format!(
                    "{name} has {} values, the recipe makes {dim} features",
                    v.len()
                ));
            }
            if let Some(i) = v.iter().position(|x| !x.is_finite()) {
                return Err(format!("{name}[{i}] is {} (not a finite number)", v[i]));
            }
        }
        if let Some(i) = self.std.iter().position(|s| *s <= 0.0) {
            return Err(format!("std[{i}] is {} (must be > 0)", self.std[i]));
        }
        if self.trained.head != self.net.kind() {
            return Err(format!(
                "trained.head says {:?} but the weights are {:?}",
                self.trained.head,
                self.net.kind()
            ));
        }
        self.net.check(self.classes.len(), dim)
    }

    /// Writes the head as JSON to a temporary file next to `path`, then renames it over `path`, so a reader never
    /// sees half a head.
    pub fn save(&self, path: &Path) -> Result<(), AdaptError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| AdaptError::Io { path, source }
        };
        let json = serde_json::to_vec(self).map_err(|e| AdaptError::BadHeadFile {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "head.json".into());
        let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&json)?;
            f.write_all(b"\n")?;
            f.sync_all()
        };
        if let Err(e) = write() {
            let _ = std::fs::remove_file(&tmp);
            return Err(io(&tmp)(e));
        }
        std::fs::rename(&tmp, path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            io(path)(e)
        })
    }

    /// Refuses a head whose features came from other model files: every role the head names must be loaded
    /// with the same sha256 (compared case-insensitively). `path` is the head file, for the message.
    pub fn check_models(&self, path: &Path, actual: &[ModelHash]) -> Result<(), AdaptError> {
        for want in &self.models {
            match actual.iter().find(|m| m.role == want.role) {
                None => {
                    return Err(AdaptError::ModelMissing {
                        path: path.to_path_buf(),
                        role: want.role.clone(),
                        expected_sha256: want.sha256.clone(),
                    })
                }
                Some(have) if !have.sha256.eq_ignore_ascii_case(&want.sha256) => {
                    return Err(AdaptError::ModelMismatch {
                        path: path.to_path_buf(),
                        role: want.role.clone(),
                        expected_sha256: want.sha256.clone(),
                        actual_sha256: have.sha256.clone(),
                    })
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// Class probabilities (softmax, order of `classes`) for one raw feature vector made by `recipe`.
    pub fn predict(&self, x: &[f32]) -> Result<Vec<f32>, AdaptError> {
        let dim = self.mean.len();
        if x.len() != dim {
            return Err(AdaptError::FeatureDim {
                expected: dim,
                got: x.len(),
            });
        }
        if let Some(i) = x.iter().position(|v| !v.is_finite()) {
            return Err(AdaptError::Data(format!(
                "feature {i} is {} (not a finite number)",
                x[i]
            )));
        }
        let z: Vec<f32> = x
            .iter()
            .zip(self.mean.iter().zip(&self.std))
            .map(|(v, (m, s))| (v - m) / s)
            .collect();
        Ok(softmax(&self.net.logits(&z, self.classes.len())))
    }
}

/// Numerically stable softmax.
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f32> = logits.iter().map(|l| (l - max).exp()).collect();
    let sum: f32 = e.iter().sum();
    e.into_iter().map(|v| v / sum).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> HeadFile {
        HeadFile {
            format: FORMAT,
            name: "gate".into(),
            classes: vec!["open".into(), "closed".into()],
            recipe: FeatureRecipe {
                version: 1,
                embedding: "test".into(),
                embedding_dim: 2,
                evidence_classes: 1,
                pose: false,
                region: Some([0.1, 0.2, 0.9, 1.0]),
            },
            models: vec![
                ModelHash {
                    role: "encoder".into(),
                    file: "efficientnet-lite0.onnx".into(),
                    sha256: "aa".repeat(32),
                },
                ModelHash {
                    role: "detector".into(),
                    file: "nanodet.onnx".into(),
                    sha256: "bb".repeat(32),
                },
            ],
            trained: TrainedInfo {
                at: "2026-12-01T00:00:00Z".into(),
                seed: 1,
                head: HeadKind::Logistic,
                epochs_run: 3,
                chosen_epoch: 2,
                examples: vec![4, 4],
                val_macro_f1: 1.0,
                val_accuracy: 1.0,
            },
            mean: vec![1.0, 0.0, 0.0],
            std: vec![2.0, 1.0, 1.0],
            net: Net::Logistic {
                w: vec![1.0, 0.0, 0.0, -1.0, 0.0, 0.0],
                b: vec![0.0, 0.0],
            },
        }
    }

    #[test]
    fn round_trip_and_hand_computed_prediction() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("gate.head.json");
        let h = sample();
        h.save(&path).expect("saved");
        let back = HeadFile::load(&path).expect("loaded");
        assert_eq!(back, h);
        // x0 = 3 → z0 = (3 − 1) / 2 = 1 → logits (1, −1) → softmax (e/(e+1/e), …)
        let p = back.predict(&[3.0, 5.0, 7.0]).expect("predict");
        let want = 1.0 / (1.0 + (-2.0f32).exp());
        assert!(
            (p[0] - want).abs() < 1e-6 && (p[1] - (1.0 - want)).abs() < 1e-6,
            "{p:?}"
        );
        // no temp file left behind
        let names: Vec<_> = std::fs::read_dir(dir.path()).expect("dir").collect();
        assert_eq!(names.len(), 1);
        // the MLP path: hidden ReLU zeroes the negative unit
        let mlp = HeadFile {
            trained: TrainedInfo {
                head: HeadKind::Mlp { hidden: 2 },
                ..h.trained.clone()
            },
            net: Net::Mlp {
                hidden: 2,
                w1: vec![1.0, 0.0, 0.0, -1.0, 0.0, 0.0],
                b1: vec![0.0, 0.0],
                w2: vec![1.0, 1.0, 0.0, 0.0],
                b2: vec![0.0, 0.0],
            },
            ..h
        };
        mlp.check().expect("consistent");
        // z0 = 1 → hidden (1, 0) → logits (1, 0)
        let p = mlp.predict(&[3.0, 0.0, 0.0]).expect("predict");
        let want = 1.0 / (1.0 + (-1.0f32).exp());
        assert!((p[0] - want).abs() < 1e-6, "{p:?}");
    }

    fn load_err(dir: &Path, name: &str, text: &str) -> String {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write");
        let msg = HeadFile::load(&path).expect_err(name).to_string();
        assert!(msg.contains(name), "«{msg}» does not name {name}");
        msg
    }

    #[test]
    fn load_errors_name_the_file_and_the_problem() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("missing.json");
        let msg = HeadFile::load(&missing).expect_err("missing").to_string();
        assert!(msg.contains("missing.json"), "{msg}");

        load_err(dir.path(), "not-json.json", "this is not json");
        let mut v = serde_json::to_value(sample()).expect("value");
        v["format"] = 2.into();
        let msg = load_err(dir.path(), "format2.json", &v.to_string());
        assert!(msg.contains("format 2 is not supported"), "{msg}");

        let mut h = sample();
        if let Net::Logistic { w, .. } = &mut h.net {
            w.pop();
        }
        let msg = load_err(
            dir.path(),
            "short.json",
            &serde_json::to_string(&h).expect("json"),
        );
        assert!(msg.contains("net.w has 5 values, expected 6"), "{msg}");

        // JSON has no NaN; a number too big for f32 reads as infinity and must be refused the same way
        let text = serde_json::to_string(&sample()).expect("json").replacen(
            "\"w\":[1.0",
            "\"w\":[1e300",
            1,
        );
        let msg = load_err(dir.path(), "inf.json", &text);
        assert!(msg.contains("net.w[0] is inf"), "{msg}");

        let mut h = sample();
        h.mean.push(0.0);
        let msg = load_err(
            dir.path(),
            "mean.json",
            &serde_json::to_string(&h).expect("json"),
        );
        assert!(msg.contains("mean has 4 values"), "{msg}");

        let mut h = sample();
        h.classes.pop();
        let msg = load_err(
            dir.path(),
            "oneclass.json",
            &serde_json::to_string(&h).expect("json"),
        );
        assert!(msg.contains("at least 2"), "{msg}");
    }

    #[test]
    fn non_finite_weight_is_refused_by_check() {
        let mut h = sample();
        if let Net::Logistic { b, .. } = &mut h.net {
            b[1] = f32::NAN;
        }
        let msg = h.check().expect_err("NaN");
        assert!(msg.contains("net.b[1] is NaN"), "{msg}");
    }

    #[test]
    fn models_must_match_by_role() {
        let h = sample();
        let path = Path::new("/heads/gate.head.json");
        let mut actual = h.models.clone();
        actual.reverse(); // order does not matter
        actual[0].sha256 = actual[0].sha256.to_uppercase(); // nor case
        h.check_models(path, &actual).expect("same models");
        actual[1].sha256 = "cc".repeat(32); // the encoder
        let err = h.check_models(path, &actual).expect_err("mismatch");
        match &err {
            AdaptError::ModelMismatch { role, .. } => assert_eq!(role, "encoder"),
            other => panic!("{other:?}"),
        }
        let msg = err.to_string();
        assert!(
            msg.contains("gate.head.json") && msg.contains("encoder") && msg.contains("retrain"),
            "{msg}"
        );
        let err = h.check_models(path, &actual[..1]).expect_err("missing");
        assert!(
            err.to_string().contains("no encoder model is loaded"),
            "{err}"
        );
    }
}
