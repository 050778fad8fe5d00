"""Check an EfficientNet-Lite0 ONNX file on real photos: prints top-3 ImageNet classes per photo and, given a
reference model, the top-5 agreement and max |logit diff|. Run:
python check_efficientnet.py CLASSES.txt MODEL.onnx [REF.onnx] PHOTO...   (exit 1 if top-1 differs from REF)"""
import sys

import numpy as np
import onnxruntime as ort
from PIL import Image


def preprocess(path):
    im = Image.open(path).convert("RGB")
    w, h = im.size
    s = 256 / min(w, h)
    im = im.resize((max(224, round(w * s)), max(224, round(h * s))), Image.BICUBIC)
    w, h = im.size
    left, top = (w - 224) // 2, (h - 224) // 2
    im = im.crop((left, top, left + 224, top + 224))
    x = (np.asarray(im, dtype=np.float32) - 127.0) / 128.0
    return x.transpose(2, 0, 1)[None]


def main():
    classes = [l.split(",")[0].strip() for l in open(sys.argv[1])]
    model = sys.argv[2]
    ref = sys.argv[3] if sys.argv[3].endswith(".onnx") else None
    photos = sys.argv[4:] if ref else sys.argv[3:]
    s = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    r = ort.InferenceSession(ref, providers=["CPUExecutionProvider"]) if ref else None
    ok = True
    for p in photos:
        x = preprocess(p)
        lg = s.run(["logits"], {"input": x})[0][0]
        top = np.argsort(-lg)[:3]
        line = f"{p.split('/')[-1]:24s} " + ", ".join(f"{classes[i]}" for i in top)
        if r is not None:
            lr = r.run(["logits"], {"input": x})[0][0]
            agree = len(set(np.argsort(-lg)[:5]) & set(np.argsort(-lr)[:5]))
            line += f"  | top5 agree {agree}/5, max|dlogit| {np.abs(lg - lr).max():.4f}"
            ok &= int(np.argmax(lg)) == int(np.argmax(lr))
        print(line)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
