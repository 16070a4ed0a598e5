"""Private modules: gomirror fetches git.corp.example/... straight from git
(local bare repositories behind the go-get trick) with the real go command,
serves them to the real go client with GOSUMDB on and only GONOSUMDB set,
and never lets a private path reach the (spy) upstream proxy or checksum
database. Also credentials, a hanging git server, the worker cap, a moved
tag, and `direct` in the upstream chain for public modules."""

import json
import os
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import harness
import private_fixtures
from harness import check, eq, run_go

ALPHA = "git.corp.example/team/alpha"
BETA2 = "git.corp.example/team/beta/v2"
LEGACY = "git.corp.example/team/legacy"
HELLO = "example.com/hello"


def pfx(t):
    return private_fixtures.ensure(t.runner.args.fixtures or os.path.join(
        os.path.dirname(t.binary), "fixtures"), log=None)


def setup(t, pm=None, **keys):
    """Spy upstream and sumdb (public fixtures), the go-get proxy for
    git.corp.example, and gomirror with private=git.corp.example."""
    pm = pm or pfx(t)
    up = t.start_upstream()
    sdb = t.start_sumdb(name="sumdb.test")
    gg = t.start_gogetproxy(roots=[], hosts=[pm["host"]], depth=2)
    flags = dict(private=pm["private"], vcs_gitconfig=pm["gitconfig"],
                 vcs_insecure=pm["insecure"], vcs_http_proxy=gg.url)
    flags.update(keys)
    gm = t.start_gomirror(upstream=up, sumdb=f"sumdb.test={sdb.url}", **flags)
    return pm, up, sdb, gm


def client_env(t, gm, sdb, gonosumdb="git.corp.example"):
    """What a developer sets: GOPROXY, GOSUMDB on (found through gomirror),
    and the private pattern in GONOSUMDB; no GOPRIVATE, no GONOPROXY."""
    return t.go_env(gm.url, gosumdb=sdb.key, GONOSUMDB=gonosumdb, GOPRIVATE=None,
                    GONOPROXY=None, GOINSECURE=None)


def assert_no_leak(up, sdb):
    seen = [p for p in up.requests() + sdb.requests() if "corp.example" in p]
    eq(seen, [], "private paths seen by the public upstream or checksum database")


def download(env, *queries):
    r = run_go(["mod", "download", "-json", *queries], env)
    return {(d["Path"], d["Version"]): d for d in harness.parse_json_stream(r.out)}


def test_fetch_and_build_with_public_modules(t):
    pm, up, sdb, gm = setup(t)
    env = client_env(t, gm, sdb)
    src = t.scratch_module("example.com/app2", {
        "main.go": ('package main\n\nimport (\n\t"fmt"\n\n\t"example.com/hello"\n'
                    '\talpha "git.corp.example/team/alpha"\n'
                    '\tbeta "git.corp.example/team/beta/v2"\n'
                    '\t_ "git.corp.example/team/legacy"\n)\n\n'
                    'func main() { fmt.Println(hello.Hello(), alpha.Version, beta.Version) }\n'),
    })
    run_go(["get", f"{ALPHA}@v1.1.0", f"{BETA2}@v2.0.0", f"{LEGACY}@v2.0.0+incompatible",
            f"{HELLO}@v1.1.0"], env, cwd=src)
    out = os.path.join(t.tmp, "app2")
    run_go(["build", "-o", out, "."], env, cwd=src)
    got = subprocess.run([out], stdout=subprocess.PIPE, timeout=30).stdout.decode()
    check("v1.1.0" in got and "v2.0.0" in got, f"app output: {got!r}")
    with open(os.path.join(src, "go.sum")) as f:
        gosum = f.read()
    check(f"{ALPHA} v1.1.0 h1:" in gosum, f"go.sum: {gosum}")
    keys = gm.stored_keys()
    for k in (f"{ALPHA}/@v/v1.1.0.zip", f"{BETA2}/@v/v2.0.0.info",
              f"{LEGACY}/@v/v2.0.0+incompatible.mod"):
        check(k in keys, f"{k} not stored: {keys}")
    # The public module was verified through the spy checksum database.
    check(any("lookup/example.com/hello@" in p for p in sdb.requests()),
          f"no public lookup: {sdb.requests()}")
    assert_no_leak(up, sdb)


def test_queries_resolve_to_canonical_versions(t):
    pm, up, sdb, gm = setup(t)
    env = client_env(t, gm, sdb)
    a = pm["modules"][ALPHA]
    got = download(env, f"{ALPHA}@master", f"{ALPHA}@{a['commits']['feature'][:12]}",
                   f"{ALPHA}@latest")
    versions = sorted(v for _, v in got)
    eq(versions, sorted({a["pseudo"]["master"], a["pseudo"]["feature"], "v1.1.0"}),
       "versions resolved from master, a commit and latest")
    r = run_go(["list", "-m", "-versions", ALPHA], env)
    eq(r.out.split()[1:], a["versions"], "tags listed")
    eq(gm.get(f"/{ALPHA}/@v/list").text.split(), a["versions"], "list endpoint")
    info = json.loads(gm.get(f"/{ALPHA}/@v/master.info").body)
    eq(info["Version"], a["pseudo"]["master"], "@v/master.info")
    eq(json.loads(gm.get(f"/{ALPHA}/@latest").body)["Version"], "v1.1.0", "@latest")
    got = download(env, f"{LEGACY}@v2.0.0+incompatible", f"{BETA2}@v2.0.0")
    check((LEGACY, "v2.0.0+incompatible") in got and (BETA2, "v2.0.0") in got, f"{got}")
    assert_no_leak(up, sdb)


def test_forgotten_gonosumdb_gets_a_clear_error(t):
    pm, up, sdb, gm = setup(t)
    env = client_env(t, gm, sdb, gonosumdb=None)
    r = run_go(["mod", "download", "-json", f"{ALPHA}@v1.0.0"], env, check=False)
    check(not r.ok, "download without GONOSUMDB succeeded")
    text = r.out + r.err
    check("GONOSUMDB" in text and "git.corp.example" in text,
          f"the go command did not show gomirror's hint: {text[-1500:]}")
    resp = gm.get(f"/sumdb/sumdb.test/lookup/{ALPHA}@v1.0.0")
    eq(resp.status, 403, "private lookup status")
    eq(resp.text.count("\n"), 1, "one-line reason")
    assert_no_leak(up, sdb)


def test_wrong_credentials(t):
    hits = []

    class Deny(BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *a):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Deny)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        port = srv.server_address[1]
        gitconfig = t.path("secret-gitconfig")
        with open(gitconfig, "w") as f:
            f.write(f'[url "http://127.0.0.1:{port}/"]\n\tinsteadOf = https://git.secret.example/\n')
        netrc = t.path("netrc")
        with open(netrc, "w") as f:
            f.write("machine 127.0.0.1 login bob password hunter2-sekrit\n")
        up = t.start_upstream()
        gg = t.start_gogetproxy(roots=[], hosts=["git.secret.example"], depth=2)
        gm = t.start_gomirror(upstream=up, private="git.secret.example",
                              vcs_gitconfig=gitconfig, vcs_netrc=netrc,
                              vcs_insecure="git.secret.example", vcs_http_proxy=gg.url)
        for _ in range(2):
            r = gm.get("/git.secret.example/team/x/@v/v1.0.0.info", timeout=120)
            check(r.status in (502, 404), f"status {r.status}: {r.text!r}")
            eq(r.text.count("\n"), 1, f"one-line reason: {r.text!r}")
            check("hunter2" not in r.text, f"secret in the reason: {r.text!r}")
        check(len(hits) >= 2, f"git server was asked {len(hits)} times (nothing cached)")
        with open(gm.log) as f:
            check("hunter2" not in f.read(), "secret in gomirror's log")
        eq(gm.stored_keys(), [], "stored after a credentials failure")
        eq([p for p in up.requests() if "secret" in p], [], "private path sent upstream")
    finally:
        srv.shutdown()


def test_hanging_git_times_out(t):
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(16)
    conns = []
    stop = threading.Event()

    def accept():
        lsock.settimeout(0.2)
        while not stop.is_set():
            try:
                conns.append(lsock.accept()[0])  # and never answer
            except OSError:
                pass

    th = threading.Thread(target=accept, daemon=True)
    th.start()
    try:
        gitconfig = t.path("hang-gitconfig")
        with open(gitconfig, "w") as f:
            f.write(f'[url "http://127.0.0.1:{lsock.getsockname()[1]}/"]\n'
                    f'\tinsteadOf = https://git.hang.example/\n')
        gg = t.start_gogetproxy(roots=[], hosts=["git.hang.example"], depth=2)
        gm = t.start_gomirror(upstream="off", private="git.hang.example",
                              vcs_gitconfig=gitconfig, vcs_insecure="git.hang.example",
                              vcs_http_proxy=gg.url, vcs_timeout=3)
        t0 = time.time()
        r = gm.get("/git.hang.example/team/x/@v/v1.0.0.info", timeout=60)
        took = time.time() - t0
        eq(r.status, 504, f"status ({r.text!r})")
        check("timed out" in r.text, f"reason: {r.text!r}")
        check(took < 15, f"took {took:.1f}s with vcs_timeout=3")
    finally:
        stop.set()
        th.join(2)
        for c in conns:
            c.close()
        lsock.close()


def go_children(pid):
    n = 0
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                st = f.read()
        except OSError:
            continue
        comm = st[st.index("(") + 1:st.rindex(")")]
        ppid = int(st[st.rindex(")") + 2:].split()[1])
        if ppid == pid and comm == "go":
            n += 1
    return n


def test_twenty_concurrent_fetches_stay_within_the_cap(t):
    pm, up, sdb, gm = setup(t, vcs_workers=2, threads=64, negative_ttl=0)
    peak = [0]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], go_children(gm.popen.pid))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    results = []
    lock = threading.Lock()

    def one(i):
        r = gm.get(f"/git.corp.example/team/nope{i}/@v/list", timeout=120)
        with lock:
            results.append(r.status)

    ths = [threading.Thread(target=one, args=(i,)) for i in range(20)]
    t0 = time.time()
    for th in ths:
        th.start()
    for th in ths:
        th.join(180)
    done.set()
    sampler.join()
    eq(sorted(set(results)), [404], "statuses for 20 unknown private modules")
    check(1 <= peak[0] <= 2, f"peak go processes {peak[0]} (cap 2)")
    harness._log(f"  20 fetches in {time.time() - t0:.1f}s, at most {peak[0]} go at once")
    assert_no_leak(up, sdb)


def test_moved_tag_keeps_the_first_content(t):
    pm = private_fixtures.copy_gitdir(pfx(t), t.mkdtemp("gitcopy"))
    pm, up, sdb, gm = setup(t, pm=pm, list_ttl=0)
    first = gm.get(f"/{ALPHA}/@v/v1.1.0.zip")
    eq(first.status, 200, "first zip")
    private_fixtures.move_tag(pm["repos"]["alpha"], "v1.1.0")
    again = gm.get(f"/{ALPHA}/@v/v1.1.0.zip")
    eq(again.body, first.body, "zip after the tag moved")
    latest = gm.get(f"/{ALPHA}/@latest", timeout=120)
    eq(latest.status, 200, f"@latest ({latest.text!r})")
    eq(json.loads(latest.body)["Version"], "v1.1.0", "@latest version")
    eq(gm.get(f"/{ALPHA}/@v/v1.1.0.zip").body, first.body, "zip after @latest")
    with open(gm.log) as f:
        log = f.read()
    check("no longer matches" in log, "the moved tag was not logged")
    # A fresh client still verifies against what it first recorded.
    env = client_env(t, gm, sdb)
    got = download(env, f"{ALPHA}@v1.1.0")
    check((ALPHA, "v1.1.0") in got, f"{got}")
    assert_no_leak(up, sdb)


def test_direct_in_the_upstream_chain(t):
    """Public modules come from version control when the chain says direct.
    `direct` gets none of the private credentials (vcs_gitconfig included),
    so the fixtures' git repositories are served over smart HTTP here."""
    port = harness.free_port()
    t._start(harness.Proc("githttp", [harness.PYTHON, os.path.join(harness.TOOLS, "githttp.py"),
                                      "--port", port, "--gitdir", t.fx["gitdir"],
                                      "--roots", ",".join(t.fx["roots"]),
                                      "--http-hosts", "example.com"],
                          t.path("githttp.log"), ready_port=port))
    gm = t.start_gomirror(upstream="direct", vcs_insecure="example.com",
                          vcs_http_proxy=f"http://127.0.0.1:{port}", sumdb="")
    env = t.go_env(gm.url)
    got = download(env, f"{HELLO}@v1.1.0", "example.com/Upper/Lib@v1.0.1")
    for (m, v), d in got.items():
        eq(d["Sum"], t.fx["modules"][m]["sums"][v]["Sum"], f"h1 of {m}@{v} via direct")
    eq(gm.get(f"/{HELLO}/@v/list").text.split()[:2], ["v1.0.0", "v1.1.0"], "list via direct")


if __name__ == "__main__":
    harness.main()
