"""Bad input: malformed request paths get 400 or 404 with a one-line reason,
and touch neither storage nor the upstream."""

import os
import socket

import harness
from harness import check, eq

# (raw request target, allowed statuses)
CORPUS = [
    ("/example.com/hello/../hello/@v/list", {400}),
    ("/example.com/hello/./@v/list", {400}),
    ("/../etc/passwd/@v/list", {400}),
    ("/example.com/hello/@v/..%2F..%2Fx.info", {400}),
    ("/example.com%2Fhello/@v/list", {400}),
    ("/example.com/hello%2F/@v/list", {400}),
    ("/example.com/hel%00lo/@v/list", {400}),
    ("/example.com/hello/@v/v1.0.0%00.info", {400}),
    ("/example.com/hello/@v/v1.0.0.zip%00", {400, 404}),
    ("/example.com/" + "a" * 5000 + "/@v/list", {400, 404}),
    ("/example.com/hello/@v/v" + "1" * 5000 + ".info", {400, 404}),
    ("/example.com/!/@v/list", {400}),
    ("/example.com/hello!/@v/list", {400}),
    ("/example.com/!Hello/@v/list", {400, 404}),
    ("/example.com/!1x/@v/list", {400}),
    ("/example.com/%GG/@v/list", {400}),
    ("/example.com/hello%/@v/list", {400}),
    ("/example.com/h%C3%A9llo/@v/list", {400}),
    ("/example.com/Hello/@v/list", {404}),
    ("/Example.com/hello/@v/list", {404}),
    ("/example.com/hello/@v/V1.0.0.info", {400, 404}),
    ("/example.com/hello/@v/v1.0.0.ZIP", {404}),
    ("/example.com/hello/@v/", {404}),
    ("/example.com/hello/@v/list/", {404}),
    ("/example.com/hello/@v/v1.0.0.tar", {404}),
    ("/example.com/hello/", {404}),
    ("/example.com/hello/@latest/", {404}),
    ("/example.com//hello/@v/list", {400}),
    ("/-example.com/hello/@v/list", {400}),
    ("/examplecom/hello/@v/list", {400}),
    ("/example.com/hello/v1/@v/list", {400}),
    ("/example.com/hello/v02/@v/list", {400}),
    # A well-formed version that cannot belong to the path: "not here"
    # (404, as proxy.golang.org answers), which the go command reports
    # without treating it as a broken proxy.
    ("/example.com/hello/@v/v2.0.0.mod", {404}),
    ("/example.com/hello/v2/@v/v1.0.0.zip", {404}),
    ("/example.com/hello/@v/master.zip", {400}),
    ("/example.com/hello/@v/v1.0.0%20.info", {400}),
    ("/example.com/con/@v/list", {400}),
    ("/example.com/hello~1/@v/list", {400}),
    ("/example.com/hello/@v/v1.0.0%5C.info", {400}),
    ("/@v/list", {400, 404}),
    ("/sumdb/sum.golang.org/lookup/..%2F..%2Fetc@v1.0.0", {400, 404}),
    ("/sumdb/nosuch.db/supported", {404}),
    ("/sumdb/sumdb.test/tile/8/0/x01/234", {400, 404}),
    ("/sumdb/sumdb.test/lookup/example.com/!!x@v1.0.0", {400}),
]


def raw_request(port, target, method="GET"):
    """Sends target byte for byte (urllib would normalise it)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"{method} {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                  .encode("latin-1"))
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:])}
    return status, headers, body


def test_malformed_paths(t):
    up = t.start_upstream()
    gm = t.start_gomirror(upstream=up, sumdb=f"sumdb.test={up.url}")
    problems = []
    for target, allowed in CORPUS:
        status, headers, body = raw_request(gm.port, target)
        if status not in allowed:
            problems.append(f"{target[:80]}: status {status}, want {sorted(allowed)}")
            continue
        if status in (400, 404):
            text = body.decode(errors="replace")
            if headers.get("content-type") != "text/plain; charset=utf-8" or \
                    not text.endswith("\n") or text.count("\n") != 1 or len(text) > 300:
                problems.append(f"{target[:80]}: reason not one short line: {text!r}")
    check(not problems, "\n".join(problems))
    eq(up.requests(), [], "upstream requests caused by malformed input")
    eq(gm.stored_keys(), [], "keys in storage")


def test_methods_and_head(t):
    up = t.start_upstream()
    gm = t.start_gomirror(upstream=up)
    status, headers, _ = raw_request(gm.port, "/example.com/hello/@v/list", method="POST")
    eq(status, 405, "POST status")
    check("GET" in headers.get("allow", ""), "Allow header")
    v = t.fx["modules"]["example.com/hello"]["versions"][0]
    status, headers, body = raw_request(gm.port, f"/example.com/hello/@v/{v}.zip", method="HEAD")
    eq(status, 200, "HEAD status")
    eq(body, b"", "HEAD body")
    check(int(headers["content-length"]) > 0, "HEAD Content-Length")


if __name__ == "__main__":
    harness.main()
