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
