"""Build the fused language head as an ONNX graph (no training: every weight is an input or a parameter).

Per frame t of a clip:
  cls_t   = normalize( sum_{j in topk(probs_t)} probs_t[j] / sum(topk) * imagenet_bank[j] )      (ConSE)
  det_t   = normalize( det_t[80] @ coco_bank )                      (score-weighted COCO class-name embeddings)
  absent_t= (1 - max_{c in people, animals} det_t[c]) * (1 - max_j probs_t[j])   (nobody there, nothing classified)
  fused_t = normalize( w_cls * cls_t + w_det * det_t + w_empty * (2 absent_t - 1) * empty_embedding )
  raw_tk  = fused_t . prompt_k                                       (cosine in MiniLM space)
Calibration per prompt k (Frigate warns raw similarities cluster and drift): against the label banks (all 1080
class-name embeddings, the "background" texts) mu_k = mean_j cos(prompt_k, bank_j), sd_k = std_j(...), and
  score_tk = sigmoid( (raw_tk - mu_k) / (sd_k * temperature) )   -> 0.5 = as similar as an average class name
Clip pooling: clip_k = alpha * mean_t score_tk + (1 - alpha) * max_t score_tk (same for raw).

Inputs : imagenet_probs f32 [T,1000], det_evidence f32 [T,80], imagenet_bank f32 [1000,384],
         coco_bank f32 [80,384], empty_embedding f32 [1,384], prompts f32 [K,384],
         topk i64 [1], weights f32 [5] = (w_cls, w_det, w_empty, alpha, temperature)
Outputs: clip_scores f32 [K], frame_scores f32 [T,K], clip_raw f32 [K], frame_raw f32 [T,K]
Run: python build_head.py OUT.onnx
"""
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

D = 384


def build():
    nodes, inits = [], []

    def const(name, arr):
        inits.append(numpy_helper.from_array(np.asarray(arr), name))
        return name

    def node(op, ins, outs=None, **attrs):
        outs = outs or [f"{op.lower()}_{len(nodes)}"]
        nodes.append(helper.make_node(op, ins, outs, **attrs))
        return outs[0] if len(outs) == 1 else outs

    eps = const("eps", np.array(1e-6, np.float32))
    one = const("one", np.array(1.0, np.float32))
    ax_last = const("ax_last", np.array([-1], np.int64))
    ax0 = const("ax0", np.array([0], np.int64))

    def l2norm(x):
        sq = node("Mul", [x, x])
        n = node("Sqrt", [node("ReduceSum", [sq, ax_last], keepdims=1)])
        return node("Div", [x, node("Max", [n, eps])])

    def weight(i):
        idx = const(f"w_idx{i}", np.array([i], np.int64))
        return node("Gather", ["weights", idx], axis=0)

    w_cls, w_det, w_empty, alpha, temp = (weight(i) for i in range(5))

    # ConSE: top-k ImageNet probabilities -> convex combination of class-name embeddings
    vals, idx = node("TopK", ["imagenet_probs", "topk"], ["topk_vals", "topk_idx"], axis=-1, largest=1, sorted=1)
    vsum = node("ReduceSum", [vals, ax_last], keepdims=1)
    wts = node("Div", [vals, node("Max", [vsum, eps])])                       # [T,k]
    rows = node("Gather", ["imagenet_bank", idx], axis=0)                     # [T,k,D]
    cls = node("ReduceSum", [node("Mul", [rows, node("Unsqueeze", [wts, ax_last])]),
                             const("ax1", np.array([1], np.int64))], keepdims=0)  # [T,D]
    cls = l2norm(cls)
    # detections -> score-weighted COCO embeddings
    det = l2norm(node("MatMul", ["det_evidence", "coco_bank"]))              # [T,D]
    # "nothing recognised": neither the detector nor the classifier is confident about anything
    # presence is about who is in the scene: people and animals (COCO 0 and 14..23); parked bikes and cars do not
    # make a street "not empty"
    actor_mask = np.zeros(80, np.float32)
    actor_mask[[0] + list(range(14, 24))] = 1.0
    actors = node("Mul", ["det_evidence", const("actor_mask", actor_mask)])
    absent = node("Mul", [node("Sub", [one, node("ReduceMax", [actors, ax_last], keepdims=1)]),
                          node("Sub", [one, node("ReduceMax", ["imagenet_probs", ax_last], keepdims=1)])])  # [T,1]
    # signed: absence pulls towards the "empty" concept, confident presence pushes away from it
    two = const("two", np.array(2.0, np.float32))
    signed = node("Sub", [node("Mul", [absent, two]), one])
    empty = node("Mul", [node("Mul", [signed, w_empty]), "empty_embedding"])  # [T,D]
    fused = node("Add", [node("Add", [node("Mul", [cls, w_cls]), node("Mul", [det, w_det])]), empty])
    fused = l2norm(fused)
    raw = node("MatMul", [fused, node("Transpose", ["prompts"], perm=[1, 0])], ["frame_raw"])  # [T,K]
    # calibration against the label banks
    bank = node("Concat", ["imagenet_bank", "coco_bank"], axis=0)             # [1080,D]
    pb = node("MatMul", ["prompts", node("Transpose", [bank], perm=[1, 0])])   # [K,1080]
    mu = node("ReduceMean", [pb, ax_last], keepdims=0)                         # [K]
    dev = node("Sub", [pb, node("Unsqueeze", [mu, ax_last])])
    sd = node("Sqrt", [node("ReduceMean", [node("Mul", [dev, dev]), ax_last], keepdims=0)])
    z = node("Div", [node("Sub", [raw, mu]), node("Mul", [node("Max", [sd, eps]), temp])])
    score = node("Sigmoid", [z], ["frame_scores"])

    def pool(x, out):
        mean = node("ReduceMean", [x, ax0], keepdims=0)
        mx = node("ReduceMax", [x, ax0], keepdims=0)
        return node("Add", [node("Mul", [mean, alpha]), node("Mul", [mx, node("Sub", [one, alpha])])], [out])

    pool(score, "clip_scores")
    pool(raw, "clip_raw")

    f = TensorProto.FLOAT
    inputs = [
        helper.make_tensor_value_info("imagenet_probs", f, ["T", 1000]),
        helper.make_tensor_value_info("det_evidence", f, ["T", 80]),
        helper.make_tensor_value_info("imagenet_bank", f, [1000, D]),
        helper.make_tensor_value_info("coco_bank", f, [80, D]),
        helper.make_tensor_value_info("empty_embedding", f, [1, D]),
        helper.make_tensor_value_info("prompts", f, ["K", D]),
        helper.make_tensor_value_info("topk", TensorProto.INT64, [1]),
        helper.make_tensor_value_info("weights", f, [5]),
    ]
    outputs = [
        helper.make_tensor_value_info("clip_scores", f, ["K"]),
        helper.make_tensor_value_info("frame_scores", f, ["T", "K"]),
        helper.make_tensor_value_info("clip_raw", f, ["K"]),
        helper.make_tensor_value_info("frame_raw", f, ["T", "K"]),
    ]
    g = helper.make_graph(nodes, "scenewatch_language_head", inputs, outputs, inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)], producer_name="scenewatch")
    m.ir_version = 8
    onnx.checker.check_model(m, full_check=True)
    return m


def reference(probs, det, ib, cb, empty, prompts, k, w):
    """numpy reference of the same maths, for the parity check below."""
    def n(x):
        return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-6)
    idx = np.argsort(-probs, axis=1)[:, :k]
    v = np.take_along_axis(probs, idx, 1)
    cls = n(((v / v.sum(1, keepdims=True))[:, :, None] * ib[idx]).sum(1))
    d = n(det @ cb)
    mask = np.zeros(80, np.float32)
    mask[[0] + list(range(14, 24))] = 1.0
    absent = (1 - (det * mask).max(1, keepdims=True)) * (1 - probs.max(1, keepdims=True))
    fused = n(w[0] * cls + w[1] * d + w[2] * (2 * absent - 1) * empty)
    raw = fused @ prompts.T
    pb = prompts @ np.concatenate([ib, cb]).T
    mu, sd = pb.mean(1), pb.std(1)
    s = 1 / (1 + np.exp(-(raw - mu) / (sd * w[4])))
    return w[3] * s.mean(0) + (1 - w[3]) * s.max(0), s


def main():
    out = sys.argv[1]
    m = build()
    onnx.save(m, out)
    import onnxruntime as ort
    rng = np.random.default_rng(0)
    T, K = 6, 5
    unit = lambda a: (a / np.linalg.norm(a, axis=-1, keepdims=True)).astype(np.float32)
    feeds = {
        "imagenet_probs": rng.dirichlet(np.ones(1000), T).astype(np.float32),
        "det_evidence": (rng.random((T, 80)) * (rng.random((T, 80)) > 0.95)).astype(np.float32),
        "imagenet_bank": unit(rng.normal(size=(1000, D))),
        "coco_bank": unit(rng.normal(size=(80, D))),
        "empty_embedding": unit(rng.normal(size=(1, D))),
        "prompts": unit(rng.normal(size=(K, D))),
        "topk": np.array([8], np.int64),
        "weights": np.array([0.4, 1.0, 0.5, 0.5, 4.0], np.float32),
    }
    got = ort.InferenceSession(out, providers=["CPUExecutionProvider"]).run(["clip_scores", "frame_scores"], feeds)
    ref = reference(feeds["imagenet_probs"], feeds["det_evidence"], feeds["imagenet_bank"], feeds["coco_bank"],
                    feeds["empty_embedding"], feeds["prompts"], 8, feeds["weights"])
    err = max(float(np.abs(a - b).max()) for a, b in zip(got, ref))
    print(f"head graph: {len(m.graph.node)} nodes; max |onnx - numpy reference| = {err:.2e}")
    assert err < 1e-4


if __name__ == "__main__":
    main()
