//! The web page at the HTTP listener, looked at in a real browser: the daemon runs on vtest.avi with a broker, a
//! person rule and a prompt; once an alert is on MQTT, Debian's Chromium (headless, installed by scripts/deps.sh)
//! loads the page. Its DOM must show the alert published on MQTT (id and summary), its snapshot and clip URLs must
//! resolve, the camera's state, fps and execution provider must be there with the prompt's sparkline, and the
//! screenshot must be a real picture (kept at `$SCENEWATCH_CACHE/screenshots/web_page.png`, printed). Home
//! Assistant's device link defaults to the page. The token
//! and cookie side of the page is tested in tests/media_api.rs, on the daemon that has a token.

mod common;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// One HTTP/1.1 GET: (status, content type, body).
fn get(port: u16, path: &str) -> (u16, String, Vec<u8>) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .expect("request");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("response");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header block");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let ctype = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default();
    (code, ctype, raw[split + 4..].to_vec())
}

/// Runs Debian's Chromium headless with `args` on `url`; returns its stdout.
fn chromium(profile: &std::path::Path, args: &[&str], url: &str) -> String {
    let child = Command::new("chromium")
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--hide-scrollbars",
            "--mute-audio",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("chromium must be installed (scripts/deps.sh installs Debian's chromium)");
    let out = wait_with_timeout(child, Duration::from_secs(120));
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// Text as Chromium writes it into the DOM it dumps, read back.
fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&nbsp;", "\u{a0}")
        .replace("&amp;", "&")
}

/// The text between `start` (after its first occurrence at or after `from`) and the next `end`.
fn between<'a>(s: &'a str, from: usize, start: &str, end: &str) -> Option<&'a str> {
    let i = s[from..].find(start)? + from + start.len();
    let j = s[i..].find(end)? + i;
    Some(&s[i..j])
}

fn screenshot_path() -> PathBuf {
    std::env::var_os("SCENEWATCH_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/scenewatch"))
        .join("screenshots/web_page.png")
}

#[test]
fn the_page_in_chromium_shows_the_alert_published_on_mqtt() {
    let broker = Broker::start();
    let rec = Recorder::start(broker.port, "wp/#");
    let ha = Recorder::start(broker.port, "homeassistant/#");
    let http = free_port();
    let prompt = "people walking on a path";
    let body = format!(
        "[metrics]\nlisten = \"127.0.0.1:{http}\"\nmedia = true\n\n[homeassistant]\nenabled = true\n\n[[cameras]]\nname = \"walk\"\nurl = \"{}\"\n\
         sample_fps = 2.0\nrealtime = true\n[[cameras.rules]]\nlabel = \"person\"\n\
         [[cameras.prompts]]\ntext = \"{prompt}\"\nthreshold = 0.65\n",
        media("vtest.avi").display()
    );
    let cfg = write_config(broker.port, "wp", &body);
    let mut d = Daemon::spawn(&cfg.path, &[]);
    rec.wait_for(
        "a person alert with snapshot and recording",
        Duration::from_secs(90),
        |m| {
            m.iter().any(|m| {
                m.topic == "wp/walk/alerts"
                    && m.json()["kind"] == "label"
                    && m.json()["snapshot"]["url"].is_string()
                    && m.json()["recording"]["url"].is_string()
            })
        },
    );
    let alert = rec
        .on("wp/walk/alerts")
        .into_iter()
        .map(|m| m.json())
        .find(|a| a["kind"] == "label" && a["recording"]["url"].is_string())
        .expect("alert");
    let id = alert["id"].as_str().expect("id").to_string();
    // a line needs two scores: the alert can come with the first clip
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, _, page) = get(http, "/");
        let page = String::from_utf8_lossy(&page).to_string();
        let scored = between(&page, 0, "<polyline", "/>")
            .and_then(|p| between(p, 0, "points=\"", "\""))
            .is_some_and(|p| p.split_whitespace().count() >= 2);
        if scored {
            break;
        }
        assert!(Instant::now() < deadline, "no second score: {page}");
        std::thread::sleep(Duration::from_millis(500));
    }
    let profile = tempfile::tempdir().expect("profile dir");
    let url = format!("http://127.0.0.1:{http}/");

    // the DOM as the browser built it
    let dom = chromium(profile.path(), &["--dump-dom"], &url);
    let at = dom
        .find(&format!("id=\"alert-{id}\""))
        .unwrap_or_else(|| panic!("alert {id} is not on the page:\n{dom}"));
    let summary = unescape(between(&dom, at, "<p class=\"summary\">", "</p>").expect("summary"));
    // the page shows the alert's latest message: one the broker delivered (an update may still be on its way)
    rec.wait_for("the page's summary on MQTT", Duration::from_secs(15), |m| {
        m.iter().any(|m| {
            m.topic == "wp/walk/alerts"
                && m.json()["id"] == id.as_str()
                && m.json()["summary"] == summary.as_str()
        })
    });
    assert!(!summary.is_empty());
    // its snapshot and clip, as the page links them, resolve
    let snap = between(&dom, at, "<img class=\"snapshot\"", ">")
        .and_then(|tag| between(tag, 0, "src=\"", "\""))
        .expect("snapshot img");
    assert_eq!(snap, format!("api/walk/alerts/{id}/snapshot.jpg"));
    let (code, ctype, jpeg) = get(http, &format!("/{snap}"));
    assert_eq!((code, ctype.as_str()), (200, "image/jpeg"));
    assert!(jpeg.starts_with(&[0xFF, 0xD8]));
    let clip = between(&dom, at, "<video class=\"clip\"", ">")
        .and_then(|tag| between(tag, 0, "src=\"", "\""))
        .expect("clip player");
    assert_eq!(clip, format!("api/walk/alerts/{id}/clip.mp4"));
    assert!(
        between(&dom, at, "<video", ">").is_some_and(|t| t.contains("controls")),
        "a player with controls"
    );
    let (code, ctype, _) = get(http, &format!("/{clip}"));
    assert_eq!((code, ctype.as_str()), (200, "video/mp4"));

    // the camera: state, fps, provider, latest frame, the prompt's sparkline
    let cam = dom.find("data-camera=\"walk\"").expect("the camera's card");
    let card = &dom[cam..cam + dom[cam..].find("</section>").expect("card end")];
    assert!(
        card.contains("class=\"state state-running\">running<"),
        "{card}"
    );
    let fps: f64 = between(card, 0, "<span class=\"fps\">", " fps")
        .and_then(|f| f.parse().ok())
        .expect("fps");
    assert!(fps > 0.5 && fps < 4.0, "sampled at 2 fps: {fps}");
    assert!(card.contains("CPUExecutionProvider"), "{card}");
    let frame = between(card, 0, "<img class=\"frame\"", ">")
        .and_then(|tag| between(tag, 0, "src=\"", "\""))
        .expect("latest frame")
        .replace("&amp;", "&");
    let (code, ctype, jpeg) = get(http, &format!("/{frame}"));
    assert_eq!((code, ctype.as_str()), (200, "image/jpeg"));
    let img = image::load_from_memory(&jpeg).expect("a JPEG");
    assert_eq!(
        (img.width(), img.height()),
        (480, 360),
        "vtest's 768x576 scaled"
    );
    let spark = card
        .find(&format!("data-prompt=\"{prompt}\""))
        .expect("the prompt's sparkline");
    let points = between(card, spark, "<polyline", "</svg>")
        .and_then(|p| between(p, 0, "points=\"", "\""))
        .expect("polyline");
    assert!(
        points.split_whitespace().count() >= 2,
        "a line of scores: {points}"
    );
    assert!(dom.contains("href=\"metrics\""), "a link to /metrics");
    assert_eq!(get(http, "/metrics").0, 200);
    // Home Assistant's device link is the page (no [homeassistant] configuration_url set)
    let devices: Vec<serde_json::Value> = ha
        .all()
        .iter()
        .filter(|m| m.topic.ends_with("/config") && !m.payload.is_empty())
        .map(|m| m.json()["device"].clone())
        .collect();
    assert!(!devices.is_empty(), "discovery configs");
    for dev in devices {
        assert_eq!(dev["configuration_url"], url.as_str(), "{dev}");
    }

    // what the page looks like
    let png = screenshot_path();
    std::fs::create_dir_all(png.parent().expect("parent")).expect("screenshot dir");
    let _ = std::fs::remove_file(&png);
    let started = Instant::now();
    chromium(
        profile.path(),
        &[
            &format!("--screenshot={}", png.display()),
            "--window-size=1280,1600",
            "--virtual-time-budget=5000",
        ],
        &url,
    );
    let bytes = std::fs::read(&png).expect("screenshot written");
    let shot = image::load_from_memory(&bytes).expect("a PNG").to_rgb8();
    assert_eq!(shot.dimensions(), (1280, 1600));
    let colours: std::collections::HashSet<[u8; 3]> = shot.pixels().map(|p| p.0).collect();
    assert!(
        bytes.len() > 50_000 && colours.len() > 1000,
        "a page with pictures, not a blank one: {} bytes, {} colours",
        bytes.len(),
        colours.len()
    );
    println!(
        "screenshot: {} ({} bytes, {} colours, {:.1} s)",
        png.display(),
        bytes.len(),
        colours.len(),
        started.elapsed().as_secs_f64()
    );

    d.signal("TERM");
    let (code, log) = d.wait(Duration::from_secs(60));
    assert_eq!(code, Some(0), "{log}");
}
