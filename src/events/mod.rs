//! Events stage (async task): applies each camera's rules to clip results in order and turns the resulting
//! alert lifecycle messages into outbound MQTT messages. Ends when inference closes its channel.

pub mod prompts;
pub mod rules;
pub mod schedule;
pub mod snapshot;
pub mod summary;
pub mod track;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::config::CameraConfig;
use crate::control::Command;
use crate::infer::worker::InferOut;
use crate::infer::{ClipResult, FrameResult};
use crate::publish::topics::Topics;
use crate::publish::OutMsg;
use crate::telemetry::Metrics;
use prompts::{PromptObs, PromptState};
use rules::{Alert, RuleState};
use schedule::Schedule;

/// Per-camera rule states and runtime switches (detection off, disarmed rules).
pub struct Engine {
    cameras: HashMap<String, Vec<RuleState>>,
    prompts: HashMap<String, Vec<PromptState>>,
    /// Cameras whose detection was switched off by a command.
    detect_off: HashSet<String>,
    /// Per camera: rules (labels or prompt texts) disarmed by a command.
    disarmed: HashMap<String, HashSet<String>>,
    new_id: Box<dyn FnMut() -> String + Send>,
    /// Period summaries (None = off) and the ones ready to publish.
    summary_period: Option<f64>,
    summaries: HashMap<String, summary::SummaryState>,
    ready: Vec<summary::Summary>,
}

impl Engine {
    pub fn new(cameras: &[CameraConfig], new_id: Box<dyn FnMut() -> String + Send>) -> Self {
        let mut e = Self {
            cameras: HashMap::new(),
            prompts: HashMap::new(),
            detect_off: HashSet::new(),
            disarmed: HashMap::new(),
            new_id,
            summary_period: None,
            summaries: HashMap::new(),
            ready: Vec::new(),
        };
        for c in cameras {
            e.install(c);
        }
        e
    }

    /// Turns on period summaries (seconds of stream time per period).
    pub fn with_summaries(mut self, period_secs: Option<f64>) -> Self {
        self.summary_period = period_secs;
        self
    }

    /// Summaries completed since the last call.
    pub fn take_summaries(&mut self) -> Vec<summary::Summary> {
        std::mem::take(&mut self.ready)
    }

    fn end_summary(&mut self, camera: &str) {
        if let Some(s) = self.summaries.get_mut(camera).and_then(|s| s.finish()) {
            self.ready.push(s);
        }
    }

    fn install(&mut self, c: &CameraConfig) {
        let name: Arc<str> = Arc::from(c.name.as_str());
        self.cameras.insert(
            c.name.clone(),
            c.effective_rules()
                .into_iter()
                .map(|r| {
                    let zones = c
                        .zones
                        .iter()
                        .filter(|z| r.zones.contains(&z.name))
                        .cloned()
                        .collect();
                    // validated at load; an unparsable schedule (never reached) means always
                    let schedule = Schedule::parse(&c.timezone, &r.schedule)
                        .unwrap_or_else(|_| Schedule::always());
                    RuleState::with_zones(name.clone(), r, zones).with_schedule(schedule)
                })
                .collect(),
        );
        self.prompts.insert(
            c.name.clone(),
            c.prompts
                .iter()
                .map(|p| PromptState::new(name.clone(), p.clone()))
                .collect(),
        );
    }

    /// Ends every open alert of `camera` whose rule matches `which` (None = all).
    fn finish(&mut self, camera: &str, which: Option<&str>) -> Vec<Alert> {
        let mut out = Vec::new();
        if let Some(rules) = self.cameras.get_mut(camera) {
            out.extend(
                rules
                    .iter_mut()
                    .filter(|r| which.is_none_or(|w| r.rule.name() == w))
                    .filter_map(|r| r.finish()),
            );
        }
        if let Some(states) = self.prompts.get_mut(camera) {
            out.extend(
                states
                    .iter_mut()
                    .filter(|p| which.is_none_or(|w| p.cfg.text == w))
                    .filter_map(|p| p.finish()),
            );
        }
        out
    }

    /// Replaces (Some) or removes (None) a camera's rules after a reload; its open alerts end first.
    pub fn configure(&mut self, camera: &str, cfg: Option<&CameraConfig>) -> Vec<Alert> {
        let out = self.finish(camera, None);
        self.end_summary(camera);
        self.summaries.remove(camera);
        self.cameras.remove(camera);
        self.prompts.remove(camera);
        self.detect_off.remove(camera);
        self.disarmed.remove(camera);
        if let Some(c) = cfg {
            self.install(c);
        }
        out
    }

    /// Applies a `set` command; switching something off ends the alerts it had open.
    pub fn command(&mut self, camera: &str, cmd: &Command) -> Vec<Alert> {
        match cmd {
            // handled by the events task (it needs the latest frame), changes no rule state
            Command::Snapshot => Vec::new(),
            Command::Detect(true) => {
                self.detect_off.remove(camera);
                Vec::new()
            }
            Command::Detect(false) => {
                self.detect_off.insert(camera.to_string());
                self.finish(camera, None)
            }
            Command::Arm { rule, armed: true } => {
                if let Some(d) = self.disarmed.get_mut(camera) {
                    d.remove(rule);
                }
                Vec::new()
            }
            Command::Arm { rule, armed: false } => {
                self.disarmed
                    .entry(camera.to_string())
                    .or_default()
                    .insert(rule.clone());
                self.finish(camera, Some(rule))
            }
        }
    }

    /// Alerts caused by one inference output, in order.
    pub fn handle(&mut self, msg: &InferOut) -> Vec<Alert> {
        let mut out = Vec::new();
        match msg {
            InferOut::Result(r) => {
                // a clip inferred before detection was switched off must not re-open an alert
                if self.detect_off.contains(&*r.camera) {
                    return out;
                }
                let disarmed = self.disarmed.get(&*r.camera);
                let armed = |name: &str| disarmed.is_none_or(|d| !d.contains(name));
                let Some(rules) = self.cameras.get_mut(&*r.camera) else {
                    return out;
                };
                let mut counts = Vec::new();
                for rule in rules.iter_mut().filter(|r| armed(&r.rule.name())) {
                    let obs = rule.observe(
                        r.clip_index,
                        r.start.as_secs_f64(),
                        r.end.as_secs_f64(),
                        &r.frames,
                    );
                    counts.push((
                        rule.rule.name(),
                        obs.frames.iter().map(|f| f.count).max().unwrap_or(0),
                    ));
                    out.extend(rule.on_clip(&obs, &mut *self.new_id));
                }
                if let (Some(states), Some(scores)) =
                    (self.prompts.get_mut(&*r.camera), r.prompts.as_ref())
                {
                    for state in states.iter_mut().filter(|p| armed(&p.cfg.text)) {
                        let Some(k) = scores.texts.iter().position(|t| *t == state.cfg.text) else {
                            continue;
                        };
                        let per_frame = scores.frame_scores(k);
                        let obs = PromptObs {
                            index: r.clip_index,
                            start: r.start.as_secs_f64(),
                            end: r.end.as_secs_f64(),
                            score: scores.clip[k],
                            frames: r
                                .frames
                                .iter()
                                .zip(per_frame)
                                .map(|(f, s)| (f.pts.as_secs_f64(), f.wall, s))
                                .collect(),
                        };
                        out.extend(state.on_clip(&obs, &mut *self.new_id));
                    }
                }
                if let Some(period) = self.summary_period {
                    let facts = summary::ClipFacts {
                        start: r.start.as_secs_f64(),
                        end: r.end.as_secs_f64(),
                        wall_start: r.frames.first().map(|f| f.wall).unwrap_or_default(),
                        wall_end: r.frames.last().map(|f| f.wall).unwrap_or_default(),
                        counts,
                        prompts: r
                            .prompts
                            .as_ref()
                            .map(|p| {
                                p.texts
                                    .iter()
                                    .cloned()
                                    .zip(p.clip.iter().copied())
                                    .collect()
                            })
                            .unwrap_or_default(),
                    };
                    let state = self
                        .summaries
                        .entry(r.camera.to_string())
                        .or_insert_with(|| summary::SummaryState::new(&r.camera, period));
                    if let Some(s) = state.on_clip(&facts, &out) {
                        self.ready.push(s);
                    }
                }
            }
            InferOut::CameraEnded { camera } => {
                out = self.finish(camera, None);
                self.end_summary(camera);
            }
            InferOut::Configure { camera, config } => {
                out = self.configure(camera, config.as_deref());
            }
        }
        out
    }
}

/// Each camera's alert recorder, shared by the camera starter (which replaces them on reload) and this stage.
pub type Recorders = Arc<std::sync::Mutex<HashMap<String, Arc<crate::ingest::recorder::Recorder>>>>;

/// What the events stage attaches to alerts as evidence.
pub struct Evidence {
    pub snapshots: Option<Snapshots>,
    /// Recorders and the media directory their files go to (None = recordings off).
    pub recordings: Option<(Recorders, std::path::PathBuf)>,
}

/// Starts, references and stops alert recordings.
struct Recordings {
    recorders: Recorders,
    dir: std::path::PathBuf,
    topics: Topics,
    /// Open alert id → where its recording goes.
    open: HashMap<String, rules::RecordingRef>,
}

impl Recordings {
    async fn on_alert(
        &mut self,
        alert: &Alert,
        clip: Option<&ClipResult>,
    ) -> Option<rules::RecordingRef> {
        let rec = self
            .recorders
            .lock()
            .ok()
            .and_then(|r| r.get(&alert.camera).cloned())?;
        match alert.kind_of_message {
            rules::AlertType::New => {
                let wall = clip
                    .and_then(|c| c.frames.first())
                    .map(|f| f.wall)
                    .unwrap_or_else(chrono::Utc::now);
                let path = snapshot::media_path(
                    &self.dir,
                    &alert.camera,
                    &alert.label,
                    &alert.id,
                    wall,
                    "mkv",
                );
                let (id, from) = (
                    alert.id.clone(),
                    std::time::Duration::from_secs_f64(alert.stream_start.max(0.0)),
                );
                // builds a small GStreamer pipeline and writes the pre-roll: blocking work
                match tokio::task::spawn_blocking(move || rec.start(&id, path, from)).await {
                    Ok(Ok(path)) => {
                        let r = rules::RecordingRef {
                            path: path.display().to_string(),
                            topic: self.topics.recordings(&alert.camera),
                        };
                        self.open.insert(alert.id.clone(), r.clone());
                        Some(r)
                    }
                    Ok(Err(e)) => {
                        tracing::warn!(camera = %alert.camera, id = %alert.id, error = %e, "no recording for this alert");
                        None
                    }
                    Err(_) => None,
                }
            }
            rules::AlertType::Update => self.open.get(&alert.id).cloned(),
            rules::AlertType::End => {
                let r = self.open.remove(&alert.id)?;
                let at = alert.stream_end.unwrap_or(alert.stream_start).max(0.0);
                rec.stop(&alert.id, std::time::Duration::from_secs_f64(at));
                Some(r)
            }
        }
    }
}

/// Snapshot settings for the events stage (None = snapshots off).
#[derive(Debug, Clone)]
pub struct Snapshots {
    pub dir: std::path::PathBuf,
    pub quality: u8,
}

/// Takes alert snapshots: on `new`, and on `update` when the score beat the last snapshot's by 0.02.
struct Snapshotter {
    cfg: Snapshots,
    topics: Topics,
    /// Per open alert id: the score of its current snapshot.
    best: HashMap<String, f32>,
    /// Per camera: the latest clip's last frame, for `{"snapshot": true}` commands.
    latest: HashMap<String, FrameResult>,
    metrics: Arc<Metrics>,
}

/// A rendered snapshot: (file, retained MQTT message, reference for the alert).
type Rendered = (std::path::PathBuf, OutMsg, snapshot::SnapshotRef);

impl Snapshotter {
    /// Renders and writes the snapshot for `alert` from `clip` on a blocking thread; None when not needed or it failed.
    async fn for_alert(&mut self, alert: &Alert, clip: &ClipResult) -> Option<Rendered> {
        if alert.kind_of_message == rules::AlertType::End {
            self.best.remove(&alert.id);
            return None;
        }
        let (idx, score, label_topic) = if alert.kind == "prompt" {
            let best = alert.frames.as_ref()?.first()?;
            (
                snapshot::frame_at(&clip.frames, best.stream_time)?,
                best.score,
                "prompt",
            )
        } else {
            let (i, s) = snapshot::best_label_frame(&clip.frames, &alert.label)?;
            (i, s, alert.rule.as_str())
        };
        let prev = self.best.get(&alert.id).copied();
        if prev.is_some_and(|p| score < p + 0.02) {
            return None;
        }
        let frame = clip.frames.get(idx)?.clone();
        let boxes: Vec<_> = frame
            .detections
            .iter()
            .filter(|d| {
                alert.kind == "prompt" || crate::infer::labels::label_matches(&alert.label, d.label)
            })
            .map(|d| d.bbox)
            .collect();
        let path = snapshot::snapshot_path(
            &self.cfg.dir,
            &alert.camera,
            &alert.label,
            &alert.id,
            frame.wall,
        );
        let topic = self.topics.snapshot(&alert.camera, label_topic);
        let r = self.render(frame, boxes, path, topic, score).await?;
        self.best.insert(alert.id.clone(), score);
        Some(r)
    }

    async fn render(
        &self,
        frame: FrameResult,
        boxes: Vec<crate::infer::detector::BBox>,
        path: std::path::PathBuf,
        topic: String,
        score: f32,
    ) -> Option<Rendered> {
        let quality = self.cfg.quality;
        let stream_time = (frame.pts.as_secs_f64() * 1000.0).round() / 1000.0;
        let p = path.clone();
        let job = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, String> {
            let jpeg =
                snapshot::render_jpeg(&frame.pixels.0, frame.width, frame.height, &boxes, quality)?;
            if let Some(dir) = p.parent() {
                std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            }
            std::fs::write(&p, &jpeg).map_err(|e| format!("{}: {e}", p.display()))?;
            Ok(jpeg)
        });
        match job.await {
            Ok(Ok(jpeg)) => {
                self.metrics.snapshots_written.inc();
                let r = snapshot::SnapshotRef {
                    path: path.display().to_string(),
                    topic: topic.clone(),
                    stream_time,
                    score: (score * 1000.0).round() / 1000.0,
                };
                Some((path, OutMsg::retained(topic, jpeg), r))
            }
            Ok(Err(e)) => {
                self.metrics.snapshot_errors.inc();
                tracing::error!(error = %e, "snapshot failed; the alert goes out without one");
                None
            }
            Err(e) => {
                self.metrics.snapshot_errors.inc();
                tracing::error!(error = %e, "snapshot task failed");
                None
            }
        }
    }
}

/// Runs until inference closes `input`; `control` carries `set` commands (camera, command).
pub async fn run(
    mut engine: Engine,
    mut input: mpsc::Receiver<InferOut>,
    mut control: mpsc::Receiver<(String, Command)>,
    out: mpsc::Sender<OutMsg>,
    topics: Topics,
    metrics: Arc<Metrics>,
    evidence: Evidence,
) {
    let mut control_open = true;
    let mut recordings = evidence.recordings.map(|(recorders, dir)| Recordings {
        recorders,
        dir,
        topics: topics.clone(),
        open: HashMap::new(),
    });
    let mut snaps = evidence.snapshots.map(|cfg| Snapshotter {
        cfg,
        topics: topics.clone(),
        best: HashMap::new(),
        latest: HashMap::new(),
        metrics: metrics.clone(),
    });
    loop {
        let (alerts, clip) = tokio::select! {
            msg = input.recv() => match msg {
                Some(msg) => {
                    let alerts = engine.handle(&msg);
                    match msg {
                        InferOut::Result(r) => (alerts, Some(r)),
                        _ => (alerts, None),
                    }
                }
                None => break,
            },
            c = control.recv(), if control_open => match c {
                Some((camera, Command::Snapshot)) => {
                    if let Some(s) = snaps.as_mut() {
                        if let Some(frame) = s.latest.get(&camera).cloned() {
                            let boxes = frame.detections.iter().map(|d| d.bbox).collect();
                            let path = snapshot::snapshot_path(&s.cfg.dir, &camera, "latest", "manual", frame.wall);
                            let topic = topics.snapshot(&camera, "latest");
                            if let Some((_, msg, _)) = s.render(frame, boxes, path, topic, 0.0).await {
                                let _ = out.send(msg).await;
                            }
                        }
                    }
                    continue;
                }
                Some((camera, cmd)) => (engine.command(&camera, &cmd), None),
                None => {
                    control_open = false;
                    continue;
                }
            },
        };
        let handled = std::time::Instant::now();
        if let (Some(s), Some(r)) = (snaps.as_mut(), clip.as_ref()) {
            if let Some(last) = r.frames.last() {
                s.latest.insert(r.camera.to_string(), last.clone());
            }
        }
        for mut alert in alerts {
            if let (Some(s), Some(r)) = (snaps.as_mut(), clip.as_ref()) {
                if let Some((_, msg, sref)) = s.for_alert(&alert, r).await {
                    alert.snapshot = Some(sref);
                    let _ = out.send(msg).await;
                }
            }
            if let Some(rec) = recordings.as_mut() {
                alert.recording = rec.on_alert(&alert, clip.as_deref()).await;
            }
            if alert.kind_of_message == rules::AlertType::New {
                metrics.alerts_raised.inc();
            }
            tracing::info!(
                camera = %alert.camera,
                id = %alert.id,
                r#type = ?alert.kind_of_message,
                label = %alert.label,
                count = alert.count,
                "{}",
                alert.summary
            );
            let payload = match serde_json::to_vec(&alert) {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!(error = %e, "could not serialise an alert");
                    continue;
                }
            };
            if alert.kind == "label" {
                let count = OutMsg::retained(
                    topics.count(&alert.camera, &alert.rule),
                    alert.count.to_string().into_bytes(),
                );
                let _ = out.send(count).await;
            }
            if out
                .send(OutMsg::alert(topics.alerts(&alert.camera), payload))
                .await
                .is_err()
            {
                tracing::error!("publisher is gone; alerts can no longer be delivered");
                return;
            }
        }
        if let Some(r) = clip.as_ref() {
            metrics
                .stages
                .events
                .observe(handled.elapsed().as_secs_f64());
            let now = chrono::Utc::now();
            for f in &r.frames {
                let us = (now - f.wall).num_microseconds().unwrap_or(0).max(0);
                metrics.record_frame_latency(us as f64 / 1e6);
            }
        }
        for s in engine.take_summaries() {
            tracing::info!(camera = %s.camera, "summary: {}", s.text);
            match serde_json::to_vec(&s) {
                Ok(p) => {
                    let _ = out
                        .send(OutMsg::summary(topics.summary(&s.camera), p))
                        .await;
                }
                Err(e) => tracing::error!(error = %e, "could not serialise a summary"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::infer::detector::{BBox, Detection};
    use crate::infer::{ClipResult, ClipTimings, FrameResult};
    use rules::AlertType;

    fn camera() -> CameraConfig {
        toml::from_str(
            "name = \"cam\"\nurl = \"test://\"\n[[rules]]\nlabel = \"person\"\nmin_frames = 1\nend_after_seconds = 100.0\n",
        )
        .expect("camera config")
    }

    fn clip(index: u64, people: usize) -> InferOut {
        let t = Duration::from_secs(4 * index);
        let frames = (0..2)
            .map(|i| FrameResult {
                seq: index * 2 + i,
                pts: t + Duration::from_secs(2 * i),
                wall: chrono::DateTime::UNIX_EPOCH,
                width: 640,
                height: 480,
                detections: (0..people)
                    .map(|_| Detection {
                        class_id: 0,
                        label: "person",
                        score: 0.9,
                        bbox: BBox {
                            x1: 10.0,
                            y1: 10.0,
                            x2: 50.0,
                            y2: 90.0,
                        },
                    })
                    .collect(),
                encoding: None,
                postures: Vec::new(),
                pose_only: Vec::new(),
                pixels: Default::default(),
            })
            .collect();
        InferOut::Result(Box::new(ClipResult {
            camera: Arc::from("cam"),
            clip_index: index,
            start: t,
            end: t + Duration::from_secs(4),
            frames,
            prompts: None,
            timings: ClipTimings::default(),
        }))
    }

    fn engine() -> Engine {
        let mut n = 0;
        Engine::new(
            &[camera()],
            Box::new(move || {
                n += 1;
                format!("id{n}")
            }),
        )
    }

    fn types(a: &[Alert]) -> Vec<AlertType> {
        a.iter().map(|a| a.kind_of_message).collect()
    }

    fn camera_with(rule_extra: &str, zones: &str) -> CameraConfig {
        toml::from_str(&format!(
            "name = \"cam\"\nurl = \"test://\"\n{zones}\n[[rules]]\nlabel = \"person\"\nmin_frames = 1\n{rule_extra}\n"
        ))
        .expect("camera config")
    }

    fn engine_for(cam: CameraConfig) -> Engine {
        Engine::new(&[cam], Box::new(|| "id".to_string()))
    }

    #[test]
    fn a_person_down_rule_counts_only_people_lying_including_those_only_the_pose_model_found() {
        use crate::infer::pose::{PoseOnly, Posture};
        let mut e = engine_for(camera_with("posture = \"lying\"", ""));
        let with = |postures: Vec<Option<Posture>>, pose_only: Vec<PoseOnly>| {
            let InferOut::Result(mut r) = clip(0, postures.len()) else {
                unreachable!("clip() makes results")
            };
            for f in r.frames.iter_mut() {
                f.postures = postures.clone();
                f.pose_only = pose_only.clone();
            }
            InferOut::Result(r)
        };
        assert!(
            e.handle(&with(vec![Some(Posture::Standing), None], vec![]))
                .is_empty(),
            "standing or unclear people are not 'down'"
        );
        let down = PoseOnly {
            bbox: BBox {
                x1: 300.0,
                y1: 400.0,
                x2: 500.0,
                y2: 460.0,
            },
            score: 0.3,
            posture: Posture::Lying,
        };
        let a = e.handle(&with(vec![Some(Posture::Standing)], vec![down]));
        assert_eq!(types(&a), vec![AlertType::New]);
        assert_eq!(a[0].count, 1);
        assert_eq!(a[0].posture, Some(Posture::Lying));
        assert!(
            a[0].summary.contains("1 person lying in view"),
            "{}",
            a[0].summary
        );
    }

    #[test]
    fn schedules_use_the_camera_time_zone() {
        // the test clips' frames are stamped 1970-01-01T00:00Z: a Thursday in UTC, Wednesday 19:00 in New York
        for (tz, window, fires) in [
            ("UTC", "thu 00:00-01:00", true),
            ("UTC", "fri 00:00-01:00", false),
            ("America/New_York", "wed 18:00-20:00", true),
            ("America/New_York", "thu 00:00-01:00", false),
            ("UTC", "wed 23:00-01:00", true),
        ] {
            let mut cam = camera_with(&format!("schedule = [\"{window}\"]"), "");
            cam.timezone = tz.into();
            let mut e = engine_for(cam);
            assert_eq!(!e.handle(&clip(0, 1)).is_empty(), fires, "{tz} {window}");
        }
    }

    #[test]
    fn a_person_walking_across_is_reported_as_crossing_left_to_right() {
        let mut e = engine_for(camera_with("", ""));
        // one person, a 200 px wide box moving 60 px per sampled frame across a 640 px frame
        let frames: Vec<FrameResult> = (0..8u64)
            .map(|i| {
                let x = 60.0 * i as f32;
                FrameResult {
                    seq: i,
                    pts: Duration::from_millis(500 * i),
                    wall: chrono::DateTime::UNIX_EPOCH,
                    width: 640,
                    height: 480,
                    detections: vec![Detection {
                        class_id: 0,
                        label: "person",
                        score: 0.9,
                        bbox: BBox {
                            x1: x,
                            y1: 100.0,
                            x2: x + 200.0,
                            y2: 400.0,
                        },
                    }],
                    encoding: None,
                    postures: Vec::new(),
                    pose_only: Vec::new(),
                    pixels: Default::default(),
                }
            })
            .collect();
        let a = e.handle(&InferOut::Result(Box::new(ClipResult {
            camera: Arc::from("cam"),
            clip_index: 0,
            start: Duration::ZERO,
            end: Duration::from_secs(4),
            frames,
            prompts: None,
            timings: ClipTimings::default(),
        })));
        assert_eq!(types(&a), vec![AlertType::New]);
        let end = e.command("cam", &Command::Detect(false));
        assert_eq!(end[0].objects, 1);
        assert_eq!(
            end[0].crossed,
            Some(rules::Crossings {
                left_to_right: 1,
                right_to_left: 0
            })
        );
        assert!(
            end[0]
                .summary
                .contains("1 person crossed from left to right;"),
            "{}",
            end[0].summary
        );
    }

    #[test]
    fn zones_count_only_objects_standing_inside() {
        // the test person's box is x 10..50, y 10..90 in 640x480: ground point (0.047, 0.19)
        let left = "[[zones]]\nname = \"left\"\npoints = [[0.0, 0.0], [0.5, 0.0], [0.5, 0.5], [0.0, 0.5]]\n";
        let right = "[[zones]]\nname = \"right\"\npoints = [[0.5, 0.0], [1.0, 0.0], [1.0, 1.0], [0.5, 1.0]]\n";
        let mut e = engine_for(camera_with("zones = [\"left\"]", left));
        let a = e.handle(&clip(0, 1));
        assert_eq!(types(&a), vec![AlertType::New]);
        assert_eq!(a[0].zones, vec!["left".to_string()]);
        assert!(
            a[0].summary.contains("in the Left zone"),
            "{}",
            a[0].summary
        );
        let mut e = engine_for(camera_with("zones = [\"right\"]", right));
        assert!(
            e.handle(&clip(0, 3)).is_empty(),
            "nobody stands in the right half"
        );
    }

    #[test]
    fn dwell_counts_an_object_only_after_it_stayed_and_tracking_counts_it_once() {
        // the same person stands still: frames at 0, 2 s (clip 0), 4, 6 s (clip 1), …
        let mut e = engine_for(camera_with("dwell_seconds = 5.0", ""));
        assert!(e.handle(&clip(0, 1)).is_empty(), "tracked for 2 s only");
        let a = e.handle(&clip(1, 1));
        assert_eq!(types(&a), vec![AlertType::New]);
        assert_eq!(a[0].objects, 1);
        assert!(
            (a[0].max_dwell_seconds - 6.0).abs() < 1e-9,
            "{}",
            a[0].max_dwell_seconds
        );
        e.handle(&clip(2, 1));
        let end = e.command("cam", &Command::Detect(false));
        assert_eq!(end[0].objects, 1, "one person over 3 clips is one object");
        assert!(
            end[0]
                .summary
                .contains("1 distinct person tracked, the longest for 10 s"),
            "{}",
            end[0].summary
        );
    }

    #[test]
    fn min_count_and_severity() {
        let mut e = engine_for(camera_with("min_count = 3\nseverity = \"detection\"", ""));
        assert!(
            e.handle(&clip(0, 2)).is_empty(),
            "two are not a group of three"
        );
        let a = e.handle(&clip(1, 3));
        assert_eq!(types(&a), vec![AlertType::New]);
        assert_eq!(a[0].severity, crate::config::Severity::Detection);
        assert_eq!(a[0].count, 3);
    }

    #[test]
    fn detect_off_ends_the_alert_and_ignores_later_clips() {
        let mut e = engine();
        assert_eq!(types(&e.handle(&clip(0, 1))), vec![AlertType::New]);
        assert_eq!(
            types(&e.command("cam", &Command::Detect(false))),
            vec![AlertType::End]
        );
        assert!(e.handle(&clip(1, 2)).is_empty(), "in-flight clip ignored");
        e.command("cam", &Command::Detect(true));
        assert_eq!(types(&e.handle(&clip(2, 1))), vec![AlertType::New]);
    }

    #[test]
    fn disarming_a_rule_ends_only_that_rule() {
        let mut e = engine();
        e.handle(&clip(0, 1));
        let disarm = Command::Arm {
            rule: "person".into(),
            armed: false,
        };
        assert_eq!(types(&e.command("cam", &disarm)), vec![AlertType::End]);
        assert!(e.handle(&clip(1, 1)).is_empty());
        let arm = Command::Arm {
            rule: "person".into(),
            armed: true,
        };
        assert!(e.command("cam", &arm).is_empty());
        assert_eq!(types(&e.handle(&clip(2, 1))), vec![AlertType::New]);
    }

    #[test]
    fn reconfigure_ends_open_alerts_and_removal_forgets_the_camera() {
        let mut e = engine();
        e.handle(&clip(0, 1));
        let ended = e.configure("cam", Some(&camera()));
        assert_eq!(types(&ended), vec![AlertType::End]);
        assert_eq!(types(&e.handle(&clip(1, 1))), vec![AlertType::New]);
        assert_eq!(types(&e.configure("cam", None)), vec![AlertType::End]);
        assert!(e.handle(&clip(2, 1)).is_empty());
    }
}
