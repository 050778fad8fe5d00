//! The page's HTML, rendered by hand from plain data: every camera with its latest frame, state, sampled fps and
//! the models' execution providers; each camera's prompt scores over the last hour as inline SVG sparklines; the
//! recent alerts with snapshot, summary text and a clip player; links to `/metrics` and `/healthz`. Every string
//! that comes from a config or an alert goes through [`esc`]; URLs are relative, so the page works behind a
//! reverse proxy that serves it under a path of its own.

use std::fmt::Write;

use chrono::{DateTime, Utc};

use super::board::{BoardView, Series, SCORE_WINDOW};
use crate::telemetry::CameraFigures;

/// Seconds between two reloads of the page (skipped while a clip is playing).
pub const REFRESH_SECS: u32 = 15;

/// HTML-escapes text for element content and quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Percent-encodes one URL path segment (camera names and ids are plain already; this keeps it so).
fn seg(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// What one page shows.
pub struct Page<'a> {
    pub cameras: &'a [CameraFigures],
    /// (model, execution provider) of each loaded model.
    pub models: &'a [(String, String)],
    pub board: &'a BoardView,
    pub now: DateTime<Utc>,
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;background:#f4f5f7;color:#1d2430}\
header{background:#1d2430;color:#fff;padding:10px 20px;display:flex;gap:20px;align-items:baseline}\
header h1{font-size:20px;margin:0}header a{color:#9cc3ff}main{padding:12px 20px}\
h2{font-size:17px;margin:18px 0 8px}.grid{display:flex;flex-wrap:wrap;gap:14px}\
.card{background:#fff;border-radius:8px;box-shadow:0 1px 3px #0002;padding:10px;width:380px}\
.card img.frame{width:100%;border-radius:4px;background:#ddd;min-height:40px}\
.state{display:inline-block;padding:1px 8px;border-radius:10px;font-size:13px;background:#ddd}\
.state-running{background:#c8f0d0}.state-retrying,.state-starting{background:#ffe7a8}\
.state-error{background:#ffc9c9}.meta{font-size:13px;color:#555;margin:4px 0}\
.spark{display:flex;align-items:center;gap:8px;font-size:13px}.spark svg{background:#f7f8fa;border:1px solid #e1e4e8}\
.alert{background:#fff;border-radius:8px;box-shadow:0 1px 3px #0002;padding:10px;margin-bottom:12px;display:flex;gap:12px;flex-wrap:wrap}\
.alert img,.alert video{width:360px;border-radius:4px;background:#ddd}.alert .text{flex:1;min-width:260px}\
.summary{font-size:15px;margin:6px 0}.none{color:#777}";

/// The whole page.
pub fn render(p: &Page) -> String {
    let mut h = String::with_capacity(16 * 1024);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>scenewatch</title><style>{STYLE}</style></head><body>\
         <header><h1>scenewatch</h1><span>{} UTC</span><a href=\"metrics\">/metrics</a>\
         <a href=\"healthz\">/healthz</a></header><main>",
        p.now.format("%Y-%m-%d %H:%M:%S")
    );
    cameras(&mut h, p);
    alerts(&mut h, p);
    let _ = writeln!(
        h,
        "</main><script>\
         setInterval(function(){{var playing=Array.prototype.some.call(document.querySelectorAll('video'),\
         function(v){{return !v.paused;}});if(!playing)location.reload();}},{});\
         </script></body></html>",
        REFRESH_SECS * 1000
    );
    h
}

fn cameras(h: &mut String, p: &Page) {
    let mut cams: Vec<&CameraFigures> = p.cameras.iter().collect();
    cams.sort_by(|a, b| a.name.cmp(&b.name));
    let _ = write!(h, "<h2>Cameras</h2><div class=\"grid\" id=\"cameras\">");
    if cams.is_empty() {
        h.push_str("<p class=\"none\">No camera is running.</p>");
    }
    let providers = p
        .models
        .iter()
        .map(|(m, prov)| format!("{}: {}", esc(m), esc(prov)))
        .collect::<Vec<_>>()
        .join(", ");
    for c in cams {
        let name = esc(&c.name);
        let _ = write!(
            h,
            "<section class=\"card camera\" data-camera=\"{name}\"><h3>{name} \
             <span class=\"state state-{st}\">{st}</span></h3>",
            st = esc(c.state)
        );
        if p.board.frames.contains(&c.name) {
            // the query makes each reload fetch the frame anew
            let _ = write!(
                h,
                "<img class=\"frame\" alt=\"latest frame of {name}\" src=\"api/{}/frame.jpg?at={}\">",
                seg(&c.name),
                p.now.timestamp_millis()
            );
        } else {
            h.push_str("<p class=\"none\">No frame inferred yet.</p>");
        }
        let _ = write!(
            h,
            "<p class=\"meta\"><span class=\"fps\">{:.2} fps sampled</span> · {} frames decoded · {} dropped</p>\
             <p class=\"meta providers\">{providers}</p>",
            c.sampled_fps, c.decoded, c.dropped
        );
        if let Some(prompts) = p.board.scores.get(&c.name) {
            for (text, series) in prompts {
                let last = series.points.back().map_or(0.0, |(_, s)| *s);
                let _ = write!(
                    h,
                    "<div class=\"spark\" data-prompt=\"{t}\">{}<span>{t} <b>{last:.2}</b></span></div>",
                    sparkline(series, p.now),
                    t = esc(text)
                );
            }
        }
        h.push_str("</section>");
    }
    h.push_str("</div>");
}

fn alerts(h: &mut String, p: &Page) {
    let _ = write!(h, "<h2>Recent alerts</h2><div id=\"alerts\">");
    if p.board.alerts.is_empty() {
        h.push_str("<p class=\"none\">No alert since scenewatch started.</p>");
    }
    for (i, a) in p.board.alerts.iter().enumerate() {
        let base = format!("api/{}/alerts/{}", seg(&a.camera), seg(&a.id));
        let _ = write!(
            h,
            "<article class=\"alert\" id=\"alert-{id}\" data-id=\"{id}\" data-camera=\"{cam}\">",
            id = esc(&a.id),
            cam = esc(&a.camera)
        );
        if a.snapshot {
            let _ = write!(
                h,
                "<a href=\"{base}/snapshot.jpg\"><img class=\"snapshot\" loading=\"{}\" alt=\"snapshot of alert {}\" src=\"{base}/snapshot.jpg\"></a>",
                // the first ones are on screen; the rest load as they are scrolled to
                if i < 4 { "eager" } else { "lazy" },
                esc(&a.id)
            );
        }
        if let Some(ext) = a.clip {
            let _ = write!(
                h,
                "<video class=\"clip\" controls preload=\"metadata\" src=\"{base}/clip.{ext}\"></video>"
            );
        }
        let _ = write!(
            h,
            "<div class=\"text\"><div class=\"meta\"><b>{cam}</b> · {kind} <b>{rule}</b> · \
             <span class=\"alert-state\">{state}</span> · score {score:.2} · since {start}{end}</div>\
             <p class=\"summary\">{summary}</p><div class=\"meta\">id <code>{id}</code></div></div></article>",
            cam = esc(&a.camera),
            kind = esc(a.kind),
            rule = esc(&a.rule),
            state = esc(a.state),
            score = a.score,
            start = esc(&a.started_at),
            end = a
                .ended_at
                .as_deref()
                .map(|e| format!(" until {}", esc(e)))
                .unwrap_or_default(),
            summary = esc(&a.summary),
            id = esc(&a.id),
        );
    }
    h.push_str("</div>");
}

/// Sparkline size in CSS pixels.
const W: f64 = 240.0;
const H: f64 = 40.0;

/// One prompt's scores over the hour up to `end` as an inline SVG: the score line (0 at the bottom, 1 at the
/// top), the latest score as a dot and the threshold as a dashed line. Points before the hour are left out; a
/// history shorter than the hour (a camera that started lately) spans the whole width.
pub fn sparkline(s: &Series, end: DateTime<Utc>) -> String {
    let first = s.points.front().map_or(end, |(t, _)| *t);
    let start = (end - SCORE_WINDOW).max(first.min(end - chrono::TimeDelta::minutes(1)));
    let window = (end - start).num_milliseconds().max(1) as f64;
    let y = |v: f32| H - (v.clamp(0.0, 1.0) as f64) * H;
    let points: Vec<String> = s
        .points
        .iter()
        .filter(|(t, _)| *t >= start && *t <= end)
        .map(|(t, v)| {
            let x = (*t - start).num_milliseconds() as f64 / window * W;
            format!("{x:.1},{:.1}", y(*v))
        })
        .collect();
    let ty = y(s.threshold);
    // the latest score as a dot, so that a single score (the first clip) shows too
    let dot = points
        .last()
        .and_then(|p| p.split_once(','))
        .map(|(x, y)| format!("<circle cx=\"{x}\" cy=\"{y}\" r=\"2.5\" fill=\"#2563eb\"/>"))
        .unwrap_or_default();
    format!(
        "<svg class=\"sparkline\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" role=\"img\">\
         <title>{} scores over the last {} min</title>\
         <line x1=\"0\" y1=\"{ty:.1}\" x2=\"{W}\" y2=\"{ty:.1}\" stroke=\"#d33\" stroke-dasharray=\"4 3\" stroke-width=\"1\"/>\
         <polyline fill=\"none\" stroke=\"#2563eb\" stroke-width=\"1.5\" points=\"{}\"/>{dot}</svg>",
        points.len(),
        (window / 60_000.0).round(),
        points.join(" ")
    )
}

/// The token form, for a browser that has no session cookie yet (`failed`: a wrong token was sent).
pub fn login(failed: bool) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>scenewatch: sign in</title>\
         <style>{STYLE}</style></head><body><header><h1>scenewatch</h1></header><main>\
         <h2>This page needs the media API's token</h2>{}\
         <form method=\"post\" action=\"login\"><input type=\"password\" name=\"token\" autocomplete=\"current-password\" \
         size=\"40\" autofocus> <button type=\"submit\">Open</button></form>\
         <p class=\"meta\">The token is <code>[metrics] token</code> (or <code>token_file</code>). It is kept in a \
         cookie for this site only.</p></main></body></html>\n",
        if failed {
            "<p class=\"summary\" id=\"wrong\">That token is not the right one.</p>"
        } else {
            ""
        }
    )
}

#[cfg(test)]
mod tests {
    use super::super::board::AlertRow;
    use super::*;

    fn figures(name: &str, state: &'static str) -> CameraFigures {
        CameraFigures {
            name: name.into(),
            state,
            decoded: 100,
            sampled: 20,
            dropped: 0,
            queue_depth: 0,
            sampled_fps: 2.0,
        }
    }

    #[test]
    fn every_config_and_alert_string_is_escaped() {
        let evil = "<script>alert(1)</script>\"'&";
        let mut board = BoardView::default();
        board.alerts.push(AlertRow {
            id: "0123abcd-\"><script>".into(),
            camera: evil.into(),
            kind: "prompt",
            rule: evil.into(),
            state: "new",
            summary: format!("a prompt {evil} matched"),
            started_at: evil.into(),
            ended_at: Some(evil.into()),
            score: 0.8,
            snapshot: true,
            clip: Some("mp4"),
        });
        let mut series = Series {
            threshold: 0.5,
            ..Default::default()
        };
        let now = DateTime::<Utc>::UNIX_EPOCH + chrono::TimeDelta::hours(2);
        series.points.push_back((now, 0.7));
        board
            .scores
            .entry(evil.into())
            .or_default()
            .insert(evil.into(), series);
        board.frames.push(evil.into());
        let cams = [figures(evil, "running")];
        let models = [(evil.to_string(), "CPUExecutionProvider".to_string())];
        let html = render(&Page {
            cameras: &cams,
            models: &models,
            board: &board,
            now,
        });
        assert_eq!(
            html.matches("<script>").count(),
            1,
            "only the page's own script: {html}"
        );
        assert!(!html.contains("alert(1)</script>"));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&amp;"));
        // in URLs the camera and id are percent-encoded
        assert!(html.contains("api/%3Cscript%3Ealert%281%29%3C%2Fscript%3E%22%27%26/frame.jpg"));
        assert!(html.contains("/alerts/0123abcd-%22%3E%3Cscript%3E/clip.mp4"));
    }

    #[test]
    fn the_page_shows_cameras_alerts_and_sparklines() {
        let now = DateTime::<Utc>::UNIX_EPOCH + chrono::TimeDelta::hours(5);
        let mut board = BoardView::default();
        board.alerts.push(AlertRow {
            id: "0123abcd-1111".into(),
            camera: "gate".into(),
            kind: "label",
            rule: "person".into(),
            state: "end",
            summary: "1 person at the gate".into(),
            started_at: "2026-12-01T10:00:00Z".into(),
            ended_at: Some("2026-12-01T10:01:00Z".into()),
            score: 0.91,
            snapshot: true,
            clip: None,
        });
        let mut series = Series {
            threshold: 0.6,
            ..Default::default()
        };
        for i in 0..4 {
            // the first one is older than the hour shown
            series.points.push_back((
                now - chrono::TimeDelta::minutes(90 - 30 * i),
                0.25 * i as f32,
            ));
        }
        board
            .scores
            .entry("gate".into())
            .or_default()
            .insert("a dog".into(), series.clone());
        board.frames.push("gate".into());
        let cams = [figures("gate", "running"), figures("yard", "retrying")];
        let models = [("detector".to_string(), "CUDAExecutionProvider".to_string())];
        let html = render(&Page {
            cameras: &cams,
            models: &models,
            board: &board,
            now,
        });
        for want in [
            "data-camera=\"gate\"",
            "state-running\">running",
            "state-retrying\">retrying",
            "2.00 fps sampled",
            "detector: CUDAExecutionProvider",
            "src=\"api/gate/frame.jpg?at=",
            "id=\"alert-0123abcd-1111\"",
            "src=\"api/gate/alerts/0123abcd-1111/snapshot.jpg\"",
            "<p class=\"summary\">1 person at the gate</p>",
            "href=\"metrics\"",
            "data-prompt=\"a dog\"",
        ] {
            assert!(html.contains(want), "{want} in {html}");
        }
        assert!(!html.contains("<video"), "no recording, no player");
        assert_eq!(
            html.matches("No frame inferred yet").count(),
            1,
            "yard has none"
        );
        // the line: 3 points in the hour (0.25 an hour ago at x 0, y 30; 0.5 at x 120; 0.75 now), the threshold at y 16
        let svg = sparkline(&series, now);
        assert!(
            svg.contains("points=\"0.0,30.0 120.0,20.0 240.0,10.0\""),
            "{svg}"
        );
        assert!(svg.contains("y1=\"16.0\""), "{svg}");
        assert!(
            svg.contains("<circle cx=\"240.0\" cy=\"10.0\""),
            "the latest: {svg}"
        );
        // ten minutes of history fill the width
        let short = Series {
            threshold: 0.5,
            points: [(now - chrono::TimeDelta::minutes(10), 0.0), (now, 1.0)].into(),
        };
        assert!(
            sparkline(&short, now).contains("points=\"0.0,40.0 240.0,0.0\""),
            "{}",
            sparkline(&short, now)
        );
        assert!(login(true).contains("id=\"wrong\"") && !login(false).contains("id=\"wrong\""));
    }
}
