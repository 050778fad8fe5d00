//! The vocabulary rules are written in: the 80 COCO classes the detector outputs (in its output order), the
//! `vehicle` group and the postures the pose model tells apart. Config checks rule labels against it and inference
//! decodes into it, so it lives apart from both (`infer::labels` and `infer::pose::Posture` re-export it).

/// COCO-80 class names in NanoDet's output order.
pub const COCO_LABELS: [&str; 80] = [
    "person",
    "bicycle",
    "car",
    "motorcycle",
    "airplane",
    "bus",
    "train",
    "truck",
    "boat",
    "traffic light",
    "fire hydrant",
    "stop sign",
    "parking meter",
    "bench",
    "bird",
    "cat",
    "dog",
    "horse",
    "sheep",
    "cow",
    "elephant",
    "bear",
    "zebra",
    "giraffe",
    "backpack",
    "umbrella",
    "handbag",
    "tie",
    "suitcase",
    "frisbee",
    "skis",
    "snowboard",
    "sports ball",
    "kite",
    "baseball bat",
    "baseball glove",
    "skateboard",
    "surfboard",
    "tennis racket",
    "bottle",
    "wine glass",
    "cup",
    "fork",
    "knife",
    "spoon",
    "bowl",
    "banana",
    "apple",
    "sandwich",
    "orange",
    "broccoli",
    "carrot",
    "hot dog",
    "pizza",
    "donut",
    "cake",
    "chair",
    "couch",
    "potted plant",
    "bed",
    "dining table",
    "toilet",
    "tv",
    "laptop",
    "mouse",
    "remote",
    "keyboard",
    "cell phone",
    "microwave",
    "oven",
    "toaster",
    "sink",
    "refrigerator",
    "book",
    "clock",
    "vase",
    "scissors",
    "teddy bear",
    "hair drier",
    "toothbrush",
];

/// Rule label that matches any road vehicle: vans come out of NanoDet as car *or* truck, often both for one box.
pub const VEHICLE_GROUP: &str = "vehicle";

/// COCO classes that make up [`VEHICLE_GROUP`].
pub const VEHICLE_CLASSES: [&str; 4] = ["car", "truck", "bus", "motorcycle"];

pub fn coco_label_index(name: &str) -> Option<usize> {
    COCO_LABELS.iter().position(|l| *l == name)
}

/// The classes a detector outputs, in its output order (class id = index): COCO-80 for the shipped NanoDet, or
/// what a model card's labels file lists (`infer::card`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassNames(Vec<&'static str>);

impl ClassNames {
    /// The 80 COCO classes, NanoDet's (and the COCO-trained YOLO/YOLOX/D-FINE exports') output order.
    pub fn coco80() -> Self {
        Self(COCO_LABELS.to_vec())
    }

    /// A labels file: one class name per line, in the model's output order. Trailing blank lines are ignored; a
    /// blank line between names is an error, since it would silently shift every class id after it.
    pub fn parse(text: &str) -> Result<Self, String> {
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        let used = lines.len() - lines.iter().rev().take_while(|l| l.is_empty()).count();
        let mut names = Vec::with_capacity(used);
        for (i, line) in lines[..used].iter().enumerate() {
            if line.is_empty() {
                return Err(format!(
                    "line {} is blank: every line up to the last name is a class id (name unused ids, e.g. `unused{i}`)",
                    i + 1
                ));
            }
            names.push(intern(line));
        }
        if names.is_empty() {
            return Err("no class names (one name per line, in the model's output order)".into());
        }
        Ok(Self(names))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The name of class `id`, None beyond the list.
    pub fn get(&self, id: usize) -> Option<&'static str> {
        self.0.get(id).copied()
    }

    pub fn names(&self) -> &[&'static str] {
        &self.0
    }

    /// Whether the list is COCO-80 in COCO order.
    pub fn is_coco80(&self) -> bool {
        self.0 == COCO_LABELS
    }

    /// Whether a rule label can ever match: a class of this detector, or `vehicle` when it has a road vehicle class.
    pub fn has_rule_label(&self, rule_label: &str) -> bool {
        if rule_label == VEHICLE_GROUP {
            return self.0.iter().any(|n| VEHICLE_CLASSES.contains(n));
        }
        self.0.contains(&rule_label)
    }
}

/// A label name as `&'static str`, what `Detection.label` holds (detections are copied into tracks, events and
/// messages by the thousand, so a borrowed name is cheaper than a `String` or an `Arc<str>` each). A labels file is
/// read once per detector session and per `validate`, and each distinct name is leaked at most once per process,
/// so the memory is bounded by the names themselves however often cards are read; COCO names are the statics.
pub fn intern(name: &str) -> &'static str {
    use std::collections::BTreeSet;
    use std::sync::{Mutex, OnceLock};
    if let Some(i) = coco_label_index(name) {
        return COCO_LABELS[i];
    }
    static NAMES: OnceLock<Mutex<BTreeSet<&'static str>>> = OnceLock::new();
    // a poisoned set is still a valid set: insertion cannot leave it half-changed
    let mut set = NAMES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(known) = set.get(name) {
        return known;
    }
    let leaked: &'static str = Box::leak(name.to_owned().into_boxed_str());
    set.insert(leaked);
    leaked
}

/// Whether a detected COCO class satisfies a rule label (a class name or `vehicle`).
pub fn label_matches(rule_label: &str, detected: &str) -> bool {
    rule_label == detected || (rule_label == VEHICLE_GROUP && VEHICLE_CLASSES.contains(&detected))
}

/// A person's posture, as a rule asks for it (`posture = "lying"`) and as `infer::pose::classify` finds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Posture {
    Standing,
    Sitting,
    Lying,
}

impl Posture {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Standing => "standing",
            Self::Sitting => "sitting",
            Self::Lying => "lying",
        }
    }
}

/// English plural for summaries ("1 person", "3 people").
pub fn plural(label: &str, n: usize) -> String {
    if n == 1 {
        return label.to_string();
    }
    match label {
        "person" => "people".into(),
        "bus" => "buses".into(),
        "sheep" => "sheep".into(),
        "skis" | "scissors" => label.into(),
        l if l.ends_with('s') || l.ends_with("ch") || l.ends_with("sh") => format!("{l}es"),
        l => format!("{l}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vehicle_group_matches_road_vehicles_only() {
        assert!(label_matches("vehicle", "truck"));
        assert!(label_matches("vehicle", "car"));
        assert!(!label_matches("vehicle", "person"));
        assert!(label_matches("person", "person"));
        assert!(!label_matches("car", "truck"));
    }

    #[test]
    fn plurals_read_naturally() {
        assert_eq!(plural("person", 1), "person");
        assert_eq!(plural("person", 3), "people");
        assert_eq!(plural("bus", 2), "buses");
        assert_eq!(plural("car", 2), "cars");
        assert_eq!(plural("vehicle", 2), "vehicles");
    }

    #[test]
    fn labels_files_keep_their_order_and_refuse_gaps() {
        let c = ClassNames::parse("person\n  package \ncar\n\n\n").expect("parse");
        assert_eq!(c.names(), ["person", "package", "car"]);
        assert_eq!(c.get(1), Some("package"));
        assert!(c.has_rule_label("vehicle") && c.has_rule_label("package"));
        assert!(!c.has_rule_label("dog"));
        let err = ClassNames::parse("person\n\ncar\n").expect_err("gap");
        assert!(err.contains("line 2"), "{err}");
        assert!(ClassNames::parse("\n\n").is_err());
        let no_vehicles = ClassNames::parse("person\npackage\n").expect("parse");
        assert!(!no_vehicles.has_rule_label("vehicle"));
        assert!(ClassNames::coco80().is_coco80() && !c.is_coco80());
    }

    #[test]
    fn interned_names_are_leaked_once() {
        let a = intern("parcel_box");
        let b = intern(&String::from("parcel_box"));
        assert!(std::ptr::eq(a, b));
        assert_eq!(intern("person"), "person");
    }

    #[test]
    fn coco_order_is_the_detector_order() {
        assert_eq!(coco_label_index("person"), Some(0));
        assert_eq!(coco_label_index("cat"), Some(15));
        assert_eq!(coco_label_index("cup"), Some(41));
        assert_eq!(coco_label_index("toothbrush"), Some(79));
    }
}

/// A detector's two score levels for one rule label (from its model card, `[thresholds.<label>]`): a detection
/// joins or continues a track at `track`; a track becomes an alert when its score over its history reaches
/// `alert` (see `events::track`). Both are properties of the detector, calibrated on labelled media.
#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct LabelThresholds {
    pub alert: f32,
    pub track: f32,
}

impl Default for LabelThresholds {
    /// For a label nobody calibrated: the levels the rules used before model cards existed.
    fn default() -> Self {
        Self {
            alert: 0.5,
            track: 0.35,
        }
    }
}

/// Per rule label (`person`, `vehicle`, any class the detector has) the detector's thresholds, with a fallback
/// for labels not listed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Thresholds {
    pub per_label: std::collections::BTreeMap<String, LabelThresholds>,
    pub fallback: LabelThresholds,
}

impl Thresholds {
    pub fn for_label(&self, label: &str) -> LabelThresholds {
        self.per_label.get(label).copied().unwrap_or(self.fallback)
    }
}
