"""Hardening of the go-command fetchers (issue 10, items 2 and 8): go, git
and ssh inherit no descriptor of the server; `direct` never gets the
private-module credentials and never fetches from IP addresses, localhost
or vcs_deny_hosts; requests waiting for a vcs_workers slot are bounded in
time (vcs_queue_timeout) and number (vcs_queue_max).

A go wrapper (go_binary) records the descriptors and environment of every
go command gomirror runs, then execs the real go. Public fixture modules
come over real git smart HTTP (tests/tools/githttp.py) with an empty git
config, as `direct` fetches from a real public host."""

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time

import harness
import private_fixtures
from harness import PYTHON, TOOLS, Proc, check, eq, free_port, run_go

ALPHA = "git.corp.example/team/alpha"
HELLO = "example.com/hello"
SECRET = "Hardening-S3cret-pw"

WRAPPER = r'''#!{python}
# Records what this go command inherited, then becomes the real go.
import json, os, sys
fds = {{}}
for fd in os.listdir("/proc/self/fd"):
    try:
        fds[fd] = os.readlink("/proc/self/fd/" + fd)
    except OSError:
        pass  # listdir's own descriptor, closed by now
gc = os.environ.get("GIT_CONFIG_GLOBAL", "")
try:
    gc_size = os.path.getsize(gc)
except OSError:
    gc_size = -1
rec = {{"argv": sys.argv[1:], "fds": fds, "env": dict(os.environ),
        "gitconfig_size": gc_size}}
fd = os.open({log!r}, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
os.write(fd, (json.dumps(rec) + "\n").encode())
os.close(fd)
os.execv({go!r}, [{go!r}] + sys.argv[1:])
'''


def go_wrapper(t):
    """A go_binary that logs each run; returns (path, function reading the log)."""
    go = shutil.which("go")
    check(go is not None, "the go command is not on PATH")
    path, log = t.path("bin", "go-wrapper"), t.path("go-runs.jsonl")
    with open(path, "w") as f:
        f.write(WRAPPER.format(python=sys.executable, log=log, go=os.path.realpath(go)))
    os.chmod(path, 0o755)

    def runs():
        try:
            with open(log) as f:
                return [json.loads(line) for line in f if line.strip()]
        except FileNotFoundError:
            return []
    return path, runs


def start_githttp(t, http_hosts=("example.com",), hosts=()):
    """tests/tools/githttp.py: go-get proxy plus git smart HTTP over the
    public fixtures' repositories."""
    d = t.mkdtemp("githttp")
    port = free_port()
    argv = [PYTHON, os.path.join(TOOLS, "githttp.py"), "--port", port,
            "--gitdir", t.fx["gitdir"], "--roots", ",".join(t.fx["roots"]),
            "--http-hosts", ",".join(http_hosts), "--hosts", ",".join(hosts),
            "--log", os.path.join(d, "requests.log")]
    p = Proc("githttp", argv, os.path.join(d, "output.log"), ready_port=port)
    p.url, p.log = f"http://127.0.0.1:{port}", os.path.join(d, "requests.log")
    return t._start(p)


def one_line(r, what):
    eq(r.text.count("\n"), 1, f"{what}: one-line reason ({r.text!r})")
    check(r.text.endswith("\n") and len(r.text.strip()) > 10, f"{what}: reason {r.text!r}")


def fetches(runs):
    """The go commands that fetched (everything but `go version`)."""
    return [r for r in runs if r["argv"][:1] != ["version"]]


def test_children_get_no_descriptors_and_direct_no_credentials(t):
    pm = private_fixtures.ensure(t.runner.args.fixtures or os.path.join(
        os.path.dirname(t.binary), "fixtures"), log=None)
    go, runs = go_wrapper(t)
    netrc, key = t.path("netrc"), t.path("ssh_key")
    with open(netrc, "w") as f:
        f.write(f"machine git.corp.example login robot password {SECRET}\n")
    with open(key, "w") as f:
        f.write("not really a key\n")
    os.chmod(key, 0o600)
    # An empty upstream answers 404 over a kept-alive connection, so the
    # fetch falls through to `direct` with that upstream socket open.
    up = t.start_upstream(root=t.mkdtemp("empty"))
    gh = start_githttp(t, hosts=[pm["host"]])
    gm = t.start_gomirror(upstream=f"{up.url},direct", sumdb="", go_binary=go,
                          private=pm["private"], vcs_gitconfig=pm["gitconfig"],
                          vcs_netrc=netrc, vcs_ssh_key=key,
                          vcs_insecure=f"{pm['insecure']},example.com",
                          vcs_http_proxy=gh.url)
    r = gm.get(f"/{HELLO}/@v/v1.1.0.info", timeout=60)
    eq(r.status, 200, f"public module via direct ({r.text!r})")
    check(any(HELLO in p for p in up.paths()), f"upstream not asked first: {up.paths()}")
    r = gm.get(f"/{ALPHA}/@v/v1.0.0.zip", timeout=60)
    eq(r.status, 200, f"private module ({r.text!r})")

    got = fetches(runs())
    direct = [x for x in got if any(a.startswith(HELLO + "@") for a in x["argv"])]
    private = [x for x in got if any(a.startswith(ALPHA + "@") for a in x["argv"])]
    check(direct and private, f"go runs seen: {[x['argv'] for x in got]}")
    for x in runs():
        eq(sorted(x["fds"], key=int), ["0", "1", "2"],
           f"descriptors of `go {' '.join(x['argv'])}` ({x['fds']})")
    for x in private:
        env = x["env"]
        eq(env.get("GIT_CONFIG_GLOBAL"), pm["gitconfig"], "private GIT_CONFIG_GLOBAL")
        check(env.get("NETRC", "").endswith("/.netrc"), f"private NETRC: {env.get('NETRC')}")
        check("ssh_key" in env.get("GIT_SSH_COMMAND", ""),
              f"private GIT_SSH_COMMAND: {env.get('GIT_SSH_COMMAND')}")
    for x in direct:
        env = x["env"]
        for k in ("NETRC", "GIT_SSH_COMMAND"):
            check(k not in env, f"direct child has {k}={env.get(k)}")
        check(env.get("GIT_CONFIG_GLOBAL") not in (None, pm["gitconfig"]),
              f"direct GIT_CONFIG_GLOBAL: {env.get('GIT_CONFIG_GLOBAL')}")
        eq(x["gitconfig_size"], 0, "size of the direct child's git config")
        leaked = [k for k, v in env.items()
                  if SECRET in v or netrc in v or key in v or pm["gitconfig"] in v]
        eq(leaked, [], "direct child variables naming private credentials")
        # What it may keep: GOINSECURE and the proxy (see open_vcs).
        eq(env.get("HTTP_PROXY"), gh.url, "direct HTTP_PROXY")


def test_spool_files_are_close_on_exec(t):
    """A zip on its way from the upstream sits in an unlinked spool file
    opened with O_CLOEXEC (checked in /proc while the upstream is slow)."""
    up = t.start_upstream(faults={f"/{HELLO}/@v/v1.1.0.zip": {"delay": 3}})
    gm = t.start_gomirror(upstream=up, sumdb="")
    res = []
    th = threading.Thread(target=lambda: res.append(gm.get(f"/{HELLO}/@v/v1.1.0.zip",
                                                           timeout=30)))
    th.start()
    pid, found = gm.popen.pid, {}
    deadline = time.time() + 2.5
    while not found and time.time() < deadline:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if "gomirror-zip-" in os.readlink(f"/proc/{pid}/fd/{fd}"):
                    with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                        found[fd] = dict(line.split(":", 1) for line in f.read().splitlines())
            except OSError:
                pass
        time.sleep(0.02)
    th.join(30)
    check(found, "no spool file seen while the upstream was slow")
    for fd, info in found.items():
        check(int(info["flags"].strip(), 8) & os.O_CLOEXEC,
              f"spool file descriptor {fd} lacks O_CLOEXEC (flags {info['flags'].strip()})")
    check(res and res[0].status == 200, "the slow zip was not served")


def hanging_git_server():
    """A listener that accepts and never answers: (port, stop, connections)."""
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(16)
    conns, done = [], threading.Event()

    def accept():
        lsock.settimeout(0.1)
        while not done.is_set():
            try:
                conns.append(lsock.accept()[0])
            except OSError:
                pass

    th = threading.Thread(target=accept, daemon=True)
    th.start()

    def stop():
        done.set()
        th.join(2)
        lsock.close()
        for c in conns:
            c.close()
    return lsock.getsockname()[1], stop, conns


def test_waiting_for_a_worker_is_bounded(t):
    port, stop, conns = hanging_git_server()
    try:
        gitconfig = t.path("hang-gitconfig")
        with open(gitconfig, "w") as f:
            f.write(f'[url "http://127.0.0.1:{port}/"]\n\tinsteadOf = https://git.hang.example/\n')
        gg = t.start_gogetproxy(roots=[], hosts=["git.hang.example"], depth=2)
        gm = t.start_gomirror(upstream="off", private="git.hang.example",
                              vcs_gitconfig=gitconfig, vcs_insecure="git.hang.example",
                              vcs_http_proxy=gg.url, vcs_timeout=25, vcs_workers=1,
                              vcs_queue_timeout=2, vcs_queue_max=1)
        res = {}

        def get(name, path):
            t0 = time.time()
            r = gm.get(path, timeout=40)
            res[name] = (r, time.time() - t0)

        ths = {}

        def start(name, path):
            ths[name] = threading.Thread(target=get, args=(name, path), daemon=True)
            ths[name].start()

        start("a", "/git.hang.example/team/a/@v/v1.0.0.info")
        deadline = time.time() + 15
        while not conns and time.time() < deadline:
            time.sleep(0.05)
        check(conns, "the first fetch never reached the hanging git server")
        start("b", "/git.hang.example/team/b/@v/v1.0.0.info")
        time.sleep(0.5)  # b now waits for the one worker
        start("c", "/git.hang.example/team/c/@v/list")
        ths["c"].join(12)
        check("c" in res, "a request past vcs_queue_max was not answered at once")
        r, took = res["c"]
        eq(r.status, 503, f"past vcs_queue_max ({r.text!r})")
        one_line(r, "past vcs_queue_max")
        check("queue is full" in r.text, f"reason: {r.text!r}")
        check(took < 1.5, f"past vcs_queue_max took {took:.1f}s")
        ths["b"].join(12)
        check("b" in res, "a waiting request was not answered within 12s")
        r, took = res["b"]
        eq(r.status, 503, f"after vcs_queue_timeout ({r.text!r})")
        one_line(r, "after vcs_queue_timeout")
        check("within 2s" in r.text, f"reason: {r.text!r}")
        check(1.8 <= took < 6, f"waited {took:.1f}s with vcs_queue_timeout=2")
        check("a" not in res, "the first fetch ended early; nothing was tested")
        # The hanging host goes away: the first fetch fails, and the slot
        # and the queue are free again.
        stop()
        ths["a"].join(30)
        check("a" in res and res["a"][0].status in (502, 504, 404),
              f"first fetch: {res.get('a') and res['a'][0].text!r}")
        r = gm.get("/git.hang.example/team/d/@v/list", timeout=30)
        check(r.status != 503, f"a fetch after the queue drained: {r.status} {r.text!r}")
    finally:
        stop()


REFUSED = [
    ("127.0.0.1/x", "@v/v1.0.0.info"),
    ("10.1.2.3/x", "@v/list"),
    ("192.168.1.1/x/y", "@latest"),
    ("127.1/x", "@v/v1.0.0.mod"),
    ("0177.0.0.1/x", "@v/v1.0.0.zip"),
    ("foo.localhost/x", "@v/master.info"),
    ("localhost.localdomain/x", "@v/v1.0.0.info"),
    ("git.internal/x", "@v/list"),
    ("evil.example.com/x", "@v/v1.0.0.info"),
    ("git.evil.example.com/x/y", "@latest"),
    ("other.blocked.test/x", "@v/list"),
]


def test_direct_refuses_local_and_denied_hosts(t):
    go, runs = go_wrapper(t)
    gh = start_githttp(t)
    gm = t.start_gomirror(upstream="direct", sumdb="", go_binary=go,
                          vcs_deny_hosts="evil.example.com, *.blocked.test",
                          vcs_insecure="example.com", vcs_http_proxy=gh.url)
    for mod, rest in REFUSED:
        r = gm.get(f"/{mod}/{rest}", timeout=30)
        eq(r.status, 403, f"{mod}/{rest} ({r.text!r})")
        one_line(r, mod)
        check("gomirror does not fetch from" in r.text and "direct" in r.text,
              f"{mod}: reason {r.text!r}")
    eq([x["argv"] for x in fetches(runs())], [], "go commands run for refused hosts")
    # A public module still comes through direct, to the real go client.
    env = t.go_env(gm.url)
    r = run_go(["mod", "download", "-json", f"{HELLO}@v1.1.0"], env)
    got = {d["Path"]: d for d in harness.parse_json_stream(r.out)}
    eq(got[HELLO]["Sum"], t.fx["modules"][HELLO]["sums"]["v1.1.0"]["Sum"], "h1 via direct")
    check(fetches(runs()), "the public module did not go through the go command")


def test_bad_deny_hosts_stop_start_up(t):
    d = t.mkdtemp("bad")
    r = subprocess.run(
        [t.binary, "--listen=127.0.0.1:%d" % free_port(), f"--storage=fs://{d}/data",
         "--upstream=direct", "--vcs_deny_hosts=ok.example,https://evil.example"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30,
        env=harness.clean_env(os.path.join(d, "home")))
    out = r.stdout.decode(errors="replace")
    check(r.returncode != 0, f"gomirror started with a URL in vcs_deny_hosts: {out}")
    check('vcs_deny_hosts: "https://evil.example" is not a host name' in out, out)


if __name__ == "__main__":
    harness.main()
