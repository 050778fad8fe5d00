"""Declares NanoDet's batch axis dynamic, so one session run can detect on several frames (a clip's frames, or
frames of several cameras grouped by input shape: `[inference] detector_batch`, issue 17 part 3).

The TF export fixed the batch at 1 in two places: the input's declared shape, and the six Reshapes before the
output Transposes, whose target shapes are computed in the graph as [1, C, cells] (C = 80 scores or 44 box logits).
Those shape inputs are replaced by the constants [0, C, -1] (0: copy the batch from the data, the ONNX default
`allowzero = 0`); the input and the outputs get a "batch" dimension; no weight changes. Nodes that only computed
the old shapes are left for ORT to drop (it folds dead branches at load).

Checks, printed (the file is written only if all pass):
  1. batch 1 on real frames (vtest.avi every 3 s + the photos in MEDIA_DIR): the patched outputs equal the
     original's (max |diff| <= 1e-5);
  2. batch 4 of four different frames: each item equals that frame run alone through the original
     (max |diff| <= 1e-4);
  3. speed on this CPU (ORT, 2 threads), per frame: batch 1 vs batch 4 (for the record; CPU gains are not expected).

Run: python dynamic_batch.py IN.onnx OUT.onnx MEDIA_DIR    (onnx, onnxruntime, opencv-python-headless, numpy)
"""
import os
import sys
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper

sys.path.insert(0, os.path.dirname(__file__))
from dynamic_hw import NAMES, frames, rect_dims  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "bench"))
from reference import det_pre  # noqa: E402


def patch(g):
    graph = g.graph
    consumers = {}
    for n in graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    # the score branch ends in a Sigmoid, the box branch is the Split's second output
    producers = {o: n for n in graph.node for o in n.output}
    patched = 0
    for n in graph.node:
        if n.op_type != "Reshape":
            continue
        src = producers.get(n.input[0])
        if src is None:
            sys.exit(f"Reshape {n.name}: no producer")
        channels = 80 if src.op_type == "Sigmoid" else 44
        name = f"{n.name}__batch_shape"
        graph.initializer.append(numpy_helper.from_array(np.array([0, channels, -1], np.int64), name))
        n.input[1] = name
        patched += 1
    if patched != 6:
        sys.exit(f"expected 6 Reshapes, found {patched}")
    graph.input[0].type.tensor_type.shape.dim[0].Clear()
    graph.input[0].type.tensor_type.shape.dim[0].dim_param = "batch"
    for out in graph.output:
        d = out.type.tensor_type.shape.dim
        d[0].Clear()
        d[0].dim_param = "batch"
    del graph.value_info[:]
    # drop the nodes that only fed the old shapes (transitively unused)
    used = {o.name for o in graph.output}
    keep = []
    for n in reversed(graph.node):
        if any(o in used for o in n.output):
            keep.append(n)
            used.update(n.input)
    dropped = len(graph.node) - len(keep)
    del graph.node[:]
    graph.node.extend(reversed(keep))
    inits = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(inits)
    return dropped


def main():
    src, dst, media = sys.argv[1:4]
    g = onnx.load(src)
    dropped = patch(g)
    onnx.checker.check_model(g)
    tmp = dst + ".tmp"
    onnx.save(g, tmp)
    print(f"patched 6 Reshapes; {dropped} nodes that only computed the fixed shapes dropped")
    o = ort.SessionOptions()
    o.intra_op_num_threads = 2
    a = ort.InferenceSession(src, o, providers=["CPUExecutionProvider"])
    b = ort.InferenceSession(tmp, o, providers=["CPUExecutionProvider"])
    fs = frames(media)
    worst1 = 0.0
    for f in fs:
        x, _ = det_pre(f, rect_dims(f))
        for p, q in zip(a.run(NAMES, {"input_1:0": x}), b.run(NAMES, {"input_1:0": x})):
            worst1 = max(worst1, float(np.abs(p - q).max()))
    print(f"1. batch 1, {len(fs)} frames: max |patched - original| = {worst1:.2e}")
    # four different vtest frames (same input shape), batched
    vt = fs[:4]
    hw = rect_dims(vt[0])
    xs = [det_pre(f, hw)[0] for f in vt]
    outs = b.run(NAMES, {"input_1:0": np.concatenate(xs)})
    worst4 = 0.0
    for k, x in enumerate(xs):
        for p, q in zip(a.run(NAMES, {"input_1:0": x}), outs):
            if q.shape[0] != 4:
                sys.exit(f"batched output has shape {q.shape}")
            worst4 = max(worst4, float(np.abs(p[0] - q[k]).max()))
    print(f"2. batch 4 of different frames: max |item - alone| = {worst4:.2e}")
    x4 = np.concatenate(xs)
    for name, x, n in (("batch 1", xs[0], 1), ("batch 4", x4, 4)):
        for _ in range(3):
            b.run(NAMES, {"input_1:0": x})
        t = time.perf_counter()
        for _ in range(20):
            b.run(NAMES, {"input_1:0": x})
        print(f"3. {name}: {(time.perf_counter() - t) / 20 / n * 1e3:.1f} ms per frame")
    if worst1 <= 1e-5 and worst4 <= 1e-4:
        os.replace(tmp, dst)
        print(f"wrote {dst}")
    else:
        os.remove(tmp)
        sys.exit("checks failed; nothing written")


if __name__ == "__main__":
    main()
