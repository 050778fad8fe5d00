//! scenewatch: camera streams → GStreamer ingest → clips → ONNX Runtime inference → rules/alerts → MQTT.
//!
//! The modules follow the data path: [`ingest`] → [`clip`] → [`infer`] → [`events`] → [`publish`], wired by
//! [`supervisor::run`], which both `main` and the integration tests call. The command-line subcommands (`run`,
//! `validate`, `detect`, `prompts`, `soak`, `bench`) are in [`cmd`], apart from the stages and built on them.
//! [`eval`] scores the stages against labelled media (`scenewatch eval MANIFEST`, issue 14); [`web`] is the
//! read-only page at the HTTP listener.

pub mod adapt;
pub mod clip;
pub mod clock;
pub mod cmd;
pub mod config;
pub mod control;
pub mod eval;
pub mod events;
pub mod http;
pub mod infer;
pub mod ingest;
pub mod journal;
pub mod labels;
pub mod language;
pub mod publish;
pub mod queue;
pub mod shutdown;
pub mod supervisor;
pub mod telemetry;
pub mod web;

pub use supervisor::run;
