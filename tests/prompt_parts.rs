//! Compositional prompts on real media (issue 18): `scenewatch eval eval/prompts.toml --json` through the real
//! binary must keep the top-1 accuracy measured in docs/prompts.md, on the tuning entries and on the held-apart
//! ones; and `prompts test` must say which parts of a prompt it understood, how each scored, and which words
//! nothing can check. Cuts the derived stills first (scripts/make_timelines.sh --dev: idempotent).

mod common;

use std::time::Duration;

use common::*;
use scenewatch::cmd::prompts::{run, TestArgs};

/// Measured 30 of 31 (before this change, the head alone: 10 of 31). One entry of slack below the measured value
/// for numeric differences between machines.
const TUNING_TOP1_MIN: f64 = 0.93;
/// Measured 12 of 12 (before: 6 of 12). One entry of slack.
const HELD_TOP1_MIN: f64 = 0.91;

#[test]
fn prompt_sets_differing_in_one_part_rank_the_fitting_prompt_first() {
    cut_timelines();
    let out = eval_json(
        &repo(),
        &["eval/prompts.toml"],
        &[],
        Duration::from_secs(300),
    );
    let report = out.first().expect("the report");
    let tuning = report["prompts"]["top1"].as_f64().expect("prompts.top1");
    let held = report["held_apart"]["prompts"]["top1"]
        .as_f64()
        .expect("held_apart.prompts.top1");
    eprintln!("tuning {tuning}, held apart {held}: {report}");
    assert!(
        tuning >= TUNING_TOP1_MIN,
        "tuning top-1 {tuning}: {}",
        report["prompts"]["misses"]
    );
    assert!(
        held >= HELD_TOP1_MIN,
        "held-apart top-1 {held}: {}",
        report["held_apart"]["prompts"]["misses"]
    );
}

/// The issue's own prompts (no set of eval/prompts.toml holds them) on two real photos: a posture prompt
/// needs the posture, a count prompt the count; parts are shown with their scores, unknown words are named.
#[test]
fn prompts_test_shows_each_part_and_names_what_it_cannot_check() {
    let cfg = write_config(
        1883,
        "parts",
        "[[cameras]]\nname = \"x\"\nurl = \"test://\"\n",
    );
    let (two, one, lying, talking) = (
        "two people standing together",
        "one person alone",
        "a person lying on the ground",
        "a man talking to the camera indoors",
    );
    let lines = run(TestArgs {
        config: cfg.path.clone(),
        camera: None,
        prompts: vec![two.into(), one.into(), lying.into(), talking.into()],
        inputs: vec![media("basketball2.png"), media("astronaut.png")],
        json: true,
    })
    .expect("prompts test");
    let score = |input: &str, prompt: &str| {
        lines
            .iter()
            .find(|l| l.input.ends_with(input))
            .and_then(|l| l.scores.iter().find(|s| s.prompt == prompt))
            .unwrap_or_else(|| panic!("{input} {prompt}"))
    };
    // two people standing: the count and posture parts, not the head, decide
    assert!(
        score("basketball2.png", two).score > score("basketball2.png", one).score,
        "{:?}",
        lines[0].scores
    );
    assert!(score("basketball2.png", lying).score < 0.3);
    assert!(score("astronaut.png", one).score > score("astronaut.png", two).score);
    // each understood part is listed with its score
    let parts = &score("basketball2.png", two).parts;
    assert!(
        parts
            .iter()
            .any(|p| p.part == "exactly 2 person standing" && p.score.is_some()),
        "{parts:?}"
    );
    // 'talking' is checked by nothing: the part says so instead of scoring it as something else
    let t = &score("astronaut.png", talking).parts;
    assert!(
        t.iter()
            .any(|p| p.note.as_deref().is_some_and(|n| n.contains("talking"))),
        "{t:?}"
    );
}
