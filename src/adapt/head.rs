//! STUB (replaced by the adapthead branch's module at merge).
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::AdaptError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureRecipe {
    pub version: u32,
    pub embedding: String,
    pub embedding_dim: usize,
    pub evidence_classes: usize,
    pub pose: bool,
    pub region: Option<[f32; 4]>,
}
impl FeatureRecipe {
    pub fn dim(&self) -> usize {
        self.embedding_dim + self.evidence_classes
    }
}
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelHash {
    pub role: String,
    pub file: String,
    pub sha256: String,
}
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HeadFile {
    pub format: u32,
    pub name: String,
    pub classes: Vec<String>,
    pub recipe: FeatureRecipe,
    pub models: Vec<ModelHash>,
}
impl HeadFile {
    pub fn load(path: &Path) -> Result<Self, AdaptError> {
        let t = std::fs::read(path).map_err(|e| AdaptError::BadHeadFile {
            path: path.into(),
            message: e.to_string(),
        })?;
        serde_json::from_slice(&t).map_err(|e| AdaptError::BadHeadFile {
            path: path.into(),
            message: e.to_string(),
        })
    }
    pub fn check_models(&self, _path: &Path, _actual: &[ModelHash]) -> Result<(), AdaptError> {
        Ok(())
    }
    pub fn predict(&self, x: &[f32]) -> Result<Vec<f32>, AdaptError> {
        Ok(vec![1.0 / x.len() as f32; self.classes.len()])
    }
}
