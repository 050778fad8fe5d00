//! Plumbing tests of the bring-your-own image–text pair (`[models] image_text`, docs/image_text.md): tiny generated
//! graphs of the right shapes stand in for CLIP/SigLIP. The image encoder averages each colour channel and
//! multiplies by a fixed matrix; the text encoder averages rows of a fixed table, one row per word of a tiny
//! WordLevel `tokenizer.json`. So a red frame is closest to the prompt "red" *by construction*: these tests check
//! that the card, the loading path, the checks, preprocessing, the score mapping, `prompts test` and the daemon's
//! prompt alerts are wired together. They understand nothing, and say nothing about real CLIP or SigLIP.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::onnx::{node, Attr, Dim, Elem, Graph, Tensor};
use common::*;
use scenewatch::cmd::prompts::{run, Line, TestArgs};

/// Embedding size of the plumbing graphs.
const D: usize = 4;
/// Image side the plumbing image encoder declares.
const S: i64 = 16;
/// The tiny vocabulary: words outside it ("a", "photo", "of", ".") are [UNK], whose row is zero.
const VOCAB: [&str; 6] = ["[PAD]", "[UNK]", "red", "blue", "green", "grey"];

const CLIP_MEAN: [f32; 3] = [0.481_454_66, 0.457_827_5, 0.408_210_73];
const CLIP_STD: [f32; 3] = [0.268_629_54, 0.261_302_6, 0.275_777_1];

/// pixel_values [B,3,S,S] → mean over H, W per channel [B,3] → MatMul [3,dim] → image_embeds [B,dim]: the first
/// three embedding values are the normalised channel means, the rest 0.
fn image_graph(input: &str, dim: usize) -> Graph {
    let mut w = vec![0.0f32; 3 * dim];
    for c in 0..3 {
        w[c * dim + c] = 1.0;
    }
    Graph::default()
        .input(
            input,
            Elem::F32,
            vec![
                Dim::Named("batch"),
                Dim::Fixed(3),
                Dim::Fixed(S),
                Dim::Fixed(S),
            ],
        )
        .output(
            "image_embeds",
            Elem::F32,
            vec![Dim::Named("batch"), Dim::Fixed(dim as i64)],
        )
        .init(Tensor::f32("w", &[3, dim as i64], w))
        .node(node(
            "ReduceMean",
            &[input],
            &["channel_means"],
            vec![("axes", Attr::Ints(vec![2, 3])), ("keepdims", Attr::Int(0))],
        ))
        .node(node(
            "MatMul",
            &["channel_means", "w"],
            &["image_embeds"],
            vec![],
        ))
}

/// input_ids [B,L] (+ an attention_mask it ignores) → rows of a fixed table [V,dim] → mean over L →
/// text_embeds [B,dim]. "red" points along the image's R axis, "blue" along B, "green" along G, "grey" along the
/// 4th axis that no image reaches; [PAD] and [UNK] are zero.
fn text_graph(mask: bool, seq: Dim, dim: usize) -> Graph {
    let mut table = vec![0.0f32; VOCAB.len() * dim];
    for (word, axis) in [(2, 0), (3, 2), (4, 1), (5, 3)] {
        if axis < dim {
            table[word * dim + axis] = 1.0;
        }
    }
    let mut g = Graph::default().input(
        "input_ids",
        Elem::I64,
        vec![Dim::Named("batch"), seq.clone()],
    );
    if mask {
        g = g.input("attention_mask", Elem::I64, vec![Dim::Named("batch"), seq]);
    }
    g.output(
        "text_embeds",
        Elem::F32,
        vec![Dim::Named("batch"), Dim::Fixed(dim as i64)],
    )
    .init(Tensor::f32(
        "table",
        &[VOCAB.len() as i64, dim as i64],
        table,
    ))
    .node(node(
        "Gather",
        &["table", "input_ids"],
        &["rows"],
        vec![("axis", Attr::Int(0))],
    ))
    .node(node(
        "ReduceMean",
        &["rows"],
        &["text_embeds"],
        vec![("axes", Attr::Ints(vec![1])), ("keepdims", Attr::Int(0))],
    ))
}

/// A WordLevel tokenizer over `VOCAB`, lowercasing, split on whitespace and punctuation.
fn tokenizer_json() -> String {
    let vocab: Vec<String> = VOCAB
        .iter()
        .enumerate()
        .map(|(i, w)| format!("\"{w}\": {i}"))
        .collect();
    format!(
        r#"{{"version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
  "normalizer": {{"type": "Lowercase"}}, "pre_tokenizer": {{"type": "Whitespace"}},
  "post_processor": null, "decoder": null,
  "model": {{"type": "WordLevel", "vocab": {{{}}}, "unk_token": "[UNK]"}}}}"#,
        vocab.join(", ")
    )
}

/// A folder with the plumbing pair (image.onnx, text.onnx, tokenizer.json) and a card `card.toml` (`body`).
struct Pair {
    dir: tempfile::TempDir,
}

impl Pair {
    fn new(image: Graph, text: Graph) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        image.write(&dir.path().join("image.onnx"));
        text.write(&dir.path().join("text.onnx"));
        std::fs::write(dir.path().join("tokenizer.json"), tokenizer_json()).expect("tokenizer");
        Self { dir }
    }

    /// The usual plumbing pair: CLIP-like (attention mask, any length) or SigLIP-like (fixed length, no mask).
    fn standard(clip: bool) -> Self {
        let text = if clip {
            text_graph(true, Dim::Named("seq"), D)
        } else {
            text_graph(false, Dim::Fixed(8), D)
        };
        Self::new(image_graph("pixel_values", D), text)
    }

    fn card(&self, body: &str) -> PathBuf {
        let path = self.dir.path().join("card.toml");
        std::fs::write(&path, body).expect("card");
        path
    }

    fn photo(&self, name: &str, rgb: [u8; 3]) -> PathBuf {
        let path = self.dir.path().join(name);
        image::RgbImage::from_pixel(64, 48, image::Rgb(rgb))
            .save(&path)
            .expect("png");
        path
    }
}

const FILES: &str =
    "image_encoder = \"image.onnx\"\ntext_encoder = \"text.onnx\"\ntokenizer = \"tokenizer.json\"\n";

fn clip_card() -> String {
    format!(
        "format = \"clip\"\n{FILES}image_size = {S}\npad_token = \"[PAD]\"\n\
         [calibration]\nscale = 10.0\nbias = 0.0\nbackground = [\"green\", \"grey\"]\n"
    )
}

fn siglip_card() -> String {
    format!(
        "format = \"siglip\"\n{FILES}image_size = {S}\ncontext_length = 8\nmean = [0.5, 0.5, 0.5]\n\
         std = [0.5, 0.5, 0.5]\n[calibration]\nscale = 10.0\nbias = -2.0\n"
    )
}

/// A daemon config (`write_config`: the shipped detector) with `image_text = CARD` in its `[models]`.
fn config(port: u16, prefix: &str, card: &Path, cameras: &str) -> TestConfig {
    let cfg = write_config(port, prefix, cameras);
    let text = std::fs::read_to_string(&cfg.path).expect("config");
    let text = text.replacen(
        "[models]\n",
        &format!("[models]\nimage_text = \"{}\"\n", card.display()),
        1,
    );
    std::fs::write(&cfg.path, text).expect("config");
    cfg
}

fn prompts_test(
    cfg: &TestConfig,
    prompts: &[&str],
    inputs: &[PathBuf],
) -> anyhow::Result<Vec<Line>> {
    run(TestArgs {
        config: cfg.path.clone(),
        camera: None,
        prompts: prompts.iter().map(|p| p.to_string()).collect(),
        inputs: inputs.to_vec(),
        json: true,
    })
}

fn scores(line: &Line) -> Vec<(&str, f32, f32)> {
    line.scores
        .iter()
        .map(|s| (s.prompt.as_str(), s.score, s.raw))
        .collect()
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// The image side of the plumbing graph by hand: the unit vector of the normalised channel values.
fn image_embedding(rgb: [u8; 3], mean: [f32; 3], std: [f32; 3]) -> [f32; 3] {
    let v: Vec<f32> = (0..3)
        .map(|c| (rgb[c] as f32 / 255.0 - mean[c]) / std[c])
        .collect();
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    [v[0] / n, v[1] / n, v[2] / n]
}

const CAMERA: &str = "[[cameras]]\nname = \"x\"\nurl = \"test://\"\n";

#[test]
fn plumbing_clip_card_ranks_the_colour_by_construction_through_prompts_test() {
    let pair = Pair::standard(true);
    let card = pair.card(&clip_card());
    let cfg = config(1883, "itp", &card, CAMERA);
    let (red, blue) = (
        pair.photo("red.png", [255, 0, 0]),
        pair.photo("blue.png", [0, 0, 255]),
    );
    let lines = prompts_test(&cfg, &["red", "blue", "green"], &[red, blue]).expect("prompts test");
    assert_eq!(lines.len(), 2);
    for (line, rgb, top) in [
        (&lines[0], [255, 0, 0], "red"),
        (&lines[1], [0, 0, 255], "blue"),
    ] {
        let got = scores(line);
        assert_eq!(got[0].0, top, "{}: {got:?}", line.input);
        // the exact numbers of the card's mapping on the graph's output, computed by hand: the raw cosine is
        // the colour axis of the normalised frame; the score is the prompt's softmax against the background
        // texts "green" (the G axis) and "grey" (an axis no frame reaches, cosine 0)
        let e = image_embedding(rgb, CLIP_MEAN, CLIP_STD);
        let cos = |p: &str| match p {
            "red" => e[0],
            "green" => e[1],
            "blue" => e[2],
            _ => 0.0,
        };
        let level = ((10.0 * cos("green")).exp() + 1.0f32).ln();
        for (prompt, score, raw) in got {
            let want_raw = cos(prompt);
            let want = sigmoid(10.0 * want_raw - level);
            assert!(
                (raw - want_raw).abs() < 2e-3,
                "{prompt}: raw {raw} vs {want_raw}"
            );
            assert!(
                (score - want).abs() < 2e-3,
                "{prompt}: score {score} vs {want}"
            );
        }
    }
    assert!(scores(&lines[0])[0].1 > 0.9 && scores(&lines[0])[2].1 < 0.1);
}

#[test]
fn plumbing_siglip_card_scores_each_prompt_by_its_sigmoid_without_an_attention_mask() {
    let pair = Pair::standard(false);
    let card = pair.card(&siglip_card());
    let cfg = config(1883, "its", &card, CAMERA);
    let green = pair.photo("green.png", [0, 255, 0]);
    let lines = prompts_test(&cfg, &["red", "green", "grey"], &[green]).expect("prompts test");
    let got = scores(&lines[0]);
    assert_eq!(got[0].0, "green", "{got:?}");
    let e = image_embedding([0, 255, 0], [0.5; 3], [0.5; 3]);
    for (prompt, score, raw) in got {
        let want_raw = match prompt {
            "red" => e[0],
            "green" => e[1],
            _ => 0.0,
        };
        assert!(
            (raw - want_raw).abs() < 2e-3,
            "{prompt}: raw {raw} vs {want_raw}"
        );
        let want = sigmoid(10.0 * want_raw - 2.0);
        assert!(
            (score - want).abs() < 2e-3,
            "{prompt}: score {score} vs {want}"
        );
    }
}

/// The error `prompts test` gives for a pair made of `image`/`text` and `card` (it must fail at load).
fn load_error(pair: &Pair, card: &str) -> String {
    let card = pair.card(card);
    let cfg = config(1883, "ite", &card, CAMERA);
    let photo = pair.photo("grey.png", [128, 128, 128]);
    let e = prompts_test(&cfg, &["red"], &[photo]).expect_err("must not load");
    let msg = format!("{e:#}");
    assert!(
        msg.contains(&card.display().to_string()),
        "the error names the card: {msg}"
    );
    msg
}

#[test]
fn plumbing_signature_mismatches_are_clear_errors_naming_the_card() {
    // embedding sizes differ: image 4, text 3
    let pair = Pair::new(
        image_graph("pixel_values", D),
        text_graph(true, Dim::Named("seq"), 3),
    );
    let e = load_error(&pair, &clip_card());
    assert!(
        e.contains("4 values per image") && e.contains("3 per text"),
        "{e}"
    );

    // the image input has another name: the error says what it has and which card key fixes it
    let pair = Pair::new(
        image_graph("input", D),
        text_graph(true, Dim::Named("seq"), D),
    );
    let e = load_error(&pair, &clip_card());
    assert!(
        e.contains("no 'pixel_values'") && e.contains("'input'"),
        "{e}"
    );
    assert!(e.contains("names.pixel_values"), "{e}");
    // … and naming it in the card makes the pair load and rank as before
    let card = pair.card(&clip_card().replace(
        "[calibration]",
        "[names]\npixel_values = \"input\"\n[calibration]",
    ));
    let cfg = config(1883, "itn", &card, CAMERA);
    let red = pair.photo("red.png", [255, 0, 0]);
    let lines = prompts_test(&cfg, &["blue", "red"], &[red]).expect("renamed input loads");
    assert_eq!(lines[0].scores[0].prompt, "red");

    // the graph is 16×16, the card says 32
    let pair = Pair::standard(true);
    let e = load_error(
        &pair,
        &clip_card().replace(&format!("image_size = {S}"), "image_size = 32"),
    );
    assert!(e.contains("image_size is 32"), "{e}");

    // a SigLIP-like text graph fixed at 8 tokens, the card's context_length 64 (the SigLIP default)
    let pair = Pair::standard(false);
    let e = load_error(&pair, &siglip_card().replace("context_length = 8\n", ""));
    assert!(e.contains("context_length is 64"), "{e}");
}

#[test]
fn plumbing_missing_files_and_bad_cards_are_clear_errors_naming_the_card() {
    let pair = Pair::standard(true);
    let e = load_error(&pair, &clip_card().replace("text.onnx", "missing.onnx"));
    assert!(
        e.contains("text_encoder") && e.contains("missing.onnx") && e.contains("does not exist"),
        "{e}"
    );

    let e = load_error(&pair, &clip_card().replace("tokenizer.json", "nope.json"));
    assert!(
        e.contains("tokenizer") && e.contains("does not exist"),
        "{e}"
    );

    std::fs::write(pair.dir.path().join("broken.json"), "{\"model\": 1}").expect("write");
    let e = load_error(&pair, &clip_card().replace("tokenizer.json", "broken.json"));
    assert!(e.contains("not a tokenizer.json"), "{e}");

    let e = load_error(&pair, &clip_card().replace("[PAD]", "<pad>"));
    assert!(e.contains("pad_token") && e.contains("<pad>"), "{e}");

    let e = load_error(&pair, &siglip_card().replace("scale = 10.0\n", ""));
    assert!(e.contains("calibration.scale: required"), "{e}");

    // the card itself missing
    let cfg = config(1883, "itm", &pair.dir.path().join("no_card.toml"), CAMERA);
    let e =
        prompts_test(&cfg, &["red"], &[pair.photo("red.png", [255, 0, 0])]).expect_err("no card");
    assert!(format!("{e:#}").contains("no_card.toml"), "{e:#}");
}

/// Scores only a short time of real time (test:// is live): the daemon on a red test pattern raises a prompt
/// alert for "red", none for "blue", through the pair's graphs.
#[test]
fn plumbing_daemon_on_a_red_test_pattern_alerts_on_the_red_prompt_only() {
    let pair = Pair::standard(true);
    let card = pair.card(&clip_card());
    let broker = Broker::start();
    let rec = Recorder::start(broker.port, "itd/#");
    let cam = "[[cameras]]\nname = \"wall\"\nurl = \"test://red\"\nsample_fps = 2.0\nclip_seconds = 1.0\n\
               [[cameras.prompts]]\ntext = \"red\"\nthreshold = 0.9\n\
               [[cameras.prompts]]\ntext = \"blue\"\nthreshold = 0.5\n";
    let cfg = config(broker.port, "itd", &card, cam);
    let mut d = Daemon::spawn(&cfg.path, &[]);
    let alerts = |rec: &Recorder| -> Vec<serde_json::Value> {
        rec.on("itd/wall/alerts").iter().map(|m| m.json()).collect()
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    while !alerts(&rec)
        .iter()
        .any(|a| a["kind"] == "prompt" && a["type"] == "new" && a["prompt"] == "red")
    {
        assert!(
            Instant::now() < deadline,
            "no prompt alert for 'red': {:#?}\n{}",
            alerts(&rec),
            d.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // a few more clips, then stop
    std::thread::sleep(Duration::from_secs(3));
    d.signal("TERM");
    let (code, log) = d.wait(Duration::from_secs(60));
    assert_eq!(code, Some(0), "{log}");
    let all = alerts(&rec);
    assert!(
        !all.iter().any(|a| a["prompt"] == "blue"),
        "no alert for 'blue' on a red picture: {all:#?}"
    );
    let red = all
        .iter()
        .find(|a| a["prompt"] == "red")
        .expect("red alert");
    assert!(red["score"].as_f64().unwrap_or(0.0) >= 0.9, "{red}");
    // the pair's models were loaded and reported, EfficientNet and the ConSE head were not
    assert!(log.contains("image_text.image_encoder"), "{log}");
    assert!(log.contains("image_text.text_encoder"), "{log}");
    assert!(!log.contains("efficientnet"), "{log}");
    assert!(!log.contains("language_head"), "{log}");
}

/// `scenewatch eval` with only `[[prompt]]` entries and the card named through the environment
/// (`SCENEWATCH__MODELS__IMAGE_TEXT`): the entries are ranked by the pair, top-1 by construction.
#[test]
fn plumbing_eval_prompt_entries_are_ranked_by_the_pair() {
    let pair = Pair::standard(true);
    let card = pair.card(&clip_card());
    let (red, blue) = (
        pair.photo("red.png", [255, 0, 0]),
        pair.photo("blue.png", [0, 0, 255]),
    );
    let manifest = pair.dir.path().join("manifest.toml");
    std::fs::write(
        &manifest,
        format!(
            "[camera]\nprompts = [{{ text = \"red\" }}, {{ text = \"blue\" }}, {{ text = \"green\" }}]\n\n\
             [[prompt]]\nfile = \"{}\"\nexpect = \"red\"\n\n[[prompt]]\nfile = \"{}\"\nexpect = \"blue\"\n",
            red.display(),
            blue.display()
        ),
    )
    .expect("manifest");
    let eval = || -> serde_json::Value {
        let models = repo().join("models");
        let mut out = eval_json(
            pair.dir.path(),
            &["manifest.toml"],
            &[
                ("SCENEWATCH__MODELS__DIR", models.as_os_str()),
                ("SCENEWATCH__MODELS__IMAGE_TEXT", card.as_os_str()),
            ],
            Duration::from_secs(120),
        );
        assert_eq!(out.len(), 1, "one JSON object: {out:?}");
        out.remove(0)
    };
    let report = eval();
    assert_eq!(
        report["prompts"]["top1"],
        serde_json::json!(1.0),
        "{report}"
    );
    // the same entries with the expectations swapped: 0 of 2, so the ranking really came from the frames
    let swapped = std::fs::read_to_string(&manifest)
        .expect("manifest")
        .replace("expect = \"red\"", "expect = \"RED\"")
        .replace("expect = \"blue\"", "expect = \"red\"")
        .replace("expect = \"RED\"", "expect = \"blue\"");
    std::fs::write(&manifest, swapped).expect("manifest");
    let report = eval();
    assert_eq!(
        report["prompts"]["top1"],
        serde_json::json!(0.0),
        "{report}"
    );
}

/// A reload gives a running camera its first prompts: the reload opens the pair's text side, the worker opens
/// its image encoder (checked against it), and the prompt alerts follow.
#[test]
fn plumbing_a_reload_brings_the_first_prompts_to_a_pair() {
    let pair = Pair::standard(true);
    let card = pair.card(&clip_card());
    let broker = Broker::start();
    let rec = Recorder::start(broker.port, "itr/#");
    let cam =
        "[[cameras]]\nname = \"wall\"\nurl = \"test://red\"\nsample_fps = 2.0\nclip_seconds = 1.0\n";
    let cfg = config(broker.port, "itr", &card, cam);
    let mut d = Daemon::spawn(&cfg.path, &[]);
    d.wait_log("the camera running", Duration::from_secs(60), |l| {
        l.contains("state=Running")
    });
    assert!(
        !d.log().contains("image_text.image_encoder"),
        "no prompts at start-up: the pair is not opened"
    );
    let text = std::fs::read_to_string(&cfg.path).expect("config");
    let with_prompt = text.replace(
        cam,
        &format!("{cam}[[cameras.prompts]]\ntext = \"red\"\nthreshold = 0.9\n"),
    );
    assert_ne!(text, with_prompt);
    std::fs::write(&cfg.path, with_prompt).expect("rewrite");
    d.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !rec
        .on("itr/wall/alerts")
        .iter()
        .any(|m| m.json()["prompt"] == "red")
    {
        assert!(
            Instant::now() < deadline,
            "no prompt alert after the reload:\n{}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    d.signal("TERM");
    let (code, log) = d.wait(Duration::from_secs(60));
    assert_eq!(code, Some(0), "{log}");
    assert!(
        log.contains("image-text image encoder opened for a reloaded camera's prompts"),
        "{log}"
    );
}

/// Tiny CLIP and SigLIP of the real architectures (attention, layer norms, CLIP's end-of-text pooling, SigLIP's
/// attention-pooling head) with *random* weights, exported by models/export/export_image_text.py --random
/// (tests/data/image_text/README.md): the graphs the export recipe writes pass the checks, run, and give scores in
/// 0..1. Random weights: the scores mean nothing, and nothing here is asserted about them beyond their range.
#[test]
fn plumbing_random_weight_clip_and_siglip_exports_load_and_score() {
    let dir = tempfile::tempdir().expect("tempdir");
    let photo = dir.path().join("red.png");
    image::RgbImage::from_pixel(80, 60, image::Rgb([200, 30, 30]))
        .save(&photo)
        .expect("png");
    for format in ["clip", "siglip"] {
        let card = repo().join(format!("tests/data/image_text/{format}/card.toml"));
        let cfg = config(1883, "itx", &card, CAMERA);
        let prompts = ["a red car", "a dog", "a person on a path"];
        let lines = prompts_test(&cfg, &prompts, std::slice::from_ref(&photo))
            .unwrap_or_else(|e| panic!("{format}: {e:#}"));
        let got = scores(&lines[0]);
        assert_eq!(got.len(), 3, "{format}: {got:?}");
        for (p, score, raw) in &got {
            assert!((0.0..=1.0).contains(score), "{format} {p}: {score}");
            assert!((-1.0..=1.0).contains(raw), "{format} {p}: {raw}");
        }
        let again = prompts_test(&cfg, &prompts, std::slice::from_ref(&photo)).expect("again");
        assert_eq!(
            scores(&again[0]),
            got,
            "{format}: the same scores on a second run"
        );
    }
}

/// The pair's tokenization on the exported tokenizer (WordLevel, an end-of-text token added after the text, as
/// CLIP's): padded to `context_length` with the card's pad token, and a prompt longer than that truncated with
/// its end-of-text token kept (CLIP's text pooling reads it).
#[test]
fn plumbing_prompts_are_padded_and_truncated_with_the_end_token_kept() {
    use scenewatch::infer::imagetext::{Card, TextEncoder};
    use scenewatch::infer::runtime::{self, SessionOptions};
    let card = Card::load(&repo().join("tests/data/image_text/clip/card.toml")).expect("card");
    let env = runtime::init(None, None, true).expect("ONNX Runtime (run scripts/deps.sh)");
    let opts = SessionOptions {
        provider: scenewatch::config::ProviderChoice::Cpu,
        intra_threads: 1,
        shared_pool: false,
        spinning: true,
    };
    let text = TextEncoder::open(env, &card, opts).expect("text encoder");
    let long = "a photo of a red car a blue car a green car a dog a person a red dog a blue dog"
        .to_string();
    let (ids, mask) = text
        .tokenize(&["a red car".to_string(), long])
        .expect("tokenize");
    let l = card.context_length;
    assert_eq!((ids.len(), mask.len()), (2 * l, 2 * l));
    let (eos, pad) = (11, 0); // [EOS] and [PAD] in tests/data/image_text/clip/tokenizer.json
    assert_eq!(&ids[..4], &[2, 5, 9, eos], "a red car [EOS]");
    assert!(ids[4..l].iter().all(|i| *i == pad), "{ids:?}");
    assert_eq!(mask[..l].iter().sum::<i64>(), 4);
    assert_eq!(
        ids[2 * l - 1],
        eos,
        "truncated, the end token kept: {ids:?}"
    );
    assert!(mask[l..].iter().all(|m| *m == 1));
}

/// `scenewatch validate` reads the card and looks for its files (no model is opened).
#[test]
fn plumbing_validate_reads_the_card() {
    let pair = Pair::standard(true);
    let validate = |card: &Path| {
        let cfg = config(1883, "itv", card, CAMERA);
        let out = std::process::Command::new(bin())
            .args(["validate"])
            .arg(&cfg.path)
            .output()
            .expect("scenewatch validate");
        (out.status.code(), stderr(&out))
    };
    let good = pair.card(&clip_card());
    assert_eq!(validate(&good).0, Some(0), "{}", validate(&good).1);
    let gone = pair.card(&clip_card().replace("image.onnx", "gone.onnx"));
    let (code, err) = validate(&gone);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("models.image_text")
            && err.contains("image_encoder")
            && err.contains("gone.onnx"),
        "{err}"
    );
    let bad = pair.card(&clip_card().replace("format = \"clip\"", "format = \"clap\""));
    let (code, err) = validate(&bad);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("card.toml") && err.contains("clap"), "{err}");
}
