//! The web page at the HTTP listener's `/` (with the media API, `[metrics] media = true`): a read-only,
//! server-rendered view of the cameras, their prompt scores and the recent alerts, with the alerts' snapshots and
//! clips from the media API. This file owns its routes and sign-in; [`board`] keeps what it shows that nothing
//! else keeps, [`page`] renders the HTML.
//!
//! Auth is the media API's: with `[metrics] token` set, a request needs `Authorization: Bearer <token>` or the
//! session cookie a browser gets from the token form (`POST /login`). The cookie holds a hash of the token, not the
//! token, and is `HttpOnly; SameSite=Strict` (and `Secure` when `public_url` is https). Neither the token nor the
//! cookie is ever logged or put in a URL. Without a token the page is open, as the media API is.
//!
//! Routes: `GET /` (the page; 401 with the token form when not signed in), `GET|POST /login`, and
//! `GET /api/<camera>/frame.jpg` (the camera's latest inferred frame with its boxes, encoded on request).

pub mod board;
pub mod page;

use std::sync::Arc;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use sha2::Digest;

pub use board::Board;

use crate::http::{MediaApi, Sources};

/// The session cookie's name.
pub const COOKIE: &str = "scenewatch_session";

/// Height of the frames `frame.jpg` serves (taller frames are scaled down; smaller ones are kept).
pub const FRAME_HEIGHT: u32 = 360;

/// The session cookie's value for `token`: a hash, so a leaked cookie does not give the bearer token away.
pub fn session_value(token: &str) -> String {
    let mut h = sha2::Sha256::new();
    h.update(b"scenewatch web page session\n");
    h.update(token.as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether a `Cookie` header of `headers` carries the session for `token` (compared in constant time).
pub fn session_ok(headers: &HeaderMap, token: &str) -> bool {
    let want = session_value(token);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='))
        .any(|got| crate::http::same(got.trim().as_bytes(), want.as_bytes()))
}

/// The value of `key` in an `application/x-www-form-urlencoded` body (`+` is a space, `%XX` a byte).
pub fn form_value(body: &[u8], key: &str) -> Option<String> {
    body.split(|b| *b == b'&').find_map(|pair| {
        let (k, v) = match pair.iter().position(|b| *b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &pair[..0]),
        };
        (decode(k)? == key).then(|| decode(v)).flatten()
    })
}

fn decode(s: &[u8]) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(s.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// The camera's frame as a JPEG at most [`FRAME_HEIGHT`] high, with its detections' boxes. Blocking.
pub fn frame_jpeg(f: &crate::infer::FrameResult) -> Result<Vec<u8>, String> {
    let mut img = image::RgbImage::from_raw(f.width, f.height, f.pixels.0.to_vec())
        .ok_or_else(|| format!("frame is not {}x{} RGB", f.width, f.height))?;
    for d in &f.detections {
        crate::events::snapshot::draw_box(&mut img, &d.bbox);
    }
    if f.height > FRAME_HEIGHT && f.width > 0 {
        let w = ((f.width as f64 * FRAME_HEIGHT as f64 / f.height as f64).round() as u32).max(1);
        img = image::imageops::resize(&img, w, FRAME_HEIGHT, image::imageops::FilterType::Triangle);
    }
    let mut out = Vec::new();
    let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 75);
    img.write_with_encoder(enc).map_err(|e| e.to_string())?;
    Ok(out)
}

fn respond(code: StatusCode, ctype: &'static str, body: impl Into<axum::body::Body>) -> Response {
    let mut r = Response::new(body.into());
    *r.status_mut() = code;
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn html(code: StatusCode, body: String) -> Response {
    let mut r = respond(code, "text/html; charset=utf-8", body);
    // nothing on the page comes from elsewhere; the one inline script is the page's own reload timer
    r.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        ),
    );
    r
}

/// The token form with 401, for a request that is not signed in.
fn sign_in(failed: bool) -> Response {
    let mut r = html(StatusCode::UNAUTHORIZED, page::login(failed));
    r.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    r
}

async fn show_page(src: Arc<Sources>, api: Arc<MediaApi>, headers: HeaderMap) -> Response {
    if !crate::http::authorized(&api, &headers) {
        return sign_in(false);
    }
    let (cameras, _, _) = (src.live)();
    let view = api.board.view();
    html(
        StatusCode::OK,
        page::render(&page::Page {
            cameras: &cameras,
            models: &src.models,
            board: &view,
            now: chrono::Utc::now(),
        }),
    )
}

async fn log_in(api: Arc<MediaApi>, body: axum::body::Bytes) -> Response {
    let mut r = respond(StatusCode::SEE_OTHER, "text/plain", "");
    r.headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static("./"));
    let Some(token) = &api.token else {
        // an open page has nothing to sign in to
        return r;
    };
    let given = form_value(&body, "token").unwrap_or_default();
    if !crate::http::same(given.trim().as_bytes(), token.expose().as_bytes()) {
        tracing::warn!("web page: a wrong token was sent to the sign-in form");
        return sign_in(true);
    }
    let cookie = format!(
        "{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict{}",
        session_value(token.expose()),
        if api.secure_cookie { "; Secure" } else { "" }
    );
    match HeaderValue::from_str(&cookie) {
        Ok(v) => {
            r.headers_mut().insert(header::SET_COOKIE, v);
            tracing::info!("web page: a browser signed in");
            r
        }
        Err(_) => respond(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain",
            "cannot set the cookie\n",
        ),
    }
}

async fn frame(api: Arc<MediaApi>, camera: String, headers: HeaderMap) -> Response {
    if !crate::http::authorized(&api, &headers) {
        return sign_in(false);
    }
    let Some(f) = api.board.frame(&camera) else {
        return respond(StatusCode::NOT_FOUND, "text/plain", "no frame yet\n");
    };
    match tokio::task::spawn_blocking(move || frame_jpeg(&f)).await {
        Ok(Ok(jpeg)) => respond(StatusCode::OK, "image/jpeg", jpeg),
        Ok(Err(e)) => {
            tracing::warn!(camera = %camera, error = %e, "web page: cannot encode the latest frame");
            respond(
                StatusCode::INTERNAL_SERVER_ERROR,
                "text/plain",
                "cannot encode the frame\n",
            )
        }
        Err(_) => respond(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain",
            "encoder failed\n",
        ),
    }
}

/// The page's routes, merged into the HTTP router when the media API is on.
pub fn routes(src: Arc<Sources>, api: Arc<MediaApi>) -> axum::Router {
    use axum::extract::Path;
    use axum::routing::get;
    let (a, b, c) = (api.clone(), api.clone(), api);
    axum::Router::new()
        .route(
            "/",
            get(move |headers: HeaderMap| show_page(src.clone(), a.clone(), headers)),
        )
        .route(
            "/login",
            get(|| async { html(StatusCode::OK, page::login(false)) })
                .post(move |body: axum::body::Bytes| log_in(b.clone(), body)),
        )
        .route(
            "/api/{camera}/frame.jpg",
            get(move |Path(camera): Path<String>, headers: HeaderMap| {
                frame(c.clone(), camera, headers)
            }),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_forms_and_frames() {
        let mut h = HeaderMap::new();
        assert!(!session_ok(&h, "tok"));
        h.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("a=1; {COOKIE}={}; b=2", session_value("tok")))
                .expect("header"),
        );
        assert!(session_ok(&h, "tok"));
        assert!(!session_ok(&h, "other"));
        assert!(
            !session_value("tok").contains("tok"),
            "the cookie is not the token"
        );
        // the raw token in the cookie is not a session
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("scenewatch_session=tok"),
        );
        assert!(!session_ok(&h, "tok"));

        assert_eq!(
            form_value(b"x=1&token=a%2Bb+c%3D%26&y", "token").as_deref(),
            Some("a+b c=&")
        );
        assert_eq!(form_value(b"token", "token").as_deref(), Some(""));
        assert_eq!(form_value(b"tok=1", "token"), None);
        assert_eq!(form_value(b"token=%zz", "token"), None, "bad escapes");
        assert_eq!(form_value(b"token=%f", "token"), None);

        let (w, hgt) = (1280u32, 720u32);
        let f = crate::infer::FrameResult {
            seq: 0,
            pts: std::time::Duration::ZERO,
            wall: chrono::DateTime::UNIX_EPOCH,
            width: w,
            height: hgt,
            detections: Vec::new(),
            encoding: None,
            postures: Vec::new(),
            pose_only: Vec::new(),
            pixels: crate::infer::Pixels(Arc::new(vec![128u8; (w * hgt * 3) as usize])),
        };
        let jpeg = frame_jpeg(&f).expect("jpeg");
        let img = image::load_from_memory(&jpeg).expect("decodes");
        assert_eq!((img.width(), img.height()), (640, FRAME_HEIGHT));
        let short = crate::infer::FrameResult {
            pixels: crate::infer::Pixels(Arc::new(vec![0u8; 10])),
            ..f
        };
        assert!(frame_jpeg(&short).is_err(), "pixels of the wrong size");
    }
}
