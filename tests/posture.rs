//! Posture from the real MoveNet model on real photos: the people standing in basketball1/2 and messi5 come out
//! `standing`; the same photos turned on their side (a person lying on the floor, as a "person down" rule must
//! see) come out `lying`; an upper-body portrait (astronaut) is not guessed at.

mod common;

use common::*;
use scenewatch::config::Config;
use scenewatch::infer::pose::{match_poses, Posture};
use scenewatch::infer::Models;

fn models() -> Models {
    let cfg = write_config(
        1883,
        "pose",
        "[[cameras]]\nname = \"x\"\nurl = \"test://\"\n[[cameras.rules]]\nlabel = \"person\"\nposture = \"lying\"\n",
    );
    let cfg = Config::load(&cfg.path).expect("config");
    let m = Models::load(&cfg).expect("models load");
    assert!(
        m.pose.is_some(),
        "a posture rule loads the pose model (and it is reported)"
    );
    assert!(m.reports().iter().any(|r| r.name == "pose"));
    m
}

/// Postures the posture rules would see: of the person detections (best first), then of people only the pose
/// model found.
fn postures(m: &mut Models, img: &image::RgbImage) -> (Vec<Option<Posture>>, Vec<Posture>) {
    let (w, h) = img.dimensions();
    let dets = m.detector.detect(img.as_raw(), w, h).expect("detect");
    let poses = m
        .pose
        .as_mut()
        .expect("pose model")
        .poses(img.as_raw(), w, h)
        .expect("pose");
    let (per_det, only) = match_poses(&dets, &poses);
    let mut people: Vec<_> = dets
        .iter()
        .zip(per_det)
        .filter(|(d, _)| d.label == "person")
        .collect();
    people.sort_by(|a, b| b.0.score.total_cmp(&a.0.score));
    (
        people.into_iter().map(|(_, p)| p).collect(),
        only.into_iter().map(|p| p.posture).collect(),
    )
}

#[test]
fn standing_people_stand_and_the_same_people_on_their_side_lie() {
    let mut m = models();
    let mut lying = Vec::new();
    for photo in ["basketball1.png", "basketball2.png", "messi5.jpg"] {
        let img = image::open(media(photo)).expect("photo").to_rgb8();
        let (dets, only) = postures(&mut m, &img);
        assert_eq!(
            dets.first(),
            Some(&Some(Posture::Standing)),
            "{photo}: {dets:?}"
        );
        assert!(!only.contains(&Posture::Lying), "{photo}: {only:?}");
        for (turn, rotated) in [
            ("90", image::imageops::rotate90(&img)),
            ("270", image::imageops::rotate270(&img)),
        ] {
            let (dets, only) = postures(&mut m, &rotated);
            let all: Vec<Posture> = dets.iter().flatten().copied().chain(only).collect();
            assert!(
                !all.contains(&Posture::Standing),
                "{photo} turned {turn}°: detections {dets:?}, all {all:?}"
            );
            eprintln!("{photo} turned {turn}°: detections {dets:?}, all {all:?}");
            if all.contains(&Posture::Lying) {
                lying.push(format!("{photo}@{turn}"));
            }
        }
    }
    // measured: 5 of 6 (messi5 turned 270°: the pose is found but its hips are not clear enough to judge)
    assert!(
        lying.len() >= 5,
        "people on their side seen lying: {lying:?}"
    );
    let astronaut = image::open(media("astronaut.png"))
        .expect("photo")
        .to_rgb8();
    assert_eq!(
        postures(&mut m, &astronaut),
        (vec![None], vec![]),
        "upper body only: sitting or standing cannot be told"
    );
    for empty in ["leuvenA.jpg", "leuvenB.jpg"] {
        let img = image::open(media(empty)).expect("photo").to_rgb8();
        assert_eq!(
            postures(&mut m, &img),
            (vec![], vec![]),
            "{empty}: nobody there"
        );
    }
}
