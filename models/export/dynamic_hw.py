"""Declares NanoDet's input height and width dynamic, so scenewatch can feed the "rectangular" letterbox (the frame
scaled to 416 on its long side and padded only to the next multiple of 32: 416x320 for 4:3, 416x256 for 16:9)
instead of a 416x416 square that is a quarter (4:3) to 40 % (16:9) black padding.

Only declared shapes change (input dims 2 and 3 become "height"/"width", the outputs' cell count "cells", recorded
intermediate shapes are dropped); every node and weight is kept. The
graph already supports it: its Resize ops use scales, its Reshapes use -1 for the cell count.

Checks, printed (the file is written only if the first two pass):
  1. square 416x416 input: the patched model's outputs equal the original's exactly (same graph);
  2. rectangular input on real frames (vtest.avi every 3 s + the photos in MEDIA_DIR): every detection of the
     square letterbox at score >= 0.5 is found by the rectangular one (same class, IoU >= 0.5, score >= 0.4), and
     the rectangular one adds none at >= 0.5 that the square one lacks (same criterion);
  3. speed of both on this CPU (ORT, 2 threads).

Run: python dynamic_hw.py IN.onnx OUT.onnx MEDIA_DIR    (onnx, onnxruntime, opencv-python-headless, numpy)
"""
import glob
import os
import sys
import time

import cv2
import numpy as np
import onnx
import onnxruntime as ort

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "bench"))
from reference import LEVELS, SIZE as LONG, det_decode, det_pre  # noqa: E402

MULT = 32
NAMES = [n for lv in LEVELS for n in lv[1:]]


def rect_dims(bgr):
    h, w = bgr.shape[:2]
    s = min(LONG / w, LONG / h)
    up = lambda n: -(-n // MULT) * MULT  # noqa: E731
    return up(round(h * s)), up(round(w * s))


def iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    i = ix * iy
    return i / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - i + 1e-9)


def detect(sess, bgr, in_hw):
    """(class, score, box) per detection, with the reference's letterbox and decode at the given input size."""
    x, geo = det_pre(bgr, in_hw)
    o = sess.run(NAMES, {"input_1:0": x})
    return [(d["class"], d["score"], d["box"]) for d in det_decode([(o[2 * i], o[2 * i + 1]) for i in range(3)], geo)]


def frames(media):
    out = []
    cap = cv2.VideoCapture(os.path.join(media, "vtest.avi"))
    i = 0
    while True:
        ok, f = cap.read()
        if not ok:
            break
        if i % 30 == 15:
            out.append(f)
        i += 1
    for p in sorted(glob.glob(os.path.join(media, "*.*"))):
        f = None if p.endswith(".avi") else cv2.imread(p)
        if f is not None:
            out.append(f)
    return out


def main():
    src, dst, media = sys.argv[1:4]
    g = onnx.load(src)
    dims = g.graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_param, dims[3].dim_param = "height", "width"
    # outputs: [1, cells, C] with cells following the input size (the int8 file had them fixed, and ORT warns on
    # every run when a fixed declared shape differs); intermediate shapes recorded by earlier tools are dropped
    # so ORT infers them again
    for out in g.graph.output:
        d = out.type.tensor_type.shape.dim
        if len(d) == 3:
            d[1].Clear()
            d[1].dim_param = "cells"
    del g.graph.value_info[:]
    onnx.checker.check_model(g)
    tmp = dst + ".tmp"
    onnx.save(g, tmp)
    o = ort.SessionOptions()
    o.intra_op_num_threads = 2
    a = ort.InferenceSession(src, o, providers=["CPUExecutionProvider"])
    b = ort.InferenceSession(tmp, o, providers=["CPUExecutionProvider"])
    fs = frames(media)
    x, _ = det_pre(fs[0])
    same = max(float(np.abs(p - q).max()) for p, q in zip(a.run(NAMES, {"input_1:0": x}), b.run(NAMES, {"input_1:0": x})))
    print(f"1. square input, max |patched - original| = {same}")
    ref = found = extra = 0
    people = people_found = 0
    for f in fs:
        sq = detect(a, f, (LONG, LONG))
        rc = detect(b, f, rect_dims(f))
        for c, sc, bx in (d for d in sq if d[1] >= 0.5):
            ok = any(e[0] == c and e[1] >= 0.4 and iou(e[2], bx) >= 0.5 for e in rc)
            ref, found = ref + 1, found + ok
            if c == 0:
                people, people_found = people + 1, people_found + ok
        for c, sc, bx in (d for d in rc if d[1] >= 0.5):
            extra += not any(e[0] == c and e[1] >= 0.4 and iou(e[2], bx) >= 0.5 for e in sq)
    print(f"2. {len(fs)} frames: square detections at >= 0.5 found by rect: {found}/{ref} "
          f"(people {people_found}/{people}); extra in rect: {extra}")
    h, w = rect_dims(fs[0])
    for name, (ih, iw) in (("square 416x416", (LONG, LONG)), (f"rect {w}x{h} (vtest)", (h, w))):
        x, _ = det_pre(fs[0], (ih, iw))
        for _ in range(3):
            b.run(NAMES, {"input_1:0": x})
        t = time.perf_counter()
        for _ in range(30):
            b.run(NAMES, {"input_1:0": x})
        print(f"3. {name}: {(time.perf_counter() - t) / 30 * 1e3:.1f} ms")
    if same <= 1e-4 and found == ref and extra == 0:
        os.replace(tmp, dst)
        print(f"wrote {dst}")
    else:
        os.remove(tmp)
        sys.exit("checks failed; nothing written")


if __name__ == "__main__":
    main()
