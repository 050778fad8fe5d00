"""Dynamic int8 quantization of the MiniLM sentence encoder, kept only if embeddings hold.

Check: for a fixed set of scene texts, cosine(fp32, int8) per text must be >= 0.99 and the nearest neighbour of
every text among the others must not change. Run: python quantize_minilm.py MODEL_DIR FP32.onnx INT8.onnx
"""
import sys

import numpy as np
import onnxruntime as ort
from onnxruntime.quantization import QuantType, quantize_dynamic
from transformers import AutoTokenizer

TEXTS = [
    "a photo of a person", "a photo of a cat", "a photo of a car", "a photo of a cup of coffee",
    "people walking on a path", "an empty street", "a delivery truck in the driveway", "a dog in the garden",
    "a man sitting in a room", "cars parked on a street", "a bicycle leaning on a wall", "a crowd of people",
    "a photo of a sundial", "a photo of a street sign", "a photo of a van", "a person lying on the floor",
]


def embed(path, enc):
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return sess.run(None, {k: v for k, v in enc.items()})[0]


def main():
    model_dir, fp32, int8 = sys.argv[1:4]
    quantize_dynamic(fp32, int8, weight_type=QuantType.QInt8)
    tok = AutoTokenizer.from_pretrained(model_dir)
    enc = dict(tok(TEXTS, padding=True, return_tensors="np"))
    a, b = embed(fp32, enc), embed(int8, enc)
    cos = (a * b).sum(1)
    sa, sb = a @ a.T, b @ b.T
    np.fill_diagonal(sa, -1)
    np.fill_diagonal(sb, -1)
    same_nn = int((sa.argmax(1) == sb.argmax(1)).sum())
    print(f"min cos(fp32,int8) = {cos.min():.4f}, mean = {cos.mean():.4f}")
    print(f"nearest neighbour kept for {same_nn}/{len(TEXTS)} texts")
    print(f"max |pairwise cos diff| = {np.abs(sa - sb).max():.4f}")
    ok = cos.min() >= 0.99 and same_nn == len(TEXTS)
    print("KEEP int8" if ok else "REJECT int8")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
