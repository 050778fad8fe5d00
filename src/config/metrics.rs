//! `[metrics]`: the HTTP listener: `/metrics` and `/healthz`, and optionally the media API that serves alert
//! snapshots, recordings and the latest frame (see `http`).

use std::path::PathBuf;

use serde::Deserialize;

use super::mqtt::Secret;
use super::Checks;

/// The HTTP endpoint for `/metrics` (Prometheus), `/healthz` and, with `media = true`, `/api/…` media.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// `host:port` to listen on, e.g. `127.0.0.1:9464`. Unset = no endpoint.
    pub listen: Option<String>,
    /// Serve `/api/<camera>/alerts/<id>/snapshot.jpg`, `…/clip.mkv` and `/api/<camera>/latest.jpg` from the media
    /// directory (range requests, conditional requests), and put absolute `url` fields in alert payloads; and the
    /// web page at `/` (`crate::web`).
    pub media: bool,
    /// The base URL clients reach the listener at (a reverse proxy's), for the `url` fields. Unset:
    /// `http://<listen>`.
    pub public_url: Option<String>,
    /// Bearer token the media API and the web page require (`Authorization: Bearer …`, or the page's session
    /// cookie); or `SCENEWATCH__METRICS__TOKEN`. Never logged. `/metrics` and `/healthz` stay open.
    pub token: Option<Secret>,
    /// A file holding the token (trailing newline ignored).
    pub token_file: Option<PathBuf>,
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
        } else if self.media {
            c.bad("metrics.media", "needs metrics.listen");
        }
        if let Some(u) = &self.public_url {
            let rest = u
                .strip_prefix("http://")
                .or_else(|| u.strip_prefix("https://"));
            if rest.is_none_or(|r| r.is_empty() || r.contains(char::is_whitespace)) {
                c.bad("metrics.public_url", "must be an http:// or https:// URL");
            }
        }
        if self
            .token
            .as_ref()
            .is_some_and(|t| t.expose().trim().is_empty())
        {
            c.bad("metrics.token", "must not be empty");
        }
    }

    /// The base of the media API's absolute URLs (no trailing `/`), when the media API is on.
    pub fn media_url(&self) -> Option<String> {
        if !self.media {
            return None;
        }
        let base = match (&self.public_url, &self.listen) {
            (Some(u), _) => u.clone(),
            (None, Some(l)) => format!("http://{l}"),
            (None, None) => return None,
        };
        Some(base.trim_end_matches('/').to_string())
    }

    /// The web page's URL (`<base>/`), when the media API is on.
    pub fn page_url(&self) -> Option<String> {
        self.media_url().map(|b| format!("{b}/"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_url_follows_the_media_api() {
        let mut m = MetricsConfig {
            listen: Some("127.0.0.1:9464".into()),
            ..Default::default()
        };
        assert_eq!(m.page_url(), None, "no media API, no page");
        m.media = true;
        assert_eq!(m.page_url().as_deref(), Some("http://127.0.0.1:9464/"));
        m.public_url = Some("https://cams.example/sw/".into());
        assert_eq!(m.page_url().as_deref(), Some("https://cams.example/sw/"));
        let mut cfg: crate::config::Config =
            toml::from_str("[[cameras]]\nname = \"a\"\nurl = \"test://\"\n").expect("config");
        assert_eq!(cfg.device_url(), None);
        cfg.metrics = m;
        assert_eq!(
            cfg.device_url().as_deref(),
            Some("https://cams.example/sw/")
        );
        cfg.homeassistant.configuration_url = Some("http://ha.example/".into());
        assert_eq!(
            cfg.device_url().as_deref(),
            Some("http://ha.example/"),
            "the configured link wins"
        );
    }
}
