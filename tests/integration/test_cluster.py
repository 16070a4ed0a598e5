"""The scaled-out shape with real processes on loopback: three gomirror
replicas behind HAProxy (health-checking /readyz), Redis for metadata, locks
and counters, Ceph RGW as the shared store, and a static upstream whose log
counts every fetch."""

import hashlib
import json
import os
import random
import signal
import threading
import time
import zipfile

import harness
from harness import check, eq

NEEDS_RGW = True
ADMIN = "s3cret-admin-token"


def make_layout(t, module, versions, payload=200_000):
    """A layout with `versions` of module, each zip with distinct content."""
    root = t.mkdtemp("layout")
    d = os.path.join(root, module, "@v")
    os.makedirs(d)
    for v in versions:
        with open(os.path.join(d, v + ".info"), "w") as f:
            json.dump({"Version": v, "Time": "2024-01-02T03:04:05Z"}, f)
        with open(os.path.join(d, v + ".mod"), "w") as f:
            f.write(f"module {module}\n")
        with zipfile.ZipFile(os.path.join(d, v + ".zip"), "w") as z:
            z.writestr(f"{module}@{v}/go.mod", f"module {module}\n")
            z.writestr(f"{module}@{v}/data.txt", (v * (payload // len(v))).encode())
    with open(os.path.join(d, "list"), "w") as f:
        f.write("\n".join(versions) + "\n")
    return root


def cluster(t, root, delay=None, n=3, retries=3, **keys):
    up = t.start_upstream(root=root, delay=delay)
    redis = t.start_redis()
    prefix = f"{t.name}/shared/"
    reps = [t.start_gomirror(upstream=up, storage="s3", s3_prefix=prefix, meta=redis.url,
                             admin_token=ADMIN, threads=128, **keys) for _ in range(n)]
    lb = t.start_haproxy(reps, retries=retries)
    wait_backends_up(lb, reps)
    return up, redis, reps, lb


def wait_backends_up(lb, reps, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if all(harness.http_get(r.url + "/readyz").status == 200 for r in reps):
            time.sleep(0.7)  # two health checks at 300 ms
            return
        time.sleep(0.1)
    raise harness.Failure("replicas not ready")


def sha(b):
    return hashlib.sha256(b).hexdigest()


def file_sha(root, module, v, ext=".zip"):
    with open(os.path.join(root, module, "@v", v + ext), "rb") as f:
        return sha(f.read())


def fire(urls, timeout=120):
    """One thread per URL, released together; returns [(status, body)]."""
    barrier = threading.Barrier(len(urls))
    out = [None] * len(urls)

    def one(i):
        barrier.wait()
        try:
            r = harness.http_get(urls[i], timeout=timeout)
            out[i] = (r.status, r.body)
        except Exception as e:  # noqa: BLE001
            out[i] = (None, repr(e).encode())

    ths = [threading.Thread(target=one, args=(i,)) for i in range(len(urls))]
    for th in ths:
        th.start()
    for th in ths:
        th.join(timeout + 30)
    return out


def test_storm_one_fetch_per_version(t):
    mod = "example.com/storm"
    versions = [f"v1.0.{i}" for i in range(20)]
    root = make_layout(t, mod, versions)
    up, _redis, _reps, lb = cluster(t, root, delay=0.5)
    urls = [f"{lb.url}/{mod}/@v/{versions[i % 20]}.zip" for i in range(500)]
    results = fire(urls)
    bad = [(u, s, b[:120]) for u, (s, b) in zip(urls, results) if s != 200]
    check(not bad, f"{len(bad)} of 500 failed, e.g. {bad[:3]}")
    for u, (_s, body) in zip(urls, results):
        v = u.rsplit("/", 1)[1][:-4]
        if sha(body) != file_sha(root, mod, v):
            raise harness.Failure(f"wrong bytes for {v}")
    paths = up.paths()
    for v in versions:
        for ext in (".info", ".mod", ".zip"):
            eq(paths.count(f"/{mod}/@v/{v}{ext}"), 1, f"upstream fetches of {v}{ext}")


def test_lock_holder_killed(t):
    mod = "example.com/slow"
    root = make_layout(t, mod, ["v1.0.0"])
    up, redis, reps, lb = cluster(t, root, delay=2, lock_ttl=3)
    path = f"/{mod}/@v/v1.0.0.zip"
    holder = reps[0]
    first = {}
    th = threading.Thread(target=lambda: first.update(
        r=_try(lambda: harness.http_get(holder.url + path, timeout=60))))
    th.start()
    deadline = time.time() + 10
    while not any("v1.0.0+zip" in k for k in redis.cli("--scan").split()) \
            and time.time() < deadline:
        time.sleep(0.05)
    check(time.time() < deadline, f"no lock appeared in Redis: {redis.cli('--scan')}")
    # Clients through HAProxy wait on the lock held by replica 0 ...
    results = {}
    clients = [threading.Thread(target=lambda i=i: results.update(
        {i: _try(lambda: harness.http_get(lb.url + path, timeout=90))})) for i in range(12)]
    for c in clients:
        c.start()
    time.sleep(0.5)
    # ... which dies mid-fetch.
    os.kill(holder.popen.pid, signal.SIGKILL)
    for c in clients:
        c.join(120)
    th.join(60)
    want = file_sha(root, mod, "v1.0.0")
    for i, r in results.items():
        check(r is not None and r.status == 200, f"client {i}: {r and (r.status, r.text[:200])}")
        eq(sha(r.body), want, f"client {i} bytes")
    keys = reps[1].stored_keys()
    check(f"{mod}/@v/v1.0.0.info" in keys, f"not committed: {keys}")
    for k in keys:
        if k.endswith(".info"):
            check(k[:-5] + ".mod" in keys, f"{k} without .mod")
    check(up.paths().count(path) >= 1, "upstream never asked for the zip")


def _try(fn):
    try:
        return fn()
    except Exception:  # noqa: BLE001
        return None


def test_redis_killed_under_load(t):
    mod = "example.com/load"
    versions = [f"v1.0.{i}" for i in range(6)]
    root = make_layout(t, mod, versions)
    up, redis, reps, lb = cluster(t, root)
    for v in versions[:4]:
        for ext in (".info", ".mod", ".zip"):
            eq(harness.http_get(f"{lb.url}/{mod}/@v/{v}{ext}").status, 200, f"warm {v}{ext}")
    stop = threading.Event()
    failures, done = [], [0]
    lock = threading.Lock()

    def load(k):
        i = 0
        while not stop.is_set():
            v = versions[(i + k) % 4]
            ext = (".info", ".mod", ".zip")[i % 3]
            try:
                r = harness.http_get(f"{lb.url}/{mod}/@v/{v}{ext}", timeout=30)
                ok = r.status == 200
            except Exception as e:  # noqa: BLE001
                ok, r = False, e
            with lock:
                done[0] += 1
                if not ok:
                    failures.append(f"{v}{ext}: {getattr(r, 'status', r)}")
            i += 1

    ths = [threading.Thread(target=load, args=(k,)) for k in range(16)]
    for th in ths:
        th.start()
    time.sleep(1.5)
    redis_port, redis_dir = redis.port, redis.dir
    redis.kill()
    time.sleep(3)
    ready = harness.http_get(reps[0].url + "/readyz")
    stop.set()
    for th in ths:
        th.join(60)
    eq(failures, [], f"failed requests for cached artifacts ({done[0]} made)")
    check(done[0] > 100, f"too little load: {done[0]} requests")
    eq(ready.status, 200, "readyz with Redis down")
    check("degraded" in ready.text, f"readyz body: {ready.text!r}")
    # Redis comes back: locks (one fetch across replicas) and counters resume.
    redis2 = t.start_redis(port=redis_port, dir=redis_dir)
    time.sleep(1.5)
    results = fire([f"{lb.url}/{mod}/@v/{versions[4]}.zip"] * 30)
    eq(sorted(set(s for s, _ in results), key=str), [200], "statuses after Redis returns")
    eq(up.paths().count(f"/{mod}/@v/{versions[4]}.zip"), 1, "fetches with Redis back")
    time.sleep(1.5)
    stats = json.loads(harness.http_get(reps[1].url + "/stats").body)
    check(stats["meta_available"], f"stats: {stats}")
    check(stats["hits"] + stats["misses"] >= 30, f"counters did not resume: {stats}")
    check(redis2.alive(), "redis died")


def test_stats_counts_match(t):
    mod = "example.com/counted"
    versions = [f"v1.0.{i}" for i in range(3)]
    root = make_layout(t, mod, versions)
    up, _redis, reps, lb = cluster(t, root)
    made = 0
    for v in versions:  # 3 misses (each fetches .info, .mod, .zip)
        eq(harness.http_get(f"{lb.url}/{mod}/@v/{v}.zip").status, 200, "miss")
        made += 1
    for i in range(30):  # 30 hits spread over the replicas
        eq(harness.http_get(f"{lb.url}/{mod}/@v/{versions[i % 3]}.info").status, 200, "hit")
        made += 1
    time.sleep(1.5)  # every replica flushes its counters every 0.5 s
    stats = json.loads(harness.http_get(reps[2].url + "/stats").body)
    eq(stats["misses"], 3, f"misses in {stats}")
    eq(stats["hits"], 30, f"hits in {stats}")
    eq(stats["upstream_fetches"], len(up.paths()), f"upstream fetches in {stats}")
    eq(stats["errors"], 0, "errors")
    eq(stats["top_today"][0], {"module": mod, "hits": made}, "top module")
    check(abs(stats["hit_ratio"] - 30 / 33) < 1e-6, f"hit ratio {stats['hit_ratio']}")


def test_purge_clears_every_replica(t):
    mod = "example.com/purged"
    root = make_layout(t, mod, ["v1.0.0"])
    up, _redis, reps, lb = cluster(t, root)
    for r in reps:
        for ext in (".info", ".mod", ".zip"):
            eq(r.get(f"/{mod}/@v/v1.0.0{ext}").status, 200, f"warm {ext} on {r.port}")
    held = [json.loads(r.get("/stats").body)["replica"]["hot_cache_bytes"] for r in reps]
    check(all(h > 0 for h in held), f"hot caches not warm: {held}")
    # Without the token: refused.
    import urllib.request
    req = urllib.request.Request(f"{reps[0].url}/admin/purge?module={mod}", method="POST",
                                 data=b"")
    try:
        urllib.request.urlopen(req, timeout=10)
        raise harness.Failure("purge without a token was accepted")
    except urllib.error.HTTPError as e:
        eq(e.code, 401, "purge without a token")
    req = urllib.request.Request(f"{reps[0].url}/admin/purge", method="POST",
                                 data=f"module={mod}".encode(),
                                 headers={"Authorization": f"Bearer {ADMIN}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        out = json.loads(resp.read())
    check(out["broadcast"], f"purge answer: {out}")
    deadline = time.time() + 5
    while time.time() < deadline:
        held = [json.loads(r.get("/stats").body)["replica"]["hot_cache_bytes"] for r in reps]
        if all(h == 0 for h in held):
            break
        time.sleep(0.1)
    eq(held, [0, 0, 0], "hot-cache bytes on each replica after one purge")
    eq(reps[2].get(f"/{mod}/@v/v1.0.0.zip").status, 200, "served again after purge")



def test_rolling_restart_loses_nothing(t):
    """A rolling update as Kubernetes does it: each replica in turn gets
    SIGTERM (readyz turns 503, HAProxy's health check takes it out within
    drain_delay, in-flight requests finish) and a new one starts on its port,
    while clients fetch without pause through HAProxy. Nothing may fail and
    every body must be right, cache hits and upstream misses alike."""
    mod = "example.com/rollout"
    versions = [f"v1.0.{i}" for i in range(40)]
    root = make_layout(t, mod, versions, payload=100_000)
    keys = dict(drain_delay=2, drain_timeout=20)
    # No retries in HAProxy: kube-proxy does not retry either, so only
    # draining keeps a request from reaching a replica that is gone.
    up, redis, reps, lb = cluster(t, root, delay=0.2, retries=0, **keys)
    want = {(v, ext): file_sha(root, mod, v, ext) for v in versions
            for ext in (".info", ".mod", ".zip")}
    stop = threading.Event()
    lock = threading.Lock()
    done, failures = [0], []

    def client(seed):
        rnd = random.Random(seed)
        while not stop.is_set():
            v = rnd.choice(versions)
            ext = rnd.choice((".info", ".mod", ".zip", ".zip"))
            try:
                r = harness.http_get(f"{lb.url}/{mod}/@v/{v}{ext}", timeout=30)
                bad = None if r.status == 200 and sha(r.body) == want[(v, ext)] else \
                    f"{v}{ext}: {r.status} {r.body[:100]!r}"
            except Exception as e:  # noqa: BLE001
                bad = f"{v}{ext}: {e!r}"
            with lock:
                done[0] += 1
                if bad:
                    failures.append(bad)

    ths = [threading.Thread(target=client, args=(i,)) for i in range(6)]
    for th in ths:
        th.start()
    try:
        time.sleep(1)
        for i, old in enumerate(list(reps)):
            before = done[0]
            old.terminate()
            code = old.popen.wait(30)
            eq(code, 0, f"replica {i} exit status after SIGTERM")
            with open(old.log) as f:
                log = f.read()
            check("draining" in log, f"replica {i} logged no drain")
            new = t.start_gomirror(upstream=up, storage="s3", s3_prefix=old.s3_prefix,
                                   meta=redis.url, admin_token=ADMIN, threads=128,
                                   port=old.port, **keys)
            reps[i] = new
            wait_backends_up(lb, reps)
            check(done[0] > before, f"no request completed while replica {i} restarted")
        time.sleep(1)
    finally:
        stop.set()
        for th in ths:
            th.join(60)
    check(done[0] >= 100, f"only {done[0]} requests made")
    check(not failures, f"{len(failures)} of {done[0]} requests failed: {failures[:5]}")
    harness._log(f"rolling restart: {done[0]} requests, 0 failed")


if __name__ == "__main__":
    harness.main()
