#!/usr/bin/env python3
"""The offline go-get trick: an HTTP proxy that answers go-import discovery.

Used as HTTP_PROXY/HTTPS_PROXY by a go command that runs with
GOINSECURE=<hosts> and a git config (GIT_CONFIG_GLOBAL) saying
    [url "file://<gitdir>/"] insteadOf = https://<host>/
so that `https://<host>/<repo>` resolves to the local bare repository
<gitdir>/<repo>.

    gogetproxy.py --port P [--hosts example.com,git.corp.example]
                  [--root example.com/hello --root example.com/Upper/Lib ...]
                  [--depth 2] [--log FILE]

- `GET http://<host>/<a>/<b>/...?go-get=1` (absolute-URI proxy request) is
  answered with
    <meta name="go-import" content="<root> git https://<root>">
  where <root> is the longest --root that is a path prefix of the request,
  or else <host> plus the first --depth path elements (default 2, like
  github.com/<owner>/<repo>).
- CONNECT (https through the proxy) is answered 405, so the go command
  falls back to plain http (allowed by GOINSECURE).
- Hosts not in --hosts (when given) and requests without ?go-get=1: 404.
"""

import argparse
import html
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "gogetproxy-test/1"

    def log_message(self, fmt, *args):
        pass

    def _log(self, line):
        srv = self.server
        if srv.log_file:
            with srv.log_lock:
                srv.log_file.write(line + "\n")
                srv.log_file.flush()

    def _send(self, status, body, ctype="text/plain; charset=utf-8"):
        body = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_CONNECT(self):
        self._log(f"CONNECT {self.path}")
        self.close_connection = True
        self._send(405, "CONNECT not supported: use GOINSECURE and plain http\n")

    def do_GET(self):
        self._log(f"GET {self.path}")
        u = urllib.parse.urlsplit(self.path)
        host = u.hostname or (self.headers.get("Host") or "").split(":")[0]
        query = urllib.parse.parse_qs(u.query)
        if query.get("go-get") != ["1"]:
            self._send(404, "only ?go-get=1 discovery is served here\n")
            return
        root = self.server.repo_root(host, urllib.parse.unquote(u.path))
        if root is None:
            self._send(404, f"unknown host {host}\n")
            return
        esc = html.escape(root, quote=True)
        body = ("<!DOCTYPE html>\n<html><head>\n"
                f'<meta name="go-import" content="{esc} git https://{esc}">\n'
                f"</head><body>go get {esc}</body></html>\n")
        self._send(200, body, "text/html; charset=utf-8")

    do_HEAD = do_GET


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def repo_root(self, host, path):
        if self.hosts and host not in self.hosts:
            return None
        full = host + "/" + path.strip("/") if path.strip("/") else host
        best = None
        for r in self.roots:
            if full == r or full.startswith(r + "/"):
                if best is None or len(r) > len(best):
                    best = r
        if best:
            return best
        elems = [e for e in path.split("/") if e]
        return "/".join([host] + elems[:self.depth])


def make_server(port=0, roots=(), hosts=(), depth=2, log_path=None, host="127.0.0.1"):
    srv = Server((host, port), Handler)
    srv.roots = [r.strip("/") for r in roots]
    srv.hosts = set(hosts)
    srv.depth = depth
    srv.log_file = open(log_path, "a", encoding="utf-8") if log_path else None
    srv.log_lock = threading.Lock()
    return srv


def start_in_thread(**kw):
    """Start a server in a daemon thread; returns (server, proxy_url)."""
    srv = make_server(**kw)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    return srv, f"http://127.0.0.1:{srv.server_address[1]}"


def git_config_text(gitdir, hosts):
    """The GIT_CONFIG_GLOBAL content mapping https://<host>/ to <gitdir>/<host>/."""
    lines = []
    for h in hosts:
        lines.append(f'[url "file://{gitdir}/{h}/"]\n\tinsteadOf = https://{h}/\n')
    lines.append("[init]\n\tdefaultBranch = master\n")
    lines.append("[commit]\n\tgpgsign = false\n")
    lines.append("[protocol \"file\"]\n\tallow = always\n")
    return "".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--hosts", default="", help="comma-separated hosts served (default: any)")
    ap.add_argument("--root", action="append", default=[],
                    help="explicit repository root, e.g. example.com/hello (repeatable)")
    ap.add_argument("--roots", default="", help="comma-separated repository roots")
    ap.add_argument("--depth", type=int, default=2,
                    help="path elements after the host forming a root when no --root matches")
    ap.add_argument("--log")
    args = ap.parse_args()
    roots = list(args.root) + [r for r in args.roots.split(",") if r]
    hosts = [h for h in args.hosts.split(",") if h]
    srv = make_server(args.port, roots, hosts, args.depth, args.log)
    print(f"gogetproxy on http://127.0.0.1:{srv.server_address[1]}", flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
