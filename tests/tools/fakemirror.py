#!/usr/bin/env python3
"""A stand-in for the gomirror binary, for checking the integration tests
themselves: a pass-through GOPROXY (no cache, no validation) that accepts
gomirror's flags. Run a suite against it with
    python3 tests/integration/test_go_client.py --binary tests/tools/fakemirror.py

Understands --listen=HOST:PORT, --upstream=URL[,URL|URL...] (http only, tried
in order like the go command: "," falls through on 404/410, "|" on any
error), --sumdb=name=url[,name=url]; every other --flag is ignored.
"""

import re
import sys
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def fetch(url, timeout=30):
    try:
        with OPENER.open(urllib.request.Request(url), timeout=timeout) as r:
            return r.status, r.headers.get("Content-Type", "application/octet-stream"), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", "text/plain"), e.read()
    except OSError as e:
        return 502, "text/plain; charset=utf-8", f"upstream error: {e}\n".encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("fakemirror: " + (fmt % args) + "\n")

    def send(self, status, ctype, body):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        if path in ("/healthz", "/readyz"):
            return self.send(200, "text/plain", b"ok\n")
        m = re.match(r"^/sumdb/([^/]+)(/.*)$", path)
        if m:
            base = self.server.sumdbs.get(m.group(1))
            if base is None:
                return self.send(404, "text/plain; charset=utf-8", b"unknown checksum database\n")
            if m.group(2) == "/supported":
                return self.send(200, "text/plain", b"")
            return self.send(*fetch(base + m.group(2)))
        result = (404, "text/plain; charset=utf-8", b"not found\n")
        for url, sep in self.server.upstreams:
            result = fetch(url + path)
            if result[0] == 200:
                break
            if sep == "," and result[0] not in (404, 410):
                break
        self.send(*result)

    do_HEAD = do_GET


def main(argv):
    opts = {}
    for a in argv:
        m = re.match(r"^--([a-z_]+)=(.*)$", a)
        if m:
            opts[m.group(1)] = m.group(2)
    host, port = opts.get("listen", "127.0.0.1:3000").rsplit(":", 1)
    upstreams = []
    for url, sep in re.findall(r"([^,|]+)([,|]?)", opts.get("upstream", "")):
        upstreams.append((url.rstrip("/"), sep or ","))
    sumdbs = {}
    for item in filter(None, opts.get("sumdb", "").split(",")):
        name, url = item.split("=", 1)
        sumdbs[name] = url.rstrip("/")
    srv = ThreadingHTTPServer((host, int(port)), Handler)
    srv.daemon_threads = True
    srv.upstreams, srv.sumdbs = upstreams, sumdbs
    print(f"fakemirror on {host}:{port} upstreams={upstreams} sumdbs={sumdbs}", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
