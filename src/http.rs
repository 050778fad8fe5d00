//! Health and metrics over HTTP on `[metrics] listen`: `GET /metrics` (Prometheus text, names in `telemetry`) and
//! `GET /healthz` (JSON; 503 when the publisher task or the inference workers (all of them) have ended — a camera
//! that is retrying is reported, not treated as the process being unhealthy, so a supervisor does not restart
//! everything for it).
//!
//! A deliberately small HTTP/1.1 responder on the async runtime: two read-only GET routes, requests capped at
//! 8 KiB and 5 s, one response per connection. Nothing here blocks. [`HttpServer::bind`] binds at start-up (an
//! address in use is a start-up error); [`HttpServer::spawn`] serves.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::config::MetricsConfig;
use crate::telemetry::{self, CameraFigures, Metrics};

/// The HTTP stage, bound and not serving yet.
pub struct HttpServer {
    listener: TcpListener,
}

impl HttpServer {
    /// None when `[metrics] listen` is unset. Bound now: an address in use is a start-up error naming the key, not
    /// a silent missing endpoint.
    pub async fn bind(cfg: &MetricsConfig) -> Result<Option<Self>, String> {
        let Some(addr) = &cfg.listen else {
            return Ok(None);
        };
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| format!("metrics.listen: cannot listen on {addr}: {e}"))?;
        Ok(Some(Self { listener }))
    }

    /// Serves until aborted (at drain).
    pub fn spawn(self, sources: Sources) -> tokio::task::JoinHandle<()> {
        if let Ok(a) = self.listener.local_addr() {
            tracing::info!(address = %a, "serving /metrics and /healthz");
        }
        tokio::spawn(serve(self.listener, sources))
    }
}

/// What the endpoints report, gathered on each request.
pub struct Sources {
    pub metrics: Arc<Metrics>,
    /// Camera figures, and whether the publisher and the inference worker are alive.
    pub live: Box<dyn Fn() -> (Vec<CameraFigures>, bool, bool) + Send + Sync>,
    /// (model, execution provider) of each loaded model.
    pub models: Vec<(String, String)>,
}

/// Status line, content type and body for a request line, e.g. `GET /metrics HTTP/1.1`.
pub fn respond(request_line: &str, src: &Sources) -> (u16, &'static str, String) {
    let mut parts = request_line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = path.split('?').next().unwrap_or("");
    if method != "GET" {
        return (405, "text/plain", "only GET\n".into());
    }
    match path {
        "/metrics" => {
            let (cams, _, _) = (src.live)();
            (
                200,
                "text/plain; version=0.0.4",
                telemetry::render(&src.metrics, &cams, &src.models),
            )
        }
        "/healthz" => {
            let (cams, publisher, worker) = (src.live)();
            let ok = publisher && worker;
            let body = serde_json::json!({
                "status": if ok { "ok" } else { "failing" },
                "publisher": publisher,
                "inference": worker,
                "spool_pending": src.metrics.spool_pending.get(),
                "cameras": cams.iter().map(|c| (c.name.clone(), serde_json::json!(c.state))).collect::<serde_json::Map<_, _>>(),
            });
            (
                if ok { 200 } else { 503 },
                "application/json",
                body.to_string() + "\n",
            )
        }
        _ => (404, "text/plain", "routes: /metrics /healthz\n".into()),
    }
}

async fn handle(mut conn: TcpStream, src: Arc<Sources>) {
    let mut buf = vec![0u8; 8192];
    let mut n = 0;
    let read = tokio::time::timeout(Duration::from_secs(5), async {
        while n < buf.len() {
            match conn.read(&mut buf[n..]).await {
                Ok(0) | Err(_) => break,
                Ok(k) => {
                    n += k;
                    if buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
            }
        }
    })
    .await;
    if read.is_err() || n == 0 {
        return;
    }
    let head = String::from_utf8_lossy(&buf[..n]);
    let line = head.lines().next().unwrap_or("");
    let (code, ctype, body) = respond(line, &src);
    let reason = match code {
        200 => "OK",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Service Unavailable",
    };
    let msg = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = conn.write_all(msg.as_bytes()).await;
    let _ = conn.shutdown().await;
}

/// Serves until the task is aborted.
pub async fn serve(listener: TcpListener, src: Sources) {
    let src = Arc::new(src);
    loop {
        match listener.accept().await {
            Ok((conn, _)) => {
                tokio::spawn(handle(conn, src.clone()));
            }
            Err(e) => {
                tracing::warn!(error = %e, "metrics endpoint: accept failed");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources(publisher: bool) -> Sources {
        Sources {
            metrics: Arc::default(),
            live: Box::new(move || {
                (
                    vec![CameraFigures {
                        name: "gate".into(),
                        state: "retrying",
                        decoded: 0,
                        sampled: 0,
                        dropped: 0,
                        queue_depth: 0,
                        sampled_fps: 0.0,
                    }],
                    publisher,
                    true,
                )
            }),
            models: vec![("detector".into(), "CPUExecutionProvider".into())],
        }
    }

    #[test]
    fn routes_and_health() {
        let s = sources(true);
        let (code, _, body) = respond("GET /healthz HTTP/1.1", &s);
        assert_eq!(
            code, 200,
            "a retrying camera is reported, not fatal: {body}"
        );
        assert!(body.contains("\"gate\":\"retrying\""), "{body}");
        let (code, ctype, body) = respond("GET /metrics?x=1 HTTP/1.1", &s);
        assert_eq!((code, ctype), (200, "text/plain; version=0.0.4"));
        assert!(body.contains(
            "scenewatch_model_info{model=\"detector\",provider=\"CPUExecutionProvider\"} 1"
        ));
        assert_eq!(respond("GET /nope HTTP/1.1", &s).0, 404);
        assert_eq!(respond("POST /metrics HTTP/1.1", &s).0, 405);
        assert_eq!(respond("", &s).0, 405);
        assert_eq!(respond("GET /healthz HTTP/1.1", &sources(false)).0, 503);
    }
}
