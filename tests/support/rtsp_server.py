#!/usr/bin/python3
"""A real RTSP server for the camera tests: gst-rtsp-server (Debian's gir1.2-gst-rtsp-server-1.0) serving a
video file over RTP at rtsp://127.0.0.1:PORT/cam as MJPEG (default) or H.264 (x264enc, a camera's usual
stream: 2 s GOP, no B-frames). Run: rtsp_server.py PORT FILE [mjpeg|h264]"""
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

port, path = sys.argv[1], sys.argv[2]
codec = sys.argv[3] if len(sys.argv) > 3 else "mjpeg"
Gst.init(None)
server = GstRtspServer.RTSPServer()
server.set_address("127.0.0.1")
server.set_service(port)
factory = GstRtspServer.RTSPMediaFactory()
head = (
    f'( filesrc location="{path}" ! decodebin ! videoconvert ! videoscale ! video/x-raw,width=384,height=288 '
    "! videorate ! video/x-raw,framerate=5/1 ! "
)
if codec == "h264":
    tail = "x264enc tune=zerolatency speed-preset=veryfast key-int-max=10 ! rtph264pay name=pay0 pt=96 config-interval=1 )"
else:
    tail = "jpegenc quality=80 ! rtpjpegpay name=pay0 pt=26 )"
factory.set_launch(head + tail)
factory.set_shared(True)
server.get_mount_points().add_factory("/cam", factory)
if server.attach(None) == 0:
    sys.exit(f"cannot listen on {port}")
print(f"serving rtsp://127.0.0.1:{port}/cam", flush=True)
GLib.MainLoop().run()
