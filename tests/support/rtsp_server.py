#!/usr/bin/python3
"""A real RTSP server for the camera-reconnect test: gst-rtsp-server (Debian's gir1.2-gst-rtsp-server-1.0)
serving a video file as MJPEG over RTP at rtsp://127.0.0.1:PORT/cam, looping. Run: rtsp_server.py PORT FILE"""
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

port, path = sys.argv[1], sys.argv[2]
Gst.init(None)
server = GstRtspServer.RTSPServer()
server.set_address("127.0.0.1")
server.set_service(port)
factory = GstRtspServer.RTSPMediaFactory()
factory.set_launch(
    f'( filesrc location="{path}" ! decodebin ! videoconvert ! videoscale ! video/x-raw,width=384,height=288 '
    "! videorate ! video/x-raw,framerate=5/1 ! jpegenc quality=80 ! rtpjpegpay name=pay0 pt=26 )"
)
factory.set_shared(True)
server.get_mount_points().add_factory("/cam", factory)
if server.attach(None) == 0:
    sys.exit(f"cannot listen on {port}")
print(f"serving rtsp://127.0.0.1:{port}/cam", flush=True)
GLib.MainLoop().run()
