"""Starting, reconfiguring and checking gomirror as an operator does in
Kubernetes: --check-config as a gate (it rejects what start-up rejects),
environment variables (a misspelt GOMIRROR_* name is refused), secrets from
mounted files, waiting for a store that is not up yet (and not waiting for
one that refused), SIGHUP, --version, and fatal errors in the log's format.
The store that refuses is a real Ceph RGW; the one that comes up late is
tests/tools/s3standin.py."""

import json
import os
import re
import signal
import subprocess
import time

import harness
from harness import check, eq

NEEDS_RGW = True
MOD = "example.com/hello"
STANDIN = os.path.join(harness.TOOLS, "s3standin.py")


def run_binary(t, args, env=None, timeout=20):
    e = harness.clean_env(t.mkdtemp("home"))
    e.update(env or {})
    return subprocess.run([t.binary, *args], env=e, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=timeout, cwd=t.tmp)


def one_line_error(r, what, *words):
    eq(r.returncode, 2, f"{what}: exit status (stdout {r.stdout[:200]!r})")
    err = r.stderr.decode()
    check(err.count("\n") == 1, f"{what}: not one line: {err!r}")
    for w in words:
        check(w in err, f"{what}: {w!r} not in {err!r}")
    return err


def test_check_config_rejects_what_startup_rejects(t):
    """Each of these passed --check-config and then failed start-up."""
    d = t.mkdtemp("cfg")
    missing = os.path.join(d, "missing")
    cases = [
        (["--storage=s3://bucket/", "--s3_endpoint=notaurl"], "s3_endpoint"),
        (["--meta=redis://h:notaport"], "notaport"),
        (["--storage=s3://bucket/", "--s3_endpoint=http://127.0.0.1:1",
          f"--s3_ca_file={missing}"], "s3_ca_file"),
        (["--private=corp.example/*", f"--vcs_netrc={missing}"], "vcs_netrc"),
        (["--private=corp.example/*", f"--go_binary={missing}"], "go_binary"),
        (["--upstream=https://a.example,,direct"], "upstream"),
        ([f"--auth_htpasswd={missing}"], "auth_htpasswd"),
    ]
    for args, word in cases:
        r = run_binary(t, ["--check-config", f"--storage=fs://{d}/data", *args])
        one_line_error(r, f"--check-config {' '.join(args)}", word)
        # ... and start-up says the same.
        r2 = run_binary(t, [f"--storage=fs://{d}/data", f"--listen=127.0.0.1:{harness.free_port()}",
                            "--drain_delay=0", *args])
        eq(r2.returncode, 2, f"start-up with {args}")
        eq(r2.stderr.decode().strip(), r.stderr.decode().strip(),
           f"start-up and --check-config disagree on {args}")
    # --check-config touches nothing: no data directory made, no network.
    check(not os.path.exists(os.path.join(d, "data", "tmp")), "check-config wrote to storage")


def test_check_config_output_reads_back(t):
    d = t.mkdtemp("cfg")
    r = run_binary(t, ["--check-config", f"--storage=fs://{d}/data", "--threads=7",
                       "--private=corp.example/*,other.example", "--upstream=https://a.example|direct",
                       "--admin_token=topsecret-admin", "--meta=redis://:hunter22@127.0.0.1:6379/0"])
    eq(r.returncode, 0, f"check-config: {r.stderr!r}")
    out = r.stdout.decode()
    check("topsecret-admin" not in out and "hunter22" not in out, "a secret printed")
    cfg = os.path.join(d, "gomirror.conf")
    with open(cfg, "w") as f:
        f.write(out)
    r2 = run_binary(t, ["--check-config", f"--config={cfg}"])
    eq(r2.returncode, 0, f"the printed configuration does not load: {r2.stderr!r}")
    got = dict(l.split(" = ", 1) for l in r2.stdout.decode().splitlines()
               if " = " in l and not l.startswith("#"))
    eq(got["threads"], "7", "threads read back")
    eq(got["private"].strip('"'), "corp.example/*,other.example", "private read back")
    eq(got["upstream"].strip('"'), "https://a.example|direct", "upstream read back")
    # Every line but the hidden secrets (comments, so they read back as
    # unset) and the comment naming the file read.
    def shown(text):
        return [l for l in text.splitlines()
                if l.lstrip("# ").split(" =")[0] not in ("meta", "admin_token", "config")]
    eq(shown(r2.stdout.decode()), shown(out), "the configuration read back")


def test_unknown_environment_variable_refused(t):
    r = run_binary(t, ["--check-config"], env={"GOMIRROR_THREDS": "5"})
    one_line_error(r, "GOMIRROR_THREDS", "GOMIRROR_THREDS", "GOMIRROR_THREADS")
    r = run_binary(t, ["--check-config"], env={"GOMIRROR_THREADS": "5"})
    eq(r.returncode, 0, f"a right name: {r.stderr!r}")
    check("threads = 5" in r.stdout.decode(), "GOMIRROR_THREADS not applied")


def test_version(t):
    r = run_binary(t, ["--version"])
    eq(r.returncode, 0, "--version exit")
    out = r.stdout.decode()
    check(out.startswith("gomirror ") and out.count("\n") == 1 and len(out.split()) == 2,
          f"--version: {out!r}")
    r = run_binary(t, ["-V"])
    eq((r.returncode, r.stdout.decode()), (0, out), "-V is --version")


def test_fatal_error_in_json(t):
    r = run_binary(t, ["--log_format=json", "--upstream=ftp://x"])
    eq(r.returncode, 2, "exit")
    lines = r.stderr.decode().splitlines() + r.stdout.decode().splitlines()
    eq(len(lines), 1, f"one line: {lines}")
    rec = json.loads(lines[0])
    eq(rec.get("level"), "error", f"level in {rec}")
    check("upstream" in rec.get("msg", ""), f"message: {rec}")


def test_secrets_from_files(t):
    d = t.mkdtemp("secrets")

    def secret(name, value):
        p = os.path.join(d, name)
        with open(p, "w") as f:
            f.write(value + "\n")  # as `kubectl create secret --from-file` may
        return p

    up = t.start_upstream()
    redis = t.start_redis(password="redis-pw-9f2")
    rgw = t.runner.rgw
    gm = t.start_gomirror(
        upstream=up, storage="fs", meta=f"redis://127.0.0.1:{redis.port}/0",
        redis_password_file=secret("redis", "redis-pw-9f2"),
        admin_token_file=secret("admin", "admin-tok-77aa"))
    v = t.fx["modules"][MOD]["versions"][0]
    eq(gm.get(f"/{MOD}/@v/{v}.info").status, 200, "fetch with Redis behind a password")
    eq(gm.get("/readyz").status, 200, "ready")
    check(any(k.startswith(b"gomirror:") for k in
              redis.cli("--scan").encode().split()), "nothing written to Redis")
    purge = f"{gm.url}/admin/purge?module={MOD}"
    eq(harness.http_get(purge, method="POST",
                        headers={"Authorization": "Bearer admin-tok-77aa"}).status, 200,
       "purge with the admin token from its file")
    eq(harness.http_get(purge, method="POST", headers={"Authorization": "Bearer wrong"}).status,
       401, "purge with a wrong admin token")
    # S3 keys from files, against a store that checks signatures.
    gm2 = t.start_gomirror(
        upstream=up, storage="s3", s3_access_key=None, s3_secret_key=None,
        s3_access_key_file=secret("ak", rgw.access_key),
        s3_secret_key_file=secret("sk", rgw.secret_key))
    eq(gm2.get(f"/{MOD}/@v/{v}.info").status, 200, "fetch with S3 keys from files")
    check(f"{MOD}/@v/{v}.info" in gm2.stored_keys(), "not stored in RGW")
    with open(gm.log) as f:
        log = f.read()
    with open(gm2.log) as f:
        log += f.read()
    for s in ("redis-pw-9f2", "admin-tok-77aa", rgw.secret_key):
        check(s not in log, "a secret from a file reached the log")
    # Both the value and its file: refused, naming both.
    r = run_binary(t, ["--check-config", "--admin_token=x",
                       f"--admin_token_file={secret('a2', 'y')}"])
    one_line_error(r, "admin_token and admin_token_file", "admin_token", "admin_token_file")
    r = run_binary(t, ["--check-config", f"--s3_secret_key_file={d}/nope"])
    one_line_error(r, "missing secret file", "s3_secret_key_file")


def test_sentinel_with_a_password(t):
    """Redis Sentinel that requires the same password as Redis (Bitnami's
    chart default): gomirror authenticates to Sentinel too and is ready, not
    degraded with NOAUTH."""
    pw = "sentinel-pw-4e1"
    redis = t.start_redis(password=pw)
    d = t.mkdtemp("sentinel")
    port = harness.free_port()
    conf = os.path.join(d, "sentinel.conf")
    with open(conf, "w") as f:
        f.write(f"port {port}\nbind 127.0.0.1\ndaemonize no\ndir {d}\n"
                f"requirepass {pw}\n"
                f"sentinel monitor corp 127.0.0.1 {redis.port} 1\n"
                f"sentinel auth-pass corp {pw}\n")
    t._start(harness.Proc("sentinel", ["redis-server", conf, "--sentinel"],
                          os.path.join(d, "sentinel.log"), ready_port=port))
    up = t.start_upstream()
    gm = t.start_gomirror(upstream=up, storage="fs",
                          meta=f"redis-sentinel://127.0.0.1:{port}/corp", redis_password=pw)
    deadline = time.time() + 10
    r = gm.get("/readyz")
    while (r.status != 200 or "degraded" in r.text) and time.time() < deadline:
        time.sleep(0.2)
        r = gm.get("/readyz")
    eq((r.status, "degraded" in r.text), (200, False), f"readyz with Sentinel: {r.text!r}")
    v = t.fx["modules"][MOD]["versions"][0]
    eq(gm.get(f"/{MOD}/@v/{v}.info").status, 200, "fetch through the Sentinel's master")
    check(any(k.startswith(b"gomirror:") for k in redis.cli("--scan").encode().split()),
          "nothing written to the Sentinel's master")

def test_waits_for_storage_that_is_not_up_yet(t):
    port = harness.free_port()
    gm = t.start_gomirror(storage="fs", storage_url="s3://gomirror/w/",
                          s3_endpoint=f"http://127.0.0.1:{port}", s3_region="us-east-1",
                          s3_access_key="k", s3_secret_key="s")
    r = gm.get("/readyz")
    eq(r.status, 503, "readyz while the store is away")
    check("waiting for storage" in r.text, f"readyz body: {r.text!r}")
    eq(gm.get("/healthz").status, 200, "alive meanwhile (no restart by the liveness probe)")
    time.sleep(1)
    check(gm.alive(), "gomirror gave up on a store that is still starting")
    d = t.mkdtemp("s3standin")
    standin = harness.Proc("s3standin", [harness.PYTHON, STANDIN, "--port", port],
                           os.path.join(d, "output.log"), ready_port=port)
    t._start(standin)
    deadline = time.time() + 15
    while gm.get("/readyz").status != 200 and time.time() < deadline:
        time.sleep(0.2)
    eq(gm.get("/readyz").status, 200, "ready once the store answers")
    with open(gm.log) as f:
        log = f.read()
    check("storage is ready after" in log, "no log line when the store came")
    # startup_wait bounds the wait.
    t0 = time.time()
    r = run_binary(t, ["--storage=s3://gomirror/w/", f"--s3_endpoint=http://127.0.0.1:{harness.free_port()}",
                       "--s3_access_key=k", "--s3_secret_key=s", "--startup_wait=2",
                       "--drain_delay=0", f"--listen=127.0.0.1:{harness.free_port()}"])
    eq(r.returncode, 2, "exit after startup_wait")
    check(1.5 < time.time() - t0 < 15, f"gave up after {time.time() - t0:.1f}s")
    check("startup_wait" in r.stderr.decode(), f"error: {r.stderr!r}")


def test_refusing_store_stops_at_once(t):
    rgw = t.runner.rgw
    base = ["--drain_delay=0", f"--s3_endpoint={rgw.endpoint}", f"--s3_region={rgw.region}"]
    for what, args in (
            ("wrong secret", [f"--storage=s3://{rgw.bucket}/x/", f"--s3_access_key={rgw.access_key}",
                              "--s3_secret_key=not-the-secret"]),
            ("missing bucket", ["--storage=s3://no-such-bucket-here/x/",
                                f"--s3_access_key={rgw.access_key}",
                                f"--s3_secret_key={rgw.secret_key}"])):
        t0 = time.time()
        r = run_binary(t, base + args + [f"--listen=127.0.0.1:{harness.free_port()}"])
        eq(r.returncode, 2, f"{what}: exit status")
        check(time.time() - t0 < 5, f"{what}: waited {time.time() - t0:.1f}s")
        err = r.stderr.decode()
        check(err.strip() and "not-the-secret" not in err, f"{what}: {err!r}")


def test_sighup_reopens_and_rereads(t):
    d = t.mkdtemp("hup")
    audit = os.path.join(d, "audit.log")
    up = t.start_upstream()
    gm = t.start_gomirror(upstream=up, audit_log=audit, audit_public="true")
    v = t.fx["modules"][MOD]["versions"][0]
    eq(gm.get(f"/{MOD}/@v/{v}.info").status, 200, "first fetch")
    # logrotate: move the file away, then SIGHUP.
    os.rename(audit, audit + ".1")
    os.kill(gm.popen.pid, signal.SIGHUP)
    deadline = time.time() + 5
    while time.time() < deadline:
        with open(gm.log) as f:
            if "received SIGHUP" in f.read():
                break
        time.sleep(0.05)
    check(gm.alive(), "SIGHUP killed gomirror")
    eq(gm.get(f"/{MOD}/@v/{v}.mod").status, 200, "fetch after SIGHUP")
    deadline = time.time() + 5
    new = ""
    while f"{v}.mod" not in new and time.time() < deadline:
        time.sleep(0.05)
        if os.path.exists(audit):
            with open(audit) as f:
                new = f.read()
    check(os.path.exists(audit), "no new audit file after SIGHUP")
    with open(audit + ".1") as f:
        old = f.read()
    check(f"{v}.mod" in new and f"{v}.mod" not in old, f"the access after SIGHUP went to the "
          f"old file: new={new[:300]!r}")
    with open(gm.log) as f:
        check("received SIGHUP" in f.read(), "SIGHUP not logged")


def help_keys(t):
    r = run_binary(t, ["--help"])
    eq(r.returncode, 0, "--help exit")
    keys = re.findall(r"^\s+--([a-z0-9_-]+)", r.stdout.decode(), re.M)
    check(len(keys) > 50, f"few keys in --help: {keys}")
    return [k for k in keys if k not in ("help", "version", "check-config", "config")]


def test_every_key_is_documented(t):
    """Every key --help lists has a row in the README's configuration table."""
    with open(os.path.join(harness.ROOT, "README.md")) as f:
        readme = f.read()
    rows = [l for l in readme.splitlines() if l.startswith("| `")]
    documented = set()
    for row in rows:
        documented.update(re.findall(r"`([a-z0-9_]+)`", row.split(" | ")[0]))
    missing = [k for k in help_keys(t) if k not in documented]
    check(not missing, f"keys without a README row: {missing}")


if __name__ == "__main__":
    harness.main()
