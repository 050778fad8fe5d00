"""Export a CLIP or SigLIP checkpoint as the two ONNX graphs + tokenizer.json + card that scenewatch's
`[models] image_text` reads (docs/image_text.md).

    python export_image_text.py CHECKPOINT OUT_DIR        # a transformers CLIPModel or SiglipModel (name or folder)
    python export_image_text.py --random clip|siglip OUT_DIR

CHECKPOINT: what a user with the weights runs. NOT run for this repository: no weights were reachable.
--random: a tiny, randomly initialised CLIP or SigLIP of the real architecture (built from a config, no download)
with a WordLevel tokenizer.json over its vocabulary. It exercises this exact export path and gives graphs of the
real families' shapes and operators for plumbing tests (tests/data/image_text/). Its scores mean nothing.

Writes OUT_DIR/image.onnx (pixel_values f32 [B,3,S,S] -> image_embeds f32 [B,D]), OUT_DIR/text.onnx (input_ids
i64 [B,L] (+ attention_mask for CLIP) -> text_embeds f32 [B,D]), OUT_DIR/tokenizer.json and OUT_DIR/card.toml (with
the checkpoint's logit scale, and bias for SigLIP). Checks the ONNX graphs against torch on one batch.
Tested with Debian 12 python3-torch 1.13.1, transformers 4.40.2, onnx 1.16.2 (and onnxruntime if installed).
"""
import json
import os
import sys

import numpy as np
import torch
from transformers import AutoModel, AutoTokenizer

OPSET = 17


def random_model(kind):
    """A tiny model of the real architecture with random weights, and a tokenizer.json over its vocabulary."""
    torch.manual_seed(0)
    # the end-of-text token last, as in CLIP's vocabulary (its legacy text pooling takes the largest id)
    words = ["[PAD]", "[UNK]", "a", "photo", "of", "red", "blue", "green", "person", "car", "dog", "[EOS]"]
    eos = len(words) - 1
    if kind == "clip":
        from transformers import CLIPConfig, CLIPModel

        cfg = CLIPConfig(
            text_config=dict(vocab_size=len(words), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                             num_attention_heads=4, max_position_embeddings=16, eos_token_id=eos, pad_token_id=0,
                             bos_token_id=eos),
            vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                               image_size=32, patch_size=8),
            projection_dim=24,
        )
        model = CLIPModel(cfg)
        post = {"type": "TemplateProcessing", "single": [{"Sequence": {"id": "A", "type_id": 0}},
                                                          {"SpecialToken": {"id": "[EOS]", "type_id": 0}}],
                "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 0}}],
                "special_tokens": {"[EOS]": {"id": "[EOS]", "ids": [eos], "tokens": ["[EOS]"]}}}
    else:
        from transformers import SiglipConfig, SiglipModel

        cfg = SiglipConfig(
            text_config=dict(vocab_size=len(words), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                             num_attention_heads=4, max_position_embeddings=16),
            vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                               image_size=32, patch_size=8),
        )
        model = SiglipModel(cfg)
        post = {"type": "TemplateProcessing", "single": [{"Sequence": {"id": "A", "type_id": 0}},
                                                          {"SpecialToken": {"id": "[EOS]", "type_id": 0}}],
                "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 0}}],
                "special_tokens": {"[EOS]": {"id": "[EOS]", "ids": [eos], "tokens": ["[EOS]"]}}}
    tokenizer = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": i, "content": w, "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": True} for i, w in enumerate(words) if w.startswith("[")],
        "normalizer": {"type": "Lowercase"}, "pre_tokenizer": {"type": "Whitespace"},
        "post_processor": post, "decoder": None,
        "model": {"type": "WordLevel", "vocab": {w: i for i, w in enumerate(words)}, "unk_token": "[UNK]"},
    }
    return model.eval(), json.dumps(tokenizer, indent=1), 16, "[PAD]", eos


def main():
    args = sys.argv[1:]
    if len(args) == 3 and args[0] == "--random":
        model, tokenizer_json, ctx, pad, eos = random_model(args[1])
        out = args[2]
    elif len(args) == 2:
        name, out = args
        model, tokenizer_json, pad = AutoModel.from_pretrained(name).eval(), None, None
        ctx = None
        eos = getattr(model.config.text_config, "eos_token_id", None) or 1
    else:
        sys.exit(__doc__)
    os.makedirs(out, exist_ok=True)
    siglip = model.config.model_type == "siglip"
    for m in model.modules():
        # SigLIP's patch embedding says padding="valid", which torch 1.13's exporter cannot write; it means 0
        if isinstance(m, torch.nn.Conv2d) and m.padding == "valid":
            m.padding = (0, 0)
    if ctx is None:
        # SigLIP was trained on texts padded to 64 tokens; CLIP's positions are 77
        ctx = 64 if siglip else model.config.text_config.max_position_embeddings
    size = model.config.vision_config.image_size

    class Image(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model  # a submodule: its weights become initializers, not constants

        def forward(self, pixel_values):
            return self.model.get_image_features(pixel_values=pixel_values)

    class Text(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask=None):
            return self.model.get_text_features(input_ids=input_ids, attention_mask=attention_mask)

    batch = {0: "batch"}
    pixels = torch.rand(2, 3, size, size)
    torch.onnx.export(Image(), (pixels,), f"{out}/image.onnx", opset_version=OPSET,
                      input_names=["pixel_values"], output_names=["image_embeds"],
                      dynamic_axes={"pixel_values": batch, "image_embeds": batch})
    ids = torch.full((2, ctx), 1, dtype=torch.long)
    ids[:, 3] = eos  # an end-of-text token somewhere, as a real prompt has
    if siglip:  # no attention mask: SigLIP was trained on padded texts without one
        text_args, names = (ids,), ["input_ids"]
    else:
        text_args, names = (ids, torch.ones_like(ids)), ["input_ids", "attention_mask"]
    torch.onnx.export(Text(), text_args, f"{out}/text.onnx", opset_version=OPSET,
                      input_names=names, output_names=["text_embeds"],
                      dynamic_axes={**{n: batch for n in names}, "text_embeds": batch})
    if tokenizer_json is None:
        tok = AutoTokenizer.from_pretrained(name)
        tok.save_pretrained(out)
        pad = tok.pad_token
        if not os.path.exists(f"{out}/tokenizer.json"):
            print("WARNING: no tokenizer.json written (no fast tokenizer): scenewatch needs one", file=sys.stderr)
    else:
        with open(f"{out}/tokenizer.json", "w") as f:
            f.write(tokenizer_json)

    # the graphs against torch, when onnxruntime is there to run them
    try:
        import onnxruntime as ort
    except ImportError:
        ort = None
    if ort is not None:
        with torch.no_grad():
            want_i = Image()(pixels).numpy()
            want_t = Text()(*text_args).numpy()
        got_i = ort.InferenceSession(f"{out}/image.onnx").run(None, {"pixel_values": pixels.numpy()})[0]
        feeds = {n: a.numpy() for n, a in zip(names, text_args)}
        got_t = ort.InferenceSession(f"{out}/text.onnx").run(None, feeds)[0]
        print("max |onnx - torch|: image %.2e, text %.2e"
              % (np.abs(got_i - want_i).max(), np.abs(got_t - want_t).max()))

    scale = model.logit_scale.exp().item()
    lines = [
        f'format = "{"siglip" if siglip else "clip"}"',
        'image_encoder = "image.onnx"',
        'text_encoder = "text.onnx"',
        'tokenizer = "tokenizer.json"',
        f"image_size = {size}",
        f"context_length = {ctx}",
    ]
    if pad:
        lines.append(f'pad_token = "{pad}"')
    if tokenizer_json is None:
        # the checkpoint's own preprocessing, rather than the card's defaults for the format
        from transformers import AutoImageProcessor

        proc = AutoImageProcessor.from_pretrained(name)
        lines.append(f"mean = {[round(float(x), 8) for x in proc.image_mean]}")
        lines.append(f"std = {[round(float(x), 8) for x in proc.image_std]}")
        lines.append(f"centre_crop = {'true' if getattr(proc, 'do_center_crop', False) else 'false'}")
    lines += ["", "[calibration]", f"scale = {scale:.6g}"]
    if siglip:
        lines.append(f"bias = {model.logit_bias.item():.6g}")
    with open(f"{out}/card.toml", "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {out}/image.onnx, text.onnx, tokenizer.json, card.toml (check mean/std/crop against the "
          "checkpoint's preprocessor_config.json)")


if __name__ == "__main__":
    main()
