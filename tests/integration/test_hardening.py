"""Hostile clients and operators' secrets (issue 10): clients that hold
connections without sending a request (slow headers, from one address and
from many), the per-address cap and its exemption for trusted proxies, no
secret of a configured URL in the log, and /stats that names only answered
modules (never the ones a client made up, never private ones unless the
caller is an administrator)."""

import http.client
import os
import re
import socket
import time

import ssl
import subprocess

import harness
import private_fixtures
import shipped_haproxy
import tls
from harness import check, eq

MOD = "example.com/hello"


def slow_clients(port, n, source="127.0.0.1"):
    """n connections that send half a request's headers and stop."""
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind((source, 0))
        s.connect(("127.0.0.1", port))
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        socks.append(s)
    return socks


def closed(s):
    """Whether the server has closed s (EOF or reset), without blocking."""
    s.setblocking(False)
    try:
        return s.recv(1) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def get_from(source, port, path, timeout=5):
    """(status, body, seconds) of one GET from a given loopback address."""
    t0 = time.time()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout,
                                   source_address=(source, 0))
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read(), time.time() - t0
    finally:
        c.close()


def test_slow_header_clients_from_one_address(t):
    up = t.start_upstream()
    gm = t.start_gomirror(upstream=up, threads=32, max_client_conns=8, header_timeout=3)
    eq(gm.get(f"/{MOD}/@v/v1.0.0.info").status, 200, "warm")
    socks = slow_clients(gm.port, 32)
    try:
        for src, path in (("127.0.0.2", "/healthz"), ("127.0.0.3", f"/{MOD}/@v/v1.0.0.info")):
            st, _, took = get_from(src, gm.port, path)
            eq(st, 200, f"{path} with 32 slow clients holding every thread")
            check(took < 1.0, f"{path} took {took:.2f}s")
        time.sleep(0.6)
        n_closed = sum(closed(s) for s in socks)
        eq(n_closed, 24, "connections beyond max_client_conns closed")
        # The 8 left lose their connection after header_timeout.
        time.sleep(3.5)
        eq(sum(closed(s) for s in socks), 32, "all closed after header_timeout")
    finally:
        for s in socks:
            s.close()
    with open(gm.log) as f:
        check("closed 24 (max_client_conns 8)" in f.read(), "no log line about the cap")
    m = gm.get("/metrics").text
    check('gomirror_connections_closed_total{reason="over_cap"} 24' in m and
          'gomirror_connections_closed_total{reason="slow_headers"} 8' in m,
          f"metrics: {[l for l in m.splitlines() if 'closed' in l]}")


def test_slow_header_clients_from_many_addresses(t):
    """Under the cap per address, header_timeout is the bound: the threads
    come back, and a normal request waits at most that long."""
    up = t.start_upstream()
    gm = t.start_gomirror(upstream=up, threads=16, max_client_conns=4, header_timeout=2)
    socks = []
    try:
        for i in range(4):
            socks += slow_clients(gm.port, 4, source=f"127.0.1.{i + 1}")
        time.sleep(0.5)
        eq(sum(closed(s) for s in socks), 0, "under the cap: kept until header_timeout")
        st, _, took = get_from("127.0.0.9", gm.port, "/healthz", timeout=10)
        eq(st, 200, "/healthz")
        check(took < 2.5, f"/healthz waited {took:.2f}s, header_timeout is 2 s")
        time.sleep(2.0)
        eq(sum(closed(s) for s in socks), 16, "closed after header_timeout")
    finally:
        for s in socks:
            s.close()


def test_trusted_proxy_is_not_capped(t):
    up = t.start_upstream()
    gm = t.start_gomirror(upstream=up, threads=16, max_client_conns=2, header_timeout=30,
                          trusted_proxies="127.0.0.1/32")
    socks = slow_clients(gm.port, 6)
    try:
        time.sleep(0.8)
        eq(sum(closed(s) for s in socks), 0, "a trusted proxy's connections were capped")
        other = slow_clients(gm.port, 6, source="127.0.0.5")
        time.sleep(0.8)
        eq(sum(closed(s) for s in other), 4, "an untrusted address is capped")
        for s in other:
            s.close()
    finally:
        for s in socks:
            s.close()


def test_keepalive_clients_between_requests_are_kept(t):
    """A client that keeps using its connection is never cut off by the
    header deadline, however long the connection lives."""
    up = t.start_upstream()
    gm = t.start_gomirror(upstream=up, header_timeout=1, max_client_conns=1)
    c = http.client.HTTPConnection("127.0.0.1", gm.port, timeout=5)
    t0 = time.time()
    n = 0
    while time.time() - t0 < 3:
        c.request("GET", "/healthz")
        r = c.getresponse()
        r.read()
        eq(r.status, 200, "keep-alive request")
        n += 1
        time.sleep(0.3)
    c.close()
    check(n >= 8, f"only {n} requests")


def test_shipped_haproxy_holds_slow_clients(t):
    """deploy/haproxy.cfg in front: slow clients wait in HAProxy (which
    holds thousands for nothing), never in a replica's worker threads, and
    HAProxy drops them after its own timeout http-request."""
    up = t.start_upstream()
    gm = t.start_gomirror(upstream=up, threads=8, trusted_proxies="127.0.0.1/32")
    ca = tls.make_ca(t.mkdtemp("tls"), key="ec")
    https, plain = harness.free_port(), harness.free_port()
    cfg = t.path("haproxy.cfg")
    with open(cfg, "w") as f:
        f.write(shipped_haproxy.config(ca["pem"], https, plain, [gm.port]))
    t._start(harness.HAProxy("haproxy", ["haproxy", "-db", "-f", cfg], t.path("hp.log"),
                             ready_port=https))
    time.sleep(2.5)  # the health check marks the replica up
    ctx = ssl.create_default_context(cafile=ca["ca"])
    slow = []
    try:
        for _ in range(40):  # five times the replica's threads
            s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", https), timeout=5),
                                server_hostname="localhost")
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            slow.append(s)
        t0 = time.time()
        p = subprocess.run(["curl", "-s", "--cacert", ca["ca"], "-o", "/dev/null", "-w",
                            "%{http_code}", f"https://localhost:{https}/{MOD}/@v/v1.0.0.info",
                            "--resolve", f"localhost:{https}:127.0.0.1"],
                           stdout=subprocess.PIPE, timeout=30)
        took = time.time() - t0
        eq(p.stdout.decode(), "200", "a request through HAProxy with 40 slow clients")
        check(took < 1.0, f"took {took:.2f}s")
        with open(gm.log) as f:
            check("without a request" not in f.read(),
                  "slow clients reached the replica (its guard closed some)")
    finally:
        for s in slow:
            s.close()


def test_startup_log_has_no_secrets(t):
    red = t.start_redis(password="r3dis-Pa55word")
    up = t.start_upstream()
    upstream = up.url.replace("http://", "http://mirror-user:up-Secret-99@")
    gm = t.start_gomirror(upstream=upstream + ",off",
                          meta=f"redis://:r3dis-Pa55word@127.0.0.1:{red.port}/0")
    eq(gm.get(f"/{MOD}/@v/v1.0.0.info").status, 200, "through an upstream with credentials")
    with open(gm.log) as f:
        log = f.read()
    check(re.search(r"gomirror \S+ listening on", log), "no listening line")
    for secret in ("r3dis-Pa55word", "up-Secret-99"):
        check(secret not in log, f"{secret} in the log")
    check("redis://:***@127.0.0.1" in log, "the meta URL is not shown masked")


def test_stats_names_only_answered_and_public_modules(t):
    pm = private_fixtures.ensure(t.runner.args.fixtures or os.path.join(
        os.path.dirname(t.binary), "fixtures"), log=None)
    up = t.start_upstream()
    gg = t.start_gogetproxy(roots=[], hosts=[pm["host"]], depth=2)
    gm = t.start_gomirror(upstream=up, private=pm["private"], vcs_gitconfig=pm["gitconfig"],
                          vcs_insecure=pm["insecure"], vcs_http_proxy=gg.url,
                          admin_token="adm1n-t0ken")
    eq(gm.get(f"/{MOD}/@v/v1.0.0.info").status, 200, "public")
    for i in range(5):
        eq(gm.get(f"/example.com/made-up-{i}/@v/v1.0.0.info").status, 404, "made up")
    alpha = "git.corp.example/team/alpha"
    eq(gm.get(f"/{alpha}/@v/v1.0.0.info", timeout=120).status, 200, "private")
    st = gm.get("/stats").json()
    mods = [m["module"] for m in st["top_today"]]
    eq(mods, [MOD], f"/stats modules for anyone: {st['top_today']}")
    check(st["misses"] + st["hits"] >= 7, f"totals still count every request: {st}")
    adm = harness.http_get(gm.url + "/stats", headers={"Authorization": "Bearer adm1n-t0ken"})
    mods = [m["module"] for m in adm.json()["top_today"]]
    eq(sorted(mods), sorted([MOD, alpha]), f"admin's /stats: {mods}")


if __name__ == "__main__":
    harness.main()
