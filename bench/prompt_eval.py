#!/usr/bin/env python3
"""Top-1 accuracy and margins of the language head on tests/data/prompt_eval.json (real photos + vtest clips).

Runs `scenewatch prompts test --json` once per variant; a variant is a set of config overrides given as
environment variables, e.g.  SCENEWATCH__LANGUAGE__TOP_K=5 SCENEWATCH__LANGUAGE__W_EMPTY=0
Usage: bench/prompt_eval.py [--bin target/release/scenewatch] [NAME:KEY=VAL,KEY=VAL ...]
Prints one row per variant: top-1, mean margin (correct − best other, calibrated), mean raw margin.
"""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MEDIA = os.environ.get("SCENEWATCH_MEDIA", "/var/cache/scenewatch/media")


def evaluate(binary, env_over):
    spec = json.load(open(os.path.join(ROOT, "tests/data/prompt_eval.json")))
    args = [binary, "prompts", "test", "-c", os.path.join(ROOT, "pipelines/demo.toml"), "--json"]
    for p in spec["prompts"]:
        args += ["--prompt", p]
    inputs = sorted({c.get("photo") or c.get("video") for c in spec["cases"]})
    for i in inputs:
        args += ["--image", os.path.join(MEDIA, i)]
    env = dict(os.environ, RUST_LOG="error", **env_over)
    out = subprocess.run(args, env=env, capture_output=True, text=True, check=True).stdout
    lines = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
    hits, margins, raw_margins, rows = 0, [], [], []
    for c in spec["cases"]:
        name = c.get("photo") or c.get("video")
        line = next(l for l in lines if l["input"].endswith("/" + name) and l.get("clip") == c.get("clip"))
        scores = {s["prompt"]: s for s in line["scores"]}
        best = line["scores"][0]["prompt"]
        other = max(s["score"] for p, s in scores.items() if p != c["expect"])
        other_raw = max(s["raw"] for p, s in scores.items() if p != c["expect"])
        hits += best == c["expect"]
        margins.append(scores[c["expect"]]["score"] - other)
        raw_margins.append(scores[c["expect"]]["raw"] - other_raw)
        rows.append((name + (f"#{c['clip']}" if "clip" in c else ""), c["expect"], best))
    n = len(spec["cases"])
    return hits, n, sum(margins) / n, sum(raw_margins) / n, rows


def main():
    argv = sys.argv[1:]
    binary = os.path.join(ROOT, "target/release/scenewatch")
    if argv[:1] == ["--bin"]:
        binary, argv = argv[1], argv[2:]
    variants = [("default", {})]
    for v in argv:
        name, _, kv = v.partition(":")
        variants.append((name, dict(x.split("=", 1) for x in kv.split(",") if x)))
    print("| variant | top-1 | mean margin (score) | mean margin (raw cosine) |")
    print("|---|---|---|---|")
    for name, over in variants:
        hits, n, m, rm, rows = evaluate(binary, over)
        print(f"| {name} | {hits}/{n} = {hits / n:.2f} | {m:+.3f} | {rm:+.3f} |", flush=True)
        if name == "default":
            for r in rows:
                print(f"<!-- {r[0]}: expect '{r[1]}', top-1 '{r[2]}' {'OK' if r[1] == r[2] else 'MISS'} -->")


if __name__ == "__main__":
    main()
