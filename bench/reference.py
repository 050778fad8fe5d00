#!/usr/bin/env python3
"""The Python pipeline a user would write for the same job, for `scenewatch bench` to compare against.

OpenCV decode (FFmpeg; every frame grabbed, only the 2 fps sampled by stream time converted to BGR, as
scenewatch converts only those), numpy preprocessing, onnxruntime (CPU, the same fp32 ONNX
files scenewatch runs: NanoDet-g 416 + EfficientNet-Lite0), NanoDet's GFL decode + NMS in numpy, and one MQTT
message per 4 s clip (paho-mqtt, QoS 1) with the detections (and ImageNet top-1; --no-encoder leaves the encoder
out, as scenewatch does for cameras without prompts). Two modes:

  throughput:  reference.py --input F --models DIR --seconds N --port P
               as fast as it goes on one camera; prints {"fps", "frames", "peak_rss_mb"}
  capacity:    ... --cameras N --realtime
               N reader threads play the file in real time (looping) and sample 2 fps into bounded queues
               (drop when full, counted); one inference loop serves them round robin; prints
               {"kept_up", "sampled", "dropped", "inferred", ...}

Set up with bench/setup.sh (a venv with onnxruntime, opencv-python-headless, numpy, paho-mqtt).
"""
import argparse
import json
import os
import queue
import threading
import time

import cv2
import numpy as np
import onnxruntime as ort
import paho.mqtt.client as mqtt

SIZE, BINS, NC = 416, 11, 80
MEAN_BGR = np.array([103.53, 116.28, 123.675], np.float32)
STD_BGR = np.array([57.375, 57.12, 58.395], np.float32)
LEVELS = [(8, "Identity:0", "Identity_3:0"), (16, "Identity_1:0", "Identity_4:0"), (32, "Identity_2:0", "Identity_5:0")]


def det_pre(bgr, in_hw=(SIZE, SIZE)):
    """Letterbox (416 on the long side, centred) into an in_h x in_w input: the 416 square, or the rectangular
    input scenewatch feeds a model with dynamic H, W (models/export/dynamic_hw.py)."""
    in_h, in_w = in_hw
    h, w = bgr.shape[:2]
    s = min(SIZE / w, SIZE / h)
    nw, nh = round(w * s), round(h * s)
    img = np.zeros((in_h, in_w, 3), np.float32)
    px, py = (in_w - nw) // 2, (in_h - nh) // 2
    img[py:py + nh, px:px + nw] = cv2.resize(bgr, (nw, nh), interpolation=cv2.INTER_LINEAR)
    img = (img - MEAN_BGR) / STD_BGR
    return img.transpose(2, 0, 1)[None], (s, px, py, in_w, in_h)


def det_decode(outs, geo, thr=0.35, nms_iou=0.6):
    s, px, py, in_w, in_h = geo
    boxes, scores = [], []
    for (stride, cname, bname), (sc, bx) in zip(LEVELS, outs):
        sc, bx = sc[0], bx[0]
        grid_w = in_w // stride
        keep = np.where(sc.max(1) >= thr)[0]
        if keep.size == 0:
            continue
        d = bx[keep].reshape(-1, 4, BINS)
        d = np.exp(d - d.max(2, keepdims=True))
        d = (d / d.sum(2, keepdims=True) * np.arange(BINS)).sum(2) * stride
        cx = (keep % grid_w + 0.5) * stride
        cy = (keep // grid_w + 0.5) * stride
        b = np.stack([cx - d[:, 0], cy - d[:, 1], cx + d[:, 2], cy + d[:, 3]], 1)
        b = b.clip(0, [in_w, in_h, in_w, in_h])
        b = (b - [px, py, px, py]) / s
        boxes.append(b)
        scores.append(sc[keep])
    if not boxes:
        return []
    boxes, scores = np.concatenate(boxes), np.concatenate(scores)
    out = []
    for c in np.unique(np.where(scores >= thr)[1]):
        idx = np.where(scores[:, c] >= thr)[0]
        xywh = np.c_[boxes[idx, :2], boxes[idx, 2:] - boxes[idx, :2]]
        for i in np.array(cv2.dnn.NMSBoxes(xywh.tolist(), scores[idx, c].tolist(), thr, nms_iou)).reshape(-1):
            j = idx[int(i)]
            out.append({"class": int(c), "score": round(float(scores[j, c]), 3), "box": [round(float(v)) for v in boxes[j]]})
    return out


def enc_pre(bgr):
    h, w = bgr.shape[:2]
    s = 256 / min(w, h)
    img = cv2.resize(bgr, (round(w * s), round(h * s)), interpolation=cv2.INTER_CUBIC)
    y, x = (img.shape[0] - 224) // 2, (img.shape[1] - 224) // 2
    img = img[y:y + 224, x:x + 224, ::-1].astype(np.float32)
    return ((img - 127.0) / 128.0).transpose(2, 0, 1)


class Models:
    def __init__(self, models_dir, threads, encoder=True):
        o = ort.SessionOptions()
        o.intra_op_num_threads = threads
        o.inter_op_num_threads = 1
        self.det = ort.InferenceSession(os.path.join(models_dir, "nanodet_g_416.onnx"), o, providers=["CPUExecutionProvider"])
        self.enc = ort.InferenceSession(os.path.join(models_dir, "efficientnet_lite0.onnx"), o,
                                        providers=["CPUExecutionProvider"]) if encoder else None
        self.names = [n for lv in LEVELS for n in lv[1:]]

    def clip(self, frames):
        results = []
        for f in frames:
            x, geo = det_pre(f)
            outs = self.det.run(self.names, {"input_1:0": x})
            pairs = [(outs[2 * i], outs[2 * i + 1]) for i in range(3)]
            results.append(det_decode(pairs, geo))
        if self.enc is None:
            return results, None
        batch = np.stack([enc_pre(f) for f in frames])
        logits = self.enc.run(["logits"], {"input": batch})[0]
        return results, logits.argmax(1).tolist()


def peak_rss_mb():
    # VmHWM, not ru_maxrss: ru_maxrss survives exec and would report the parent's size
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return None


def publisher(port, cid):
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=cid)
    c.connect("127.0.0.1", port)
    c.loop_start()
    return c


def open_capture(a, cameras):
    """FFmpeg with the decoder threads scenewatch's `[ingest] decode_threads` would pick (auto: one thread per
    decoder once cameras >= cores, FFmpeg's own count otherwise), so both sides get the same decoder option."""
    n = a.decode_threads
    if n < 0:
        n = 1 if cameras >= (os.cpu_count() or 1) else 0
    params = [cv2.CAP_PROP_N_THREADS, n] if n > 0 else []
    return cv2.VideoCapture(a.input, cv2.CAP_FFMPEG, params)


def throughput(a):
    m = Models(a.models, a.threads, not a.no_encoder)
    pub = publisher(a.port, f"reference-{os.getpid()}")
    cap = open_capture(a, 1)
    next_t, clip, frames, t0 = 0.0, [], 0, None
    while True:
        # grab() decodes; retrieve() converts to BGR: only for the frames kept, as scenewatch converts only those
        if not cap.grab():
            break
        t = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
        if t + 1e-6 < next_t:
            continue
        next_t += 0.5
        ok, f = cap.retrieve()
        if not ok:
            break
        clip.append(f)
        if len(clip) == 8:
            if t0 is None:
                t0 = time.monotonic()
            dets, top = m.clip(clip)
            pub.publish("reference/clip", json.dumps({"detections": dets, "imagenet_top1": top}), qos=1).wait_for_publish()
            frames += len(clip)
            clip = []
            if time.monotonic() - t0 >= a.seconds:
                break
    dt = time.monotonic() - (t0 or time.monotonic())
    pub.loop_stop()
    print(json.dumps({"fps": frames / dt if dt > 0 else 0.0, "frames": frames,
                      "peak_rss_mb": peak_rss_mb()}))


def capacity(a):
    m = Models(a.models, a.threads, not a.no_encoder)
    pub = publisher(a.port, f"reference-cap-{os.getpid()}")
    stop = threading.Event()
    queues = [queue.Queue(maxsize=32) for _ in range(a.cameras)]
    stats = {"sampled": 0, "dropped": 0}
    lock = threading.Lock()

    def reader(q):
        while not stop.is_set():
            cap = open_capture(a, a.cameras)
            try:
                play(cap, q)
            finally:
                cap.release()

    def play(cap, q):
        start, next_t = time.monotonic(), 0.0
        while not stop.is_set():
            if not cap.grab():
                break
            t = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
            wait = start + t - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            if t + 1e-6 < next_t:
                continue
            next_t += 0.5
            ok, f = cap.retrieve()
            if not ok:
                break
            with lock:
                stats["sampled"] += 1
            try:
                q.put_nowait((time.monotonic(), f))
            except queue.Full:
                with lock:
                    stats["dropped"] += 1

    threads = [threading.Thread(target=reader, args=(q,), daemon=True) for q in queues]
    for t in threads:
        t.start()
    clips = [[] for _ in queues]
    lat, inferred, t0 = [], 0, time.monotonic()
    while time.monotonic() - t0 < a.seconds:
        busy = False
        for i, q in enumerate(queues):
            try:
                clips[i].append(q.get_nowait())
                busy = True
            except queue.Empty:
                continue
            if len(clips[i]) == 8:
                dets, top = m.clip([f for _, f in clips[i]])
                pub.publish(f"reference/cam{i}/clip", json.dumps({"detections": dets, "imagenet_top1": top}), qos=1)
                now = time.monotonic()
                lat += [now - ts for ts, _ in clips[i]]
                inferred += len(clips[i])
                clips[i] = []
        if not busy:
            time.sleep(0.005)
    stop.set()
    backlog = sum(q.qsize() for q in queues)
    # join the readers before exiting: OpenCV captures torn down by the interpreter in live daemon threads abort
    # the process ("terminate called without an active exception")
    for t in threads:
        t.join(timeout=10)
    want = a.cameras * 2.0 * a.seconds
    q = len(lat) // 4
    growing = q > 0 and (sum(lat[-q:]) / q) > (sum(lat[:q]) / q) + 1.0
    kept = stats["dropped"] == 0 and stats["sampled"] >= 0.9 * want and not growing and backlog <= a.cameras * 8
    print(json.dumps({"cameras": a.cameras, "kept_up": kept, "sampled": stats["sampled"], "dropped": stats["dropped"],
                      "inferred": inferred, "backlog": backlog,
                      "p95_latency_ms": sorted(lat)[int(0.95 * (len(lat) - 1))] * 1000 if lat else None,
                      "peak_rss_mb": peak_rss_mb()}))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--input", required=True)
    p.add_argument("--models", required=True)
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--port", type=int, default=1883)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--cameras", type=int, default=1)
    p.add_argument("--decode-threads", type=int, default=-1,
                   help="FFmpeg decoder threads per camera (-1 = auto, as scenewatch: 1 once cameras >= cores)")
    p.add_argument("--realtime", action="store_true")
    p.add_argument("--no-encoder", action="store_true",
                   help="detector only (scenewatch runs the encoder only for cameras with prompts)")
    a = p.parse_args()
    (capacity if a.realtime else throughput)(a)


if __name__ == "__main__":
    main()
