#!/usr/bin/env python3
"""Hostile peers for gomirror's integration tests (issue 10), on loopback.

    hostile.py secret --listen 127.0.0.2:P [--listen 127.0.0.1:Q ...] --log FILE
    hostile.py relay  --listen 127.0.0.1:P --backend URL --faults FILE --log FILE

secret: an internal service that gomirror must never reach. It answers every
GET with 200 and a body that would pass as the .mod of example.com/hello (so
only gomirror's redirect and address rules can keep it out of storage), and
logs "ACCEPT <addr>" for every TCP connection it accepts and "GET <path>" for
every request: a test counts both and wants zero.

relay: a checksum database that lies. It relays every GET to --backend (a
real one, tests/tools/sumdb) unless the faults file (JSON, re-read when it
changes, keyed by the request path as upstream.py's) says otherwise:
    {"status": N, "body": "...", "content_type": "..."}  answer that instead
    {"location": URL}             redirect there (302)
    {"truncate": N}               the real answer cut to its first N bytes
    {"drop_lines": true}          the real lookup without its go.sum lines
                                  (record id, blank line and note kept)
    {"drop_records": N}           the real data tile without its last N records
"count": N applies a fault to the first N requests only. Each request is
logged as "GET <path>".
"""

import argparse
import os
import sys
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from upstream import Faults  # noqa: E402  (tests/tools/upstream.py)

SECRET_BODY = b"module example.com/hello\n\n// internal: never to be served\n"
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def verify_request(self, request, client_address):
        self.log(f"ACCEPT {client_address[0]}")
        return True

    def log(self, line):
        with self.log_lock:
            self.log_file.write(line + "\n")
            self.log_file.flush()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "hostile-test/1"

    def log_message(self, fmt, *args):
        pass

    def send(self, status, body, ctype="text/plain; charset=utf-8", extra=None):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        self.server.log(f"GET {path}")
        if self.server.mode == "secret":
            self.send(200, SECRET_BODY)
            return
        self.relay(path)

    def relay(self, path):
        fault = self.server.faults.get(path) or {}
        if "location" in fault:
            self.send(302, b"", extra={"Location": fault["location"]})
            return
        if "status" in fault or "body" in fault:
            body = fault.get("body", "")
            body = body.encode() if isinstance(body, str) else body
            self.send(int(fault.get("status", 200)), body,
                      fault.get("content_type", "text/plain; charset=utf-8"))
            return
        try:
            with _OPENER.open(self.server.backend + self.path, timeout=10) as r:
                status, body = r.status, r.read()
                ctype = r.headers.get("Content-Type", "application/octet-stream")
        except urllib.error.HTTPError as e:
            status, body = e.code, e.read()
            ctype = e.headers.get("Content-Type", "text/plain; charset=utf-8")
        if status == 200:
            body = lie(body, fault)
        self.send(status, body, ctype)


def lie(body, fault):
    """The real answer, changed as the fault says."""
    if "truncate" in fault:
        body = body[:int(fault["truncate"])]
    if fault.get("drop_lines"):
        # "<id>\n<go.sum lines>\n\n<note>": keep the id and the note.
        head, sep, rest = body.partition(b"\n")
        _text, _blank, note = rest.partition(b"\n\n")
        body = head + sep + b"example.com/other v1.0.0 h1:x=\n" + b"\n" + note
    if fault.get("drop_records"):
        records = body.split(b"\n\n")[:-1]
        keep = records[:max(0, len(records) - int(fault["drop_records"]))]
        body = b"".join(r + b"\n\n" for r in keep)
    return body


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("mode", choices=("secret", "relay"))
    ap.add_argument("--listen", action="append", required=True, help="HOST:PORT")
    ap.add_argument("--log", required=True)
    ap.add_argument("--backend")
    ap.add_argument("--faults")
    args = ap.parse_args()
    if args.mode == "relay" and not args.backend:
        ap.error("relay needs --backend")
    log_file = open(args.log, "a", encoding="utf-8", errors="surrogateescape")
    lock = threading.Lock()
    servers = []
    for spec in args.listen:
        host, port = spec.rsplit(":", 1)
        srv = Server((host, int(port)), Handler)
        srv.mode, srv.log_file, srv.log_lock = args.mode, log_file, lock
        srv.backend = (args.backend or "").rstrip("/")
        srv.faults = Faults(args.faults)
        servers.append(srv)
    for srv in servers[1:]:
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    print(f"hostile {args.mode} on {', '.join(args.listen)}", flush=True)
    try:
        servers[0].serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
