//! Plumbing tests of the pluggable detectors: for each card format (nanodet, yolo, yolox, detr) a small ONNX graph
//! written by the test (tests/common/onnx.rs) whose outputs are constants chosen here — a person and a car at
//! known places and scores, plus noise below the threshold or under NMS — with a model card next to it, loaded
//! through the daemon's loader (`Detector::open`, or the config and `infer::open_detector`), run on a synthetic
//! frame. They check decoding, the letterbox mapping back to frame pixels, labels and the load-time checks; they
//! understand nothing (the real NanoDet on real photos is tests/detector_photos.rs).
//!
//! Frames are 128×96 (4:3). In a 64×64 input with a centred letterbox that is scale 0.5 and 8 rows of padding
//! above (frame = (input − (0, 8)) / 0.5); top-left (YOLOX) scale 0.5 and no offset.

mod common;

use std::path::{Path, PathBuf};

use common::onnx::{constant_output, node, Attr, Dim, Elem, Graph, Tensor};
use scenewatch::config::{Config, ProviderChoice};
use scenewatch::infer::detector::{BBox, DecodeParams, Detection, Detector};
use scenewatch::infer::runtime::{self, InferError, SessionOptions};

const W: u32 = 128;
const H: u32 = 96;
const PARAMS: DecodeParams = DecodeParams {
    threshold: 0.35,
    nms_iou: 0.6,
    max_detections: 100,
};

fn frame() -> Vec<u8> {
    vec![90u8; (W * H * 3) as usize]
}

fn open(setting: &Path) -> Result<Detector, InferError> {
    let env = runtime::init(None, None, true).expect("ONNX Runtime (run scripts/deps.sh)");
    Detector::open(
        env,
        setting,
        SessionOptions {
            provider: ProviderChoice::Cpu,
            intra_threads: 1,
            shared_pool: false,
            spinning: true,
        },
        PARAMS,
    )
}

fn detect(setting: &Path) -> Vec<Detection> {
    let mut det = open(setting).unwrap_or_else(|e| panic!("open {}: {e}", setting.display()));
    det.detect(&frame(), W, H).expect("detect")
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write");
    p
}

/// A card with the pre-calibration thresholds; `extra` lines go before them.
fn card(format: &str, model: &str, input: [u32; 2], labels: &str, extra: &str) -> String {
    format!(
        "format = \"{format}\"\nmodel = \"{model}\"\ninput = [{}, {}]\nlabels = \"{labels}\"\n{extra}\n\
         [thresholds.person]\nalert = 0.5\ntrack = 0.35\n[thresholds.default]\nalert = 0.5\ntrack = 0.35\n\
         [calibration]\nmethod = \"not calibrated yet\"\n",
        input[0], input[1]
    )
}

fn image_input(w: i64, h: i64) -> (&'static str, Elem, Vec<Dim>) {
    (
        "images",
        Elem::F32,
        vec![Dim::Fixed(1), Dim::Fixed(3), Dim::Fixed(h), Dim::Fixed(w)],
    )
}

fn fixed(dims: &[i64]) -> Vec<Dim> {
    dims.iter().map(|d| Dim::Fixed(*d)).collect()
}

fn assert_box(d: &Detection, label: &str, score: f32, want: [f32; 4]) {
    let BBox { x1, y1, x2, y2 } = d.bbox;
    assert_eq!(d.label, label, "{d:?}");
    assert!((d.score - score).abs() < 1e-4, "{d:?}");
    assert!(
        [x1, y1, x2, y2]
            .iter()
            .zip(want)
            .all(|(g, w)| (g - w).abs() < 0.05),
        "{label}: got {:?}, want {want:?}",
        [x1, y1, x2, y2]
    );
}

/// YOLO rows (cx, cy, w, h in input pixels): a person, a car, a weaker duplicate of the person (NMS), a dog
/// below the threshold.
const PERSON: [f32; 4] = [20.0, 30.0, 16.0, 24.0];
const CAR: [f32; 4] = [48.0, 40.0, 20.0, 10.0];
/// Where those land in the 128×96 frame (centred letterbox).
const PERSON_IN_FRAME: [f32; 4] = [24.0, 20.0, 56.0, 68.0];
const CAR_IN_FRAME: [f32; 4] = [76.0, 54.0, 116.0, 74.0];

#[test]
fn plumbing_yolo_v8_output_decodes_to_frame_pixels() {
    let dir = tempfile::tempdir().expect("tmp");
    // [1, 84, N]: 80 COCO classes; N = 90 anchors (a real export has 8400 at 640; N = 84, the count of a 64x64
    // input, would make [1, 84, 84] fit the transposed layout too: refused as ambiguous, see below)
    let n = 90usize;
    let mut out = vec![0.0f32; 84 * n];
    let mut put = |anchor: usize, b: [f32; 4], class: usize, score: f32| {
        for (k, v) in b.iter().enumerate() {
            out[k * n + anchor] = *v;
        }
        out[(4 + class) * n + anchor] = score;
    };
    put(3, PERSON, 0, 0.9);
    put(40, CAR, 2, 0.7);
    put(41, [21.0, 30.0, 16.0, 24.0], 0, 0.6); // suppressed by the person
    put(60, [10.0, 10.0, 8.0, 8.0], 16, 0.3); // dog below 0.35
    constant_output(
        image_input(64, 64),
        vec![("output0", Tensor::f32("output0", &[1, 84, n as i64], out))],
    )
    .write(&dir.path().join("yolov8.onnx"));
    write(
        dir.path(),
        "yolov8.toml",
        &card("yolo", "yolov8.onnx", [64, 64], "coco80", ""),
    );
    // named by its model file: the card next to it is found
    let dets = detect(&dir.path().join("yolov8.onnx"));
    assert_eq!(dets.len(), 2, "{dets:?}");
    assert_box(&dets[0], "person", 0.9, PERSON_IN_FRAME);
    assert_box(&dets[1], "car", 0.7, CAR_IN_FRAME);

    // its batch axis is fixed at 1: an explicit inference.detector_batch above 1 is refused, naming why
    let det = open(&dir.path().join("yolov8.onnx")).expect("open");
    assert!(!det.batch_axis());
    let err = scenewatch::infer::batcher::Batcher::new(det, 8, std::time::Duration::ZERO, 2)
        .expect_err("a fixed-batch export cannot be batched");
    assert!(err.to_string().contains("dynamic batch axis"), "{err}");
}

/// A YOLOv5 output [1, N, 5+C] for the labels person, car, package.
fn yolov5_graph(path: &Path) {
    let rows: [[f32; 8]; 4] = [
        [
            PERSON[0], PERSON[1], PERSON[2], PERSON[3], 1.0, 0.9, 0.0, 0.0,
        ],
        [CAR[0], CAR[1], CAR[2], CAR[3], 0.8, 0.1, 0.875, 0.0], // 0.8 x 0.875 = 0.7
        [40.0, 16.0, 8.0, 8.0, 0.9, 0.0, 0.0, 0.5],             // package 0.45
        [8.0, 40.0, 8.0, 8.0, 0.3, 1.0, 0.0, 0.0],              // objectness below the threshold
    ];
    let values = rows.iter().flatten().copied().collect();
    constant_output(
        image_input(64, 64),
        vec![("output0", Tensor::f32("output0", &[1, 4, 8], values))],
    )
    .write(path);
}

#[test]
fn plumbing_yolo_v5_with_a_labels_file_through_the_daemon_config() {
    let dir = tempfile::tempdir().expect("tmp");
    yolov5_graph(&dir.path().join("yolov5.onnx"));
    write(dir.path(), "labels.txt", "person\ncar\npackage\n");
    write(
        dir.path(),
        "door.toml",
        &card("yolo", "yolov5.onnx", [64, 64], "labels.txt", ""),
    );
    let cfg = write(
        dir.path(),
        "scenewatch.toml",
        &format!(
            "[models]\ndir = \"{}\"\ndetector = \"door.toml\"\n\n[inference]\nencoder = false\n\n\
             [[cameras]]\nname = \"door\"\nurl = \"test://\"\n\n[[cameras.rules]]\nlabel = \"package\"\n",
            dir.path().display()
        ),
    );
    let cfg = Config::load(&cfg).expect("a rule on the card's own label is valid");
    let mut det = scenewatch::infer::open_detector(&cfg).expect("the daemon's loader");
    assert_eq!(det.card().classes.len(), 3);
    let dets = det.detect(&frame(), W, H).expect("detect");
    assert_eq!(dets.len(), 3, "{dets:?}");
    assert_box(&dets[0], "person", 0.9, PERSON_IN_FRAME);
    assert_box(&dets[1], "car", 0.7, CAR_IN_FRAME);
    // package: (36, 12)-(44, 20) in the input
    assert_box(&dets[2], "package", 0.45, [72.0, 8.0, 88.0, 24.0]);
    assert_eq!(dets[2].class_id, 2);
}

#[test]
fn plumbing_yolox_raw_grid_offsets_are_decoded() {
    let dir = tempfile::tempdir().expect("tmp");
    // [1, 84, 85]: strides 8/16/32 over 64x64 → 64 + 16 + 4 rows
    let mut out = vec![0.0f32; 84 * 85];
    let mut row = |i: usize, xywh: [f32; 4], obj: f32, class: usize, score: f32| {
        out[i * 85..i * 85 + 4].copy_from_slice(&xywh);
        out[i * 85 + 4] = obj;
        out[i * 85 + 5 + class] = score;
    };
    // person: stride 16, cell (1, 1) → centre (24, 24), size 16 x 32 → input (16, 8)-(32, 40)
    row(64 + 4 + 1, [0.5, 0.5, 0.0, 2f32.ln()], 1.0, 0, 0.9);
    // car: stride 8, cell (5, 3) → centre (44, 26), size 8 x 8 → input (40, 22)-(48, 30); 0.9 x 0.8
    row(3 * 8 + 5, [0.5, 0.25, 0.0, 0.0], 0.9, 2, 0.8);
    // low objectness: 0.3 x 1.0
    row(10, [0.5, 0.5, 0.0, 0.0], 0.3, 0, 1.0);
    constant_output(
        image_input(64, 64),
        vec![("output", Tensor::f32("output", &[1, 84, 85], out))],
    )
    .write(&dir.path().join("yolox_nano.onnx"));
    let card_path = write(
        dir.path(),
        "yolox_nano.toml",
        &card("yolox", "yolox_nano.onnx", [64, 64], "coco80", ""),
    );
    let dets = detect(&card_path);
    assert_eq!(dets.len(), 2, "{dets:?}");
    // top-left letterbox: frame = input / 0.5
    assert_box(&dets[0], "person", 0.9, [32.0, 16.0, 64.0, 80.0]);
    assert_box(&dets[1], "car", 0.72, [80.0, 44.0, 96.0, 60.0]);
}

/// An RT-DETR / D-FINE deploy graph: boxes = normalised constants × (w, h, w, h) of `orig_target_sizes`, so the
/// boxes are right only if the detector feeds (width, height) of its input.
fn detr_deploy_graph(path: &Path, w: i64, h: i64, sizes: Elem) {
    let q = 4;
    let norm = vec![
        0.1, 0.25, 0.3, 0.75, // person
        0.5, 0.5, 0.9, 0.9, // car
        0.0, 0.0, 0.2, 0.2, // dog, below the threshold
        0.11, 0.25, 0.31, 0.75, // the person again as another query, lower (NMS)
    ];
    Graph::default()
        .input("images", Elem::F32, fixed(&[1, 3, h, w]))
        .input("orig_target_sizes", sizes, fixed(&[1, 2]))
        .output("labels", Elem::I64, fixed(&[1, q]))
        .output("boxes", Elem::F32, fixed(&[1, q, 4]))
        .output("scores", Elem::F32, fixed(&[1, q]))
        .init(Tensor::f32("norm_boxes", &[1, q, 4], norm))
        .init(Tensor::i64("box_shape", &[3], vec![1, 1, 4]))
        .node(node(
            "Cast",
            &["orig_target_sizes"],
            &["sizes_f"],
            vec![("to", Attr::Int(1))],
        ))
        .node(node(
            "Concat",
            &["sizes_f", "sizes_f"],
            &["sizes4"],
            vec![("axis", Attr::Int(1))],
        ))
        .node(node(
            "Reshape",
            &["sizes4", "box_shape"],
            &["scale"],
            vec![],
        ))
        .node(node("Mul", &["norm_boxes", "scale"], &["boxes"], vec![]))
        .node(node(
            "Constant",
            &[],
            &["labels"],
            vec![(
                "value",
                Attr::Tensor(Tensor::i64("labels", &[1, q], vec![0, 2, 16, 0])),
            )],
        ))
        .node(node(
            "Constant",
            &[],
            &["scores"],
            vec![(
                "value",
                Attr::Tensor(Tensor::f32("scores", &[1, q], vec![0.9, 0.7, 0.2, 0.6])),
            )],
        ))
        .write(path);
}

#[test]
fn plumbing_detr_deploy_feeds_width_then_height_and_resizes_back() {
    let dir = tempfile::tempdir().expect("tmp");
    // int64 sizes as the reference exports have them, float32 as some re-exports do
    for sizes in [Elem::I64, Elem::F32] {
        // a non-square input, 96 wide and 64 high: (h, w) instead of (w, h) would put every box elsewhere
        detr_deploy_graph(&dir.path().join("dfine_s.onnx"), 96, 64, sizes);
        let card_path = write(
            dir.path(),
            "dfine_s.toml",
            &card("detr", "dfine_s.onnx", [96, 64], "coco80", ""),
        );
        let dets = detect(&card_path);
        assert_eq!(dets.len(), 2, "{sizes:?}: {dets:?}");
        // plain resize of 128x96 to 96x64: x scale 0.75, y scale 2/3
        // person (0.1, 0.25, 0.3, 0.75) x (96, 64, 96, 64) = (9.6, 16, 28.8, 48) → (12.8, 24, 38.4, 72)
        assert_box(&dets[0], "person", 0.9, [12.8, 24.0, 38.4, 72.0]);
        // car (48, 32, 86.4, 57.6) → (64, 48, 115.2, 86.4)
        assert_box(&dets[1], "car", 0.7, [64.0, 48.0, 115.2, 86.4]);
    }
}

#[test]
fn plumbing_detr_raw_logits_and_normalised_boxes() {
    let dir = tempfile::tempdir().expect("tmp");
    let logit = |p: f32| (p / (1.0 - p)).ln();
    let mut logits = vec![-10.0f32; 3 * 80];
    logits[0] = logit(0.9); // query 0: person
    logits[80 + 2] = logit(0.7); // query 1: car
    logits[2 * 80 + 16] = logit(0.3); // query 2: dog, below
                                      // cx, cy, w, h normalised: the person and the car of the YOLO tests, over 64x64
    let n = |b: [f32; 4]| b.map(|v| v / 64.0);
    let boxes: Vec<f32> = [n(PERSON), n(CAR), [0.5, 0.5, 0.1, 0.1]].concat();
    Graph::default()
        .input("pixel_values", Elem::F32, fixed(&[1, 3, 64, 64]))
        .output("logits", Elem::F32, fixed(&[1, 3, 80]))
        .output("pred_boxes", Elem::F32, fixed(&[1, 3, 4]))
        .node(node(
            "Constant",
            &[],
            &["logits"],
            vec![(
                "value",
                Attr::Tensor(Tensor::f32("logits", &[1, 3, 80], logits)),
            )],
        ))
        .node(node(
            "Constant",
            &[],
            &["pred_boxes"],
            vec![(
                "value",
                Attr::Tensor(Tensor::f32("pred_boxes", &[1, 3, 4], boxes)),
            )],
        ))
        .write(&dir.path().join("rtdetr_hf.onnx"));
    let card_path = write(
        dir.path(),
        "rtdetr_hf.toml",
        &card("detr", "rtdetr_hf.onnx", [64, 64], "coco80", ""),
    );
    let dets = detect(&card_path);
    assert_eq!(dets.len(), 2, "{dets:?}");
    // plain resize 128x96 → 64x64: x / 0.5, y / (2/3)
    // person input (12, 18, 28, 42) → (24, 27, 56, 63); car (38, 35, 58, 45) → (76, 52.5, 116, 67.5)
    assert_box(&dets[0], "person", 0.9, [24.0, 27.0, 56.0, 63.0]);
    assert_box(&dets[1], "car", 0.7, [76.0, 52.5, 116.0, 67.5]);
}

/// NanoDet-g's output names and layout with 3 labels at a fixed 64×64 input: one level has the person, another
/// the car, as GFL side distributions peaked on one bin.
fn nanodet_graph(path: &Path) {
    const BINS: usize = 11;
    let peaked = |bin: usize| {
        let mut l = [-20.0f32; BINS];
        l[bin] = 20.0;
        l
    };
    let mut outputs = Vec::new();
    for (stride, scores_name, boxes_name) in [
        (8, "Identity:0", "Identity_3:0"),
        (16, "Identity_1:0", "Identity_4:0"),
        (32, "Identity_2:0", "Identity_5:0"),
    ] {
        let grid = 64 / stride;
        let cells = grid * grid;
        let mut scores = vec![0.0f32; cells * 3];
        let mut boxes = vec![0.0f32; cells * 44];
        let mut put = |cell: usize, class: usize, score: f32, bin: usize| {
            scores[cell * 3 + class] = score;
            for side in 0..4 {
                let at = cell * 44 + side * BINS;
                boxes[at..at + BINS].copy_from_slice(&peaked(bin));
            }
        };
        match stride {
            // person: stride 16, cell (1, 1), centre (24, 24), sides 1 bin = 16 → (8, 8)-(40, 40)
            16 => put(grid + 1, 0, 0.9, 1),
            // car: stride 8, cell (5, 4), centre (44, 36), sides 1 bin = 8 → (36, 28)-(52, 44); noise 0.2
            8 => {
                put(4 * grid + 5, 1, 0.7, 1);
                put(0, 2, 0.2, 1);
            }
            _ => {}
        }
        let c = cells as i64;
        outputs.push((scores_name, Tensor::f32(scores_name, &[1, c, 3], scores)));
        outputs.push((boxes_name, Tensor::f32(boxes_name, &[1, c, 44], boxes)));
    }
    constant_output(("input_1:0", Elem::F32, fixed(&[1, 3, 64, 64])), outputs).write(path);
}

#[test]
fn plumbing_nanodet_outputs_with_other_labels() {
    let dir = tempfile::tempdir().expect("tmp");
    nanodet_graph(&dir.path().join("tiny_nanodet.onnx"));
    write(dir.path(), "labels.txt", "person\ncar\nbicycle\n");
    let card_path = write(
        dir.path(),
        "tiny_nanodet.toml",
        &card("nanodet", "tiny_nanodet.onnx", [64, 64], "labels.txt", ""),
    );
    let mut det = open(&card_path).expect("open");
    // a fixed-size model gets the square letterbox
    assert!(!det.rect());
    let dets = det.detect(&frame(), W, H).expect("detect");
    assert_eq!(dets.len(), 2, "{dets:?}");
    // centred letterbox: frame = (input − (0, 8)) / 0.5
    assert_box(&dets[0], "person", 0.9, [16.0, 0.0, 80.0, 64.0]);
    assert_box(&dets[1], "car", 0.7, [72.0, 40.0, 104.0, 72.0]);
}

fn load_error(setting: &Path) -> String {
    match open(setting) {
        Ok(_) => panic!("{} loaded", setting.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn plumbing_a_card_that_does_not_fit_its_graph_names_expected_and_found_shapes() {
    let dir = tempfile::tempdir().expect("tmp");
    yolov5_graph(&dir.path().join("yolov5.onnx"));
    // the input size: the graph takes 64x64
    let c = write(
        dir.path(),
        "big.toml",
        &card("yolo", "yolov5.onnx", [640, 640], "coco80", ""),
    );
    let e = load_error(&c);
    assert!(
        e.contains("[1, 3, 640, 640]") && e.contains("[1, 3, 64, 64]") && e.contains("big.toml"),
        "{e}"
    );
    // the label count: the graph has 3 classes, the card says 80
    let c = write(
        dir.path(),
        "coco.toml",
        &card("yolo", "yolov5.onnx", [64, 64], "coco80", ""),
    );
    let e = load_error(&c);
    assert!(
        e.contains("[1, N, 85]") && e.contains("[1, 4, 8]") && e.contains("coco.toml"),
        "{e}"
    );
    // a layout the shape does not have
    write(dir.path(), "labels.txt", "person\ncar\npackage\n");
    let c = write(
        dir.path(),
        "v8.toml",
        &card(
            "yolo",
            "yolov5.onnx",
            [64, 64],
            "labels.txt",
            "layout = \"v8\"",
        ),
    );
    let e = load_error(&c);
    assert!(e.contains("[1, 7, N]") && e.contains("[1, 4, 8]"), "{e}");
    // [1, 84, 84] with 80 labels fits both YOLOv8 layouts: the card must say which
    constant_output(
        image_input(64, 64),
        vec![(
            "output0",
            Tensor::f32("output0", &[1, 84, 84], vec![0.0; 84 * 84]),
        )],
    )
    .write(&dir.path().join("square.onnx"));
    let c = write(
        dir.path(),
        "sq.toml",
        &card("yolo", "square.onnx", [64, 64], "coco80", ""),
    );
    let e = load_error(&c);
    assert!(
        e.contains("[1, 84, 84]") && e.contains("set `layout`"),
        "{e}"
    );
    let c = write(
        dir.path(),
        "sq.toml",
        &card("yolo", "square.onnx", [64, 64], "coco80", "layout = \"v8\""),
    );
    open(&c).expect("the card's layout settles it");
    // another format's graph: a YOLO output is not a YOLOX one for this input
    let c = write(
        dir.path(),
        "x.toml",
        &card("yolox", "yolov5.onnx", [64, 64], "labels.txt", ""),
    );
    let e = load_error(&c);
    assert!(e.contains("[1, 84, 8]") && e.contains("[1, 4, 8]"), "{e}");
    // and not a NanoDet
    let c = write(
        dir.path(),
        "n.toml",
        &card("nanodet", "yolov5.onnx", [64, 64], "labels.txt", ""),
    );
    let e = load_error(&c);
    assert!(e.contains("input_1:0") && e.contains("'images'"), "{e}");
    // DETR outputs without the size input: boxes in unknown units
    let c = write(
        dir.path(),
        "d.toml",
        &card("detr", "yolov5.onnx", [64, 64], "labels.txt", ""),
    );
    let e = load_error(&c);
    assert!(e.contains("logits") && e.contains("'output0'"), "{e}");
}

#[test]
fn plumbing_a_missing_card_names_the_path_it_looked_for() {
    let dir = tempfile::tempdir().expect("tmp");
    let model = dir.path().join("yolov8n.onnx");
    yolov5_graph(&model);
    let e = load_error(&model);
    let looked_for = dir.path().join("yolov8n.toml");
    assert!(
        e.contains(&looked_for.display().to_string()) && e.contains("docs/detectors.md"),
        "{e}"
    );
    // a card named directly that is not there
    let e = load_error(&dir.path().join("nope.toml"));
    assert!(e.contains("nope.toml"), "{e}");
    // a model file that is not there: named as before cards existed
    let e = load_error(&dir.path().join("gone.onnx"));
    assert!(
        e.contains("detector model file") && e.contains("gone.onnx"),
        "{e}"
    );
    // a card whose model is missing
    let c = write(
        dir.path(),
        "c.toml",
        &card("yolo", "elsewhere.onnx", [64, 64], "coco80", ""),
    );
    let e = load_error(&c);
    assert!(e.contains("elsewhere.onnx"), "{e}");
}

#[test]
fn plumbing_a_bad_card_key_is_named() {
    let dir = tempfile::tempdir().expect("tmp");
    yolov5_graph(&dir.path().join("m.onnx"));
    write(dir.path(), "labels.txt", "person\ncar\npackage\n");
    let good = card("yolo", "m.onnx", [64, 64], "labels.txt", "");
    for (text, key) in [
        (good.replace("format = ", "formt = "), "formt"),
        (good.replace("\"yolo\"", "\"ssd\""), "format"),
        (good.replace("[64, 64]", "[64, 60]"), "input"),
        (good.replace("labels.txt", "missing.txt"), "labels"),
        (
            good.replace("[thresholds.person]", "[thresholds.dog]"),
            "thresholds.dog",
        ),
        (
            good.replace(
                "alert = 0.5\ntrack = 0.35\n[thresholds.default]",
                "alert = 2\ntrack = 0.35\n[thresholds.default]",
            ),
            "thresholds.person.alert",
        ),
    ] {
        let c = write(dir.path(), "m.toml", &text);
        let e = load_error(&c);
        assert!(
            e.contains(&format!("{}: {key}:", c.display())),
            "{key}: {e}"
        );
    }
    // the card of a model file must name that model
    write(
        dir.path(),
        "m.toml",
        &good.replace("\"m.onnx\"", "\"other.onnx\""),
    );
    let e = load_error(&dir.path().join("m.onnx"));
    assert!(
        e.contains("m.toml: model:") && e.contains("other.onnx"),
        "{e}"
    );
}

#[test]
fn plumbing_validate_rejects_rule_labels_the_card_lacks() {
    let dir = tempfile::tempdir().expect("tmp");
    yolov5_graph(&dir.path().join("m.onnx"));
    write(dir.path(), "labels.txt", "person\npackage\n");
    let card_path = write(
        dir.path(),
        "m.toml",
        &card("yolo", "m.onnx", [64, 64], "labels.txt", ""),
    );
    let config = |rules: &str| {
        write(
            dir.path(),
            "scenewatch.toml",
            &format!(
                "[models]\ndir = \"{}\"\ndetector = \"m.toml\"\n\n[[cameras]]\nname = \"door\"\nurl = \"test://\"\n{rules}",
                dir.path().display()
            ),
        )
    };
    let c =
        config("[[cameras.rules]]\nlabel = \"package\"\n[[cameras.rules]]\nlabel = \"person\"\n");
    Config::load(&c).expect("the card's labels are valid rule labels");
    // dog is COCO, but not this detector's; vehicle needs a road vehicle class
    let c = config("[[cameras.rules]]\nlabel = \"dog\"\n[[cameras.rules]]\nlabel = \"vehicle\"\n");
    let e = Config::load(&c)
        .expect_err("labels the card lacks")
        .to_string();
    let card_text = card_path.display().to_string();
    assert!(
        e.contains("cameras[0].rules[0].label: unknown label 'dog'") && e.contains(&card_text),
        "{e}"
    );
    assert!(e.contains("cameras[0].rules[1].label: 'vehicle'"), "{e}");
    // a broken card is a problem under models.detector, naming the card and the key
    std::fs::write(
        &card_path,
        card("yolo", "m.onnx", [64, 64], "labels.txt", "colour = 1"),
    )
    .expect("write");
    let c = config("");
    let e = Config::load(&c).expect_err("broken card").to_string();
    assert!(
        e.contains("models.detector") && e.contains(&format!("{card_text}: colour:")),
        "{e}"
    );
    // a model file without a card, by its model name
    std::fs::remove_file(&card_path).expect("rm");
    let text = std::fs::read_to_string(&c)
        .expect("read")
        .replace("m.toml", "m.onnx");
    std::fs::write(&c, text).expect("write");
    let e = Config::load(&c).expect_err("no card").to_string();
    assert!(
        e.contains("models.detector") && e.contains(&card_text),
        "{e}"
    );
}
