"""Shared pieces of the benchmark scripts: wrk runs parsed into req/s, p50
and p99, and a module layout with a zip of a chosen size. Benchmarks print
numbers; they assert nothing."""

import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(TOP, "tests", "tools"))
sys.path.insert(0, os.path.join(TOP, "tests", "integration"))
from synthetic import module  # noqa: E402,F401  (tests/tools; re-exported)
from netutil import free_port, port_open  # noqa: E402,F401


def need(tool, package):
    if not any(os.access(os.path.join(d, tool), os.X_OK)
               for d in os.environ.get("PATH", "").split(os.pathsep)):
        sys.exit(f"bench: {tool} not found: apt-get install {package} "
                 f"(or deploy/install-deps.sh bench)")


def _ms(v, unit):
    return float(v) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(url, seconds=10, connections=50, threads=2, headers=(), script=None):
    """Runs wrk --latency (with each "Name: value" of headers, and a Lua
    script if given); returns {"rps", "p50_ms", "p99_ms", "errors"}."""
    hdr = [a for h in headers for a in ("-H", h)]
    if script:
        hdr += ["-s", script]
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s",
                          "--latency", *hdr, url], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, timeout=seconds + 60).stdout
    res = {"rps": 0.0, "p50_ms": None, "p99_ms": None, "errors": 0, "raw": out}
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if m:
        res["rps"] = float(m.group(1))
    for q, key in (("50%", "p50_ms"), ("99%", "p99_ms")):
        m = re.search(rf"^\s+{q}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if m:
            res[key] = _ms(m.group(1), m.group(2))
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if m:
        res["errors"] += int(m.group(1))
    m = re.search(r"Socket errors:.*?(\d+) timeout", out)
    if m:
        res["errors"] += int(m.group(1))
    return res


def row(name, ours, peer, peer_name):
    ratio = ours["rps"] / peer["rps"] if peer["rps"] else float("nan")
    return (f"| {name} | {ours['rps']:.0f} | {ours['p50_ms']:.2f} | {ours['p99_ms']:.2f} | "
            f"{peer['rps']:.0f} | {peer['p50_ms']:.2f} | {peer['p99_ms']:.2f} | {ratio:.2f}x |"
            f" {ours['errors']}/{peer['errors']} |"), \
        (f"| measure | gomirror req/s | p50 ms | p99 ms | {peer_name} req/s | p50 ms | p99 ms |"
         f" gomirror/{peer_name} | errors (ours/peer) |")


# ------------------------------------------------------------------------
# Shared by bench_cached.py, bench_rss.py and bench_graph.py: processes in
# their own process groups, a temporary directory, both removed on any exit
# (normal, exception, SIGINT/SIGTERM/SIGHUP); nginx and gomirror on 127.0.0.1.

import atexit  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402


def need_all(tools):
    """tools: [(tool, debian package)]; exits with one apt-get line naming
    every missing package."""
    missing = [(t, p) for t, p in tools
               if not any(os.access(os.path.join(d, t), os.X_OK)
                          for d in os.environ.get("PATH", "").split(os.pathsep))]
    if missing:
        names = ", ".join(t for t, _ in missing)
        pkgs = " ".join(sorted({p for _, p in missing}))
        sys.exit(f"bench: missing {names}: apt-get install -y {pkgs} "
                 f"(or deploy/install-deps.sh bench)")


def need_binary(path):
    if not os.access(path, os.X_OK):
        sys.exit(f"bench: {path} not found or not executable: build it first "
                 f"(cmake -S {TOP} -B {TOP}/build && cmake --build {TOP}/build -j2)")


def _raise_exit(signum, _frame):
    raise SystemExit(128 + signum)


class Bench:
    """A temporary directory and the processes started in it, all removed by
    close() (also at exit and on SIGINT/SIGTERM/SIGHUP).

        with common.Bench("cached") as b:
            p = b.start("nginx", [...], port=port)
    """

    def __init__(self, name, keep=False):
        self.tmp = tempfile.mkdtemp(prefix=f"gomirror-bench-{name}-")
        os.chmod(self.tmp, 0o755)  # nginx workers may run as another user
        self.keep = keep
        self.procs = []
        self.dirs = []  # more temporary directories (mkdtemp)
        atexit.register(self.close)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, _raise_exit)

    def path(self, *parts):
        return os.path.join(self.tmp, *parts)

    def mkdtemp(self, where):
        """Another temporary directory, under where (e.g. /dev/shm), removed
        with the rest."""
        d = tempfile.mkdtemp(prefix="gomirror-bench-", dir=where)
        self.dirs.append(d)
        return d

    def start(self, name, argv, port=None, env=None, cwd=None, timeout=20):
        """Starts argv in a new session (its own process group), output to
        <tmp>/<name>.log; waits for 127.0.0.1:port when given."""
        log = open(self.path(name + ".log"), "ab")
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                             env=env, cwd=cwd, start_new_session=True)
        log.close()
        p.name = name
        self.procs.append(p)
        if port is not None:
            deadline = time.time() + timeout
            while not port_open(port):
                if p.poll() is not None or time.time() > deadline:
                    with open(self.path(name + ".log"), errors="replace") as f:
                        tail = f.read()[-3000:]
                    raise SystemExit(f"bench: {name} did not start on port {port}:\n{tail}")
                time.sleep(0.02)
        return p

    def stop(self, p, grace=5.0):
        """SIGTERM to p's process group, SIGKILL after grace seconds."""
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                p.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(p.pid, signal.SIGKILL)  # stragglers in the group (nginx workers)
        except (ProcessLookupError, PermissionError):
            pass
        if p.poll() is None:
            p.wait(5)
        if p in self.procs:
            self.procs.remove(p)

    def close(self):
        for p in list(self.procs):
            self.stop(p)
        while self.dirs:
            rmtree(self.dirs.pop())
        if self.tmp and os.path.isdir(self.tmp):
            if self.keep:
                print(f"bench: kept {self.tmp}", file=sys.stderr)
            else:
                rmtree(self.tmp)
        self.tmp = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def rmtree(path):
    """shutil.rmtree that copes with the go module cache's read-only dirs."""
    def onerror(func, p, _exc):
        try:
            os.chmod(os.path.dirname(p), 0o755)
            os.chmod(p, 0o755)
        except OSError:
            pass
        func(p)
    if os.path.lexists(path):
        shutil.rmtree(path, onerror=onerror)


NGINX_CONF = """\
# A tuned static file server: the peer gomirror is compared with.
worker_processes {workers};
worker_rlimit_nofile 65536;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
daemon off;
events {{
    worker_connections 8192;
    multi_accept on;
}}
http {{
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_requests 100000;
    keepalive_timeout 65;
    access_log off;
    server_tokens off;
    open_file_cache max=10000 inactive=60s;
    open_file_cache_valid 60s;
    open_file_cache_min_uses 1;
    open_file_cache_errors on;
    types {{
        application/json info;
        text/plain mod;
        application/zip zip;
    }}
    default_type text/plain;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {{
        listen 127.0.0.1:{port} reuseport;
        root {root};
        location / {{ }}
    }}
}}
"""


def start_nginx(bench, root, port, workers=2, name="nginx"):
    """nginx as a plain foreground process (`nginx -p DIR -c DIR/nginx.conf`)
    serving root on 127.0.0.1:port."""
    d = bench.path(name)
    os.makedirs(d, exist_ok=True)
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write(NGINX_CONF.format(workers=workers, dir=d, port=port, root=root))
    return bench.start(name, ["nginx", "-p", d, "-e", os.path.join(d, "error.log"),
                              "-c", conf], port=port)


def start_gomirror(bench, binary, port, *flags, name="gomirror"):
    """gomirror on 127.0.0.1:port; it stops at once on SIGTERM (drain_delay
    0) unless flags say otherwise."""
    return bench.start(name, [binary, f"--listen=127.0.0.1:{port}", "--drain_delay=0",
                              "--sumdb_verify=warn", *flags],  # no checksum database here
                       port=port)


def http_get(url, timeout=60):
    """(status, body) of one GET without proxies."""
    import urllib.error
    import urllib.request
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def children(pid):
    """Direct children of pid (nginx workers of a master)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        pass
    kids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        kids.append(int(d))
            except (OSError, ValueError, IndexError):
                pass
    return kids


def proc_status_kb(pid, keys=("VmRSS", "VmHWM")):
    """{key: kB} from /proc/<pid>/status; {} when the process is gone."""
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in keys:
                    out[k] = int(v.split()[0])
    except OSError:
        pass
    return out


def wrk_counts(res):
    """Adds requests, non2xx and socket_errors (connect+read+write+timeout)
    parsed from a common.wrk() result's raw output."""
    out = res["raw"]
    m = re.search(r"(\d+) requests in", out)
    res["requests"] = int(m.group(1)) if m else 0
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    res["non2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    res["socket_errors"] = sum(int(x) for x in m.groups()) if m else 0
    return res


def print_table(title, header, rows):
    print(title)
    print()
    print(header)
    print("|---" * (header.count("|") - 1) + "|")
    for r in rows:
        print(r)
    print(flush=True)
