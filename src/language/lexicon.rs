//! The prompt grammar's data: phrase rules (a pattern of words and slots → what it means), the object nouns and
//! their detector labels, number words, and the words that are understood without being checked (articles,
//! prepositions, scene words the language head knows). Changing what prompts understand means editing these
//! tables; `parse` only runs them.
//!
//! Pattern syntax: words separated by spaces; `a|an|the` is one word of a choice; a trailing `?` makes an element
//! optional; slots: `{n}` a number ("two", "3", "a"), `{t}` a clock time ("10 pm", "22:00", "6am"), `{unit}` a
//! duration unit, `{zone}` the name of one of the camera's zones (`_` and `-` in zone names read as spaces).

use crate::labels::Posture;

/// What a phrase means.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Act {
    /// A quantity for the next object noun, from the captured `{n}`.
    Count(CountRule),
    /// Nobody: no person (an implicit person subject with count 0).
    Nobody,
    /// "no X", "without X": the next object noun is counted 0.
    Zero,
    /// "alone": exactly one person in view.
    Alone,
    /// "empty", "deserted": no person in view.
    Empty,
    /// "not", "never": negates the next posture, motion or zone phrase.
    Not,
    Posture(Posture),
    Motion(Motion),
    /// Loitering: a person staying (the duration part defaults to a minute).
    Loiter,
    /// "for more than {n} {unit}": the rest must hold that long.
    Duration,
    /// "in the {zone}"; true = outside it.
    Zone(bool),
    Light(Light),
    /// Local clock windows: after {t}, before {t}, between {t} and {t}, named periods.
    After,
    Before,
    Between,
    Period(u32, u32),
    /// A preposition that relates the current object to the next object noun (free text when no noun follows).
    Relation(Relation),
}

/// How `{n}` becomes a count range `(min, max)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CountRule {
    Exactly,
    AtLeast,
    MoreThan,
    AtMost,
    FewerThan,
    /// A fixed range (no `{n}`): "a crowd" = (6, None).
    Fixed(u32, Option<u32>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Motion {
    Still,
    Walking,
    Running,
    Moving,
}

impl Motion {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Still => "still",
            Self::Walking => "walking",
            Self::Running => "running",
            Self::Moving => "moving",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Light {
    Dark,
    Bright,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Relation {
    Near,
    On,
    Inside,
}

impl Relation {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Near => "next to",
            Self::On => "on",
            Self::Inside => "inside",
        }
    }
}

/// Phrase rules, tried at every word; the longest match wins (ties: the earlier rule).
pub const PHRASES: &[(&str, Act)] = &[
    // counts
    ("exactly|just|only {n}", Act::Count(CountRule::Exactly)),
    ("a single", Act::Count(CountRule::Fixed(1, Some(1)))),
    ("{n}", Act::Count(CountRule::Exactly)),
    ("more|over than? {n}", Act::Count(CountRule::MoreThan)),
    ("at least {n}", Act::Count(CountRule::AtLeast)),
    ("{n} or more", Act::Count(CountRule::AtLeast)),
    ("fewer|less than {n}", Act::Count(CountRule::FewerThan)),
    ("at most {n}", Act::Count(CountRule::AtMost)),
    ("up to {n}", Act::Count(CountRule::AtMost)),
    ("{n} or fewer|less", Act::Count(CountRule::AtMost)),
    ("both", Act::Count(CountRule::Fixed(2, Some(2)))),
    ("a couple of", Act::Count(CountRule::Fixed(2, Some(2)))),
    ("a few", Act::Count(CountRule::Fixed(2, None))),
    ("several", Act::Count(CountRule::Fixed(3, None))),
    ("a group of", Act::Count(CountRule::Fixed(3, None))),
    ("many|lots", Act::Count(CountRule::Fixed(5, None))),
    ("a lot of", Act::Count(CountRule::Fixed(5, None))),
    ("lots of", Act::Count(CountRule::Fixed(5, None))),
    ("a crowd of", Act::Count(CountRule::Fixed(6, None))),
    ("a crowd", Act::Count(CountRule::Fixed(6, None))),
    ("crowd|crowded", Act::Count(CountRule::Fixed(6, None))),
    // absence
    ("nobody|noone", Act::Nobody),
    ("no one", Act::Nobody),
    ("no|without|zero", Act::Zero),
    ("alone", Act::Alone),
    ("by himself|herself|themselves|itself", Act::Alone),
    ("on his|her|their own", Act::Alone),
    ("empty|deserted|vacant|unoccupied", Act::Empty),
    ("not|never|isn't|aren't|isnt|arent|nt", Act::Not),
    // posture
    ("lying|laying|lies|lay down?", Act::Posture(Posture::Lying)),
    (
        "lying|laying|lies|lay down? on the ground|floor",
        Act::Posture(Posture::Lying),
    ),
    ("fallen|collapsed down?", Act::Posture(Posture::Lying)),
    (
        "fallen|collapsed down? on the ground|floor",
        Act::Posture(Posture::Lying),
    ),
    ("on the ground|floor", Act::Posture(Posture::Lying)),
    ("sitting|seated|sits down?", Act::Posture(Posture::Sitting)),
    (
        "sitting|seated|sits down? on the ground|floor",
        Act::Posture(Posture::Sitting),
    ),
    (
        "standing|stands|upright up?",
        Act::Posture(Posture::Standing),
    ),
    // motion (before posture in length: "standing still" is motion, not posture)
    ("standing|staying|sitting still", Act::Motion(Motion::Still)),
    ("not moving", Act::Motion(Motion::Still)),
    ("motionless|stationary|immobile", Act::Motion(Motion::Still)),
    (
        "running|runs|run|sprinting|jogging",
        Act::Motion(Motion::Running),
    ),
    ("walking|walks|strolling", Act::Motion(Motion::Walking)),
    ("moving|moves", Act::Motion(Motion::Moving)),
    ("in motion", Act::Motion(Motion::Moving)),
    ("loitering|loiters|lingering|lingers", Act::Loiter),
    ("hanging around", Act::Loiter),
    // duration
    ("for more|longer than {n} {unit}", Act::Duration),
    ("for {n} {unit}", Act::Duration),
    ("for over {n} {unit}", Act::Duration),
    ("for at least {n} {unit}", Act::Duration),
    ("for {n} {unit} or more|longer", Act::Duration),
    // places (the camera's zones)
    (
        "in|inside|within|at|on|near|by the|a? {zone}",
        Act::Zone(false),
    ),
    ("in front of the|a? {zone}", Act::Zone(false)),
    ("next to the|a? {zone}", Act::Zone(false)),
    ("outside|beyond the|a? {zone}", Act::Zone(true)),
    ("out of the|a? {zone}", Act::Zone(true)),
    ("away from the|a? {zone}", Act::Zone(true)),
    // light
    ("at night|nighttime|dusk", Act::Light(Light::Dark)),
    ("in the night|dark|darkness", Act::Light(Light::Dark)),
    ("in darkness", Act::Light(Light::Dark)),
    ("during the night", Act::Light(Light::Dark)),
    ("dark|unlit|night|nighttime", Act::Light(Light::Dark)),
    ("during the day|daytime", Act::Light(Light::Bright)),
    ("in the daytime|daylight", Act::Light(Light::Bright)),
    ("in daylight", Act::Light(Light::Bright)),
    ("in broad daylight", Act::Light(Light::Bright)),
    ("by day", Act::Light(Light::Bright)),
    ("daylight|daytime|sunlit|bright", Act::Light(Light::Bright)),
    // clock
    ("after {t}", Act::After),
    ("before {t}", Act::Before),
    ("between {t} and {t}", Act::Between),
    ("from {t} to|until {t}", Act::Between),
    ("in the morning", Act::Period(6 * 60, 12 * 60)),
    ("in the afternoon", Act::Period(12 * 60, 18 * 60)),
    ("in the evening", Act::Period(18 * 60, 23 * 60)),
    ("after dark", Act::Light(Light::Dark)),
    // relations between objects
    ("next to", Act::Relation(Relation::Near)),
    ("close to", Act::Relation(Relation::Near)),
    (
        "beside|near|alongside|besides",
        Act::Relation(Relation::Near),
    ),
    ("on|onto|atop", Act::Relation(Relation::On)),
    ("on top of", Act::Relation(Relation::On)),
    ("inside|in|within", Act::Relation(Relation::Inside)),
];

/// Object nouns → the detector's rule label (after the COCO class names themselves, singular or plural).
pub const NOUNS: &[(&str, &str)] = &[
    ("person", "person"),
    ("persons", "person"),
    ("people", "person"),
    ("man", "person"),
    ("men", "person"),
    ("woman", "person"),
    ("women", "person"),
    ("someone", "person"),
    ("somebody", "person"),
    ("anyone", "person"),
    ("anybody", "person"),
    ("child", "person"),
    ("children", "person"),
    ("kid", "person"),
    ("kids", "person"),
    ("boy", "person"),
    ("boys", "person"),
    ("girl", "person"),
    ("girls", "person"),
    ("guy", "person"),
    ("guys", "person"),
    ("pedestrian", "person"),
    ("pedestrians", "person"),
    ("adult", "person"),
    ("adults", "person"),
    ("human", "person"),
    ("humans", "person"),
    ("individual", "person"),
    ("individuals", "person"),
    ("intruder", "person"),
    ("intruders", "person"),
    ("visitor", "person"),
    ("visitors", "person"),
    ("stranger", "person"),
    ("strangers", "person"),
    ("worker", "person"),
    ("workers", "person"),
    ("player", "person"),
    ("players", "person"),
    ("vehicle", "vehicle"),
    ("vehicles", "vehicle"),
    ("car", "vehicle"),
    ("cars", "vehicle"),
    ("van", "vehicle"),
    ("vans", "vehicle"),
    ("suv", "vehicle"),
    ("pickup", "vehicle"),
    ("automobile", "vehicle"),
    ("truck", "vehicle"),
    ("trucks", "vehicle"),
    ("lorry", "vehicle"),
    ("motorbike", "motorcycle"),
    ("motorbikes", "motorcycle"),
    ("bike", "bicycle"),
    ("bikes", "bicycle"),
    ("puppy", "dog"),
    ("kitten", "cat"),
    ("phone", "cell phone"),
    ("ball", "sports ball"),
    ("luggage", "suitcase"),
];

/// Number words for `{n}`.
pub const NUMBERS: &[(&str, u32)] = &[
    ("a", 1),
    ("an", 1),
    ("one", 1),
    ("two", 2),
    ("three", 3),
    ("four", 4),
    ("five", 5),
    ("six", 6),
    ("seven", 7),
    ("eight", 8),
    ("nine", 9),
    ("ten", 10),
    ("eleven", 11),
    ("twelve", 12),
    ("fifteen", 15),
    ("twenty", 20),
    ("zero", 0),
];

/// Duration units in seconds.
pub const UNITS: &[(&str, f64)] = &[
    ("s", 1.0),
    ("sec", 1.0),
    ("secs", 1.0),
    ("second", 1.0),
    ("seconds", 1.0),
    ("min", 60.0),
    ("mins", 60.0),
    ("minute", 60.0),
    ("minutes", 60.0),
    ("h", 3600.0),
    ("hour", 3600.0),
    ("hours", 3600.0),
];

/// Words that carry no content of their own (never reported as unchecked).
pub const FUNCTION_WORDS: &[&str] = &[
    "a",
    "an",
    "the",
    "of",
    "to",
    "in",
    "on",
    "at",
    "is",
    "are",
    "be",
    "being",
    "was",
    "were",
    "and",
    "or",
    "with",
    "by",
    "for",
    "from",
    "into",
    "onto",
    "some",
    "any",
    "there",
    "this",
    "that",
    "these",
    "those",
    "who",
    "which",
    "it",
    "its",
    "his",
    "her",
    "their",
    "them",
    "he",
    "she",
    "they",
    "has",
    "have",
    "having",
    "while",
    "up",
    "down",
    "out",
    "off",
    "over",
    "under",
    "near",
    "next",
    "close",
    "behind",
    "front",
    "inside",
    "outside",
    "around",
    "through",
    "across",
    "along",
    "s",
    "together",
    "other",
    "another",
    "each",
    "very",
    "scene",
    "photo",
    "picture",
    "view",
    "image",
    "somewhere",
    "here",
];

/// Scene words the language head has evidence for (its ImageNet and COCO banks cover places and objects; these
/// are the common scene nouns and adjectives not spelled as class names).
pub const SCENE_WORDS: &[&str] = &[
    "street",
    "road",
    "path",
    "walkway",
    "sidewalk",
    "pavement",
    "room",
    "indoors",
    "indoor",
    "outdoors",
    "outdoor",
    "field",
    "park",
    "parking",
    "lot",
    "garden",
    "yard",
    "grass",
    "sky",
    "building",
    "buildings",
    "house",
    "office",
    "kitchen",
    "desk",
    "beach",
    "snow",
    "water",
    "city",
    "town",
    "square",
    "court",
    "lawn",
    "ground",
    "floor",
    "wall",
    "window",
    "door",
    "gate",
    "fence",
    "driveway",
    "entrance",
    "corridor",
    "hallway",
    "stairs",
    "shop",
    "store",
    "space",
    "spacesuit",
    "suit",
    "tie",
    "soccer",
    "football",
    "basketball",
    "playing",
    "parked",
    "sitting",
    "wearing",
    "holding",
    "carrying",
    "small",
    "large",
    "big",
    "tall",
    "old",
    "young",
    "white",
    "black",
    "red",
    "blue",
    "green",
    "stars",
    "star",
    "galaxies",
    "night",
    "launch",
    "pad",
    "launching",
    "monkey",
    "animal",
    "fruit",
    "coffee",
    "cup",
];
