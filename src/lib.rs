//! scenewatch: camera streams → GStreamer ingest → clips → ONNX Runtime inference → rules/alerts → MQTT.
//!
//! The modules follow the data path: [`ingest`] → [`clip`] → [`infer`] → [`events`] → [`publish`], wired by
//! [`supervisor::run`], which both `main` and the integration tests call.

pub mod bench;
pub mod clip;
pub mod clock;
pub mod config;
pub mod control;
pub mod events;
pub mod http;
pub mod infer;
pub mod ingest;
pub mod labels;
pub mod prompts_cli;
pub mod publish;
pub mod queue;
pub mod shutdown;
pub mod soak;
pub mod supervisor;
pub mod telemetry;

pub use supervisor::run;
