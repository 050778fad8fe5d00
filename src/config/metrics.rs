//! `[metrics]`: where `/metrics` and `/healthz` are served (see `http`).

use serde::Deserialize;

use super::Checks;

/// The HTTP endpoint for `/metrics` (Prometheus) and `/healthz`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// `host:port` to listen on, e.g. `127.0.0.1:9464`. Unset = no endpoint.
    pub listen: Option<String>,
}

impl MetricsConfig {
    pub(super) fn validate(&self, c: &mut Checks) {
        if let Some(l) = &self.listen {
            if l.parse::<std::net::SocketAddr>().is_err() {
                c.bad(
                    "metrics.listen",
                    "must be host:port with an IP address, e.g. 127.0.0.1:9464",
                );
            }
        }
    }
}
