//! Sentence encoder (all-MiniLM-L6-v2 on ORT, tokenized with the `tokenizers` crate) and the on-disk cache of
//! label-bank embeddings, keyed by model hash + tokenizer hash + the texts, so start-up is fast and a changed
//! model or text list invalidates the cache by itself.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tokenizers::Tokenizer;

use super::runtime::{check_signature, hex, InferError, LoadedModel};

pub const DIM: usize = 384;
/// MiniLM was trained on ≤ 256 word pieces; prompts are short, label names shorter.
const MAX_TOKENS: usize = 128;

pub struct TextEncoder {
    pub model: LoadedModel,
    tokenizer: Tokenizer,
    tokenizer_sha: String,
}

impl TextEncoder {
    pub fn new(model: LoadedModel, tokenizer_path: &Path) -> Result<Self, InferError> {
        check_signature(
            &model,
            &[
                ("input_ids", &[-1, -1]),
                ("attention_mask", &[-1, -1]),
                ("token_type_ids", &[-1, -1]),
            ],
            &[("sentence_embedding", &[-1, DIM as i64])],
        )?;
        let bytes = std::fs::read(tokenizer_path).map_err(|e| InferError::Data {
            what: "tokenizer",
            message: format!("{}: {e}", tokenizer_path.display()),
        })?;
        let tokenizer = Tokenizer::from_bytes(&bytes).map_err(|e| InferError::Data {
            what: "tokenizer",
            message: format!("{}: {e}", tokenizer_path.display()),
        })?;
        Ok(Self {
            model,
            tokenizer,
            tokenizer_sha: hex(&Sha256::digest(&bytes)),
        })
    }

    /// Unit-length 384-d embeddings, row-major `texts.len() × 384`. Batches of 64, padded per batch.
    pub fn embed(&mut self, texts: &[String]) -> Result<Vec<f32>, InferError> {
        let mut out = Vec::with_capacity(texts.len() * DIM);
        for chunk in texts.chunks(64) {
            out.extend(self.embed_batch(chunk)?);
        }
        Ok(out)
    }

    fn embed_batch(&mut self, texts: &[String]) -> Result<Vec<f32>, InferError> {
        let tok_err = |e: tokenizers::Error| InferError::Data {
            what: "tokenizer",
            message: e.to_string(),
        };
        let encs = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(tok_err)?;
        let len = encs
            .iter()
            .map(|e| e.get_ids().len().min(MAX_TOKENS))
            .max()
            .unwrap_or(1)
            .max(1);
        let n = texts.len();
        let (mut ids, mut mask, mut types) = (
            vec![0i64; n * len],
            vec![0i64; n * len],
            vec![0i64; n * len],
        );
        for (i, e) in encs.iter().enumerate() {
            for (j, ((id, m), t)) in e
                .get_ids()
                .iter()
                .zip(e.get_attention_mask())
                .zip(e.get_type_ids())
                .take(len)
                .enumerate()
            {
                ids[i * len + j] = *id as i64;
                mask[i * len + j] = *m as i64;
                types[i * len + j] = *t as i64;
            }
        }
        let run_err = |e: ort::Error| InferError::Run {
            model: "text encoder",
            message: e.to_string(),
        };
        let t = |v: Vec<i64>| ort::value::Tensor::from_array(([n, len], v)).map_err(run_err);
        let outputs = self
            .model
            .session
            .run(ort::inputs![
                "input_ids" => t(ids)?,
                "attention_mask" => t(mask)?,
                "token_type_ids" => t(types)?,
            ])
            .map_err(run_err)?;
        let (_, emb) = outputs["sentence_embedding"]
            .try_extract_tensor::<f32>()
            .map_err(run_err)?;
        if emb.len() != n * DIM {
            return Err(InferError::Run {
                model: "text encoder",
                message: format!("expected {} values, got {}", n * DIM, emb.len()),
            });
        }
        Ok(emb.to_vec())
    }

    /// Embeddings of `texts`, from the cache directory when present (and written there when not).
    pub fn embed_cached(
        &mut self,
        texts: &[String],
        cache_dir: Option<&Path>,
    ) -> Result<Vec<f32>, InferError> {
        let key = {
            let mut h = Sha256::new();
            h.update(self.model.sha256.as_bytes());
            h.update(b"\n");
            h.update(self.tokenizer_sha.as_bytes());
            for t in texts {
                h.update(b"\n");
                h.update(t.as_bytes());
            }
            hex(&h.finalize())
        };
        let path: Option<PathBuf> = cache_dir.map(|d| d.join(format!("{key}.f32")));
        if let Some(p) = &path {
            if let Ok(bytes) = std::fs::read(p) {
                if bytes.len() == texts.len() * DIM * 4 {
                    return Ok(bytes
                        .chunks_exact(4)
                        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                        .collect());
                }
            }
        }
        let emb = self.embed(texts)?;
        if let Some(p) = &path {
            let bytes: Vec<u8> = emb.iter().flat_map(|v| v.to_le_bytes()).collect();
            // a cache that cannot be written only costs start-up time
            let tmp = p.with_extension("tmp");
            let written = p
                .parent()
                .map(std::fs::create_dir_all)
                .transpose()
                .and_then(|_| std::fs::write(&tmp, &bytes))
                .and_then(|_| std::fs::rename(&tmp, p));
            if let Err(e) = written {
                tracing::debug!(path = %p.display(), error = %e, "embedding cache not written");
            }
        }
        Ok(emb)
    }
}
