"""Shared helpers for gomirror's integration tests.

A test script does

    import harness
    def test_something(t): ...          # t is a harness.T
    if __name__ == "__main__":
        harness.main()

and is run as `python3 test_x.py --binary /path/to/gomirror [-k substring] [--keep]`.
Every function named test_* runs in source order and prints "PASS name" or
"FAIL name: reason"; the last line is "N passed, N failed" and the exit
status is non-zero on any failure. A missing tool (go, git) or binary is a
failure, never a skip.

Everything runs offline on 127.0.0.1 with free ports; every process started
here runs in its own process group and is killed at the end of its test, at
exit and on SIGINT/SIGTERM.
"""

import argparse
import atexit
import inspect
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = os.path.join(os.path.dirname(HERE), "tools")
ROOT = os.path.dirname(os.path.dirname(HERE))  # the repository
sys.path.insert(0, TOOLS)
import fixtures  # noqa: E402  (tests/tools/fixtures.py)
from netutil import free_port, port_open  # noqa: E402,F401

PYTHON = sys.executable or "python3"


class Failure(Exception):
    """A test assertion or setup failure with a readable message."""


# ------------------------------------------------------------ assertions

def check(cond, msg):
    if not cond:
        raise Failure(msg)


def eq(got, want, what):
    if got != want:
        raise Failure(f"{what}: got {got!r}, want {want!r}")


# ------------------------------------------------------------ ports, HTTP

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class Response:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    @property
    def text(self):
        return self.body.decode(errors="replace")

    def json(self):
        return json.loads(self.body)


def http_get(url, method="GET", headers=None, timeout=10):
    """One HTTP request without proxies; returns a Response for any status."""
    req = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with _OPENER.open(req, timeout=timeout) as r:
            return Response(r.status, r.headers, r.read())
    except urllib.error.HTTPError as e:
        return Response(e.code, e.headers, e.read())


# ------------------------------------------------------------ processes

_LIVE = set()
_TMPDIRS = []  # removed at exit unless kept


def _stop_all():
    for p in list(_LIVE):
        p.terminate()
    for p in list(_LIVE):
        p.stop(grace=0.25)


def _remove_tmpdirs():
    while _TMPDIRS:
        fixtures.rmtree(_TMPDIRS.pop())


def _on_signal(signum, _frame):
    _stop_all()
    _remove_tmpdirs()
    sys.stderr.write(f"harness: killed by signal {signum}\n")
    os._exit(128 + signum)


atexit.register(_remove_tmpdirs)
atexit.register(_stop_all)  # runs first
for _sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(_sig, _on_signal)


def tail(path, n=30):
    try:
        with open(path, "rb") as f:
            lines = f.read().decode(errors="replace").splitlines()
        return "\n".join(lines[-n:])
    except OSError:
        return ""


class Proc:
    """A background process in its own process group, killed on stop/exit.

    ready_url: wait until GET returns ready_status (any status if None);
    ready_port: wait until the port accepts. The process's stdout and stderr
    go to `output` (a file)."""

    def __init__(self, name, argv, output, env=None, cwd=None, ready_url=None,
                 ready_status=200, ready_port=None, timeout=20):
        self.name, self.argv, self.output = name, [str(a) for a in argv], output
        self.env, self.cwd = env, cwd
        self.ready_url, self.ready_status, self.ready_port = ready_url, ready_status, ready_port
        self.timeout = timeout
        self.popen = None

    def start(self):
        os.makedirs(os.path.dirname(self.output), exist_ok=True)
        with open(self.output, "ab") as out:
            try:
                self.popen = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT,
                                              stdin=subprocess.DEVNULL, env=self.env,
                                              cwd=self.cwd, start_new_session=True)
            except OSError as e:
                raise Failure(f"cannot start {self.name} ({self.argv[0]}): {e}")
        _LIVE.add(self)
        deadline = time.time() + self.timeout
        last = "not tried"
        while True:
            if self.popen.poll() is not None:
                raise Failure(f"{self.name} exited with {self.popen.returncode} before it was "
                              f"ready: {' '.join(self.argv)}\n{tail(self.output)}")
            ok, last = self._ready()
            if ok:
                return self
            if time.time() > deadline:
                self.stop()
                raise Failure(f"{self.name} not ready after {self.timeout}s ({last}): "
                              f"{' '.join(self.argv)}\n{tail(self.output)}")
            time.sleep(0.05)

    def _ready(self):
        if self.ready_url:
            try:
                r = http_get(self.ready_url, timeout=2)
            except OSError as e:
                return False, f"GET {self.ready_url}: {e}"
            if self.ready_status is None or r.status == self.ready_status:
                return True, ""
            return False, f"GET {self.ready_url}: {r.status}"
        if self.ready_port:
            return port_open(self.ready_port), f"port {self.ready_port} closed"
        return True, ""

    def alive(self):
        return self.popen is not None and self.popen.poll() is None

    def stop(self, sig=signal.SIGTERM, grace=3.0):
        p = self.popen
        if p is None:
            return
        if p.poll() is None:
            try:
                os.killpg(p.pid, sig)
            except ProcessLookupError:
                pass
            try:
                p.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        # Always SIGKILL the group: children may outlive the leader.
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            pass
        _LIVE.discard(self)

    def kill(self):
        self.stop(sig=signal.SIGKILL, grace=0)

    def terminate(self):
        """Send SIGTERM to the process group without waiting."""
        if self.alive():
            try:
                os.killpg(self.popen.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def __enter__(self):
        if self.popen is None:
            self.start()
        return self

    def __exit__(self, *exc):
        self.stop()


# ------------------------------------------------------------ servers

class Upstream(Proc):
    """tests/tools/upstream.py over a static layout."""

    def requests(self):
        """The request log as a list of "GET /path" lines."""
        try:
            with open(self.log, encoding="utf-8", errors="surrogateescape") as f:
                return f.read().splitlines()
        except FileNotFoundError:
            return []

    def paths(self, method="GET"):
        return [l.split(" ", 1)[1] for l in self.requests() if l.startswith(method + " ")]

    def set_faults(self, faults):
        """Replace the faults (dict path -> fault); takes effect on the next request."""
        tmp = self.faults + ".tmp"
        with open(tmp, "w") as f:
            json.dump(faults, f)
        os.replace(tmp, self.faults)


class Sumdb(Proc):
    """tests/tools/sumdb: a real checksum database over a static layout."""

    def requests(self):
        try:
            with open(self.log) as f:
                return f.read().splitlines()
        except FileNotFoundError:
            return []

    @property
    def gosumdb(self):
        """GOSUMDB for a client that finds the database through a proxy."""
        return self.key

    @property
    def gosumdb_direct(self):
        return f"{self.key} {self.url}"


class Gomirror(Proc):
    def get(self, path, **kw):
        return http_get(self.url + path, **kw)

    def stored_keys(self):
        """Every key in this gomirror's storage, relative to its root, sorted
        (files under the fs root, or objects under the S3 prefix)."""
        if self.rgw is None:
            out = []
            for dirpath, _dirs, files in os.walk(self.data_dir):
                out += [os.path.relpath(os.path.join(dirpath, f), self.data_dir)
                        for f in files]
            return sorted(out)
        r = self.rgw.aws("s3api", "list-objects-v2", "--bucket", self.rgw.bucket,
                         "--prefix", self.s3_prefix, "--output", "json")
        if r.returncode != 0:
            raise Failure(f"aws s3api list-objects-v2: {r.stderr.strip()}")
        objs = json.loads(r.stdout or "{}").get("Contents", [])
        return sorted(o["Key"][len(self.s3_prefix):] for o in objs)

    def copy_out(self, dest):
        """Copies the whole store into directory dest, key paths kept."""
        if self.rgw is None:
            shutil.copytree(self.data_dir, dest, dirs_exist_ok=True)
            return dest
        r = self.rgw.aws("s3", "cp", "--recursive", "--only-show-errors",
                         f"s3://{self.rgw.bucket}/{self.s3_prefix}", dest)
        if r.returncode != 0:
            raise Failure(f"aws s3 cp --recursive: {r.stderr.strip()}")
        return dest

    def read_key(self, key):
        """The bytes stored under key."""
        if self.rgw is None:
            with open(os.path.join(self.data_dir, key), "rb") as f:
                return f.read()
        out = os.path.join(self.dir, "got-object")
        r = self.rgw.aws("s3api", "get-object", "--bucket", self.rgw.bucket,
                         "--key", self.s3_prefix + key, out)
        if r.returncode != 0:
            raise Failure(f"aws s3api get-object {key}: {r.stderr.strip()}")
        with open(out, "rb") as f:
            return f.read()


class GoGetProxy(Proc):
    pass


class Redis(Proc):
    def cli(self, *args):
        """redis-cli against this server; its stdout."""
        auth = ["-a", self.password, "--no-auth-warning"] if self.password else []
        return subprocess.run(["redis-cli", "-p", str(self.port), *auth, *args],
                              stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=10).stdout.decode()


class HAProxy(Proc):
    pass


class T:
    """What a test function receives: the binary, the fixtures, a private
    temporary directory, and starters whose processes stop with the test."""

    def __init__(self, runner, name):
        self.runner = runner
        self.name = name
        self.binary = runner.binary
        self.fx = runner.fixtures
        self.tmp = os.path.join(runner.tmp, name)
        os.makedirs(self.tmp, exist_ok=True)
        self.procs = []
        self._n = 0

    def path(self, *parts):
        p = os.path.join(self.tmp, *parts)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        return p

    def mkdtemp(self, prefix):
        self._n += 1
        d = os.path.join(self.tmp, f"{prefix}{self._n}")
        os.makedirs(d)
        return d

    def _start(self, proc):
        self.procs.append(proc)
        return proc.start()

    def sanitizer_reports(self):
        """Lines where ASan, LSan or UBSan reported on a gomirror of this
        test (the sanitizer build runs the same suite)."""
        found = []
        for p in self.procs:
            if p.name != "gomirror" or not os.path.exists(p.output):
                continue
            with open(p.output, errors="replace") as f:
                for line in f:
                    if "Sanitizer" in line or "runtime error:" in line:
                        found.append(f"{p.output}: {line.strip()}")
        return found

    def cleanup(self, grace=0.25):
        """SIGTERM every process of the test at once, SIGKILL what is left
        after grace seconds (tests that check graceful shutdown call
        proc.stop(grace=...) themselves)."""
        for p in self.procs:
            p.terminate()
        deadline = time.time() + grace
        for p in self.procs:
            if p.popen is not None:
                try:
                    p.popen.wait(max(0.0, deadline - time.time()))
                except subprocess.TimeoutExpired:
                    pass
        for p in reversed(self.procs):
            p.stop(grace=0)

    # -- servers --------------------------------------------------------

    def start_upstream(self, root=None, faults=None, delay=None):
        """Serve a static layout (default: the fixtures' upstream)."""
        d = self.mkdtemp("upstream")
        port = free_port()
        faults_path = os.path.join(d, "faults.json")
        with open(faults_path, "w") as f:
            json.dump(faults or {}, f)
        argv = [PYTHON, os.path.join(TOOLS, "upstream.py"), "--root", root or self.fx["upstream"],
                "--port", port, "--log", os.path.join(d, "requests.log"), "--faults", faults_path]
        if delay:
            argv += ["--delay", delay]
        p = Upstream("upstream", argv, os.path.join(d, "output.log"), ready_port=port)
        p.url, p.port, p.dir = f"http://127.0.0.1:{port}", port, d
        p.log, p.faults = os.path.join(d, "requests.log"), faults_path
        return self._start(p)

    def start_sumdb(self, root=None, name="sumdb.test", skey=None):
        """The checksum database over a layout (default: the fixtures' upstream)."""
        d = self.mkdtemp("sumdb")
        port = free_port()
        keyfile = os.path.join(d, "vkey")
        argv = [self.fx["sumdb_bin"], "-root", root or self.fx["upstream"],
                "-addr", f"127.0.0.1:{port}", "-name", name, "-keyfile", keyfile,
                "-log", os.path.join(d, "requests.log")]
        if skey:
            argv += ["-skeyfile", skey]
        p = Sumdb("sumdb", argv, os.path.join(d, "output.log"), ready_port=port)
        p.url, p.port, p.dir, p.name = f"http://127.0.0.1:{port}", port, d, name
        p.log = os.path.join(d, "requests.log")
        self._start(p)
        with open(keyfile) as f:
            p.key = f.read().strip()
        return p

    def start_gomirror(self, upstream=None, sumdb=None, data_dir=None, timeout=20,
                       storage=None, s3_prefix=None, port=None, storage_url=None, **keys):
        """gomirror on a free port; waits for /healthz == 200.

        Storage is the script's (--storage fs|s3): fs in a fresh directory, or
        a fresh prefix of the shared RGW bucket. upstream: a URL or GOPROXY
        list (or an Upstream); sumdb: "name=url" (or a Sumdb); other keyword
        arguments become --key=value flags (None drops a default flag);
        storage_url replaces the --storage flag chosen above."""
        d = self.mkdtemp("gomirror")
        port = port or free_port()
        data_dir = data_dir or os.path.join(d, "data")
        if isinstance(upstream, Proc):
            upstream = upstream.url
        proven = isinstance(sumdb, Sumdb)
        if proven:
            sumdb = f"{sumdb.key}={sumdb.url}"  # verifier key: answers are proven
        # drain_delay 0: a test's gomirror stops at once on SIGTERM; the
        # tests of draining set it.
        # sumdb_verify warn: most tests run with no checksum database in
        # reach (sum.golang.org is not, offline); those that start one pass it
        # as a Sumdb and get strict verification against its key.
        flags = {"listen": f"127.0.0.1:{port}", "storage": f"fs://{data_dir}",
                 "log_level": "debug", "drain_delay": 0,
                 "sumdb_verify": "strict" if proven else "warn"}
        rgw_ = None
        prefix = None
        if (storage or self.runner.storage) == "s3":
            rgw_ = self.runner.rgw
            if rgw_ is None:
                raise Failure("s3 storage asked for, but no RGW runs (use --storage s3 "
                              "or NEEDS_RGW = True in the script)")
            prefix = s3_prefix or f"{self.name}/{os.path.basename(d)}/"
            flags.update(storage=f"s3://{rgw_.bucket}/{prefix}", s3_endpoint=rgw_.endpoint,
                         s3_region=rgw_.region, s3_access_key=rgw_.access_key,
                         s3_secret_key=rgw_.secret_key)
            data_dir = None
        if upstream is not None:
            flags["upstream"] = upstream
        if sumdb is not None:
            flags["sumdb"] = sumdb
        flags.update(keys)
        if storage_url:
            flags["storage"] = storage_url
        argv = [self.binary] + [f"--{k}={v}" for k, v in flags.items() if v is not None]
        env = clean_env(os.path.join(d, "home"))
        p = Gomirror("gomirror", argv, os.path.join(d, "gomirror.log"), env=env, cwd=d,
                     ready_url=f"http://127.0.0.1:{port}/healthz", timeout=timeout)
        p.url, p.port, p.dir, p.data_dir = f"http://127.0.0.1:{port}", port, d, data_dir
        p.rgw, p.s3_prefix = rgw_, prefix
        p.log = p.output
        return self._start(p)

    def start_redis(self, port=None, dir=None, password=None):
        """A private redis-server on loopback (no persistence); password
        sets requirepass."""
        if not shutil.which("redis-server"):
            raise Failure("redis-server is not installed (Debian package redis-server)")
        d = dir or self.mkdtemp("redis")
        port = port or free_port()
        argv = ["redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", d, "--daemonize", "no"]
        if password:
            argv += ["--requirepass", password]
        p = Redis("redis", argv, os.path.join(d, "redis.log"), ready_port=port)
        p.port, p.dir, p.password = port, d, password
        p.url = f"redis://{':' + password + '@' if password else ''}127.0.0.1:{port}/0"
        return self._start(p)

    def start_haproxy(self, backends, check_interval_ms=300, tls=None, retries=3):
        """HAProxy in front of gomirror replicas, with deploy/haproxy.cfg's
        health check (/readyz) and retry options, on loopback. tls: a CA
        from tests/tools/tls.py: the frontend then terminates TLS (HTTP/1.1
        and HTTP/2) with its server certificate, as in production.
        retries=0: no retry on a refused or dropped connection, as
        kube-proxy routes to a Service's pods."""
        if not shutil.which("haproxy"):
            raise Failure("haproxy is not installed (Debian package haproxy)")
        d = self.mkdtemp("haproxy")
        port = free_port()
        bind = f"127.0.0.1:{port}"
        if tls:
            bind += f" ssl crt {tls['pem']} alpn h2,http/1.1"
        servers = "".join(f"  server g{i} 127.0.0.1:{b.port} check\n"
                          for i, b in enumerate(backends))
        retry = "  retries 0\n" if not retries else (
            f"  retries {retries}\n  option redispatch 1\n"
            "  retry-on conn-failure empty-response response-timeout\n")
        cfg = os.path.join(d, "haproxy.cfg")
        with open(cfg, "w") as f:
            f.write(f"""global
  maxconn 4096
defaults
  mode http
  timeout connect 2s
  timeout client 10m
  timeout server 10m
  timeout queue 30s
{retry}frontend fe
  bind {bind}
  http-request del-header X-Forwarded-For
  option forwardfor
  default_backend be
backend be
  balance roundrobin
  option httpchk GET /readyz
  http-check expect status 200
  default-server inter {check_interval_ms} fall 2 rise 1
{servers}""")
        p = HAProxy("haproxy", ["haproxy", "-db", "-f", cfg], os.path.join(d, "haproxy.log"),
                    ready_port=port)
        p.port, p.url = port, f"{'https' if tls else 'http'}://127.0.0.1:{port}"
        return self._start(p)

    def start_gogetproxy(self, roots=None, hosts=None, depth=2):
        """The go-get discovery proxy (HTTP_PROXY/HTTPS_PROXY) for the fixtures' hosts."""
        d = self.mkdtemp("gogetproxy")
        port = free_port()
        roots = self.fx["roots"] if roots is None else roots
        hosts = self.fx["hosts"] if hosts is None else hosts
        argv = [PYTHON, os.path.join(TOOLS, "gogetproxy.py"), "--port", port,
                "--roots", ",".join(roots), "--hosts", ",".join(hosts), "--depth", depth,
                "--log", os.path.join(d, "requests.log")]
        p = GoGetProxy("gogetproxy", argv, os.path.join(d, "output.log"), ready_port=port)
        p.url, p.port, p.log = f"http://127.0.0.1:{port}", port, os.path.join(d, "requests.log")
        return self._start(p)

    # -- the go command -------------------------------------------------

    def go_env(self, goproxy, gosumdb="off", **extra):
        """A fresh go environment (new GOPATH and GOMODCACHE) using goproxy;
        go="go1.23" picks the modern client (see GO_CLIENTS)."""
        return go_env(self.mkdtemp("go"), goproxy, gosumdb,
                      gocache=os.path.join(self.runner.tmp, "gocache"), **extra)

    def scratch_module(self, name="example.com/scratch", files=None):
        d = self.mkdtemp("scratch")
        with open(os.path.join(d, "go.mod"), "w") as f:
            f.write(f"module {name}\n\ngo 1.19\n")
        for fn, content in (files or {}).items():
            p = os.path.join(d, fn)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "w") as f:
                f.write(content)
        return d


def clean_env(home):
    """os.environ without proxies, go and git settings, with HOME in the test tree."""
    env = {k: v for k, v in os.environ.items()
           if not k.upper().endswith("_PROXY") and not k.startswith("GO")
           and not k.startswith("GIT_") and k not in ("NETRC",)}
    os.makedirs(home, exist_ok=True)
    env["HOME"] = home
    env["XDG_CONFIG_HOME"] = os.path.join(home, ".config")
    env["XDG_CACHE_HOME"] = os.path.join(home, ".cache")
    return env


# The go clients the suite runs: Debian's Go 1.19 and a modern one (Go 1.23
# from bookworm-backports, installed by deploy/install-deps.sh test).
GO_CLIENTS = {"go1.19": "go", "go1.23": "/usr/lib/go-1.23/bin/go"}


def go_binary(name):
    """The path of a go client of GO_CLIENTS; a Failure when it is missing."""
    b = GO_CLIENTS[name]
    path = shutil.which(b)
    if not path:
        raise Failure(f"{name} client not found ({b}): run deploy/install-deps.sh test")
    return path


def go_env(tmp, goproxy, gosumdb="off", gocache=None, gitconfig=None, go="go1.19", **extra):
    """An environment for the go command rooted in tmp.

    Fresh GOPATH, GOMODCACHE (and GOCACHE unless given), GOFLAGS=-mod=mod,
    no GOPRIVATE/GONOSUMDB/GONOPROXY/GOINSECURE unless passed in extra, no
    network proxies, GOTOOLCHAIN=local, git configured by gitconfig only.
    go names the client of GO_CLIENTS that run_go runs."""
    env = clean_env(os.path.join(tmp, "home"))
    gopath = os.path.join(tmp, "gopath")
    env.update({
        "GOPATH": gopath,
        "GOMODCACHE": os.path.join(gopath, "pkg", "mod"),
        "GOCACHE": gocache or os.path.join(tmp, "gocache"),
        "GOFLAGS": "-mod=mod",
        "GOPROXY": goproxy,
        "GOSUMDB": gosumdb,
        "GOENV": "off",
        "GOWORK": "off",
        "CGO_ENABLED": "0",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": gitconfig or os.devnull,
        "GIT_TERMINAL_PROMPT": "0",
    })
    env["GOTOOLCHAIN"] = "local"  # never download a toolchain (offline)
    if go != "go1.19":
        # Each client version gets its own build cache.
        env["GOCACHE"] = (gocache or os.path.join(tmp, "gocache")) + "-" + go
    for k, v in extra.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = str(v)
    env["_GOTMP"] = tmp  # where run_go keeps its transcripts
    env["_GO"] = go_binary(go)
    return env


class GoResult:
    def __init__(self, args, returncode, out, err, seconds):
        self.args, self.returncode, self.out, self.err = args, returncode, out, err
        self.seconds = seconds

    @property
    def ok(self):
        return self.returncode == 0

    def json_stream(self):
        return parse_json_stream(self.out)

    def __str__(self):
        return (f"go {' '.join(self.args)} -> exit {self.returncode} ({self.seconds:.1f}s)\n"
                f"{self.out[-3000:]}{self.err[-3000:]}")


def run_go(args, env, cwd=None, timeout=120, check=True):
    """Run the go command; raise Failure (with its output) on error if check."""
    cwd = cwd or env.get("_GOTMP") or tempfile.gettempdir()
    t0 = time.time()
    try:
        p = subprocess.run([env.get("_GO", "go"), *args], env=env, cwd=cwd, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=timeout, start_new_session=True)
    except subprocess.TimeoutExpired as e:
        raise Failure(f"go {' '.join(args)} timed out after {timeout}s\n"
                      f"{(e.stdout or b'').decode(errors='replace')[-2000:]}"
                      f"{(e.stderr or b'').decode(errors='replace')[-2000:]}")
    except FileNotFoundError:
        raise Failure("the go command is not installed (need go on PATH)")
    r = GoResult(args, p.returncode, p.stdout.decode(errors="replace"),
                 p.stderr.decode(errors="replace"), time.time() - t0)
    if check and not r.ok:
        raise Failure(str(r))
    return r


def parse_json_stream(text):
    """Concatenated JSON values (go ... -json output) as a list."""
    objs, dec, i = [], json.JSONDecoder(), 0
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            return objs
        obj, i = dec.raw_decode(text, i)
        objs.append(obj)


# ------------------------------------------------------------ runner

class Runner:
    def __init__(self, args):
        self.args = args
        self.binary = os.path.abspath(args.binary) if args.binary else None
        self.tmp = None
        self.fixtures = None
        self.storage = args.storage
        self.rgw = None


def _log(msg):
    print(msg, flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True, help="path to the gomirror binary")
    ap.add_argument("-k", dest="filter", default="", help="run only tests whose name contains this")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--storage", choices=("fs", "s3"), default="fs",
                    help="storage for every gomirror the tests start (s3: a real Ceph RGW)")
    ap.add_argument("--fixtures", help="fixtures cache dir (default $GOMIRROR_FIXTURES or <binary dir>/fixtures)")
    args = ap.parse_args(argv)
    caller = sys.modules["__main__"]
    tests = [(n, f) for n, f in vars(caller).items()
             if n.startswith("test_") and inspect.isfunction(f) and f.__module__ == "__main__"]
    tests.sort(key=lambda nf: nf[1].__code__.co_firstlineno)
    if args.filter:
        tests = [(n, f) for n, f in tests if args.filter in n]

    runner = Runner(args)
    t_start = time.time()
    setup_error = None
    for tool in ("go", "git"):
        if not shutil.which(tool):
            setup_error = f"required tool not found on PATH: {tool}"
    if not setup_error and not (runner.binary and os.access(runner.binary, os.X_OK)):
        setup_error = f"gomirror binary not found or not executable: {args.binary}"
    if not setup_error:
        bindir = os.path.dirname(runner.binary)
        cache = args.fixtures or os.environ.get("GOMIRROR_FIXTURES") or \
            os.path.join(bindir, "fixtures")
        try:
            t0 = time.time()
            runner.fixtures = fixtures.ensure(cache, log=_log)
            _log(f"fixtures: {runner.fixtures['dir']} ({time.time() - t0:.1f}s)")
        except Exception as e:  # noqa: BLE001
            setup_error = f"building fixtures failed: {e}"
    if setup_error:
        for n, _ in tests:
            _log(f"FAIL {n}: {setup_error}")
        _log(f"0 passed, {len(tests)} failed")
        return sys.exit(1)

    runner.tmp = tempfile.mkdtemp(prefix="gomirror-it-")
    if not args.keep:
        _TMPDIRS.append(runner.tmp)  # removed even if the runner dies
    if runner.storage == "s3" or getattr(caller, "NEEDS_RGW", False):
        import rgw  # noqa: E402  (tests/tools/rgw.py)
        try:
            t0 = time.time()
            runner.rgw = rgw.RGW(os.path.join(runner.tmp, "rgw"), log=_log).start()
            atexit.register(runner.rgw.stop)
            _log(f"rgw: {runner.rgw.endpoint} ({time.time() - t0:.1f}s)")
        except Exception as e:  # noqa: BLE001
            for n, _ in tests:
                _log(f"FAIL {n}: starting Ceph RGW failed: {e}")
            _log(f"0 passed, {len(tests)} failed")
            return sys.exit(1)
    passed = failed = 0
    for name, fn in tests:
        t = T(runner, name)
        t0 = time.time()
        try:
            fn(t)
        except Exception as e:  # noqa: BLE001
            failed += 1
            reason = str(e) if isinstance(e, Failure) else \
                f"{type(e).__name__}: {e}\n{traceback.format_exc()}"
            _log(f"FAIL {name}: {reason} ({time.time() - t0:.1f}s)")
            for p in t.procs:
                if p.name == "gomirror":
                    _log(f"--- {p.name} log ({p.output}), last lines:\n{tail(p.output, 25)}")
        else:
            # gomirror exits in milliseconds on SIGTERM; waiting for it lets
            # LeakSanitizer run at exit in the sanitizer build.
            t.cleanup(grace=5)
            reports = t.sanitizer_reports()
            if reports:
                failed += 1
                _log(f"FAIL {name}: sanitizer report:\n" + "\n".join(reports[:20]))
            else:
                passed += 1
                _log(f"PASS {name} ({time.time() - t0:.1f}s)")
        finally:
            t.cleanup()
    _stop_all()
    if runner.rgw is not None:
        runner.rgw.stop()
    if failed or args.keep:
        if runner.tmp in _TMPDIRS:
            _TMPDIRS.remove(runner.tmp)
        _log(f"temporary files kept in {runner.tmp}")
    else:
        _remove_tmpdirs()
    _log(f"total {time.time() - t_start:.1f}s")
    _log(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed or not tests else 0)
