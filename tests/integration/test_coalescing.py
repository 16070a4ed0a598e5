"""Coalescing: many simultaneous requests for one uncached version make
exactly one upstream fetch, and every client gets identical bytes."""

import hashlib
import os
import threading

import harness
from harness import check, eq

MOD = "example.com/hello"


def fire(url, n):
    """n requests released at the same instant; returns [(status, body)]."""
    barrier = threading.Barrier(n)
    results = [None] * n

    def one(i):
        barrier.wait()
        try:
            r = harness.http_get(url, timeout=60)
            results[i] = (r.status, r.body)
        except Exception as e:  # noqa: BLE001
            results[i] = (None, repr(e).encode())

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(90)
    return results


def upstream_zip(t, v):
    p = os.path.join(t.fx["upstream"], t.fx["modules"][MOD]["escaped"], "@v", v + ".zip")
    with open(p, "rb") as f:
        return f.read()


def test_fifty_clients_one_fetch(t):
    v = t.fx["modules"][MOD]["versions"][0]
    # A slow upstream makes sure all 50 requests overlap the one fetch.
    up = t.start_upstream(delay=1)
    gm = t.start_gomirror(upstream=up, threads=64)
    results = fire(f"{gm.url}/{MOD}/@v/{v}.zip", 50)
    want = upstream_zip(t, v)
    statuses = sorted(set(s for s, _ in results), key=str)
    eq(statuses, [200], "statuses")
    digests = set(hashlib.sha256(b).hexdigest() for _, b in results)
    eq(len(digests), 1, "distinct bodies")
    eq(digests.pop(), hashlib.sha256(want).hexdigest(), "body digest vs upstream zip")
    for ext in (".info", ".mod", ".zip"):
        n = up.paths().count(f"/{MOD}/@v/{v}{ext}")
        eq(n, 1, f"upstream requests for {ext}")


def test_fifty_clients_one_failure(t):
    """Waiters share the leader's failure too: one upstream request, 50 x 502."""
    v = t.fx["modules"][MOD]["versions"][1]
    up = t.start_upstream(delay=1, faults={f"/{MOD}/@v/{v}.info": {"status": 500, "body": "x"}})
    gm = t.start_gomirror(upstream=up, threads=64, negative_ttl=0)
    results = fire(f"{gm.url}/{MOD}/@v/{v}.zip", 50)
    eq(sorted(set(s for s, _ in results), key=str), [502], "statuses")
    eq(up.paths().count(f"/{MOD}/@v/{v}.info"), 1, "upstream requests for .info")


def test_fifty_clients_one_list_fetch(t):
    up = t.start_upstream(delay=1)
    gm = t.start_gomirror(upstream=up, threads=64)
    results = fire(f"{gm.url}/{MOD}/@v/list", 50)
    eq(sorted(set(s for s, _ in results), key=str), [200], "statuses")
    eq(len(set(b for _, b in results)), 1, "distinct list bodies")
    eq(up.paths().count(f"/{MOD}/@v/list"), 1, "upstream list requests")
    check(results[0][1].strip(), "list is empty")


if __name__ == "__main__":
    harness.main()
