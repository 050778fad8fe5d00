//! Detector batching (`[inference] detector_batch`, issue 17 part 3) on the CPU provider with the shipped NanoDet
//! (dynamic batch axis) and real photos: a batch must find exactly what each frame finds alone, the shared
//! batcher must answer every worker with its own frames' detections however their requests are grouped, and a
//! daemon with batching on must raise the same alerts as one without.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use scenewatch::config::Config;
use scenewatch::infer::batcher::Batcher;
use scenewatch::infer::detector::{Detection, Detector};
use scenewatch::infer::{open_detector, Models};
use scenewatch::telemetry::Metrics;

/// Photos with people, animals, vehicles and none, as packed RGB at one size (so they share a model input size).
const PHOTOS: [&str; 6] = [
    "astronaut.png",
    "messi5.jpg",
    "chelsea.png",
    "basketball1.png",
    "baboon.jpg",
    "coffee.png",
];

fn config() -> Config {
    let cfg = write_config(
        1883,
        "batch",
        "[[cameras]]\nname = \"x\"\nurl = \"test://\"\n",
    );
    Config::load(&cfg.path).expect("config")
}

fn photo(name: &str, w: u32, h: u32) -> Vec<u8> {
    let img = image::open(media(name)).expect("photo").to_rgb8();
    image::imageops::resize(&img, w, h, image::imageops::FilterType::Triangle).into_raw()
}

/// Each frame alone, as the workers run it without batching.
fn alone(det: &mut Detector, frames: &[(Vec<u8>, u32, u32)]) -> Vec<Vec<Detection>> {
    frames
        .iter()
        .map(|(rgb, w, h)| det.detect(rgb, *w, *h).expect("detect"))
        .collect()
}

fn assert_same(batched: &[Vec<Detection>], single: &[Vec<Detection>], what: &str) {
    assert_eq!(batched.len(), single.len(), "{what}: frame count");
    for (k, (b, s)) in batched.iter().zip(single).enumerate() {
        assert_eq!(b.len(), s.len(), "{what}, frame {k}: {b:?} vs {s:?}");
        for (x, y) in b.iter().zip(s) {
            assert_eq!(x.label, y.label, "{what}, frame {k}");
            assert!(
                (x.score - y.score).abs() < 1e-4,
                "{what}, frame {k}: {x:?} vs {y:?}"
            );
            let (p, q) = (x.bbox, y.bbox);
            let d = [p.x1 - q.x1, p.y1 - q.y1, p.x2 - q.x2, p.y2 - q.y2];
            assert!(
                d.iter().all(|v| v.abs() < 0.05),
                "{what}, frame {k}: {x:?} vs {y:?}"
            );
        }
    }
}

#[test]
fn a_batch_of_frames_finds_what_each_frame_finds_alone() {
    let mut m = Models::load(&config()).expect("models (run scripts/deps.sh)");
    assert!(
        m.detector.batch_axis(),
        "the shipped NanoDet has a dynamic batch axis"
    );
    let frames: Vec<(Vec<u8>, u32, u32)> = PHOTOS
        .iter()
        .map(|p| (photo(p, 640, 480), 640, 480))
        .collect();
    let single = alone(&mut m.detector, &frames);
    let people: usize = single
        .iter()
        .flatten()
        .filter(|d| d.label == "person")
        .count();
    assert!(people >= 3, "the photos show people: {single:?}");

    let mut input = Vec::new();
    let items: Vec<_> = frames
        .iter()
        .map(|(rgb, w, h)| {
            m.detector
                .prepare_item(rgb, *w, *h, &mut input)
                .expect("prepare")
        })
        .collect();
    let batched = m.detector.run_batch(&input, &items).expect("batched run");
    assert_same(&batched, &single, "batch of 6");

    // frames of different input sizes cannot share a run: a clear error, not wrong boxes
    let mut mixed = Vec::new();
    let a = m
        .detector
        .prepare_item(&frames[0].0, 640, 480, &mut mixed)
        .expect("prepare");
    let tall = photo("messi5.jpg", 480, 640);
    let b = m
        .detector
        .prepare_item(&tall, 480, 640, &mut mixed)
        .expect("prepare");
    let err = m
        .detector
        .run_batch(&mixed, &[a, b])
        .expect_err("mixed sizes refused");
    assert!(err.to_string().contains("different input sizes"), "{err}");
}

#[test]
fn io_binding_gives_the_same_detections_single_and_batched() {
    let cfg = config();
    let mut plain = open_detector(&cfg).expect("detector");
    assert!(!plain.io_binding(), "auto: off on the CPU provider");
    let mut bound = open_detector(&cfg).expect("detector");
    bound
        .use_io_binding()
        .expect("IO binding on the CPU provider");
    assert!(bound.io_binding());
    let frames: Vec<(Vec<u8>, u32, u32)> = PHOTOS
        .iter()
        .map(|p| (photo(p, 640, 480), 640, 480))
        .collect();
    let single = alone(&mut plain, &frames);
    assert_same(&alone(&mut bound, &frames), &single, "bound, one at a time");
    // another batch shape after the first: the bound input is re-made for it
    for n in [3, 6, 2] {
        let mut input = Vec::new();
        let items: Vec<_> = frames[..n]
            .iter()
            .map(|(rgb, w, h)| {
                bound
                    .prepare_item(rgb, *w, *h, &mut input)
                    .expect("prepare")
            })
            .collect();
        let got = bound.run_batch(&input, &items).expect("bound batch");
        assert_same(&got, &single[..n], &format!("bound, batch of {n}"));
    }
    // and a portrait frame (another input size) through the same binding
    let tall = photo("messi5.jpg", 480, 640);
    assert_same(
        &[bound.detect(&tall, 480, 640).expect("detect")],
        &[plain.detect(&tall, 480, 640).expect("detect")],
        "bound, portrait",
    );
}

#[test]
fn the_batcher_answers_each_worker_with_its_own_frames() {
    let cfg = config();
    let mut reference = open_detector(&cfg).expect("detector");
    // three workers: two with 4:3 frames, one with portrait frames (another input size, so another run)
    let sets: Vec<Vec<(Vec<u8>, u32, u32)>> = vec![
        PHOTOS[..3]
            .iter()
            .map(|p| (photo(p, 640, 480), 640, 480))
            .collect(),
        PHOTOS[3..]
            .iter()
            .map(|p| (photo(p, 640, 480), 640, 480))
            .collect(),
        PHOTOS[..2]
            .iter()
            .map(|p| (photo(p, 480, 640), 480, 640))
            .collect(),
    ];
    let expected: Vec<Vec<Vec<Detection>>> =
        sets.iter().map(|s| alone(&mut reference, s)).collect();

    // a long wait: the gathering ends as soon as every client is waiting, so this only keeps a loaded machine
    // from splitting the runs; four clients: the three above and one with a malformed request
    let (batcher, client) = Batcher::new(
        open_detector(&cfg).expect("detector"),
        8,
        Duration::from_secs(5),
        4,
    )
    .expect("batcher");
    let metrics = Arc::new(Metrics::default());
    let handle = batcher.spawn(metrics.clone()).expect("spawn");
    // each worker letterboxes its own frames (here ahead of time; a worker's detector does it in the daemon)
    let requests: Vec<_> = sets
        .iter()
        .map(|set| {
            let mut input = Vec::new();
            let items: Vec<_> = set
                .iter()
                .map(|(rgb, w, h)| {
                    reference
                        .prepare_item(rgb, *w, *h, &mut input)
                        .expect("prepare")
                })
                .collect();
            (input, items)
        })
        .collect();
    // frames of two input sizes in one request: answered with an error, alone, without failing the others
    let (mut bad_input, mut bad_items) = (Vec::new(), Vec::new());
    for (rgb, w, h) in [&sets[0][0], &sets[2][0]] {
        bad_items.push(
            reference
                .prepare_item(rgb, *w, *h, &mut bad_input)
                .expect("prepare"),
        );
    }
    let bad = {
        let client = client.clone();
        std::thread::spawn(move || client.detect(bad_input, bad_items))
    };
    let workers: Vec<_> = requests
        .into_iter()
        .map(|(input, items)| {
            let client = client.clone();
            std::thread::spawn(move || client.detect(input, items).expect("batched detect"))
        })
        .collect();
    let refused = bad
        .join()
        .expect("bad worker")
        .expect_err("a malformed request is refused");
    assert!(
        refused.to_string().contains("mixes input sizes"),
        "{refused}"
    );
    let answers: Vec<_> = workers
        .into_iter()
        .map(|w| w.join().expect("worker"))
        .collect();
    for (k, (a, e)) in answers.iter().zip(&expected).enumerate() {
        assert_same(&a.detections, e, &format!("worker {k}"));
    }
    drop(client);
    handle
        .join()
        .expect("the batcher ends when its clients are gone");
    let runs = metrics.detector_runs.get();
    let frames = metrics.detector_run_frames.get();
    assert_eq!(frames, 8, "every frame ran once");
    // all three wait together (every client waiting ends the gathering): one run per input size
    assert_eq!(runs, 2, "two input sizes, two runs of 6 and 2 frames");
    assert!(
        answers.iter().take(2).all(|a| a.batch_frames == 6),
        "{answers:?}"
    );
}

/// What a subscriber learns from each alert (ids and wall-clock times differ between runs), per camera in order.
fn alert_facts(rec: &Recorder, prefix: &str) -> Vec<String> {
    let mut v = Vec::new();
    for cam in ["a", "b"] {
        for m in rec.on(&format!("{prefix}/{cam}/alerts")) {
            let a = m.json();
            v.push(format!(
                "{cam} {} {} score={} count={} max={} from={} to={}",
                a["type"],
                a["label"],
                a["score"],
                a["count"],
                a["max_count"],
                a["stream_start"],
                a["stream_end"]
            ));
        }
    }
    v
}

#[test]
fn a_daemon_with_detector_batching_raises_the_same_alerts() {
    let broker = Broker::start();
    let run = |batch: usize| {
        let prefix = format!("batch{batch}");
        let rec = Recorder::start(broker.port, &format!("{prefix}/#"));
        let cams: String = ["a", "b"]
            .iter()
            .map(|n| {
                format!(
                    "[[cameras]]\nname = \"{n}\"\nurl = \"file://{}\"\nsample_fps = 2.0\nclip_seconds = 4.0\n\n",
                    media("vtest.avi").display()
                )
            })
            .collect();
        let cfg = write_config(
            broker.port,
            &prefix,
            // batching and IO binding together (both off in the first run)
            &format!(
                "[inference]\nworkers = 2\ndetector_batch = {batch}\nio_binding = {}\n\n{cams}",
                batch > 1
            ),
        );
        let out = run_daemon(&cfg.path, Duration::from_secs(400));
        let log = no_panic(&out);
        assert!(out.status.success(), "exit {:?}\n{log}", out.status);
        rec.wait_for("status stopped", Duration::from_secs(10), |m| {
            m.iter()
                .any(|m| m.topic == format!("{prefix}/status") && m.payload == "stopped")
        });
        (log, alert_facts(&rec, &prefix))
    };
    let (plain, plain_alerts) = run(1);
    let (batched, batched_alerts) = run(8);
    assert!(
        !plain.contains("detector batcher"),
        "batch 1 runs no batcher"
    );
    let done = batched
        .lines()
        .find(|l| l.contains("detector batcher done"))
        .unwrap_or_else(|| panic!("no batcher summary:\n{batched}"));
    let mean: f64 = done
        .split_whitespace()
        .find_map(|w| w.strip_prefix("mean_batch="))
        .and_then(|v| v.trim_matches('"').parse().ok())
        .unwrap_or_else(|| panic!("{done}"));
    // a 4 s clip at 2 fps is 8 frames: a clip's frames go in one run at least
    assert!(mean >= 4.0, "frames per detector run: {done}");
    assert!(
        plain_alerts.iter().any(|a| a.contains("\"person\"")),
        "vtest shows people: {plain_alerts:#?}"
    );
    assert_eq!(
        batched_alerts, plain_alerts,
        "the same alerts with and without batching"
    );
}
