#!/usr/bin/env python3
"""A static GOPROXY upstream for gomirror's integration tests.

Serves a directory laid out like $GOMODCACHE/cache/download over HTTP on
127.0.0.1, logs every request and can inject faults.

    upstream.py --root DIR --port P --log FILE [--faults FILE] [--delay S]

Log: one line "<METHOD> <path>" per request, the path percent-decoded and
without its query string (so "!" appears literally), appended and flushed
before the answer is sent.

Faults file (JSON, re-read whenever its mtime changes), keyed by the decoded
request path:
    {"/example.com/x/@v/v1.0.0.info": {"status": 500, "body": "boom"},
     "/example.com/x/@v/v1.0.0.zip":  {"hang": true},
     "/example.com/x/@v/list":        {"delay": 2},
     "/example.com/y/@v/v1.0.0.zip":  {"body_file": "/path/to/file"}}
status/body: answer with that status and body (text/plain unless
"content_type" is given); hang: accept and never answer (sleep up to 600 s);
delay: sleep that many seconds, then answer normally (or as the other keys
say); body_file: answer 200 (or "status") with that file's bytes;
location: answer 302 (or "status") redirecting there.
A fault may also say "count": N to apply only to the first N requests.

--delay S sleeps S seconds before every answer (to make concurrent
requests overlap).
"""

import argparse
import json
import os
import posixpath
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CONTENT_TYPES = {
    ".info": "application/json",
    ".mod": "text/plain; charset=utf-8",
    ".zip": "application/zip",
}


class Faults:
    """The faults file, re-read when its mtime (or size) changes."""

    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()
        self.stamp = None
        self.faults = {}
        self.used = {}

    def get(self, path):
        if not self.path:
            return None
        with self.lock:
            try:
                st = os.stat(self.path)
                stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
            except FileNotFoundError:
                stamp = None
            if stamp != self.stamp:
                self.stamp = stamp
                self.used = {}
                self.faults = {}
                if stamp is not None:
                    try:
                        with open(self.path, "rb") as f:
                            self.faults = json.loads(f.read() or b"{}")
                    except (OSError, ValueError) as e:
                        print(f"upstream: bad faults file {self.path}: {e}",
                              file=sys.stderr, flush=True)
            fault = self.faults.get(path)
            if fault is None:
                return None
            if "count" in fault:
                n = self.used.get(path, 0)
                if n >= int(fault["count"]):
                    return None
                self.used[path] = n + 1
            return fault


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "upstream-test/1"

    def log_message(self, fmt, *args):  # quiet: we keep our own log
        pass

    def _log(self, path):
        srv = self.server
        with srv.log_lock:
            srv.log_file.write(f"{self.command} {path}\n")
            srv.log_file.flush()

    def _send(self, status, body, ctype, head):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _serve(self, head):
        raw = self.path.split("?", 1)[0]
        path = urllib.parse.unquote(raw, errors="surrogateescape")
        self._log(path)
        srv = self.server
        if srv.delay:
            time.sleep(srv.delay)
        fault = srv.faults.get(path)
        if fault:
            if fault.get("delay"):
                time.sleep(float(fault["delay"]))
            if fault.get("hang"):
                # Accept and never answer; give up after 600 s at most.
                time.sleep(min(float(fault.get("hang_seconds", 600)), 600))
                self.close_connection = True
                return
            if "location" in fault:
                # A redirect, as a proxy handing off to a CDN would answer.
                self.send_response(int(fault.get("status", 302)))
                self.send_header("Location", fault["location"])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if "body_file" in fault:
                with open(fault["body_file"], "rb") as f:
                    body = f.read()
                ctype = fault.get("content_type") or content_type(path)
                self._send(int(fault.get("status", 200)), body, ctype, head)
                return
            if "status" in fault or "body" in fault:
                body = fault.get("body", "")
                if isinstance(body, str):
                    body = body.encode()
                ctype = fault.get("content_type", "text/plain; charset=utf-8")
                self._send(int(fault.get("status", 200)), body, ctype, head)
                return
        fs_path = resolve(srv.root, path)
        if fs_path is None or not os.path.isfile(fs_path):
            self._send(404, b"not found: " + path.encode(errors="replace") + b"\n",
                       "text/plain; charset=utf-8", head)
            return
        with open(fs_path, "rb") as f:
            body = f.read()
        self._send(200, body, content_type(path), head)

    def do_GET(self):
        self._serve(head=False)

    def do_HEAD(self):
        self._serve(head=True)


def content_type(path):
    if path.endswith("/@latest"):
        return "application/json"
    if path.endswith("/@v/list"):
        return "text/plain; charset=utf-8"
    for ext, ctype in CONTENT_TYPES.items():
        if path.endswith(ext):
            return ctype
    return "application/octet-stream"


def resolve(root, path):
    """Map a decoded URL path to a file under root, or None if it escapes."""
    if not path.startswith("/") or "\x00" in path:
        return None
    parts = path.split("/")[1:]
    if any(p in ("", ".", "..") for p in parts):
        return None
    norm = posixpath.normpath(path)
    full = os.path.join(root, norm.lstrip("/"))
    if os.path.commonpath([os.path.realpath(full), root]) != root:
        return None
    return full


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def make_server(root, port, log_path, faults=None, delay=None, host="127.0.0.1"):
    srv = Server((host, port), Handler)
    srv.root = os.path.realpath(root)
    srv.log_file = open(log_path, "a", encoding="utf-8", errors="surrogateescape")
    srv.log_lock = threading.Lock()
    srv.faults = Faults(faults)
    srv.delay = float(delay or 0)
    return srv


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--faults")
    ap.add_argument("--delay", type=float, default=0)
    args = ap.parse_args()
    srv = make_server(args.root, args.port, args.log, args.faults, args.delay)
    print(f"upstream serving {srv.root} on http://127.0.0.1:{srv.server_address[1]}",
          flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
