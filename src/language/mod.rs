//! Compositional prompts (issue 18): a scene prompt is parsed once, at load, into the parts the product can check
//! from its own evidence — counted objects (detector labels) with posture, motion and zone filters, relations
//! between objects, light and clock time, how long it must last — plus the free text that only the language head
//! can judge. [`parse`] is a data-driven chunker (its phrase rules are tables in [`lexicon`]); [`score`] scores
//! each part on a clip's frames and fuses them with the head's score of the free text (a soft AND). Pure: no
//! models, no I/O; the events stage, `prompts test` and `eval` all call [`score::fuse`].

pub mod lexicon;
pub mod parse;
pub mod score;

pub use parse::{parse, ParseContext, Program};
pub use score::{fuse, Fused, PartScore, ScoreContext};
