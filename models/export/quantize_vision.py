"""Static int8 (QDQ, per-channel weights) quantization of NanoDet-g and EfficientNet-Lite0 for CPUs with VNNI,
calibrated on real frames, and a check of what the quantized models still see.

Calibration: 40 frames of vtest.avi (every 2 s) + the real photos below, preprocessed exactly as scenewatch does
(bench/reference.py's det_pre / enc_pre, the same recipe). Check on a held-out set (vtest frames at odd seconds
and the photos): per frame, the person detections of fp32 and int8 at score ≥ 0.5 matched by IoU ≥ 0.5
(recall of the fp32 people), and EfficientNet top-1 agreement. Prints the figures and the speed of both on this CPU.

Run: python quantize_vision.py MODELS_DIR MEDIA_DIR   (writes MODELS_DIR/*_int8.onnx)
"""
import os
import sys
import time

import cv2
import numpy as np
import onnxruntime as ort
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "bench"))
from reference import LEVELS, det_decode, det_pre, enc_pre  # noqa: E402

PHOTOS = ["astronaut.png", "basketball1.png", "basketball2.png", "messi5.jpg", "leuvenA.jpg", "leuvenB.jpg",
          "chelsea.png", "coffee.png", "motorcycle_left.png", "building.jpg", "fruits.jpg", "rocket.jpg"]


def vtest_frames(media, seconds):
    cap = cv2.VideoCapture(os.path.join(media, "vtest.avi"))
    out, want = [], set(seconds)
    i = 0
    while True:
        ok, f = cap.read()
        if not ok:
            break
        if i % 10 == 0 and i // 10 in want:
            out.append(f)
        i += 1
    return out


class Reader(CalibrationDataReader):
    def __init__(self, name, arrays):
        self.it = iter([{name: a} for a in arrays])

    def get_next(self):
        return next(self.it, None)


def session(path):
    o = ort.SessionOptions()
    o.intra_op_num_threads = 2
    return ort.InferenceSession(path, o, providers=["CPUExecutionProvider"])


def iou(a, b):
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    u = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / u if u > 0 else 0


def people(sess, frame):
    x, geo = det_pre(frame)
    names = [n for lv in LEVELS for n in lv[1:]]
    outs = sess.run(names, {"input_1:0": x.astype(np.float32)})
    dets = det_decode([(outs[2 * i], outs[2 * i + 1]) for i in range(3)], geo)
    return [d["box"] for d in dets if d["class"] == 0 and d["score"] >= 0.5]


def timeit(sess, feed, n=30):
    sess.run(None, feed)
    t0 = time.perf_counter()
    for _ in range(n):
        sess.run(None, feed)
    return (time.perf_counter() - t0) / n * 1000


def unfold_fp16_storage(src, dst):
    """The committed models store big weights as f16 behind a Cast to f32 (fp16_storage.py); the quantizer needs the
    weights as f32 initializers to turn them into int8, so fold the Casts back first."""
    import onnx
    from onnx import numpy_helper

    m = onnx.load(src)
    g = m.graph
    inits = {i.name: i for i in g.initializer}
    keep_nodes = []
    for n in g.node:
        if n.op_type == "Cast" and len(n.input) == 1 and n.input[0] in inits and n.input[0].endswith("__f16"):
            arr = numpy_helper.to_array(inits[n.input[0]]).astype(np.float32)
            g.initializer.append(numpy_helper.from_array(arr, n.output[0]))
            g.initializer.remove(inits[n.input[0]])
        else:
            keep_nodes.append(n)
    del g.node[:]
    g.node.extend(keep_nodes)
    onnx.save(m, dst)


def main():
    models, media = sys.argv[1:3]
    photos = [cv2.imread(os.path.join(media, p)) for p in PHOTOS]
    photos = [p for p in photos if p is not None]
    calib = vtest_frames(media, range(0, 80, 2)) + photos[::2]
    held = vtest_frames(media, range(1, 80, 4)) + photos[1::2]

    det32, det8 = os.path.join(models, "nanodet_g_416.onnx"), os.path.join(models, "nanodet_g_416_int8.onnx")
    for name in ["nanodet_g_416", "efficientnet_lite0"]:
        unfold_fp16_storage(os.path.join(models, name + ".onnx"), os.path.join(models, name + "_f32.onnx"))
    det_src = os.path.join(models, "nanodet_g_416_f32.onnx")
    fmt = QuantFormat.QOperator if os.environ.get("QFORMAT") == "qoperator" else QuantFormat.QDQ
    # only the convolutions: the heads' sigmoid scores and box logits stay float
    ops = ["Conv"]
    quantize_static(det_src, det8, Reader("input_1:0", [det_pre(f)[0].astype(np.float32) for f in calib]),
                    quant_format=fmt, per_channel=True, activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8, op_types_to_quantize=ops)
    enc32, enc8 = os.path.join(models, "efficientnet_lite0.onnx"), os.path.join(models, "efficientnet_lite0_int8.onnx")
    quantize_static(os.path.join(models, "efficientnet_lite0_f32.onnx"), enc8, Reader("input", [enc_pre(f)[None].astype(np.float32) for f in calib]),
                    quant_format=fmt, per_channel=True, activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8, op_types_to_quantize=ops)

    s32, s8 = session(det32), session(det8)
    found = total = extra = 0
    for f in held:
        a, b = people(s32, f), people(s8, f)
        total += len(a)
        found += sum(any(iou(x, y) >= 0.5 for y in b) for x in a)
        extra += sum(not any(iou(y, x) >= 0.5 for x in a) for y in b)
    e32, e8 = session(enc32), session(enc8)
    agree = sum(int(e32.run(["logits"], {"input": enc_pre(f)[None]})[0].argmax() ==
                    e8.run(["logits"], {"input": enc_pre(f)[None]})[0].argmax()) for f in held)
    x = det_pre(held[0])[0].astype(np.float32)
    xe = np.stack([enc_pre(f) for f in held[:8]]).astype(np.float32)
    print(f"held-out frames: {len(held)}")
    print(f"detector people (score>=0.5): fp32 {total}, int8 found {found} ({found / max(total, 1):.1%}), int8 extra {extra}")
    print(f"encoder top-1 agreement: {agree}/{len(held)}")
    print(f"detector ms/frame: fp32 {timeit(s32, {'input_1:0': x}):.1f}, int8 {timeit(s8, {'input_1:0': x}):.1f}")
    print(f"encoder ms/batch of 8: fp32 {timeit(e32, {'input': xe}):.1f}, int8 {timeit(e8, {'input': xe}):.1f}")


if __name__ == "__main__":
    main()
