"""Verifying the public checksum database as the go command does: the real
x/mod checksum database (tests/tools/sumdb) behind a relay the test makes
lie (tests/tools/sumdbrelay.py). An altered lookup, a tile with one flipped
byte, a head signed by another key and a forked log are each refused with
nothing committed, counted, and logged as security events; with the
database stopped, sumdb_verify=strict answers one 502/504 line and commits
nothing, and warn commits with a warning."""

import json
import os
import re
import subprocess

import harness
from harness import check, eq, run_go

NAME = "sumdb.test"
HELLO = "example.com/hello"


class Relay(harness.Proc):
    def set(self, **ctl):
        with open(self.control, "w") as f:
            json.dump(ctl, f)


def start_relay(t, backend):
    d = t.mkdtemp("relay")
    port = harness.free_port()
    control = os.path.join(d, "control.json")
    with open(control, "w") as f:
        json.dump({"backend": backend.url}, f)
    p = Relay("relay", [harness.PYTHON, os.path.join(harness.TOOLS, "sumdbrelay.py"),
                        "--port", port, "--control", control,
                        "--log", os.path.join(d, "requests.log")],
              os.path.join(d, "output.log"), ready_port=port)
    p.url, p.port, p.control = f"http://127.0.0.1:{port}", port, control
    return t._start(p)


def versions(t, module):
    return t.fx["modules"][module]["versions"]


def metric(gm, name):
    text = gm.get("/metrics").text
    m = re.search(r"^%s (\d+)$" % re.escape(name), text, re.M)
    return int(m.group(1)) if m else -1


def log_text(gm):
    with open(gm.log) as f:
        return f.read()


def setup(t, **keys):
    skey = os.path.join(t.mkdtemp("skey"), "skey")
    sdb = t.start_sumdb(name=NAME, skey=skey)
    relay = start_relay(t, sdb)
    up = t.start_upstream()
    gm = t.start_gomirror(upstream=up, sumdb=f"{sdb.key}={relay.url}",
                          **{"sumdb_verify": "strict", "negative_ttl": 0, **keys})
    return sdb, relay, up, gm, skey


def committed(gm, module, version):
    return f"{module}/@v/{version}.info" in gm.stored_keys()


def test_honest_database_verified(t):
    sdb, relay, up, gm, _ = setup(t)
    v = versions(t, HELLO)[0]
    eq(gm.get(f"/{HELLO}/@v/{v}.info").status, 200, "a verified version")
    check(committed(gm, HELLO, v), "not committed")
    check(metric(gm, "gomirror_sumdb_verified_total") >= 1, "nothing counted as verified")
    eq(metric(gm, "gomirror_sumdb_refused_total"), 0, "refusals with an honest database")
    check("not verified" not in log_text(gm), "a warning with an honest database")
    # The real go client, through gomirror only, with GOSUMDB on.
    env = t.go_env(gm.url, gosumdb=sdb.key, GONOSUMDB=None, GOPRIVATE=None, GOINSECURE=None)
    r = run_go(["mod", "download", "-json", f"{HELLO}@{versions(t, HELLO)[1]}"], env)
    check('"Error"' not in r.out, f"go mod download: {r.out}")
    eq(gm.get(f"/sumdb/{NAME}/latest").status, 200, "latest relayed")
    check(f"sumdb/{NAME}/verified-head" in gm.stored_keys(), "no verified head kept")


def test_altered_lookup_refused(t):
    sdb, relay, up, gm, _ = setup(t)
    relay.set(backend=sdb.url, alter_lookup=True)
    v = versions(t, HELLO)[0]
    r = gm.get(f"/{HELLO}/@v/{v}.info")
    eq(r.status, 502, f"an altered lookup: {r.text!r}")
    check(r.text.count("\n") == 1 and "not committed" in r.text, f"reason: {r.text!r}")
    check(not committed(gm, HELLO, v), "committed against an altered lookup")
    r = gm.get(f"/sumdb/{NAME}/lookup/{HELLO}@{v}")
    eq(r.status, 502, "the altered lookup relayed")
    check(not any(k.startswith(f"sumdb/{NAME}/lookup/") for k in gm.stored_keys()),
          "the altered lookup was cached")
    check(metric(gm, "gomirror_sumdb_refused_total") >= 2, "refusals not counted")
    check("SECURITY: checksum database" in log_text(gm), "no security line in the log")
    # The honest answer afterwards is accepted.
    relay.set(backend=sdb.url)
    eq(gm.get(f"/{HELLO}/@v/{v}.info").status, 200, "the honest lookup afterwards")


def test_flipped_tile_refused(t):
    sdb, relay, up, gm, _ = setup(t)
    # Grow the log first so that proofs need tiles, then lie about them.
    for v in versions(t, HELLO)[1:]:
        eq(harness.http_get(f"{sdb.url}/lookup/{HELLO}@{v}").status, 200, "grow the log")
    relay.set(backend=sdb.url, flip_tile=True)
    v = versions(t, HELLO)[0]
    r = gm.get(f"/{HELLO}/@v/{v}.info")
    eq(r.status, 502, f"a flipped tile: {r.text!r}")
    check("inconsistent tile" in r.text or "not the signed tree" in r.text, f"reason: {r.text!r}")
    check(not committed(gm, HELLO, v), "committed through a flipped tile")
    r = gm.get(f"/sumdb/{NAME}/tile/8/0/000.p/3")
    check(r.status in (502, 404), f"a flipped tile relayed: {r.status}")
    check(not any("/tile/" in k for k in gm.stored_keys()), "a flipped tile was cached")
    relay.set(backend=sdb.url)
    eq(gm.get(f"/{HELLO}/@v/{v}.info").status, 200, "honest tiles afterwards")
    eq(gm.get(f"/sumdb/{NAME}/tile/8/0/000.p/3").status, 200, "an honest tile relayed")


def test_head_signed_by_another_key_refused(t):
    sdb, relay, up, gm, _ = setup(t)
    other = t.start_sumdb(name=NAME)  # same name and records, another key
    relay.set(backend=other.url)
    v = versions(t, HELLO)[0]
    r = gm.get(f"/{HELLO}/@v/{v}.info")
    eq(r.status, 502, f"a lookup signed by another key: {r.text!r}")
    check("no signature by" in r.text, f"reason: {r.text!r}")
    check(not committed(gm, HELLO, v), "committed against another key's note")
    eq(gm.get(f"/sumdb/{NAME}/latest").status, 502, "another key's /latest relayed")


def test_forked_log_refused(t):
    sdb, relay, up, gm, skey = setup(t)
    hv = versions(t, HELLO)
    # gomirror verifies two records of A's log, in this order.
    for v in hv[:2]:
        eq(gm.get(f"/{HELLO}/@v/{v}.info").status, 200, f"{v} through A")
    # B: the same key, the same records in the other order: another tree.
    fork = t.start_sumdb(name=NAME, skey=skey)
    eq(fork.key, sdb.key, "the fork signs with the same key")
    for v in reversed(hv[:2]):
        eq(harness.http_get(f"{fork.url}/lookup/{HELLO}@{v}").status, 200, "B's records")
    relay.set(backend=fork.url)
    legacy = versions(t, "example.com/legacy")[0]
    r = gm.get(f"/example.com/legacy/@v/{legacy}.info")
    eq(r.status, 502, f"a lookup from a forked log: {r.text!r}")
    check("forked" in r.text, f"reason: {r.text!r}")
    check(not committed(gm, "example.com/legacy", legacy), "committed from a forked log")
    check(metric(gm, "gomirror_sumdb_forks_total") >= 1, "the fork was not counted")
    eq(gm.get(f"/sumdb/{NAME}/latest").status, 200,
       "latest while forked: the last verified head")
    # A's head is still the verified one: A keeps working.
    relay.set(backend=sdb.url)
    eq(gm.get(f"/example.com/legacy/@v/{legacy}.info").status, 200, "back on A")


def test_unreachable_database_strict_and_warn(t):
    sdb, relay, up, gm, _ = setup(t)
    sdb.stop()
    v = versions(t, HELLO)[0]
    r = gm.get(f"/{HELLO}/@v/{v}.info")
    check(r.status in (502, 504), f"strict with the database down: {r.status}")
    check(r.text.count("\n") == 1 and "sumdb_verify=strict" in r.text, f"reason: {r.text!r}")
    check(not committed(gm, HELLO, v), "committed unverified in strict mode")
    warn = t.start_gomirror(upstream=up, sumdb=f"{sdb.key}={relay.url}", sumdb_verify="warn")
    eq(warn.get(f"/{HELLO}/@v/{v}.info").status, 200, "warn commits")
    check(committed(warn, HELLO, v), "warn did not commit")
    check("not verified against" in log_text(warn), "warn gave no warning")


def test_strict_needs_a_key(t):
    p = subprocess.run([t.binary, "--check-config", "--sumdb=sumdb.test=http://127.0.0.1:9",
                        "--sumdb_verify=strict"], capture_output=True, text=True, timeout=30)
    check(p.returncode != 0, "strict without a verifier key was accepted")
    check("no verifier key" in p.stderr and p.stderr.count("\n") == 1, f"error: {p.stderr!r}")
    p = subprocess.run([t.binary, "--check-config", "--sumdb_verify=strict"],
                       capture_output=True, text=True, timeout=30)
    eq(p.returncode, 0, f"the default (sum.golang.org with its key) under strict: {p.stderr}")


if __name__ == "__main__":
    harness.main()
