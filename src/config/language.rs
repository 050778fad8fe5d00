//! `[language]`: the fused language head's parameters (prompt scoring). The type lives here, not in `infer::head`
//! (which uses it), so that config does not depend on the inference stage.

use serde::Deserialize;

use super::Checks;

/// `[language]`: the fused language head's parameters for prompt scoring (defaults chosen on the evaluation in
/// docs/quality.md).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LanguageConfig {
    /// ImageNet classes per frame that enter the ConSE combination.
    pub top_k: usize,
    /// Weight of the classifier (ConSE) vector.
    pub w_classifier: f32,
    /// Weight of the detection vector.
    pub w_detections: f32,
    /// Weight of the "nothing detected" concept, scaled by 1 − max detection score.
    pub w_empty: f32,
    /// Clip score = alpha · mean over frames + (1 − alpha) · max over frames.
    pub alpha: f32,
    /// Calibrated score = sigmoid(z / temperature), z = (cosine − prompt's mean over the label banks) / std.
    pub temperature: f32,
    /// Template for label-bank texts; `{}` is the class name.
    pub label_template: String,
    /// Template for prompts; `{}` is the prompt text.
    pub prompt_template: String,
    /// What "nothing detected" means in words.
    pub empty_text: String,
}

impl Default for LanguageConfig {
    fn default() -> Self {
        Self {
            top_k: 16,
            w_classifier: 1.0,
            w_detections: 0.5,
            w_empty: 0.5,
            alpha: 0.5,
            temperature: 4.0,
            label_template: "a photo of a {}".into(),
            prompt_template: "a photo of {}".into(),
            empty_text: "an empty scene with nobody and nothing in it".into(),
        }
    }
}

impl LanguageConfig {
    pub(super) fn validate(&self, c: &mut Checks) {
        c.range("language.top_k", self.top_k, 1, 1000);
        c.range("language.temperature", self.temperature, 0.1, 100.0);
        c.range("language.alpha", self.alpha, 0.0, 1.0);
        for (k, w) in [
            ("w_classifier", self.w_classifier),
            ("w_detections", self.w_detections),
            ("w_empty", self.w_empty),
        ] {
            c.range(format!("language.{k}"), w, 0.0, 10.0);
        }
        for (k, t) in [
            ("label_template", &self.label_template),
            ("prompt_template", &self.prompt_template),
        ] {
            if !t.contains("{}") {
                c.bad(
                    format!("language.{k}"),
                    "must contain {} where the text goes",
                );
            }
        }
    }
}
