//! Health and metrics over HTTP on `[metrics] listen`: `GET /metrics` (Prometheus text, names in `telemetry`) and
//! `GET /healthz` (JSON; 503 when the publisher task or the inference workers (all of them) have ended, or any one
//! worker died: `failed` names it, as its camera's clips would wait behind the lost one for ever — a camera
//! that is retrying is reported, not treated as the process being unhealthy, so a supervisor does not restart
//! everything for it).
//!
//! With `[metrics] media = true` it also serves the media directory read-only: `/api/<camera>/alerts/<id>/
//! snapshot.jpg`, `…/clip.mp4` (or `.mkv`) and `/api/<camera>/latest.jpg`, with range and conditional requests (a phone's
//! player seeks), behind an optional bearer token. Requests never name a path: the camera and id are checked
//! against what they can be and the file is picked from the directory's own listing ([`find_media`]).
//!
//! axum (hyper) serves; tower-http's `ServeFile` does ranges and `If-Modified-Since`. [`HttpServer::bind`] binds at
//! start-up (an address in use is a start-up error); [`HttpServer::spawn`] serves.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::net::TcpListener;

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

    /// Serves until aborted (at drain); `media`: the media API, when `[metrics] media` is on.
    pub fn spawn(self, sources: Sources, media: Option<MediaApi>) -> tokio::task::JoinHandle<()> {
        if let Ok(a) = self.listener.local_addr() {
            tracing::info!(address = %a, media = media.is_some(), token = media.as_ref().is_some_and(|m| m.token.is_some()), "serving /metrics and /healthz");
        }
        tokio::spawn(serve(self.listener, sources, media))
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
            // one dead worker is enough: its camera's clips wait behind the clip it died on
            let failed = src
                .metrics
                .workers_failed
                .lock()
                .map(|f| f.clone())
                .unwrap_or_default();
            let ok = publisher && worker && failed.is_empty();
            let body = serde_json::json!({
                "status": if ok { "ok" } else { "failing" },
                "publisher": publisher,
                "inference": worker && failed.is_empty(),
                "failed": failed,
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

/// The media API's settings: where the files are and the token it wants (None = open); and what the web page at
/// `/` shows (`crate::web`), which comes with it.
#[derive(Clone)]
pub struct MediaApi {
    pub dir: PathBuf,
    pub token: Option<crate::config::Secret>,
    /// The page's recent alerts, score history and latest frames (written by the events stage).
    pub board: Arc<crate::web::Board>,
    /// Mark the page's session cookie `Secure` (the public URL is https).
    pub secure_cookie: bool,
}

/// What a media request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wanted {
    /// The latest frame asked for by a `{"snapshot": true}` command.
    Latest,
    /// An alert's snapshot (the best one written for it).
    Snapshot(String),
    /// That snapshot's thumbnail.
    Thumbnail(String),
    /// An alert's recording, by its file extension (`mp4`, `mkv`).
    Clip(String, &'static str),
}

/// Camera names are `[a-z0-9_-]+` (validated config), alert ids UUIDs: anything else in a request is refused
/// before the file system is touched, so no request can name a path of its own.
fn plain(s: &str, max: usize, id: bool) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.chars().all(|c| {
            c.is_ascii_digit()
                || c == '-'
                || if id {
                    c.is_ascii_alphabetic()
                } else {
                    c.is_ascii_lowercase() || c == '_'
                }
        })
}

/// The file for `wanted` of `camera` under `dir`: evidence files are `<dir>/<camera>/<time>-<label>-<id8>.<ext>`
/// (events::evidence::media_path), so the newest directory entry with the right suffix is the one. Only names read
/// from the directory are joined, never the request's text; the result is checked to lie inside `dir` (a symlink
/// pointing out is refused). Blocking (reads a directory).
pub fn find_media(dir: &Path, camera: &str, wanted: &Wanted) -> Option<PathBuf> {
    if !plain(camera, 64, false) {
        return None;
    }
    let suffix = match wanted {
        Wanted::Latest => "-latest-manual.jpg".to_string(),
        Wanted::Snapshot(id) | Wanted::Thumbnail(id) | Wanted::Clip(id, _) => {
            if !plain(id, 64, true) || id.len() < 8 {
                return None;
            }
            let short: String = id.chars().take(8).collect();
            let ext = match wanted {
                Wanted::Clip(_, ext) => ext,
                Wanted::Thumbnail(_) => "thumb.jpg",
                _ => "jpg",
            };
            format!("-{short}.{ext}")
        }
    };
    let cam_dir = dir.join(camera);
    let newest = std::fs::read_dir(&cam_dir)
        .ok()?
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.ends_with(&suffix) && !n.starts_with('.'))
        .max()?;
    let path = cam_dir.join(newest);
    let (root, real) = (dir.canonicalize().ok()?, path.canonicalize().ok()?);
    (real.starts_with(&root) && real.is_file()).then_some(real)
}

/// Constant-time comparison, so the time a wrong token takes says nothing about the right one.
pub(crate) fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The bearer token, or the web page's session cookie (a browser loading the page's images and clips).
pub(crate) fn authorized(api: &MediaApi, headers: &axum::http::HeaderMap) -> bool {
    let Some(token) = &api.token else {
        return true;
    };
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|got| same(got.trim().as_bytes(), token.expose().as_bytes()))
        || crate::web::session_ok(headers, token.expose())
}

fn plain_response(code: u16, text: &str) -> axum::response::Response {
    let mut r = axum::response::Response::new(axum::body::Body::from(format!("{text}\n")));
    *r.status_mut() =
        axum::http::StatusCode::from_u16(code).unwrap_or(axum::http::StatusCode::NOT_FOUND);
    r.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("text/plain"),
    );
    r
}

/// Serves one media file, with range and conditional requests (tower-http's `ServeFile`).
async fn serve_media(
    api: Arc<MediaApi>,
    camera: String,
    wanted: Wanted,
    req: axum::extract::Request,
) -> axum::response::Response {
    use tower::ServiceExt;
    if !authorized(&api, req.headers()) {
        let mut r = plain_response(401, "a bearer token is required");
        r.headers_mut().insert(
            axum::http::header::WWW_AUTHENTICATE,
            axum::http::HeaderValue::from_static("Bearer"),
        );
        return r;
    }
    let dir = api.dir.clone();
    let found = tokio::task::spawn_blocking(move || find_media(&dir, &camera, &wanted))
        .await
        .ok()
        .flatten();
    let Some(path) = found else {
        return plain_response(404, "no such media");
    };
    match tower_http::services::ServeFile::new(path)
        .oneshot(req)
        .await
    {
        Ok(r) => r.map(axum::body::Body::new),
        Err(e) => match e {},
    }
}

fn text_response((code, ctype, body): (u16, &'static str, String)) -> axum::response::Response {
    let mut r = plain_response(code, "");
    *r.body_mut() = axum::body::Body::from(body);
    r.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static(ctype),
    );
    r
}

/// The routes: `/metrics`, `/healthz`, and with a media API `/api/<camera>/latest.jpg`,
/// `/api/<camera>/alerts/<id>/snapshot.jpg` and `/api/<camera>/alerts/<id>/clip.mp4` (or `clip.mkv`), and the web
/// page's (`crate::web::routes`).
pub fn router(src: Sources, media: Option<MediaApi>) -> axum::Router {
    use axum::extract::Path as P;
    use axum::routing::get;
    let src = Arc::new(src);
    let (m, h) = (src.clone(), src.clone());
    let mut r = axum::Router::new()
        .route(
            "/metrics",
            get(move || async move { text_response(respond("GET /metrics", &m)) }),
        )
        .route(
            "/healthz",
            get(move || async move { text_response(respond("GET /healthz", &h)) }),
        );
    if let Some(api) = media {
        let api = Arc::new(api);
        r = r.merge(crate::web::routes(src.clone(), api.clone()));
        let (a, b) = (api.clone(), api.clone());
        r = r
            .route(
                "/api/{camera}/latest.jpg",
                get(move |P(camera): P<String>, req: axum::extract::Request| {
                    serve_media(a.clone(), camera, Wanted::Latest, req)
                }),
            )
            .route(
                "/api/{camera}/alerts/{id}/{file}",
                get(
                    move |P((camera, id, file)): P<(String, String, String)>,
                          req: axum::extract::Request| {
                        let api = b.clone();
                        async move {
                            let wanted =
                                match file.as_str() {
                                    "snapshot.jpg" => Wanted::Snapshot(id),
                                    "thumbnail.jpg" => Wanted::Thumbnail(id),
                                    "clip.mp4" => Wanted::Clip(id, "mp4"),
                                    "clip.mkv" => Wanted::Clip(id, "mkv"),
                                    _ => return plain_response(
                                        404,
                                        "files: snapshot.jpg, thumbnail.jpg, clip.mp4, clip.mkv",
                                    ),
                                };
                            serve_media(api, camera, wanted, req).await
                        }
                    },
                ),
            );
    }
    r.fallback(|| async { plain_response(404, "routes: /metrics /healthz /api/<camera>/…") })
        .method_not_allowed_fallback(|| async { plain_response(405, "only GET") })
}

/// Serves until the task is aborted.
pub async fn serve(listener: TcpListener, src: Sources, media: Option<MediaApi>) {
    if let Err(e) = axum::serve(listener, router(src, media)).await {
        tracing::error!(error = %e, "the HTTP listener stopped");
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
    fn media_lookup_takes_only_plain_names_and_stays_inside_the_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let gate = dir.path().join("gate");
        std::fs::create_dir_all(&gate).expect("dir");
        for f in [
            "20261201-100000-person-0123abcd.jpg",
            "20261201-100005-person-0123abcd.jpg",
            "20261201-100000-person-0123abcd.mkv",
            "20261201-100000-person-0123abcd.mp4",
            "20261201-100010-latest-manual.jpg",
            "20261201-100005-person-0123abcd.thumb.jpg",
        ] {
            std::fs::write(gate.join(f), f).expect("write");
        }
        std::fs::write(dir.path().join("secret.jpg"), "x").expect("write");
        let id = "0123abcd-1111-2222-3333-444455556666".to_string();
        let find = |cam: &str, w: Wanted| {
            find_media(dir.path(), cam, &w).map(|p| {
                p.file_name()
                    .map(|n| n.to_string_lossy().to_string())
                    .unwrap_or_default()
            })
        };
        assert_eq!(
            find("gate", Wanted::Snapshot(id.clone())).as_deref(),
            Some("20261201-100005-person-0123abcd.jpg"),
            "the newest snapshot of the alert"
        );
        assert_eq!(
            find("gate", Wanted::Clip(id.clone(), "mkv")).as_deref(),
            Some("20261201-100000-person-0123abcd.mkv")
        );
        assert_eq!(
            find("gate", Wanted::Clip(id.clone(), "mp4")).as_deref(),
            Some("20261201-100000-person-0123abcd.mp4")
        );
        assert_eq!(
            find("gate", Wanted::Thumbnail(id.clone())).as_deref(),
            Some("20261201-100005-person-0123abcd.thumb.jpg")
        );
        assert_eq!(
            find("gate", Wanted::Latest).as_deref(),
            Some("20261201-100010-latest-manual.jpg")
        );
        for cam in ["..", "../gate", "gate/..", "", "Gate", "gate%2F..", "/etc"] {
            assert_eq!(find(cam, Wanted::Latest), None, "{cam:?}");
        }
        for bad in [
            "../../secret",
            "0123abc",
            "0123abcd/../x",
            "..%2F..",
            "0123abcd.jpg",
        ] {
            assert_eq!(find("gate", Wanted::Snapshot(bad.into())), None, "{bad:?}");
        }
        // a link pointing out of the media directory is not followed
        let outside = tempfile::tempdir().expect("tempdir");
        std::fs::write(outside.path().join("passwd"), "x").expect("write");
        std::os::unix::fs::symlink(
            outside.path().join("passwd"),
            gate.join("20261201-110000-person-99999999.jpg"),
        )
        .expect("symlink");
        assert_eq!(find("gate", Wanted::Snapshot("99999999-aaaa".into())), None);
        assert!(same(b"abc", b"abc") && !same(b"abc", b"abd") && !same(b"abc", b"ab"));
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
        // every worker thread still running, but one of them died: unhealthy, and the body says which
        let s = sources(true);
        if let Ok(mut f) = s.metrics.workers_failed.lock() {
            f.push("inference worker 1 panicked: a model bug".into());
        }
        let (code, _, body) = respond("GET /healthz HTTP/1.1", &s);
        assert_eq!(code, 503, "{body}");
        let json: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!(json["status"], "failing");
        assert_eq!(json["inference"], false);
        assert_eq!(
            json["failed"][0],
            "inference worker 1 panicked: a model bug"
        );
    }
}
