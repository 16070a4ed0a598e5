#!/usr/bin/env python3
"""A checksum-database relay the trust tests can make lie.

    sumdbrelay.py --port PORT --control FILE --log FILE

Every request is forwarded to the backend named in the JSON control file
(re-read per request) and the answer is passed back, changed as the file
says:
    {"backend": "http://127.0.0.1:1234",
     "alter_lookup": false,   # change one h1: hash in a lookup's record
     "flip_tile": false}      # flip one byte of every hash tile
A backend that does not answer gives 502."""

import argparse
import json
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_GET(self):
        with open(self.server.control) as f:
            ctl = json.load(f)
        with self.server.lock:
            self.server.log.write(self.path + "\n")
            self.server.log.flush()
        try:
            with urllib.request.urlopen(ctl["backend"] + self.path, timeout=10) as r:
                status, body, ctype = r.status, r.read(), r.headers.get("Content-Type", "")
        except urllib.error.HTTPError as e:
            status, body, ctype = e.code, e.read(), "text/plain"
        except OSError:
            status, body, ctype = 502, b"relay: backend down\n", "text/plain"
        if status == 200 and ctl.get("alter_lookup") and self.path.startswith("/lookup/"):
            text = body.decode()
            i = text.index(" h1:") + 4
            c = "A" if text[i] != "A" else "B"
            body = (text[:i] + c + text[i + 1:]).encode()
        if (status == 200 and ctl.get("flip_tile") and self.path.startswith("/tile/")
                and "/data/" not in self.path and body):
            b = bytearray(body)
            b[len(b) // 2] ^= 0x01
            body = bytes(b)
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--control", required=True)
    ap.add_argument("--log", required=True)
    a = ap.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    srv.daemon_threads = True
    srv.control = a.control
    srv.log = open(a.log, "a")
    srv.lock = threading.Lock()
    srv.serve_forever()


if __name__ == "__main__":
    main()
