//! What training reports: per-class precision, recall and F1 on the validation split, the confusion matrix, the
//! epoch kept and the per-epoch learning curve, as plain data (serde), as a terminal table and as an SVG picture
//! (drawn by [`crate::eval::plot::render_line_chart`]).

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::AdaptError;
use crate::eval::plot::{render_line_chart, Curve, LineChart, Panel};

/// One class's validation figures. A class never predicted has precision 0; one with no validation example has
/// recall 0 (never NaN).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassMetrics {
    pub class: String,
    pub precision: f32,
    pub recall: f32,
    pub f1: f32,
    /// Validation examples of this class.
    pub support: usize,
}

/// One epoch of the learning curve (epochs count from 1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochPoint {
    pub epoch: usize,
    /// Mean (class-weighted when class weights are on) cross-entropy over the epoch's minibatches.
    pub train_loss: f32,
    /// The same loss on the validation split after the epoch.
    pub val_loss: f32,
    pub val_accuracy: f32,
    pub val_macro_f1: f32,
    /// The learning rate used during the epoch.
    pub lr: f64,
}

/// The training report; its figures are on the validation split with the kept (chosen-epoch) weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainReport {
    pub classes: Vec<String>,
    pub per_class: Vec<ClassMetrics>,
    /// Rows = true class, columns = predicted class, order of `classes`.
    pub confusion: Vec<Vec<usize>>,
    pub accuracy: f32,
    pub macro_f1: f32,
    pub chosen_epoch: usize,
    pub epochs_run: usize,
    pub curve: Vec<EpochPoint>,
    pub n_train: usize,
    pub n_val: usize,
    pub warnings: Vec<String>,
}

/// Per-class metrics, the confusion matrix (rows = truth), accuracy and macro-F1 (the unweighted mean of every
/// class's F1, classes without validation examples included, as scikit-learn does with explicit labels).
/// Indices outside `classes` are not counted.
pub fn classification_report(
    truth: &[usize],
    predicted: &[usize],
    classes: &[String],
) -> (Vec<ClassMetrics>, Vec<Vec<usize>>, f32, f32) {
    let k = classes.len();
    let mut confusion = vec![vec![0usize; k]; k];
    for (&t, &p) in truth.iter().zip(predicted) {
        if t < k && p < k {
            confusion[t][p] += 1;
        }
    }
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f32 / b as f32 };
    let per_class: Vec<ClassMetrics> = (0..k)
        .map(|c| {
            let tp = confusion[c][c];
            let support: usize = confusion[c].iter().sum();
            let predicted: usize = confusion.iter().map(|row| row[c]).sum();
            let precision = ratio(tp, predicted);
            let recall = ratio(tp, support);
            let f1 = if precision + recall > 0.0 {
                2.0 * precision * recall / (precision + recall)
            } else {
                0.0
            };
            ClassMetrics {
                class: classes[c].clone(),
                precision,
                recall,
                f1,
                support,
            }
        })
        .collect();
    let total: usize = confusion.iter().flatten().sum();
    let correct: usize = (0..k).map(|c| confusion[c][c]).sum();
    let accuracy = ratio(correct, total);
    let macro_f1 = if k == 0 {
        0.0
    } else {
        per_class.iter().map(|m| m.f1).sum::<f32>() / k as f32
    };
    (per_class, confusion, accuracy, macro_f1)
}

/// The report as a terminal table (scikit-learn's layout), the confusion matrix, the chosen epoch and warnings.
pub fn render_text(r: &TrainReport) -> String {
    let mut s = String::new();
    let w = r
        .classes
        .iter()
        .map(|c| c.chars().count())
        .chain([12])
        .max()
        .unwrap_or(12);
    let _ = writeln!(
        s,
        "validation: {} examples ({} used for training)",
        r.n_val, r.n_train
    );
    let _ = writeln!(
        s,
        "{:>w$}  {:>9}  {:>9}  {:>9}  {:>9}",
        "", "precision", "recall", "f1-score", "support"
    );
    for m in &r.per_class {
        let _ = writeln!(
            s,
            "{:>w$}  {:>9.3}  {:>9.3}  {:>9.3}  {:>9}",
            m.class, m.precision, m.recall, m.f1, m.support
        );
    }
    let n = r.per_class.len().max(1) as f32;
    let mean = |f: fn(&ClassMetrics) -> f32| r.per_class.iter().map(f).sum::<f32>() / n;
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "{:>w$}  {:>9}  {:>9}  {:>9.3}  {:>9}",
        "accuracy", "", "", r.accuracy, r.n_val
    );
    let _ = writeln!(
        s,
        "{:>w$}  {:>9.3}  {:>9.3}  {:>9.3}  {:>9}",
        "macro avg",
        mean(|m| m.precision),
        mean(|m| m.recall),
        r.macro_f1,
        r.n_val
    );
    let _ = writeln!(s);
    let _ = writeln!(s, "confusion matrix (rows = truth, columns = predicted):");
    let cw = r
        .classes
        .iter()
        .map(|c| c.chars().count())
        .chain([5])
        .max()
        .unwrap_or(5);
    let _ = write!(s, "{:>w$}", "");
    for c in &r.classes {
        let _ = write!(s, "  {c:>cw$}");
    }
    let _ = writeln!(s);
    for (c, row) in r.classes.iter().zip(&r.confusion) {
        let _ = write!(s, "{c:>w$}");
        for v in row {
            let _ = write!(s, "  {v:>cw$}");
        }
        let _ = writeln!(s);
    }
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "chosen epoch {} of {} run (lowest validation loss; its weights are kept)",
        r.chosen_epoch, r.epochs_run
    );
    for warning in &r.warnings {
        let _ = writeln!(s, "warning: {warning}");
    }
    s
}

/// The learning curve as SVG: train and validation loss (upper panel), validation macro-F1 and accuracy (lower
/// panel) per epoch, the chosen epoch marked in both.
pub fn learning_curve_svg(r: &TrainReport) -> Result<String, AdaptError> {
    let series = |label: &str, f: fn(&EpochPoint) -> f64| Curve {
        label: label.into(),
        points: r.curve.iter().map(|p| (p.epoch as f64, f(p))).collect(),
    };
    let chart = LineChart {
        title: format!(
            "learning curve: {} (chosen epoch {} of {})",
            r.classes.join(" / "),
            r.chosen_epoch,
            r.epochs_run
        ),
        x_desc: "epoch".into(),
        panels: vec![
            Panel {
                y_desc: "cross-entropy".into(),
                y_range: None,
                curves: vec![
                    series("train loss", |p| f64::from(p.train_loss)),
                    series("validation loss", |p| f64::from(p.val_loss)),
                ],
            },
            Panel {
                y_desc: "validation".into(),
                y_range: Some((0.0, 1.02)),
                curves: vec![
                    series("validation macro-F1", |p| f64::from(p.val_macro_f1)),
                    series("validation accuracy", |p| f64::from(p.val_accuracy)),
                ],
            },
        ],
        marker: Some((
            r.chosen_epoch as f64,
            format!("chosen epoch {}", r.chosen_epoch),
        )),
    };
    render_line_chart(&chart).map_err(AdaptError::Plot)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn hand_computed_report() {
        // truth:     a a a a b b c c
        // predicted: a a b a b a b b   (c never predicted)
        let classes = names(&["a", "b", "c"]);
        let truth = [0, 0, 0, 0, 1, 1, 2, 2];
        let pred = [0, 0, 1, 0, 1, 0, 1, 1];
        let (m, conf, acc, macro_f1) = classification_report(&truth, &pred, &classes);
        assert_eq!(conf, vec![vec![3, 1, 0], vec![1, 1, 0], vec![0, 2, 0]]);
        // a: tp 3, predicted 4, support 4 → p 0.75 r 0.75 f1 0.75
        // b: tp 1, predicted 4, support 2 → p 0.25 r 0.5 f1 = 2·0.125/0.75 = 1/3
        // c: tp 0, never predicted → p 0, r 0, f1 0
        let close = |a: f32, b: f32| (a - b).abs() < 1e-6;
        assert!(close(m[0].precision, 0.75) && close(m[0].recall, 0.75) && close(m[0].f1, 0.75));
        assert!(
            close(m[1].precision, 0.25) && close(m[1].recall, 0.5) && close(m[1].f1, 1.0 / 3.0)
        );
        assert_eq!((m[2].precision, m[2].recall, m[2].f1), (0.0, 0.0, 0.0));
        assert_eq!(
            m.iter().map(|c| c.support).collect::<Vec<_>>(),
            vec![4, 2, 2]
        );
        assert!(close(acc, 4.0 / 8.0));
        assert!(close(macro_f1, (0.75 + 1.0 / 3.0 + 0.0) / 3.0));
        // nothing at all: zeros, not NaN
        let (m, _, acc, f1) = classification_report(&[], &[], &classes);
        assert!(m
            .iter()
            .all(|c| c.precision == 0.0 && c.recall == 0.0 && c.f1 == 0.0));
        assert_eq!((acc, f1), (0.0, 0.0));
    }

    #[test]
    fn text_and_picture_show_the_figures() {
        let classes = names(&["gate open", "gate closed"]);
        let (per_class, confusion, accuracy, macro_f1) =
            classification_report(&[0, 0, 1, 1], &[0, 1, 1, 1], &classes);
        let r = TrainReport {
            classes,
            per_class,
            confusion,
            accuracy,
            macro_f1,
            chosen_epoch: 2,
            epochs_run: 3,
            curve: (1..=3)
                .map(|e| EpochPoint {
                    epoch: e,
                    train_loss: 1.0 / e as f32,
                    val_loss: 0.5 + (e as f32 - 2.0).abs() * 0.1,
                    val_accuracy: 0.75,
                    val_macro_f1: 0.73,
                    lr: 1e-3,
                })
                .collect(),
            n_train: 10,
            n_val: 4,
            warnings: vec!["class «gate closed» has one source".into()],
        };
        let text = render_text(&r);
        for want in [
            "precision",
            "gate open",
            "1.000", // gate open precision (1 of 1)
            "0.500", // gate open recall
            "accuracy",
            "macro avg",
            "chosen epoch 2 of 3",
            "warning: class «gate closed» has one source",
        ] {
            assert!(text.contains(want), "missing «{want}» in\n{text}");
        }
        // the confusion row for "gate open": 1 right, 1 called closed
        assert!(
            text.lines().any(|l| l.trim_start().starts_with("gate open")
                && l.split_whitespace().rev().take(2).eq(["1", "1"])),
            "{text}"
        );
        let svg = learning_curve_svg(&r).expect("drawn");
        for want in [
            "train loss",
            "validation loss",
            "validation macro-F1",
            "chosen epoch 2",
        ] {
            assert!(svg.contains(want), "missing «{want}» in the SVG");
        }
    }
}
