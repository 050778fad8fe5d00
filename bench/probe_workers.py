"""Probe behind `inference.workers` (docs/performance.md): NanoDet (416x320) + EfficientNet (batch of 4) throughput as
one worker with 2 ORT threads against 2 workers with 1 thread each, optionally while N GStreamer decoders play
vtest.avi at real time with 2 fps sampling (the load the capacity phase puts on the box).

Run: bench-venv/bin/python bench/probe_workers.py DECODERS [MEDIA_DIR]   (DECODERS = 0 for an idle box)
"""
import os
import subprocess
import sys
import threading
import time

import numpy as np
import onnxruntime as ort

MODELS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models")


def session(name, threads):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    return ort.InferenceSession(os.path.join(MODELS, name), so, providers=["CPUExecutionProvider"])


DET_IN = np.random.rand(1, 3, 320, 416).astype(np.float32)
ENC_IN = np.random.rand(4, 3, 224, 224).astype(np.float32)


def worker(threads, stop, counter, idx):
    d, e = session("nanodet_g_416.onnx", threads), session("efficientnet_lite0.onnx", threads)
    dn, en = d.get_inputs()[0].name, e.get_inputs()[0].name
    while not stop.is_set():
        for _ in range(8):  # a clip: the detector per frame, the encoder on every 2nd frame
            d.run(None, {dn: DET_IN})
        e.run(None, {en: ENC_IN})
        counter[idx] += 8


def measure(workers, threads, secs):
    stop, counts = threading.Event(), [0] * workers
    ts = [threading.Thread(target=worker, args=(threads, stop, counts, i)) for i in range(workers)]
    for t in ts:
        t.start()
    time.sleep(3)  # sessions loaded, warm
    c0, t0 = sum(counts), time.time()
    time.sleep(secs)
    c1, t1 = sum(counts), time.time()
    stop.set()
    for t in ts:
        t.join()
    return (c1 - c0) / (t1 - t0)


def main():
    decoders = int(sys.argv[1])
    media = sys.argv[2] if len(sys.argv) > 2 else "/var/cache/scenewatch/media"
    video = os.path.join(media, "vtest.avi")
    procs = [subprocess.Popen(["gst-launch-1.0", "-q", "filesrc", "location=" + video, "!", "decodebin", "!", "videorate",
                               "!", "video/x-raw,framerate=2/1", "!", "videoconvert", "!", "video/x-raw,format=RGB", "!",
                               "fakesink", "sync=true"]) for _ in range(decoders)]
    time.sleep(2)
    try:
        for _ in range(2):
            for workers, threads in [(1, 2), (2, 1)]:
                fps = measure(workers, threads, 12)
                print(f"decoders={decoders} workers={workers} threads={threads}: {fps:.1f} frames/s", flush=True)
    finally:
        for p in procs:
            p.kill()


if __name__ == "__main__":
    main()
