"""gomirror warm and POST /admin/warm: a real project's go.sum warmed into a
fresh store builds with the real go client once the upstream is gone; a
second warm costs no upstream request; failures are named and set the exit
status; the progress bar under a pseudo-terminal; the endpoint's access
rules and JSON summary."""

import base64
import fcntl
import json
import os
import pty
import re
import select
import shutil
import socket
import struct
import subprocess
import termios
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import harness  # noqa: I001  (puts tests/tools on sys.path)
import fixtures
from harness import check, eq, run_go

SUMDB = "sumdb.test"
NOTHERE = "example.com/nothere@v1.0.0"
ADMIN = "warm-admin-token-4c1"


def app_sources():
    req = "".join(f"\t{m} {v}\n" for m, v in fixtures.APP_DEPS)
    main = fixtures.APP_MAIN.replace('"example.com/hello/v2"', 'hello2 "example.com/hello/v2"')
    return {"go.mod": f"module example.com/app\n\ngo 1.19\n\nrequire (\n{req})\n",
            "main.go": main}


def real_go_sum(t):
    """The go.sum the real go command writes for the app, through a
    throwaway gomirror and upstream that are stopped again."""
    up = t.start_upstream()
    gm = t.start_gomirror(upstream=up)
    src = t.scratch_module("example.com/app", app_sources())
    run_go(["build", "-o", os.devnull, "."], t.go_env(gm.url), cwd=src)
    gm.stop()
    up.stop()
    with open(os.path.join(src, "go.sum")) as f:
        return src, f.read()


def versions_of(gosum):
    """{module@version: wants the zip} as the go.sum says."""
    out = {}
    for line in gosum.splitlines():
        m, v, _h = line.split()
        full = not v.endswith("/go.mod")
        v = v.removesuffix("/go.mod")
        out[f"{m}@{v}"] = out.get(f"{m}@{v}", False) or full
    return out


def warm_argv(t, store, up, sdb, *args):
    # The database's verifier key: what warm commits is proven against it.
    return [t.binary, "warm", f"--storage=fs://{store}", f"--upstream={up.url}",
            f"--sumdb={sdb.key}={sdb.url}", "--sumdb_verify=strict", *args]


def run_warm(t, argv, stdin=None, timeout=120):
    env = harness.clean_env(t.mkdtemp("home"))
    p = subprocess.run(argv, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env=env, cwd=t.tmp, timeout=timeout)
    p.out, p.err = p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")
    for line in p.err.splitlines():
        check("Sanitizer" not in line and "runtime error:" not in line,
              f"sanitizer report from gomirror warm: {line}")
    return p


def escaped(mv):
    m, v = mv.split("@")
    return f"{fixtures.escape_path(m)}/@v/{fixtures.escape_path(v)}"


def test_warm_go_sum_then_build_offline(t):
    src, gosum = real_go_sum(t)
    want = versions_of(gosum)
    check(len(want) >= 4 and any(want.values()), f"go.sum of the app: {gosum}")
    sdb = t.start_sumdb(name=SUMDB)
    up = t.start_upstream()
    store = t.mkdtemp("store")
    gosum_path = os.path.join(src, "go.sum")
    r = run_warm(t, warm_argv(t, store, up, sdb, "--jobs", "3", gosum_path))
    eq(r.returncode, 0, f"warm exit status\n{r.out}\n{r.err[-3000:]}")
    lines = r.out.splitlines()
    eq(sorted(l for l in lines if not l.startswith("warm:")),
       sorted(f"ok {mv}" for mv in want), "one ok line per version")
    summary = lines[-1]
    check(summary.startswith(f"warm: {len(want)} versions, {len(want)} committed (0 already), "
                             "0 failed;"), f"summary: {summary}")
    for mv, full in want.items():
        base = os.path.join(store, escaped(mv))
        for ext in (".info", ".mod"):
            check(os.path.exists(base + ext), f"{mv}{ext} not committed")
        eq(os.path.exists(base + ".zip"), full, f"{mv}.zip committed (go.sum wants it: {full})")
    check(sdb.requests(), "warm verified nothing against the checksum database")

    # Already committed: no upstream request, none to the checksum database.
    before_up, before_sdb = len(up.requests()), len(sdb.requests())
    r = run_warm(t, warm_argv(t, store, up, sdb, gosum_path))
    eq(r.returncode, 0, f"second warm\n{r.out}\n{r.err[-2000:]}")
    check(f"{len(want)} committed ({len(want)} already)" in r.out and
          "0 upstream requests" in r.out, f"second summary: {r.out.splitlines()[-1]}")
    eq(up.requests()[before_up:], [], "upstream requests of the second warm")
    eq(len(sdb.requests()), before_sdb, "checksum-database requests of the second warm")

    # The upstream gone: the real go client builds the project from the store.
    up.stop()
    sdb.stop()
    gm = t.start_gomirror(upstream=up, data_dir=store, sumdb=sdb)
    build = t.mkdtemp("build")
    for f in ("go.mod", "go.sum", "main.go"):
        shutil.copy(os.path.join(src, f), build)
    env = t.go_env(gm.url)
    out = os.path.join(t.tmp, "app-bin")
    run_go(["build", "-o", out, "."], env, cwd=build)
    got = subprocess.run([out], stdout=subprocess.PIPE, timeout=30).stdout.decode().split()
    eq(" ".join(got), " ".join(t.fx["app"]["output"]), "the app's output")
    run_go(["mod", "verify"], env, cwd=build)


def test_go_mod_list_stdin_and_failures(t):
    sdb = t.start_sumdb(name=SUMDB)
    up = t.start_upstream()
    store = t.mkdtemp("store")
    hello = t.fx["modules"]["example.com/hello"]
    gomod = os.path.join(t.tmp, "go.mod")
    with open(gomod, "w") as f:
        f.write("module example.com/app\n\ngo 1.19\n\nrequire (\n"
                f"\texample.com/hello {hello['versions'][0]} // indirect\n"
                "\texample.com/Upper/Lib v1.0.1\n)\n"
                "replace example.com/legacy => ../legacy\n")
    # go.mod + a /go.mod-only line on stdin + arguments, one missing.
    gosum_line = (f"example.com/hello {hello['versions'][1]}/go.mod "
                  f"{hello['sums'][hello['versions'][1]]['GoModSum']}\n").encode()
    r = run_warm(t, warm_argv(t, store, up, sdb, gomod, "-", NOTHERE,
                              "example.com/Upper/Lib@v1.0.1"), stdin=gosum_line)
    eq(r.returncode, 1, f"exit status with a missing version\n{r.out}\n{r.err[-2000:]}")
    fails = [l for l in r.out.splitlines() if l.startswith("FAIL ")]
    eq(len(fails), 1, f"FAIL lines: {r.out}")
    check(fails[0].startswith(f"FAIL {NOTHERE}: ") and
          ("404" in fails[0] or "not found" in fails[0].lower()), f"failure line: {fails[0]}")
    oks = sorted(l for l in r.out.splitlines() if l.startswith("ok "))
    eq(oks, sorted([f"ok example.com/hello@{hello['versions'][0]}",
                    f"ok example.com/hello@{hello['versions'][1]}",
                    "ok example.com/Upper/Lib@v1.0.1"]), "ok lines (deduplicated)")
    summary = r.out.splitlines()[-1]
    check(summary.startswith("warm: 4 versions, 3 committed (0 already), 1 failed "
                             f"({NOTHERE})"), f"summary: {summary}")
    modonly = os.path.join(store, "example.com/hello/@v", hello["versions"][1])
    check(os.path.exists(modonly + ".mod") and not os.path.exists(modonly + ".zip"),
          "a /go.mod line fetched more than the .mod")

    # Usage and input errors: exit 2, one line, nothing fetched.
    before = len(up.requests())
    bad = os.path.join(t.tmp, "bad.sum")
    with open(bad, "w") as f:
        f.write("example.com/hello v1.0.0 h1:x=\nexample.com/hello v1.0 h1:y=\n")
    for args, want in (([bad], f"{bad}:2: invalid version \"v1.0\""),
                       (["--jobs", "0", NOTHERE], "--jobs must be a number from 1 to 64"),
                       (["--jobs=65", NOTHERE], "--jobs must be"),
                       ([], "nothing to warm"),
                       ([os.path.join(t.tmp, "missing.sum")], "cannot read"),
                       (["example.com/hello@latest"], "argument:1: invalid version")):
        r = run_warm(t, warm_argv(t, store, up, sdb, *args))
        eq(r.returncode, 2, f"exit status for {args}\n{r.out}{r.err}")
        errs = [l for l in r.err.splitlines() if l.strip()]
        check(len(errs) == 1 and want in errs[0], f"error for {args}: {r.err!r}")
    eq(len(up.requests()), before, "a usage error reached the upstream")
    r = run_warm(t, [t.binary, "warm", "--help"])
    check(r.returncode == 0 and "usage: gomirror warm" in r.out, f"--help: {r.out}{r.err}")


def test_warm_beside_replicas_fetches_once(t):
    """Two warms and a serving replica on one store and one Redis at the same
    time, over a slow upstream: each file leaves the upstream once."""
    redis = t.start_redis()
    up = t.start_upstream(delay=0.4)
    sdb = t.start_sumdb(name=SUMDB)
    store = t.mkdtemp("store")
    gm = t.start_gomirror(upstream=up, sumdb=sdb, data_dir=store, meta=redis.url, threads=32)
    mods = t.fx["modules"]
    want = [(m, v) for m in ("example.com/hello", "example.com/Upper/Lib")
            for v in mods[m]["versions"]]
    lst = os.path.join(t.tmp, "list.txt")
    with open(lst, "w") as f:
        f.write("".join(f"{m}@{v}\n" for m, v in want))
    env = harness.clean_env(t.mkdtemp("home"))
    argv = warm_argv(t, store, up, sdb, "--jobs", "4", f"--meta={redis.url}", lst)
    warms = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                              cwd=t.tmp) for _ in range(2)]
    paths = [f"/{fixtures.escape_path(m)}/@v/{v}.zip" for m, v in want]
    with ThreadPoolExecutor(len(paths)) as pool:
        statuses = list(pool.map(lambda p: gm.get(p, timeout=120).status, paths))
    outs = [w.communicate(timeout=120) for w in warms]
    for w, (out, err) in zip(warms, outs):
        eq(w.returncode, 0, f"a warm beside the replica\n{out.decode()}{err.decode()[-2000:]}")
        check(b"Sanitizer" not in err and b"runtime error:" not in err,
              f"sanitizer report from gomirror warm: {err.decode()[-2000:]}")
    eq(statuses, [200] * len(paths), "the replica's answers")
    got = up.paths()
    for m, v in want:
        for ext in (".info", ".mod", ".zip"):
            path = f"/{fixtures.escape_path(m)}/@v/{v}{ext}"
            eq(got.count(path), 1, f"upstream requests for {path}")


def read_pty(fd, proc, timeout=120):
    out, deadline = b"", time.time() + timeout
    while time.time() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
        elif proc.poll() is not None:
            break
    return out.decode(errors="replace")


def test_progress_bar_on_a_terminal(t):
    sdb = t.start_sumdb(name=SUMDB)
    up = t.start_upstream()
    store = t.mkdtemp("store")
    mods = t.fx["modules"]
    want = [f"example.com/hello@{v}" for v in mods["example.com/hello"]["versions"]]
    want += [f"example.com/Upper/Lib@{v}" for v in mods["example.com/Upper/Lib"]["versions"]]
    lst = os.path.join(t.tmp, "list.txt")
    with open(lst, "w") as f:
        f.write("\n".join(want[:2] + [NOTHERE] + want[2:]) + "\n")
    total = len(want) + 1
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    env = harness.clean_env(t.mkdtemp("home"))
    p = subprocess.Popen(warm_argv(t, store, up, sdb, "--jobs", "2", lst), stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=slave, env=env, cwd=t.tmp)
    os.close(slave)
    try:
        text = read_pty(master, p)
    finally:
        os.close(master)
    stdout = p.stdout.read().decode(errors="replace")
    p.wait(30)
    eq(p.returncode, 1, f"exit status\n{text}")
    eq(stdout, "", "stdout on a terminal")
    check("Sanitizer" not in text and "runtime error:" not in text, f"sanitizer report: {text}")
    # The bar is redrawn in place: carriage return, erase line, bar.
    bars = re.findall(r"\r\x1b\[K(\[[#-]+\] (\d+)/(\d+)  [0-9.]+ (?:B|KiB|MiB)  "
                      r"[0-9.]+ (?:B|KiB|MiB)/s  (?:ETA [0-9:]+|ETA --:--|done)[^\r\n]*)", text)
    check(bars, f"no progress bar in {text!r}")
    check(all(int(b[2]) == total for b in bars), f"totals: {[b[0] for b in bars]}")
    last = bars[-1][0]
    check(f" {total}/{total} " in last and "done" in last and "1 failed" in last and
          last.startswith("[" + "#" * (len(last.split("]")[0]) - 1) + "]"), f"last bar: {last!r}")
    check(all(len(b[0]) < 100 for b in bars), "a bar wider than the terminal")
    # The failure on a line of its own, above the bar; the summary after it.
    rows = [row.split("\x1b[K")[-1] for row in text.replace("\r\n", "\n").split("\n")]
    fail_rows = [row for row in rows if row.startswith(NOTHERE)]
    eq(len(fail_rows), 1, f"failure lines in {rows}")
    check(re.fullmatch(re.escape(NOTHERE) + r": .*(404|not found).*", fail_rows[0], re.I),
          f"failure line: {fail_rows[0]!r}")
    check(any(row.startswith(f"warm: {total} versions, {total - 1} committed") and
              f"1 failed ({NOTHERE})" in row for row in rows), f"summary in {rows}")
    check(not any(" info " in row or "committed example.com" in row for row in rows),
          f"log lines on the terminal: {rows}")


def post(gm, path, body, headers=None, timeout=120):
    req = urllib.request.Request(gm.url + path, data=body, method="POST", headers=headers or {})
    try:
        with harness._OPENER.open(req, timeout=timeout) as r:
            return harness.Response(r.status, r.headers, r.read())
    except urllib.error.HTTPError as e:
        return harness.Response(e.code, e.headers, e.read())


def basic(user, pw):
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()}


def test_admin_warm_endpoint(t):
    d = t.mkdtemp("auth")
    pwfile = os.path.join(d, "htpasswd")
    for i, (user, pw) in enumerate((("alice", "Alice-pw-1"), ("dave", "Dave-pw-2"))):
        p = subprocess.run(["htpasswd", "-b", "-B"] + (["-c"] if i == 0 else []) +
                           [pwfile, user, pw], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        check(p.returncode == 0, f"htpasswd: {p.stdout!r}")
    sdb = t.start_sumdb(name=SUMDB)
    up = t.start_upstream()
    audit = os.path.join(d, "audit.log")
    gm = t.start_gomirror(upstream=up, sumdb=sdb, admin_token=ADMIN, auth_htpasswd=pwfile,
                          auth_admins="dave", audit_log=audit)
    admin = {"Authorization": f"Bearer {ADMIN}"}
    hello = t.fx["modules"]["example.com/hello"]
    v0, v1 = hello["versions"][0], hello["versions"][1]
    body = "".join(f"example.com/hello {v} {hello['sums'][v]['Sum']}\n"
                   f"example.com/hello {v}/go.mod {hello['sums'][v]['GoModSum']}\n"
                   for v in (v0, v1))
    body += "example.com/Upper/Lib v1.0.1/go.mod h1:x=\n"

    r = post(gm, "/admin/warm", body.encode())
    eq(r.status, 401, f"anonymous POST /admin/warm: {r.text}")
    r = post(gm, "/admin/warm", body.encode(), basic("alice", "Alice-pw-1"))
    eq(r.status, 403, f"alice (not an admin): {r.text}")
    check("not an administrator" in r.text, f"403 line: {r.text!r}")
    r = post(gm, "/admin/warm", body.encode(), {"Authorization": "Bearer wrong"})
    eq(r.status, 401, "a wrong admin token")
    eq(up.requests(), [], "a refused warm reached the upstream")
    eq(harness.http_get(gm.url + "/admin/warm", headers=admin).status, 405, "GET /admin/warm")

    r = post(gm, "/admin/warm?jobs=2", body.encode(), admin)
    eq(r.status, 200, f"admin warm: {r.text}")
    eq(r.headers["Content-Type"], "application/json", "content type")
    s = r.json()
    eq({k: s[k] for k in ("total", "committed", "already", "failed")},
       {"total": 3, "committed": 3, "already": 0, "failed": []}, f"summary {s}")
    check(s["bytes"] > 0 and isinstance(s["seconds"], (int, float)), f"summary {s}")
    keys = gm.stored_keys()
    for v in (v0, v1):
        check(f"example.com/hello/@v/{v}.zip" in keys, f"hello {v} zip not committed: {keys}")
    check("example.com/!upper/!lib/@v/v1.0.1.mod" in keys and
          "example.com/!upper/!lib/@v/v1.0.1.zip" not in keys, f"a /go.mod line: {keys}")

    before = len(up.requests())
    r = post(gm, "/admin/warm", body.encode(), basic("dave", "Dave-pw-2"))
    eq(r.status, 200, f"dave (in auth_admins): {r.text}")
    s2 = r.json()
    eq((s2["committed"], s2["already"], s2["bytes"]), (3, 3, s["bytes"]), f"second warm {s2}")
    eq(up.requests()[before:], [], "upstream requests of the second warm")

    r = post(gm, "/admin/warm", f"example.com/hello@{v0}\n{NOTHERE}\n".encode(), admin)
    eq(r.status, 502, f"a missing version: {r.text}")
    s = r.json()
    eq((s["total"], s["committed"], s["already"]), (2, 1, 1), f"summary {s}")
    eq(len(s["failed"]), 1, f"failed {s}")
    f = s["failed"][0]
    eq((f["module"], f["version"]), tuple(NOTHERE.split("@")), "the failed version")
    check("not found" in f["error"].lower() or "404" in f["error"], f"error: {f['error']!r}")

    for path, data, what in (("/admin/warm", b"example.com/hello v1.0.0 h1:x=\nnot a line\n",
                              "body:2: not a go.sum line"),
                             ("/admin/warm", b"example.com/hello v1.0 h1:x=\n",
                              "body:1: invalid version"),
                             ("/admin/warm?jobs=0", b"", "jobs must be a number from 1 to 16"),
                             ("/admin/warm?jobs=17", b"", "jobs must be"),
                             ("/admin/warm?jobs=9999999999999999999999", b"", "jobs must be")):
        r = post(gm, path, data, admin)
        eq(r.status, 400, f"{path} {data!r}: {r.text}")
        check(what in r.text and r.text.count("\n") == 1, f"400 line: {r.text!r}")

    # Over the body cap: refused before the body is read.
    with socket.create_connection(("127.0.0.1", gm.port), timeout=10) as s:
        s.sendall(b"POST /admin/warm HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                  ADMIN.encode() + b"\r\nContent-Length: 16777217\r\n\r\nexample.com/a@v1.0.0\n")
        head = s.recv(4096).decode(errors="replace")
    check(head.startswith("HTTP/1.1 413"), f"over the cap: {head!r}")
    eq(post(gm, "/admin/warm", b"", admin).json()["total"], 0, "an empty body")

    # Admin warms and refusals leave audit lines, with the counts.
    with open(audit) as fh:
        events = [json.loads(l) for l in fh if l.strip()]
    warm_events = [e for e in events if e.get("action") in ("admin_warm", "denied")
                   and e.get("path", "").startswith("/admin/warm")]
    check(any(e.get("status") == 403 for e in warm_events), f"no audited 403: {warm_events}")
    check(any(e.get("status") == 502 and e.get("detail") ==
              "2 versions, 1 committed (1 already), 1 failed" for e in warm_events),
          f"no audited 502 with its counts: {warm_events}")
    check(len(up.requests()) > before, "the missing version never reached the upstream")


if __name__ == "__main__":
    harness.main()
