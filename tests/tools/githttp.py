#!/usr/bin/env python3
"""A public git host on loopback, for `direct` without any git config.

One HTTP server that is both
- the go-get proxy (HTTP_PROXY/HTTPS_PROXY of the go command, CONNECT ->
  405 so go falls back to plain http under GOINSECURE): `?go-get=1` for a
  host in --http-hosts is answered with
    <meta name="go-import" content="<root> git http://127.0.0.1:PORT/<root>">
  and for any other host in --hosts, as tests/tools/gogetproxy.py does, with
  `git https://<root>` (for a git config's insteadOf rewrite);
- a git smart-HTTP server (`git http-backend`) over --gitdir, where the
  bare repository of <root> is <gitdir>/<root>.

So the go command fetches public fixture modules over real git HTTP with an
empty git config, as `direct` does for a real public host.

    githttp.py --port P --gitdir DIR [--hosts a,b] [--http-hosts a]
               [--roots r1,r2] [--depth 2] [--log FILE]
"""

import argparse
import html
import os
import subprocess
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gogetproxy  # noqa: E402


class Handler(gogetproxy.Handler):
    protocol_version = "HTTP/1.0"  # each answer ends with the connection
    server_version = "githttp-test/1"

    def do_GET(self):
        u = urllib.parse.urlsplit(self.path)
        if "go-get=1" in u.query.split("&"):
            host = u.hostname or (self.headers.get("Host") or "").split(":")[0]
            if host in self.server.http_hosts:
                self._log(f"GET {self.path}")
                root = self.server.repo_root(host, urllib.parse.unquote(u.path))
                esc = html.escape(root, quote=True)
                url = f"http://127.0.0.1:{self.server.server_address[1]}/{esc}"
                body = ("<!DOCTYPE html>\n<html><head>\n"
                        f'<meta name="go-import" content="{esc} git {url}">\n'
                        "</head><body></body></html>\n")
                self._send(200, body, "text/html; charset=utf-8")
                return
            return super().do_GET()
        self._git(u)

    def do_POST(self):
        self._git(urllib.parse.urlsplit(self.path))

    def _body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _git(self, u):
        self._log(f"{self.command} {u.path}?{u.query}")
        body = self._body() if self.command == "POST" else b""
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": self.server.gitdir,
            "GIT_HTTP_EXPORT_ALL": "1",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "HOME": self.server.gitdir,
            "REQUEST_METHOD": self.command,
            "PATH_INFO": urllib.parse.unquote(u.path),
            "QUERY_STRING": u.query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_ADDR": self.client_address[0],
            "SERVER_PROTOCOL": "HTTP/1.0",
        }
        for h in ("Git-Protocol", "Content-Encoding"):
            if self.headers.get(h):
                env["HTTP_" + h.upper().replace("-", "_")] = self.headers[h]
        p = subprocess.run(["git", "http-backend"], input=body, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        head, _, rest = p.stdout.partition(b"\r\n\r\n")
        if not _:
            head, _, rest = p.stdout.partition(b"\n\n")
        status, headers = 200, []
        for line in head.decode("latin-1").splitlines():
            k, _, v = line.partition(":")
            if k.lower() == "status":
                status = int(v.strip().split()[0])
            elif k:
                headers.append((k, v.strip()))
        if p.returncode != 0 and not p.stdout:
            status, headers, rest = 500, [], p.stderr
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(rest)))
        self.end_headers()
        self.wfile.write(rest)


def make_server(port, gitdir, hosts=(), http_hosts=(), roots=(), depth=2, log_path=None):
    srv = gogetproxy.make_server(port, roots, hosts, depth, log_path)
    srv.RequestHandlerClass = Handler
    srv.gitdir = os.path.abspath(gitdir)
    srv.http_hosts = set(http_hosts)
    return srv


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--gitdir", required=True)
    ap.add_argument("--hosts", default="")
    ap.add_argument("--http-hosts", default="")
    ap.add_argument("--roots", default="")
    ap.add_argument("--depth", type=int, default=2)
    ap.add_argument("--log")
    a = ap.parse_args()
    split = lambda s: [x for x in s.split(",") if x]  # noqa: E731
    http_hosts = split(a.http_hosts)
    srv = make_server(a.port, a.gitdir, split(a.hosts) + http_hosts, http_hosts,
                      split(a.roots), a.depth, a.log)
    print(f"githttp on http://127.0.0.1:{srv.server_address[1]}", flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
