//! The detector's model card (`models/<model>.toml`, next to the model file): which decoder the model needs
//! (`format`), the input size it was exported for, its labels in output order, how frame pixels are fed to it, and
//! the per-label score levels calibrated for it (`[thresholds.*]`, with how they were calibrated). This module owns
//! reading it, with errors that name the card file and the key. It imports nothing of the inference stage but
//! `crate::labels`, so config validation reads a card's labels through it too. `docs/detectors.md` documents the keys.

use std::path::{Path, PathBuf};

use crate::labels::{ClassNames, LabelThresholds, Thresholds, VEHICLE_GROUP};

/// Which decoder a detector's outputs need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// NanoDet-g as shipped (TF export: three score and three GFL box outputs).
    Nanodet,
    /// Ultralytics YOLOv5 / YOLOv8 / YOLO11 exports: one output, boxes already decoded to input pixels.
    Yolo,
    /// YOLOX's `tools/export_onnx.py`: one output of raw grid offsets (or decoded, `decode_in_inference = true`).
    Yolox,
    /// RT-DETR / D-FINE deploy exports (`labels`, `boxes`, `scores`), or the raw `logits` + `pred_boxes` form.
    Detr,
}

impl Format {
    pub const NAMES: [&'static str; 4] = ["nanodet", "yolo", "yolox", "detr"];

    fn parse(s: &str) -> Option<Self> {
        match s {
            "nanodet" => Some(Self::Nanodet),
            "yolo" => Some(Self::Yolo),
            "yolox" => Some(Self::Yolox),
            "detr" => Some(Self::Detr),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Nanodet => "nanodet",
            Self::Yolo => "yolo",
            Self::Yolox => "yolox",
            Self::Detr => "detr",
        }
    }

    /// Whether the model predicts on a stride grid: its input sides must be multiples of 32 (the coarsest stride).
    pub fn grid(self) -> bool {
        !matches!(self, Self::Detr)
    }

    /// How each format's reference code feeds pixels (the card may override channels, mean, std and pad).
    pub fn default_pixels(self) -> PixelSpec {
        match self {
            // NanoDet's reference: centred letterbox, black padding, BGR, ImageNet mean/std on 0–255
            Self::Nanodet => PixelSpec {
                fit: Fit::Centre,
                channels: Channels::Bgr,
                mean: [103.53, 116.28, 123.675],
                std: [57.375, 57.12, 58.395],
                pad: 0,
            },
            // Ultralytics LetterBox (centred, grey 114), RGB, /255
            Self::Yolo => PixelSpec {
                fit: Fit::Centre,
                channels: Channels::Rgb,
                mean: [0.0; 3],
                std: [255.0; 3],
                pad: 114,
            },
            // YOLOX ValTransform (legacy = False): top-left letterbox (pads right and bottom), 114, BGR, 0–255
            Self::Yolox => PixelSpec {
                fit: Fit::TopLeft,
                channels: Channels::Bgr,
                mean: [0.0; 3],
                std: [1.0; 3],
                pad: 114,
            },
            // RT-DETR / D-FINE: plain resize to the input size, RGB, /255
            Self::Detr => PixelSpec {
                fit: Fit::Stretch,
                channels: Channels::Rgb,
                mean: [0.0; 3],
                std: [255.0; 3],
                pad: 0,
            },
        }
    }
}

/// The layouts of a YOLO output (`layout` in the card; found from the shape when it is not set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum YoloLayout {
    /// YOLOv8 / YOLO11: [1, 4+C, N], rows cx, cy, w, h then C class scores (no objectness).
    V8,
    /// The same transposed: [1, N, 4+C].
    V8Transposed,
    /// YOLOv5: [1, N, 5+C], cx, cy, w, h, objectness, C class scores (score = objectness × class).
    V5,
}

impl YoloLayout {
    pub const NAMES: [&'static str; 3] = ["v8", "v8-transposed", "v5"];

    fn parse(s: &str) -> Option<Self> {
        match s {
            "v8" => Some(Self::V8),
            "v8-transposed" => Some(Self::V8Transposed),
            "v5" => Some(Self::V5),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::V8 => "v8",
            Self::V8Transposed => "v8-transposed",
            Self::V5 => "v5",
        }
    }
}

/// Channel order of the model input's three planes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channels {
    Rgb,
    Bgr,
}

/// Where a frame goes in the model input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fit {
    /// Scaled to fit, aspect kept, centred (padding on both sides).
    Centre,
    /// Scaled to fit, aspect kept, in the top-left corner (padding right and bottom).
    TopLeft,
    /// Resized to the input size, aspect not kept.
    Stretch,
}

/// How frame pixels become the model's input tensor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PixelSpec {
    pub fit: Fit,
    pub channels: Channels,
    /// Per input plane (in the model's channel order), on 0–255 pixel values: (x − mean) / std.
    pub mean: [f32; 3],
    pub std: [f32; 3],
    /// The padding's value on every channel before normalisation.
    pub pad: u8,
}

/// Why a model card cannot be used: each names the card file, and the key where one is at fault.
#[derive(Debug, thiserror::Error)]
pub enum CardError {
    #[error("{}", missing_text(path, model.as_deref()))]
    Missing {
        path: PathBuf,
        /// The model file `[models] detector` named, when it named one rather than a card.
        model: Option<PathBuf>,
    },
    #[error("model card {path} could not be read: {message}")]
    Unreadable { path: PathBuf, message: String },
    #[error("model card {path}: {key}: {message}")]
    Key {
        path: PathBuf,
        key: String,
        message: String,
    },
}

fn missing_text(path: &Path, model: Option<&Path>) -> String {
    match model {
        Some(m) => format!(
            "the detector model {} has no model card: looked for {}. Write one next to the model (format, model, \
             input, labels; docs/detectors.md) or name a card in [models] detector",
            m.display(),
            path.display()
        ),
        None => format!(
            "model card {} does not exist ([models] detector; docs/detectors.md)",
            path.display()
        ),
    }
}

/// The card `[models] detector` refers to: the setting itself when it names a `.toml`, else (a model file) the
/// same stem with `.toml` next to it.
pub fn card_path(setting: &Path) -> PathBuf {
    if is_card(setting) {
        setting.to_path_buf()
    } else {
        setting.with_extension("toml")
    }
}

/// Whether a `[models] detector` setting names a card (rather than a model file).
pub fn is_card(setting: &Path) -> bool {
    setting.extension().is_some_and(|e| e == "toml")
}

/// A detector's model card, read and checked (the model file itself is checked against it when it is opened).
#[derive(Debug, Clone, PartialEq)]
pub struct DetectorCard {
    /// The card file.
    pub path: PathBuf,
    pub format: Format,
    /// The model file (the card's `model`, resolved against the card's directory).
    pub model: PathBuf,
    /// Width and height the model was exported for (with dynamic height and width: the box frames are fit in).
    pub input: (u32, u32),
    pub classes: ClassNames,
    /// `coco80`, or the labels file.
    pub labels_source: String,
    pub pixels: PixelSpec,
    /// YOLO only: the output layout when the card fixes it (else found from the output's shape).
    pub layout: Option<YoloLayout>,
    /// YOLOX only: the export decoded its boxes (`--decode_in_inference`).
    pub decode_in_inference: bool,
    thresholds: Thresholds,
    /// Free text: how the thresholds were calibrated (manifest, date, method).
    pub calibration: toml::Table,
}

const KEYS: [&str; 12] = [
    "format",
    "model",
    "input",
    "labels",
    "layout",
    "decode_in_inference",
    "channels",
    "mean",
    "std",
    "pad",
    "thresholds",
    "calibration",
];

impl DetectorCard {
    /// The card a `[models] detector` setting (resolved against `models.dir`) refers to: the card it names, or the
    /// card next to the model it names, which must then be that card's model.
    pub fn for_setting(setting: &Path) -> Result<Self, CardError> {
        let path = card_path(setting);
        if !path.is_file() {
            return Err(CardError::Missing {
                path,
                model: (!is_card(setting)).then(|| setting.to_path_buf()),
            });
        }
        let card = Self::load(&path)?;
        if !is_card(setting) && !same_file(&card.model, setting) {
            return Err(CardError::Key {
                path,
                key: "model".into(),
                message: format!(
                    "names {}, but [models] detector names {}; name the card there, or make its model that file",
                    card.model.display(),
                    setting.display()
                ),
            });
        }
        Ok(card)
    }

    /// Reads and checks the card file at `path` (and its labels file).
    pub fn load(path: &Path) -> Result<Self, CardError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                CardError::Missing {
                    path: path.to_path_buf(),
                    model: None,
                }
            } else {
                CardError::Unreadable {
                    path: path.to_path_buf(),
                    message: e.to_string(),
                }
            }
        })?;
        Self::parse(path, &text)
    }

    /// Checks the text of the card at `path` (relative files, the model and a labels file, are resolved against
    /// its directory; a labels file is read).
    pub fn parse(path: &Path, text: &str) -> Result<Self, CardError> {
        let key_err = |key: &str, message: String| CardError::Key {
            path: path.to_path_buf(),
            key: key.to_string(),
            message,
        };
        let table: toml::Table = toml::from_str(text).map_err(|e| CardError::Unreadable {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        if let Some(k) = table.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(key_err(
                k,
                format!("unknown key (a card has {})", KEYS.join(", ")),
            ));
        }
        let dir = path.parent().unwrap_or(Path::new("."));
        let string = |key: &str| -> Result<Option<&str>, CardError> {
            match table.get(key) {
                None => Ok(None),
                Some(toml::Value::String(s)) => Ok(Some(s.as_str())),
                Some(v) => Err(key_err(
                    key,
                    format!("must be a string, not {}", v.type_str()),
                )),
            }
        };
        let required = |key: &str| -> Result<&str, CardError> {
            string(key)?.ok_or_else(|| key_err(key, "missing (required)".into()))
        };

        let format_name = required("format")?;
        let format = Format::parse(format_name).ok_or_else(|| {
            key_err(
                "format",
                format!(
                    "'{format_name}' is not a detector format (one of {})",
                    Format::NAMES.join(", ")
                ),
            )
        })?;
        let model = required("model")?;
        if model.is_empty() {
            return Err(key_err("model", "is empty".into()));
        }
        let model = dir.join(model);

        let input = match table.get("input") {
            None => {
                return Err(key_err(
                    "input",
                    "missing (required): [width, height]".into(),
                ))
            }
            Some(v) => ints(v, 2).ok_or_else(|| {
                key_err(
                    "input",
                    format!("must be [width, height] in pixels, not {v}"),
                )
            })?,
        };
        let (w, h) = (input[0], input[1]);
        for side in [w, h] {
            if !(16..=4096).contains(&side) || (format.grid() && side % 32 != 0) {
                let rule = if format.grid() {
                    ", multiples of 32 (the coarsest stride)"
                } else {
                    ""
                };
                return Err(key_err(
                    "input",
                    format!("[{w}, {h}]: each side must be in 16..=4096{rule}"),
                ));
            }
        }

        let labels_source = required("labels")?.to_string();
        let classes = if labels_source == "coco80" {
            ClassNames::coco80()
        } else {
            let file = dir.join(&labels_source);
            let text = std::fs::read_to_string(&file)
                .map_err(|e| key_err("labels", format!("{}: {e}", file.display())))?;
            ClassNames::parse(&text)
                .map_err(|e| key_err("labels", format!("{}: {e}", file.display())))?
        };

        let layout = match string("layout")? {
            None => None,
            Some(_) if format != Format::Yolo => {
                return Err(key_err("layout", "only for format = \"yolo\"".into()))
            }
            Some(s) => Some(YoloLayout::parse(s).ok_or_else(|| {
                key_err(
                    "layout",
                    format!(
                        "'{s}' is not a YOLO layout (one of {})",
                        YoloLayout::NAMES.join(", ")
                    ),
                )
            })?),
        };
        let decode_in_inference = match table.get("decode_in_inference") {
            None => false,
            Some(_) if format != Format::Yolox => {
                return Err(key_err(
                    "decode_in_inference",
                    "only for format = \"yolox\"".into(),
                ))
            }
            Some(toml::Value::Boolean(b)) => *b,
            Some(v) => {
                return Err(key_err(
                    "decode_in_inference",
                    format!("must be true or false, not {v}"),
                ))
            }
        };

        let mut pixels = format.default_pixels();
        if let Some(s) = string("channels")? {
            pixels.channels = match s {
                "rgb" => Channels::Rgb,
                "bgr" => Channels::Bgr,
                _ => return Err(key_err("channels", format!("'{s}': one of rgb, bgr"))),
            };
        }
        for (key, slot) in [("mean", &mut pixels.mean), ("std", &mut pixels.std)] {
            if let Some(v) = table.get(key) {
                let three = floats(v, 3).ok_or_else(|| {
                    key_err(
                        key,
                        format!("must be three numbers (per input plane), not {v}"),
                    )
                })?;
                if key == "std" && three.iter().any(|s| !(*s > 0.0 && s.is_finite())) {
                    return Err(key_err(key, "each must be a positive number".into()));
                }
                slot.copy_from_slice(&three);
            }
        }
        if let Some(v) = table.get("pad") {
            pixels.pad = match v.as_integer().and_then(|p| u8::try_from(p).ok()) {
                Some(p) => p,
                None => {
                    return Err(key_err(
                        "pad",
                        format!("must be a pixel value 0..=255, not {v}"),
                    ))
                }
            };
        }

        let thresholds = match table.get("thresholds") {
            None => Thresholds::default(),
            Some(toml::Value::Table(t)) => parse_thresholds(t, &classes, &key_err)?,
            Some(v) => {
                return Err(key_err(
                    "thresholds",
                    format!(
                        "must be a table of [thresholds.<label>], not {}",
                        v.type_str()
                    ),
                ))
            }
        };
        let calibration = match table.get("calibration") {
            None => toml::Table::new(),
            Some(toml::Value::Table(t)) => t.clone(),
            Some(v) => {
                return Err(key_err(
                    "calibration",
                    format!("must be a table ([calibration]), not {}", v.type_str()),
                ))
            }
        };

        Ok(Self {
            path: path.to_path_buf(),
            format,
            model,
            input: (w, h),
            classes,
            labels_source,
            pixels,
            layout,
            decode_in_inference,
            thresholds,
            calibration,
        })
    }

    /// Per rule label the detector's track and alert levels; `[thresholds.default]` for labels not listed.
    pub fn thresholds(&self) -> Thresholds {
        self.thresholds.clone()
    }

    /// `[calibration] method`, e.g. "not calibrated yet".
    pub fn calibration_method(&self) -> Option<&str> {
        self.calibration.get("method").and_then(|v| v.as_str())
    }

    /// One line for logs and errors: "yolo, input 640×640, 80 labels (coco80)".
    pub fn summary(&self) -> String {
        format!(
            "{}, input {}×{}, {} labels ({})",
            self.format.as_str(),
            self.input.0,
            self.input.1,
            self.classes.len(),
            self.labels_source
        )
    }
}

fn parse_thresholds(
    t: &toml::Table,
    classes: &ClassNames,
    key_err: &dyn Fn(&str, String) -> CardError,
) -> Result<Thresholds, CardError> {
    let mut out = Thresholds::default();
    for (label, v) in t {
        let key = format!("thresholds.{label}");
        let levels: LabelThresholds = v
            .clone()
            .try_into()
            .map_err(|e: toml::de::Error| key_err(&key, e.message().to_string()))?;
        for (name, x) in [("alert", levels.alert), ("track", levels.track)] {
            if !(0.0..=1.0).contains(&x) {
                return Err(key_err(
                    &format!("{key}.{name}"),
                    format!("{x} must be in 0..=1"),
                ));
            }
        }
        if label == "default" {
            out.fallback = levels;
        } else if classes.has_rule_label(label) {
            out.per_label.insert(label.clone(), levels);
        } else {
            let what = if label == VEHICLE_GROUP {
                "the labels have none of car, truck, bus, motorcycle".to_string()
            } else {
                format!("the labels have no class '{label}'")
            };
            return Err(key_err(
                &key,
                format!("{what} (use a class, 'vehicle' or 'default')"),
            ));
        }
    }
    Ok(out)
}

/// `n` integers ≥ 0 from a TOML array.
fn ints(v: &toml::Value, n: usize) -> Option<Vec<u32>> {
    let a = v.as_array().filter(|a| a.len() == n)?;
    a.iter()
        .map(|x| x.as_integer().and_then(|i| u32::try_from(i).ok()))
        .collect()
}

/// `n` finite numbers (integers allowed) from a TOML array.
fn floats(v: &toml::Value, n: usize) -> Option<Vec<f32>> {
    let a = v.as_array().filter(|a| a.len() == n)?;
    a.iter()
        .map(|x| match x {
            toml::Value::Float(f) if f.is_finite() => Some(*f as f32),
            toml::Value::Integer(i) => Some(*i as f32),
            _ => None,
        })
        .collect()
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NANODET: &str = r#"
format = "nanodet"
model = "nanodet_g_416.onnx"
input = [416, 416]
labels = "coco80"
[thresholds.person]
alert = 0.6
track = 0.3
[thresholds.vehicle]
alert = 0.55
track = 0.4
[thresholds.default]
alert = 0.7
track = 0.45
[calibration]
method = "not calibrated yet"
"#;

    fn parse(text: &str) -> Result<DetectorCard, CardError> {
        DetectorCard::parse(Path::new("/m/card.toml"), text)
    }

    fn key_of(e: CardError) -> String {
        match e {
            CardError::Key { key, .. } => key,
            other => panic!("not a key error: {other}"),
        }
    }

    #[test]
    fn a_card_gives_format_input_labels_and_thresholds() {
        let c = parse(NANODET).expect("card");
        assert_eq!(c.format, Format::Nanodet);
        assert_eq!(c.model, Path::new("/m/nanodet_g_416.onnx"));
        assert_eq!(c.input, (416, 416));
        assert!(c.classes.is_coco80());
        assert_eq!(c.pixels, Format::Nanodet.default_pixels());
        let t = c.thresholds();
        assert_eq!(t.for_label("person").alert, 0.6);
        assert_eq!(t.for_label("vehicle").track, 0.4);
        // labels not listed get [thresholds.default]
        assert_eq!(t.for_label("dog").alert, 0.7);
        assert_eq!(c.calibration_method(), Some("not calibrated yet"));
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            (
                NANODET.replace("format = \"nanodet\"", "format = \"ssd\""),
                "format",
            ),
            (
                NANODET.replace("format = \"nanodet\"", "formt = \"nanodet\""),
                "formt",
            ),
            (
                NANODET.replace("input = [416, 416]", "input = [416]"),
                "input",
            ),
            (
                NANODET.replace("input = [416, 416]", "input = [400, 416]"),
                "input",
            ),
            (
                NANODET.replace("labels = \"coco80\"", "labels = \"nope.txt\""),
                "labels",
            ),
            (
                NANODET.replace("alert = 0.6", "alert = 1.6"),
                "thresholds.person.alert",
            ),
            (
                NANODET.replace("track = 0.3", "trak = 0.3"),
                "thresholds.person",
            ),
            (
                NANODET.replace("[thresholds.person]", "[thresholds.unicorn]"),
                "thresholds.unicorn",
            ),
            (
                NANODET.replace(
                    "labels = \"coco80\"",
                    "labels = \"coco80\"\nlayout = \"v8\"",
                ),
                "layout",
            ),
            (
                NANODET.replace(
                    "labels = \"coco80\"",
                    "labels = \"coco80\"\nstd = [1, 0, 1]",
                ),
                "std",
            ),
            (
                NANODET.replace("model = \"nanodet_g_416.onnx\"\n", ""),
                "model",
            ),
        ];
        for (text, key) in cases {
            let e = parse(&text).expect_err(key);
            assert_eq!(key_of(e), key, "{text}");
        }
        let e = parse("format = ").expect_err("syntax");
        assert!(matches!(e, CardError::Unreadable { .. }), "{e}");
        assert!(e.to_string().contains("/m/card.toml"), "{e}");
    }

    #[test]
    fn the_card_of_a_model_file_is_next_to_it() {
        assert_eq!(
            card_path(Path::new("/m/yolov8n.onnx")),
            Path::new("/m/yolov8n.toml")
        );
        assert_eq!(
            card_path(Path::new("/m/det.toml")),
            Path::new("/m/det.toml")
        );
        let e =
            DetectorCard::for_setting(Path::new("/nonexistent/yolov8n.onnx")).expect_err("none");
        let text = e.to_string();
        assert!(
            text.contains("/nonexistent/yolov8n.toml")
                && text.contains("/nonexistent/yolov8n.onnx"),
            "{text}"
        );
    }

    #[test]
    fn per_format_keys_and_overrides() {
        let yolo = NANODET.replace("\"nanodet\"", "\"yolo\"").replace(
            "labels = \"coco80\"",
            "labels = \"coco80\"\nlayout = \"v5\"\nchannels = \"bgr\"\npad = 0",
        );
        let c = parse(&yolo).expect("yolo");
        assert_eq!(c.layout, Some(YoloLayout::V5));
        assert_eq!(c.pixels.channels, Channels::Bgr);
        assert_eq!(c.pixels.pad, 0);
        assert_eq!(c.pixels.std, [255.0; 3]);
        let yolox = NANODET.replace("\"nanodet\"", "\"yolox\"").replace(
            "labels = \"coco80\"",
            "labels = \"coco80\"\ndecode_in_inference = true",
        );
        let c = parse(&yolox).expect("yolox");
        assert!(c.decode_in_inference);
        assert_eq!(c.pixels.fit, Fit::TopLeft);
        // a DETR input need not be a multiple of 32
        let detr = NANODET
            .replace("\"nanodet\"", "\"detr\"")
            .replace("[416, 416]", "[100, 60]");
        assert_eq!(parse(&detr).expect("detr").input, (100, 60));
    }
}
