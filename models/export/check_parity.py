"""Max |output difference| between a reference ONNX model and a candidate on real photos (fixed-size inputs).
Run: python check_parity.py REF.onnx CANDIDATE.onnx PHOTO...   (exit 1 above --tol 0.02)"""
import sys

import numpy as np
import onnxruntime as ort
from PIL import Image


def tensor_for(sess, path):
    inp = sess.get_inputs()[0]
    im = Image.open(path).convert("RGB")
    if inp.type == "tensor(int32)":  # MoveNet: NHWC int32 0..255, 256x256
        return np.asarray(im.resize((256, 256)), dtype=np.int32)[None]
    _, _, h, w = inp.shape  # NanoDet: NCHW BGR normalised
    x = np.asarray(im.resize((w, h)), dtype=np.float32)[:, :, ::-1]
    x = (x - [103.53, 116.28, 123.675]) / [57.375, 57.12, 58.395]
    return x.transpose(2, 0, 1)[None].astype(np.float32)


def main():
    ref = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
    cand = ort.InferenceSession(sys.argv[2], providers=["CPUExecutionProvider"])
    worst = 0.0
    for p in sys.argv[3:]:
        x = tensor_for(ref, p)
        name = ref.get_inputs()[0].name
        for a, b in zip(ref.run(None, {name: x}), cand.run(None, {name: x})):
            worst = max(worst, float(np.abs(a - b).max()))
    print(f"max |diff| over {len(sys.argv) - 3} photos = {worst:.5f}")
    sys.exit(0 if worst < 0.02 else 1)


if __name__ == "__main__":
    main()
