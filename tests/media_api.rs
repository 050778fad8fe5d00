//! The media API on a running daemon (real vtest.avi, models, broker): alert payloads carry absolute `url`s next to
//! `path`, the files come back with range requests behind a bearer token, and no request reaches a file outside the
//! media directory. The web page at `/` shares the token: refused without it, and its sign-in form sets a session
//! cookie that opens the page and its media.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::time::Duration;

use common::*;

struct Reply {
    code: u16,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

/// One HTTP/1.1 GET with `extra` header lines, the raw path sent as given (no client-side normalisation).
fn get(port: u16, path: &str, extra: &[&str]) -> Reply {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
    for h in extra {
        req += &format!("{h}\r\n");
    }
    req += "\r\n";
    s.write_all(req.as_bytes()).expect("request");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("response");
    parse(raw)
}

/// One form POST (`application/x-www-form-urlencoded`).
fn post(port: u16, path: &str, form: &str) -> Reply {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
        form.len()
    );
    s.write_all(req.as_bytes()).expect("request");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("response");
    parse(raw)
}

fn parse(raw: Vec<u8>) -> Reply {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header block");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut lines = head.lines();
    let code = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Reply {
        code,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

#[test]
fn media_urls_serve_ranges_behind_a_token_and_nothing_outside() {
    let broker = Broker::start();
    let rec = Recorder::start(broker.port, "md/#");
    let http = free_port();
    let token = "s3cr3t-token-for-the-media-api";
    let dir = tempfile::tempdir().expect("tempdir");
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{token}\n")).expect("token file");
    let body = format!(
        "[metrics]\nlisten = \"127.0.0.1:{http}\"\nmedia = true\npublic_url = \"http://phone.example:8080/sw/\"\ntoken_file = \"{}\"\n\n[[cameras]]\nname = \"walk\"\nurl = \"{}\"\nsample_fps = 2.0\nrealtime = true\n[[cameras.rules]]\nlabel = \"person\"\n",
        token_file.display(),
        media("vtest.avi").display()
    );
    let cfg = write_config(broker.port, "md", &body);
    // the MQTT copy shaped like Frigate's: cropped to the person, 120 px high
    let text = std::fs::read_to_string(&cfg.path).expect("config");
    std::fs::write(
        &cfg.path,
        text.replacen(
            "[media]\n",
            "[media]\nmqtt_snapshot_height = 120\nmqtt_snapshot_crop = true\n",
            1,
        ),
    )
    .expect("rewrite");
    let mut d = Daemon::spawn(&cfg.path, &[]);
    rec.wait_for(
        "an alert with snapshot and recording",
        Duration::from_secs(60),
        |m| {
            m.iter().any(|m| {
                m.topic == "md/walk/alerts"
                    && m.json()["snapshot"]["url"].is_string()
                    && m.json()["recording"]["url"].is_string()
            })
        },
    );
    let alert = rec
        .on("md/walk/alerts")
        .into_iter()
        .map(|m| m.json())
        .find(|a| a["snapshot"]["url"].is_string())
        .expect("alert");
    let id = alert["id"].as_str().expect("id").to_string();
    let snap_url = alert["snapshot"]["url"].as_str().expect("url");
    assert_eq!(
        snap_url,
        format!("http://phone.example:8080/sw/api/walk/alerts/{id}/snapshot.jpg"),
        "absolute, under the public URL"
    );
    assert!(alert["snapshot"]["path"].is_string(), "path stays");
    let path = |url: &str| {
        url.strip_prefix("http://phone.example:8080/sw")
            .expect("public url")
            .to_string()
    };
    let auth = format!("Authorization: Bearer {token}");

    // the whole snapshot, then a range of it
    let full = get(http, &path(snap_url), &[&auth]);
    assert_eq!(full.code, 200);
    assert_eq!(full.headers["content-type"], "image/jpeg");
    assert!(full.body.starts_with(&[0xFF, 0xD8]), "a JPEG");
    assert_eq!(
        full.headers.get("accept-ranges").map(String::as_str),
        Some("bytes")
    );
    let part = get(http, &path(snap_url), &[&auth, "Range: bytes=0-99"]);
    assert_eq!(part.code, 206);
    assert_eq!(part.body.len(), 100);
    assert_eq!(part.body, full.body[..100]);
    assert_eq!(
        part.headers["content-range"],
        format!("bytes 0-99/{}", full.body.len())
    );
    // the file is the whole frame; the MQTT copy is cropped and 120 px high; the thumbnail 180 px high
    let size = |b: &[u8]| {
        image::load_from_memory(b)
            .map(|i| (i.width(), i.height()))
            .expect("a JPEG")
    };
    assert_eq!(size(&full.body), (768, 576), "vtest.avi's frame");
    let mqtt = rec
        .on(alert["snapshot"]["topic"].as_str().expect("topic"))
        .last()
        .map(|m| m.raw.clone())
        .expect("retained snapshot");
    let (w, h) = size(&mqtt);
    assert!(h == 120 && w < 160 * 4, "cropped and scaled: {w}x{h}");
    let thumb_url = alert["snapshot"]["thumbnail_url"]
        .as_str()
        .expect("thumbnail url");
    let thumb = get(http, &path(thumb_url), &[&auth]);
    assert_eq!(thumb.code, 200);
    assert_eq!(size(&thumb.body), (240, 180));
    // the recording: MP4 (H.264, the default clip_format), also by range, while it is being written
    let clip_url = alert["recording"]["url"].as_str().expect("clip url");
    assert!(
        clip_url.ends_with(&format!("/api/walk/alerts/{id}/clip.mp4")),
        "{clip_url}"
    );
    let clip = path(clip_url);
    // the encoder writes the file's head with its first fragment (1 s of video) — poll a little
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let head = loop {
        let r = get(http, &clip, &[&auth, "Range: bytes=0-11"]);
        if r.body.len() == 12 || std::time::Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(head.code, 206, "{}", String::from_utf8_lossy(&head.body));
    assert_eq!(&head.body[4..8], b"ftyp", "an MP4 file");
    assert_eq!(head.headers["content-type"], "video/mp4");

    // the token is required, and a wrong one is refused the same way
    for h in [
        vec![],
        vec!["Authorization: Bearer wrong"],
        vec!["Authorization: Basic czNjcjN0"],
    ] {
        let r = get(http, &path(snap_url), &h);
        assert_eq!(r.code, 401, "{h:?}");
        assert_eq!(
            r.headers.get("www-authenticate").map(String::as_str),
            Some("Bearer")
        );
    }
    // the web page: refused without the token (with the form to sign in), open with the bearer token, and the form
    // gives a browser a session cookie that is not the token and opens the page and its media
    let page = get(http, "/", &[]);
    assert_eq!(page.code, 401);
    assert!(String::from_utf8_lossy(&page.body).contains("<form method=\"post\" action=\"login\""));
    assert_eq!(get(http, "/", &[&auth]).code, 200);
    assert_eq!(post(http, "/login", "token=wrong").code, 401);
    let signed = post(http, "/login", &format!("token={token}"));
    assert_eq!(signed.code, 303);
    assert_eq!(signed.headers["location"], "./");
    let set = &signed.headers["set-cookie"];
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict") && !set.contains(token),
        "{set}"
    );
    let cookie = format!("Cookie: {}", set.split(';').next().unwrap_or_default());
    let page = get(http, "/", &[&cookie]);
    assert_eq!(page.code, 200);
    let html = String::from_utf8_lossy(&page.body);
    assert!(html.contains(&format!("id=\"alert-{id}\"")), "{html}");
    assert_eq!(get(http, &path(snap_url), &[&cookie]).code, 200);
    assert_eq!(get(http, "/api/walk/frame.jpg", &[&cookie]).code, 200);
    assert_eq!(get(http, "/api/walk/frame.jpg", &[]).code, 401);
    assert_eq!(
        get(http, "/", &["Cookie: scenewatch_session=forged"]).code,
        401
    );

    // nothing outside the media directory, however the path is spelled
    std::fs::write(cfg.dir.path().join("outside.jpg"), "root:x:0:0").expect("outside file");
    for p in [
        "/api/../../../../etc/passwd",
        "/api/walk/../../outside.jpg",
        "/api/..%2F..%2Foutside/latest.jpg",
        "/api/%2e%2e/latest.jpg",
        "/api/walk/alerts/..%2F..%2F..%2Fetc%2Fpasswd/snapshot.jpg",
        &format!("/api/walk/alerts/{id}/..%2F..%2Foutside.jpg"),
        "/api/walk/alerts/%2e%2e%2f%2e%2e%2foutside/snapshot.jpg",
        "/api/walk/alerts/00000000-0000/snapshot.jpg",
        "/etc/passwd",
    ] {
        let r = get(http, p, &[&auth]);
        assert!(
            r.code == 404 || r.code == 400,
            "{p}: {} {}",
            r.code,
            String::from_utf8_lossy(&r.body)
        );
        assert!(!String::from_utf8_lossy(&r.body).contains("root:"), "{p}");
    }
    // the latest frame, asked for over MQTT
    rec.publish("md/walk/set", b"{\"snapshot\": true}");
    rec.wait_for("latest snapshot", Duration::from_secs(10), |m| {
        m.iter().any(|m| m.topic == "md/walk/latest/snapshot")
    });
    let latest = get(http, "/api/walk/latest.jpg", &[&auth]);
    assert_eq!(latest.code, 200);
    assert!(latest.body.starts_with(&[0xFF, 0xD8]));
    // /metrics and /healthz stay open (Prometheus, probes)
    assert_eq!(get(http, "/metrics", &[]).code, 200);
    assert_eq!(get(http, "/healthz", &[]).code, 200);

    d.signal("TERM");
    let (code, log) = d.wait(Duration::from_secs(60));
    assert_eq!(code, Some(0), "{log}");
    assert!(!log.contains(token), "the token is never logged");
}
