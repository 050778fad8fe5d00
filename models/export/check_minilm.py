"""Compare two MiniLM ONNX files on scene texts: per-text cosine and nearest-neighbour agreement.
Run: python check_minilm.py MODEL_DIR REF.onnx CANDIDATE.onnx   (exit 1 when the candidate does not hold)"""
import sys

import numpy as np
import onnxruntime as ort
from transformers import AutoTokenizer

from quantize_minilm import TEXTS


def embed(path, enc):
    return ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, enc)[0]


def main():
    model_dir, ref, cand = sys.argv[1:4]
    enc = dict(AutoTokenizer.from_pretrained(model_dir)(TEXTS, padding=True, return_tensors="np"))
    a, b = embed(ref, enc), embed(cand, enc)
    cos = (a * b).sum(1)
    sa, sb = a @ a.T, b @ b.T
    np.fill_diagonal(sa, -1)
    np.fill_diagonal(sb, -1)
    same = int((sa.argmax(1) == sb.argmax(1)).sum())
    print(f"min cos = {cos.min():.6f}; nearest neighbour kept {same}/{len(TEXTS)}; "
          f"max |pairwise diff| = {np.abs(sa - sb).max():.6f}")
    sys.exit(0 if cos.min() >= 0.999 and same == len(TEXTS) else 1)


if __name__ == "__main__":
    main()
