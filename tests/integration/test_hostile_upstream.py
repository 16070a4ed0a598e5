#!/usr/bin/env python3
"""Upstreams and checksum databases as hostile peers (issue 10).

A redirecting upstream (upstream.py's "location" fault), an internal
"secret" service on 127.0.0.2 and on another port of 127.0.0.1 that must
never be reached (tests/tools/hostile.py secret, which logs every accepted
connection), and a lying checksum database (hostile.py relay in front of a
real one: lookups without the module's lines, a captive-portal page, cut-off
or short tiles, a note signed by someone else, redirects). Every refusal is
a one-line 502, nothing it concerns is stored, and the secret sees nothing.

    python3 tests/integration/test_hostile_upstream.py --binary build/gomirror
"""

import os
import socket
import time

import harness
from harness import PYTHON, TOOLS, check, eq

MOD = "example.com/hello"
DB = "sumdb.test"


# ------------------------------------------------------------ stand-ins

def free_port_on(host):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class Hostile(harness.Proc):
    """tests/tools/hostile.py; ready once it says so (a probe connection
    would count as a hit)."""

    def _ready(self):
        try:
            with open(self.output, errors="replace") as f:
                return "hostile " in f.read(), "no start-up line yet"
        except OSError as e:
            return False, str(e)

    def lines(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read().splitlines()
        except FileNotFoundError:
            return []

    def hits(self):
        """Accepted connections and requests."""
        return [l for l in self.lines() if l.startswith(("ACCEPT ", "GET "))]

    def paths(self):
        return [l[4:] for l in self.lines() if l.startswith("GET ")]

    def set_faults(self, faults):
        harness.Upstream.set_faults(self, faults)


def start_secret(t):
    """The internal service, on 127.0.0.2:P and 127.0.0.1:Q."""
    d = t.mkdtemp("secret")
    p2, p1 = free_port_on("127.0.0.2"), free_port_on("127.0.0.1")
    argv = [PYTHON, os.path.join(TOOLS, "hostile.py"), "secret",
            "--listen", f"127.0.0.2:{p2}", "--listen", f"127.0.0.1:{p1}",
            "--log", os.path.join(d, "hits.log")]
    p = Hostile("secret", argv, os.path.join(d, "output.log"))
    p.url2, p.url1 = f"http://127.0.0.2:{p2}", f"http://127.0.0.1:{p1}"
    p.port2, p.port1 = p2, p1
    p.log = os.path.join(d, "hits.log")
    t.procs.append(p)
    return p.start()


def start_lying_sumdb(t, faults=None):
    """A relay in front of a real checksum database, lying as told."""
    real = t.start_sumdb(name=DB)
    d = t.mkdtemp("liar")
    port = harness.free_port()
    faults_path = os.path.join(d, "faults.json")
    p = Hostile("liar", [PYTHON, os.path.join(TOOLS, "hostile.py"), "relay",
                         "--listen", f"127.0.0.1:{port}", "--backend", real.url,
                         "--faults", faults_path, "--log", os.path.join(d, "requests.log")],
                os.path.join(d, "output.log"))
    p.url, p.port, p.real = f"http://127.0.0.1:{port}", port, real
    p.log, p.faults = os.path.join(d, "requests.log"), faults_path
    p.set_faults(faults or {})
    t.procs.append(p)
    return p.start()


def one_line(r, status, *wants):
    eq(r.status, status, f"status ({r.text[:200]!r})")
    eq(r.headers.get("Content-Type"), "text/plain; charset=utf-8", "error content type")
    check(r.text.endswith("\n") and r.text.count("\n") == 1,
          f"error body is not one line: {r.text!r}")
    for w in wants:
        check(w in r.text, f"reason {r.text.strip()!r} does not say {w!r}")
    return r.text


def no_hits(secret):
    time.sleep(0.2)  # let a connection that slipped through reach the log
    eq(secret.hits(), [], "what reached the internal service")


def versions(t):
    return t.fx["modules"][MOD]["versions"]


def sumdb_keys(gm):
    return [k for k in gm.stored_keys() if k.startswith("sumdb/")]


# ------------------------------------------------------------ redirects

def test_redirect_to_another_host_is_refused(t):
    """A .mod, .info, .zip or list redirected to an internal host gets
    gomirror nowhere near it: 502, one line, nothing stored."""
    secret = start_secret(t)
    v = versions(t)[0]
    base = f"/{MOD}/@v/{v}"
    up = t.start_upstream(faults={
        base + ".mod": {"location": f"{secret.url2}/latest/meta-data/iam"},
        f"/{MOD}/@v/list": {"location": f"{secret.url2}/list"}})
    gm = t.start_gomirror(upstream=up, negative_ttl=0)
    one_line(gm.get(base + ".mod"), 502,
             f"redirect to http://127.0.0.2:{secret.port2} refused", "upstream_redirect_hosts")
    one_line(gm.get(f"/{MOD}/@v/list"), 502, "refused")
    no_hits(secret)
    eq(gm.stored_keys(), [], "storage")


def test_redirect_to_another_port_of_the_upstream_host_is_refused(t):
    """The upstream's own host is its name and port: 127.0.0.1:<other port>
    is another service on that machine."""
    secret = start_secret(t)
    v = versions(t)[0]
    up = t.start_upstream(faults={
        f"/{MOD}/@v/{v}.info": {"location": f"{secret.url1}/info"}})
    gm = t.start_gomirror(upstream=up, negative_ttl=0)
    one_line(gm.get(f"/{MOD}/@v/{v}.info"), 502,
             f"redirect to http://127.0.0.1:{secret.port1} refused")
    no_hits(secret)
    eq(gm.stored_keys(), [], "storage")


def test_listed_host_on_a_private_address_is_refused(t):
    """A host in upstream_redirect_hosts passes the redirect rule, but its
    address is checked when gomirror connects: a literal 127.0.0.2 and a
    name resolving to loopback (localhost) are refused before connect()."""
    secret = start_secret(t)
    v0, v1 = versions(t)[0], versions(t)[1]
    up = t.start_upstream(faults={
        f"/{MOD}/@v/{v0}.mod": {"location": f"{secret.url2}/m.mod"},
        f"/{MOD}/@v/{v1}.mod": {"location": f"http://localhost:{secret.port1}/m.mod"}})
    gm = t.start_gomirror(upstream=up, negative_ttl=0,
                          upstream_redirect_hosts="127.0.0.2, localhost")
    one_line(gm.get(f"/{MOD}/@v/{v0}.mod"), 502,
             "connecting to 127.0.0.2 (loopback address) refused")
    text = one_line(gm.get(f"/{MOD}/@v/{v1}.mod"), 502, "loopback address) refused")
    check("127.0.0.1" in text or "::1" in text, f"reason names no address: {text!r}")
    no_hits(secret)
    eq(gm.stored_keys(), [], "storage")


def test_redirect_chains_stop_after_ten(t):
    """Ten redirects on the upstream's own host are followed, an eleventh
    is not (the go command's limit)."""
    v0, v1 = versions(t)[0], versions(t)[1]
    real = os.path.join(t.fx["upstream"], MOD, "@v", v0 + ".zip")
    faults = {"/blob": {"body_file": real, "content_type": "application/zip"}}
    for v, hops in ((v0, 10), (v1, 11)):
        chain = [f"/{MOD}/@v/{v}.zip"] + [f"/hop/{v}/{i}" for i in range(1, hops)] + ["/blob"]
        for a, b in zip(chain, chain[1:]):
            faults[a] = {"location": b}
    up = t.start_upstream(faults=faults)
    gm = t.start_gomirror(upstream=up, negative_ttl=0)
    r = gm.get(f"/{MOD}/@v/{v0}.zip")
    eq(r.status, 200, f"10 redirects ({r.text[:200]!r})")
    one_line(gm.get(f"/{MOD}/@v/{v1}.zip"), 502, "more than 10 redirects")
    check(not any(k.endswith(f"{v1}.zip") for k in gm.stored_keys()), "zip after 11 redirects stored")


def test_reused_connection_is_checked_too(t):
    """A connection kept alive from an earlier, allowed fetch is checked
    again before a redirected request uses it. One worker thread, so one
    curl handle: B is asked as the checksum database (its own host: allowed)
    and keeps the connection open; then the upstream A redirects to B on the
    listed host 127.0.0.1, which must be refused although a connection to B
    is already open."""
    v = versions(t)[0]
    b = t.start_upstream()
    a = t.start_upstream(faults={
        f"/{MOD}/@v/{v}.info": {"location": f"{b.url}/{MOD}/@v/{v}.info"}})
    gm = t.start_gomirror(upstream=a.url, sumdb=f"{DB}={b.url}", threads=1,
                          negative_ttl=0, upstream_redirect_hosts="127.0.0.1")
    gm.get(f"/sumdb/{DB}/latest")
    check("/latest" in b.paths(), f"B was not asked for /latest: {b.paths()}")
    one_line(gm.get(f"/{MOD}/@v/{v}.info"), 502, "(loopback address) refused")
    eq([p for p in b.paths() if p.endswith(".info")], [],
       "requests that reached B through A's redirect")


def test_checksum_database_redirect_is_refused(t):
    """The checksum database gets the same rules: its redirect to an
    internal host is a 502 and reaches nothing."""
    secret = start_secret(t)
    v = versions(t)[0]
    lookup = f"/lookup/{MOD}@{v}"
    liar = start_lying_sumdb(t, {lookup: {"location": f"{secret.url2}/lookup"},
                                 "/latest": {"location": f"http://localhost:{secret.port1}/l"}})
    gm = t.start_gomirror(upstream="off", sumdb=f"{DB}={liar.url}",
                          upstream_redirect_hosts="localhost")
    one_line(gm.get(f"/sumdb/{DB}{lookup}"), 502, "refused", "127.0.0.2")
    one_line(gm.get(f"/sumdb/{DB}/latest"), 502, "loopback address) refused")
    no_hits(secret)
    eq(sumdb_keys(gm), [], "stored checksum-database answers")


# ------------------------------------------------------------ a lying checksum database

def test_lookup_without_the_modules_lines(t):
    """A 200 lookup that does not hold the module's go.sum lines is not an
    answer: 502, not stored; once the database answers properly, the real
    answer is fetched (nothing was pinned)."""
    v = versions(t)[0]
    lookup = f"/lookup/{MOD}@{v}"
    liar = start_lying_sumdb(t, {lookup: {"drop_lines": True}})
    gm = t.start_gomirror(upstream="off", sumdb=f"{DB}={liar.url}")
    one_line(gm.get(f"/sumdb/{DB}{lookup}"), 502, DB, f"{MOD}@{v}", "no go.sum lines")
    eq(sumdb_keys(gm), [], "stored checksum-database answers")
    liar.set_faults({})
    r = gm.get(f"/sumdb/{DB}{lookup}")
    eq(r.status, 200, f"lookup once the database is honest ({r.text[:200]!r})")
    check(f"{MOD} {v} h1:".encode() in r.body, f"real lookup lacks the module's line: {r.body!r}")
    eq(liar.paths().count(lookup), 2, "lookups asked of the database")
    eq(sumdb_keys(gm), [f"sumdb/{DB}{lookup}"], "stored checksum-database answers")


def test_unverified_module_is_logged(t):
    """A module fetched while the database's lookup lacks its lines is
    committed unverified, and the log says so, naming module and database."""
    v = versions(t)[1]
    liar = start_lying_sumdb(t, {f"/lookup/{MOD}@{v}": {"drop_lines": True}})
    up = t.start_upstream()
    gm = t.start_gomirror(upstream=up, sumdb=f"{DB}={liar.url}")
    eq(gm.get(f"/{MOD}/@v/{v}.zip").status, 200, "zip status")
    want = f"not verified against {DB}: {MOD}@{v}"
    with open(gm.log, errors="replace") as f:
        log = f.read()
    check(want in log and "warn" in log.split(want)[0].rsplit("\n", 1)[-1],
          f"no warning {want!r} in the log:\n{harness.tail(gm.log, 15)}")


def test_captive_portal_answers(t):
    """An HTML page with status 200 for a lookup or /latest is refused; a
    last good /latest is served instead when there is one."""
    v = versions(t)[0]
    lookup = f"/lookup/{MOD}@{v}"
    portal = {"status": 200, "content_type": "text/html",
              "body": "<html><body><form>Accept the terms to use the Wi-Fi</form></body></html>\n"}
    liar = start_lying_sumdb(t, {lookup: portal, "/latest": portal})
    gm = t.start_gomirror(upstream="off", sumdb=f"{DB}={liar.url}")
    one_line(gm.get(f"/sumdb/{DB}{lookup}"), 502, DB, "not a record")
    one_line(gm.get(f"/sumdb/{DB}/latest"), 502, DB, "latest")
    eq(sumdb_keys(gm), [], "stored checksum-database answers")
    # An honest /latest, then the portal again: the honest one is served.
    liar.set_faults({lookup: portal})
    good = gm.get(f"/sumdb/{DB}/latest")
    eq(good.status, 200, f"/latest from the honest database ({good.text[:200]!r})")
    liar.set_faults({"/latest": portal})
    r = gm.get(f"/sumdb/{DB}/latest")
    eq((r.status, r.body), (200, good.body), "/latest while the portal answers")


def test_note_signed_by_another_database(t):
    """A lookup whose tree note carries no signature by this database (only
    by another name) is refused."""
    v = versions(t)[0]
    lookup = f"/lookup/{MOD}@{v}"
    liar = start_lying_sumdb(t)
    real = harness.http_get(liar.real.url + lookup)
    eq(real.status, 200, "real lookup")
    forged = real.text.replace(f"\u2014 {DB} ", "\u2014 evil.example ")
    check(forged != real.text, f"no signature line to forge in {real.text!r}")
    liar.set_faults({lookup: {"status": 200, "body": forged}})
    gm = t.start_gomirror(upstream="off", sumdb=f"{DB}={liar.url}")
    one_line(gm.get(f"/sumdb/{DB}{lookup}"), 502, "no signature by this database")
    eq(sumdb_keys(gm), [], "stored checksum-database answers")


def test_short_tiles(t):
    """Tiles of the wrong length are neither relayed nor stored: a cut-off
    partial hash tile, a data tile missing its record, a 'full' tile of 100
    bytes; a full tile of the right length is stored."""
    v = versions(t)[0]
    liar = start_lying_sumdb(t)
    gm = t.start_gomirror(upstream="off", sumdb=f"{DB}={liar.url}")
    eq(gm.get(f"/sumdb/{DB}/lookup/{MOD}@{v}").status, 200, "lookup (makes record 0)")
    hash_tile, data_tile, full = "/tile/8/0/000.p/1", "/tile/8/data/000.p/1", "/tile/8/0/001"
    eq(gm.get(f"/sumdb/{DB}{hash_tile}").status, 200, "honest partial tile")
    liar.set_faults({hash_tile: {"truncate": 16}, data_tile: {"drop_records": 1},
                     full: {"status": 200, "body": "x" * 100,
                            "content_type": "application/octet-stream"}})
    one_line(gm.get(f"/sumdb/{DB}{hash_tile}"), 502, DB, "16 bytes, want 32")
    one_line(gm.get(f"/sumdb/{DB}{data_tile}"), 502, "0 records, want 1")
    one_line(gm.get(f"/sumdb/{DB}{full}"), 502, "100 bytes, want 8192")
    liar.set_faults({data_tile: {"truncate": 10}})
    one_line(gm.get(f"/sumdb/{DB}{data_tile}"), 502, "not a data tile")
    check(not any("/tile/" in k for k in sumdb_keys(gm)), f"a tile was stored: {sumdb_keys(gm)}")
    liar.set_faults({full: {"status": 200, "body": "x" * 8192,
                            "content_type": "application/octet-stream"}})
    eq(gm.get(f"/sumdb/{DB}{full}").status, 200, "full tile of the right length")
    check(f"sumdb/{DB}{full}" in sumdb_keys(gm), f"full tile not stored: {sumdb_keys(gm)}")


if __name__ == "__main__":
    harness.main()
