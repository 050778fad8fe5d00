//! `scenewatch eval`: the product measures its own understanding against labelled media (issue 14).
//!
//! This module owns the parts that do not depend on how the daemon is wired: the manifest of labelled media
//! ([`manifest`]), the figures computed from what the daemon reported ([`metrics`]) and the per-video timeline
//! pictures ([`plot`]). The runner that plays each entry through the same stages as `run` and collects alerts,
//! per-frame scores, photo detections and prompt rankings is the `eval` subcommand (`crate::cmd::eval`).

pub mod manifest;
pub mod metrics;
pub mod plot;
pub mod sweep;
