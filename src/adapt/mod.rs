//! `adapt`: small task heads ("is the gate open") trained on clip-level features from the shipped models
//! (issue 15). This module owns the pure parts: the head file and its pure-Rust scoring ([`head`]), the training
//! core — split, standardisation, a candle-trained logistic or one-hidden-layer MLP head ([`train`]) — and the
//! report with its learning-curve picture ([`report`]), the labelled examples folder ([`examples`]) and the one
//! function that pools a clip into a head's input ([`features`]). The `adapt` subcommands (`cmd::adapt`) and the
//! daemon's use of a head (`infer::classify`, `events::classifier`) live elsewhere; nothing here touches
//! GStreamer, ONNX Runtime or MQTT.

pub mod examples;
pub mod features;
pub mod head;
pub mod report;
pub mod train;

use std::path::PathBuf;

/// What can go wrong training, saving, loading or using a head. Each variant names the file or the data at fault.
#[derive(Debug, thiserror::Error)]
pub enum AdaptError {
    #[error("head file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("head file {}: {message}", path.display())]
    BadHeadFile { path: PathBuf, message: String },
    #[error(
        "head file {}: it was trained on a different {role} model (sha256 {expected_sha256}, this one is \
         {actual_sha256}); its features would mean something else — retrain the head for these models \
         (`scenewatch adapt train`)",
        path.display()
    )]
    ModelMismatch {
        path: PathBuf,
        role: String,
        expected_sha256: String,
        actual_sha256: String,
    },
    #[error(
        "head file {}: it was trained on a {role} model (sha256 {expected_sha256}) but no {role} model is \
         loaded; load that model or retrain the head (`scenewatch adapt train`)",
        path.display()
    )]
    ModelMissing {
        path: PathBuf,
        role: String,
        expected_sha256: String,
    },
    #[error("feature vector has {got} values but the head's feature recipe makes {expected}")]
    FeatureDim { expected: usize, got: usize },
    #[error("training data: {0}")]
    Data(String),
    #[error("training: {0}")]
    Train(String),
    #[error("learning-curve picture: {0}")]
    Plot(String),
}

impl From<candle_core::Error> for AdaptError {
    fn from(e: candle_core::Error) -> Self {
        AdaptError::Train(e.to_string())
    }
}
