//! STUB (replaced by the adapthead branch's module at merge).
pub mod examples;
pub mod features;
pub mod head;

#[derive(Debug, thiserror::Error)]
pub enum AdaptError {
    #[error("{0}")]
    Data(String),
    #[error("{path}: {message}")]
    BadHeadFile {
        path: std::path::PathBuf,
        message: String,
    },
    #[error("feature of {got} values, expected {expected}")]
    FeatureDim { expected: usize, got: usize },
}
