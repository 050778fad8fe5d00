//! `scenewatch detect`: runs the detector and image encoder (and optionally the pose model) on photos, prints one
//! JSON line per photo and optionally writes each with its boxes drawn.

use std::path::PathBuf;

use crate::config::Config;
use crate::infer::Models;

pub struct DetectArgs {
    pub config: PathBuf,
    /// PNG or JPEG files.
    pub images: Vec<PathBuf>,
    /// Directory to write `<name>.detections.jpg` with boxes drawn.
    pub draw: Option<PathBuf>,
    /// Also run the pose model and print each person's posture.
    pub pose: bool,
}

/// Prints `{"input", "detections", "imagenet_top5"}` per photo; the first photo that cannot be read ends it.
pub fn run(args: DetectArgs) -> anyhow::Result<()> {
    let DetectArgs {
        config,
        images,
        draw,
        pose,
    } = args;
    let cfg = Config::load(&config)?;
    let mut models = Models::load(&cfg)?;
    if pose && models.pose.is_none() {
        models.load_pose(&cfg)?;
    }
    for path in &images {
        let img = image::open(path)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
            .to_rgb8();
        let (w, h) = img.dimensions();
        let dets = models.detector.detect(img.as_raw(), w, h)?;
        let postures = match models.pose.as_mut().filter(|_| pose) {
            Some(pm) => crate::infer::pose::postures_for(&dets, &pm.poses(img.as_raw(), w, h)?),
            None => vec![None; dets.len()],
        };
        let top = match models.encoder.as_mut() {
            Some(enc) => enc
                .encode(&[(img.as_raw().as_slice(), w, h)])?
                .first()
                .map(|e| e.top_k(5))
                .unwrap_or_default(),
            None => Vec::new(),
        };
        let imagenet: Vec<_> = top
            .iter()
            .map(|(i, p)| serde_json::json!({"class": models.imagenet_labels.get(*i), "p": (p * 1000.0).round() / 1000.0}))
            .collect();
        let line = serde_json::json!({
            "input": path.display().to_string(),
            "detections": dets.iter().zip(&postures).map(|(d, p)| {
                let mut j = serde_json::json!({
                    "label": d.label, "score": (d.score * 1000.0).round() / 1000.0,
                    "box": [d.bbox.x1.round(), d.bbox.y1.round(), d.bbox.x2.round(), d.bbox.y2.round()],
                });
                if pose && d.label == "person" {
                    j["posture"] = serde_json::json!(p);
                }
                j
            }).collect::<Vec<_>>(),
            "imagenet_top5": imagenet,
        });
        println!("{line}");
        if let Some(dir) = &draw {
            let mut canvas = img.clone();
            for d in &dets {
                crate::events::snapshot::draw_box(&mut canvas, &d.bbox);
            }
            std::fs::create_dir_all(dir)?;
            let stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().to_string())
                .unwrap_or_else(|| "image".into());
            canvas.save(dir.join(format!("{stem}.detections.jpg")))?;
        }
    }
    Ok(())
}
