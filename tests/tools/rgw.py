#!/usr/bin/env python3
"""A real single-node Ceph RADOS Gateway (Ceph 16) on loopback, for gomirror's tests.

    import rgw
    with rgw.RGW(workdir) as g:          # start(): mon + memstore OSD + radosgw, ~1 s
        g.endpoint                       # "http://127.0.0.1:PORT"
        g.region                         # "us-east-1": the SigV4 region (see REGION)
        g.access_key, g.secret_key, g.bucket      # user and bucket already created
        g.aws("s3api", "list-objects-v2", "--bucket", g.bucket)   # Debian's /usr/bin/aws
        g.keys("prefix/"), g.get(key), g.put(key, data), g.s3("GET", "/bucket/key")
        g.stop_gateway(); g.start_gateway()   # only radosgw, same port, data kept
    # stop(): radosgw, OSD, monitor, in that order; leftovers SIGKILLed

    python3 rgw.py selftest [--keep]      # checks a gateway with the real aws cli and curl
    python3 rgw.py run [--workdir DIR]    # start one, print its endpoint, wait for ^C

Python 3 standard library only, and nothing is installed: a missing binary
raises RGWError naming its Debian package (tests fail, never skip). Built on
TESTING.md ("S3-compatible servers"), with these differences:

- messenger v1 only (`ms bind msgr2 = false`, a v1 address in the monmap),
  auth none, pool size 1, one `memstore` OSD, radosgw with beast: as there;
- no ceph-mgr: radosgw creates its pools and serves S3 without one (`ceph
  -s` even says HEALTH_OK), but mgr commands (`ceph osd df`, `ceph df`) hang;
- no `ceph osd new`: `ceph-mon --mkfs --osdmap` gets an initial OSD map from
  `osdmaptool --createsimple 1` that already holds osd.0 in its CRUSH map,
  and the OSD runs with `osd crush/class update on start = false`. With auth
  none the OSD's first monitor command can leave before it has the monmap,
  and the monitor then rejects it ("wrong fsid", fsid 0) and the OSD exits:
  about one start in six failed that way with `ceph osd new` + crush update;
- `paxos propose interval = 0.02` (default 1 s): each of the pools radosgw
  creates costs a map epoch; start went from ~1.8 s to ~0.8 s (12 s in
  TESTING.md).

Every daemon runs in the foreground (-f) under Popen in a session of its own,
so its real PID is known and waited on (pid files vanish before exit). A
watchdog process SIGKILLs every process group started here if this Python
process dies without stopping them (SIGKILL, os._exit in a signal handler).
All state, logs (workdir/log), sockets and the private ceph.conf live under
workdir; /etc/ceph and /var/lib/ceph are not touched. Only 127.0.0.1 is
listened on: the monitor and radosgw on free ports chosen at start, the OSD
on the first free ports from 6800 up (it skips busy ones, so several
clusters can run at once).

Memory: ~35 MB monitor + ~50 MB OSD + ~50 MB radosgw at start; the OSD then
holds about twice the bytes stored through radosgw (a 200 MiB zip costs
~400 MB) until the objects are deleted and garbage-collected (GC wait 60 s
here). `memstore device bytes` (device_bytes, 2 GiB) is only the capacity it
reports, not an allocation. Past it the OSD stops taking writes and PUTs
hang (they do not fail): keep device_bytes well above what a test stores.
"""

import atexit
import datetime
import hashlib
import hmac
import http.client
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from netutil import free_port, port_open  # noqa: E402,F401

# SigV4 region. The zonegroup is "default" (GetBucketLocation answers
# "default"), but RGW (Pacific) does not compare the credential-scope region
# with it: it recomputes the signature with whatever region the client put in
# the scope, so "us-east-1", "default" and "eu-west-9" all verify (the selftest
# checks it) and `aws s3api create-bucket` works with either. "us-east-1" is
# what S3 clients assume when none is configured.
REGION = "us-east-1"

# binary -> Debian package
BINARIES = {
    "ceph-mon": "ceph-mon",
    "ceph-osd": "ceph-osd",
    "radosgw": "radosgw",
    "radosgw-admin": "ceph-common",
    "monmaptool": "ceph-base",
    "osdmaptool": "ceph-base",
    "ceph-authtool": "ceph-common",
    "ceph": "ceph-common",
}
AWS = "/usr/bin/aws"  # Debian's awscli, not whatever `aws` is first on PATH

CONF = """\
# Written by tests/tools/rgw.py; every path is under the work directory.
[global]
fsid = {fsid}
# messenger v1 only: a v2 address on a non-default port makes clients hang
mon host = v1:127.0.0.1:{mon_port}
mon initial members = a
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind msgr2 = false
ms bind ipv6 = false
# a taken port fails at once (start() picks new ports) instead of 3 x 5 s
ms bind retry count = 1
auth cluster required = none
auth service required = none
auth client required = none
auth allow insecure global id reclaim = true
mon warn on insecure global id reclaim allowed = false
keyring = {w}/keyring
run dir = {w}/run
admin socket = {w}/run/$cluster-$name.asok
pid file = {w}/run/$cluster-$name.pid
log file = {w}/log/$cluster-$name.log
log to stderr = false
err to stderr = true
crash dir = {w}/crash
debug ms = 0
mon cluster log file = {w}/log/$cluster.log
mon cluster log to file = true
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0
# each pool radosgw creates at start is a new OSD map epoch: propose fast
paxos propose interval = 0.02
paxos min wait = 0.01
mon data = {w}/mon/$cluster-$id
osd data = {w}/osd/$cluster-$id
osd objectstore = memstore
memstore device bytes = {device_bytes}
osd max object name len = 460
osd max object namespace len = 64
# osd.0 is in the initial CRUSH map already (osdmaptool --createsimple); these
# monitor commands at boot can race the monmap with auth none ("wrong fsid")
osd crush update on start = false
osd class update on start = false
rgw data = {w}/rgw/$cluster-$id
# free the tails of overwritten/deleted objects after a minute, not two hours
rgw gc obj min wait = 60
rgw gc processor period = 30

[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:{rgw_port} tcp_nodelay=1
rgw thread pool size = {rgw_threads}
log file = {w}/log/$cluster-$name.log
"""


class RGWError(Exception):
    """The gateway (or one of its daemons) could not be started or used."""


def _bin(name):
    """Debian's binary (/usr/bin first, then PATH), or None."""
    if os.access("/usr/bin/" + name, os.X_OK):
        return "/usr/bin/" + name
    return shutil.which(name)


def missing_binaries(names=BINARIES):
    """The (binary, Debian package) pairs that are not installed."""
    return [(b, BINARIES.get(b, b)) for b in names if not _bin(b)]


def _tail(path, n=25):
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 16384))
            return "\n".join(f.read().decode(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


# ------------------------------------------------------------ SigV4 (stdlib)

def _q(s, safe="-_.~"):
    return urllib.parse.quote(s, safe=safe)


def _canonical(path, query):
    """(canonical URI, canonical query) of a raw (unencoded) path and a query dict.

    S3 style: every byte but unreserved ones and "/" percent-encoded once, so
    "!", "+", "@", "~" in module paths become %21, %2B, %40 and stay "~"."""
    cquery = "&".join(f"{_q(k)}={_q(v)}" for k, v in sorted((query or {}).items()))
    return _q(path or "/", safe="-_.~/"), cquery


def sign_v4(method, host, path, query, access_key, secret_key, region, headers=None,
            payload=b"", service="s3", now=None):
    """The headers (a new dict) of a request signed with AWS Signature Version 4.

    host: "127.0.0.1:PORT"; path: raw, e.g. "/bucket/example.com/!a/@v/list";
    query: a dict; payload: the body (bytes) or a literal hash such as
    "UNSIGNED-PAYLOAD". x-amz-content-sha256 is always sent (RGW wants it)."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    amzdate = now.strftime("%Y%m%dT%H%M%SZ")
    day = amzdate[:8]
    cpath, cquery = _canonical(path, query)
    phash = payload if isinstance(payload, str) else hashlib.sha256(payload).hexdigest()
    h = {k.lower(): " ".join(str(v).split()) for k, v in (headers or {}).items()}
    h["host"] = host
    h["x-amz-date"] = amzdate
    h["x-amz-content-sha256"] = phash
    names = sorted(h)
    creq = "\n".join([method, cpath, cquery, "".join(f"{k}:{h[k]}\n" for k in names),
                      ";".join(names), phash])
    scope = f"{day}/{region}/{service}/aws4_request"
    sts = "\n".join(["AWS4-HMAC-SHA256", amzdate, scope,
                     hashlib.sha256(creq.encode()).hexdigest()])
    k = ("AWS4" + secret_key).encode()
    for part in (day, region, service, "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    sig = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
    h["authorization"] = (f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, "
                          f"SignedHeaders={';'.join(names)}, Signature={sig}")
    return h


def request(method, endpoint, path, query=None, access_key=None, secret_key=None,
            region=REGION, body=b"", headers=None, timeout=30):
    """One HTTP request to endpoint ("http://127.0.0.1:PORT"), signed if
    access_key is given; path is raw (not percent-encoded). No proxies.
    Returns (status, headers dict with lower-case names, body bytes)."""
    u = urllib.parse.urlsplit(endpoint)
    h = dict(headers or {})
    if access_key is not None:
        h = sign_v4(method, u.netloc, path, query, access_key, secret_key, region, h, body)
    cpath, cquery = _canonical(path, query)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        c.request(method, cpath + ("?" + cquery if cquery else ""), body=body, headers=h)
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


# ------------------------------------------------------------ daemons

_INSTANCES = set()
_LOCK = threading.Lock()

# A watchdog process (one per Python process, in its own session) holds the
# read end of a pipe and the list of process groups started here; when this
# process dies in any way (SIGKILL, os._exit from a signal handler, a crash)
# the pipe reaches EOF and the watchdog SIGKILLs the groups left, so no Ceph
# daemon outlives its test run. Unlike PR_SET_PDEATHSIG this follows the
# process, not the thread that happened to start the daemon.
_WATCHDOG_SRC = r"""
import os, signal, sys
groups = set()
def reap(*_):
    for g in groups:
        try:
            os.killpg(g, signal.SIGKILL)
        except OSError:
            pass
    os._exit(0)
signal.signal(signal.SIGTERM, reap)
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGHUP, signal.SIG_IGN)
for line in sys.stdin.buffer:
    line = line.strip()
    if line[:1] == b"+":
        groups.add(int(line[1:]))
    elif line[:1] == b"-":
        groups.discard(int(line[1:]))
reap()
"""
_watchdog = None


def _watch(pgid, add=True):
    """Tell the watchdog about a process group started (add) or gone."""
    global _watchdog
    with _LOCK:
        try:
            if _watchdog is None or _watchdog.poll() is not None:
                if not add:
                    return
                _watchdog = subprocess.Popen(
                    [sys.executable or "python3", "-I", "-S", "-c", _WATCHDOG_SRC],
                    stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True)
            _watchdog.stdin.write(b"%s%d\n" % (b"+" if add else b"-", pgid))
            _watchdog.stdin.flush()
        except OSError:
            pass  # best effort: stop() still kills everything it started


def stop_all():
    """Stop every RGW started by this process (atexit; call it from signal handlers)."""
    with _LOCK:
        items = list(_INSTANCES)
    for g in items:
        try:
            g.stop()
        except Exception:  # noqa: BLE001 - best effort at exit
            pass


def _at_exit():
    stop_all()
    global _watchdog
    w, _watchdog = _watchdog, None
    if w is not None:
        try:
            w.stdin.close()  # EOF: it kills what is left (nothing) and exits
            w.wait(2)
        except (OSError, subprocess.TimeoutExpired):
            pass


atexit.register(_at_exit)


def _popen(argv, **kw):
    """Popen in a new session (own process group), registered with the watchdog."""
    p = subprocess.Popen(argv, start_new_session=True, close_fds=True, **kw)
    _watch(p.pid)
    return p


def _killpg(p, sig):
    try:
        os.killpg(p.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _reaped(p):
    """After p was waited for: kill what is left of its group, forget it."""
    _killpg(p, signal.SIGKILL)
    _watch(p.pid, add=False)


def run_command(argv, env=None, timeout=60, input=None, text=False):
    """subprocess.run() in a process group of its own (watched, see _watch);
    on timeout the whole group is SIGKILLed and the result has
    timed_out=True and returncode -9 instead of an exception."""
    try:
        p = _popen(argv, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=text)
    except OSError as e:
        raise RGWError(f"cannot run {argv[0]}: {e}") from None
    timed_out = False
    try:
        try:
            out, err = p.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _killpg(p, signal.SIGKILL)
            out, err = p.communicate()
    finally:
        if p.returncode is None:
            _killpg(p, signal.SIGKILL)
            p.wait()
        _reaped(p)
    r = subprocess.CompletedProcess(argv, p.returncode, out, err)
    r.timed_out = timed_out
    return r


class _Daemon:
    def __init__(self, name, argv, output, env):
        self.name, self.argv, self.output, self.env = name, argv, output, env
        self.popen = None

    def start(self):
        with open(self.output, "ab") as out:
            out.write(f"=== {time.strftime('%H:%M:%S')} {' '.join(self.argv)}\n".encode())
            out.flush()
            try:
                self.popen = _popen(self.argv, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env=self.env)
            except OSError as e:
                raise RGWError(f"cannot start {self.name} ({self.argv[0]}): {e}") from None
        return self

    @property
    def pid(self):
        return self.popen.pid if self.popen else None

    def alive(self):
        return self.popen is not None and self.popen.poll() is None

    def send(self, sig):
        if self.popen is not None:
            _killpg(self.popen, sig)

    def stop(self, grace=5.0, sig=signal.SIGTERM):
        """Signal the group, wait on the real PID, SIGKILL the group after grace."""
        p = self.popen
        if p is None:
            return None
        if p.poll() is None and sig != signal.SIGKILL and grace > 0:
            self.send(sig)
            try:
                p.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        self.send(signal.SIGKILL)  # a hung daemon, or leftovers in its group
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            pass
        _reaped(p)
        self.popen = None
        return p.returncode


class RGW:
    """A single-node Ceph cluster (mon + memstore OSD) and radosgw on loopback."""

    def __init__(self, workdir, access_key="gomirror", secret_key="gomirror-secret",
                 bucket="gomirror", log=print, device_bytes=1 << 31, rgw_threads=128):
        self.workdir = os.path.abspath(workdir)
        self.access_key, self.secret_key, self.bucket = access_key, secret_key, bucket
        self.log = log or (lambda *a, **k: None)
        self.device_bytes, self.rgw_threads = int(device_bytes), int(rgw_threads)
        self.region = REGION
        self.mon_port = self.rgw_port = None
        self.endpoint = None
        self.conf = os.path.join(self.workdir, "ceph.conf")
        self.fsid = str(uuid.uuid4())
        self.mon = self.osd = self.gw = None
        self.timings = {}
        self._env = None

    # ---- helpers

    def _path(self, *p):
        return os.path.join(self.workdir, *p)

    def _run(self, argv, timeout=60, check=True, what=None, env=None):
        what = what or os.path.basename(argv[0])
        t0 = time.monotonic()
        r = run_command(argv, env=env or self._env, timeout=timeout)
        output = r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")
        if r.timed_out:
            raise RGWError(f"{what} timed out after {timeout}s: {' '.join(argv)}\n{output}")
        if check and r.returncode != 0:
            raise RGWError(f"{what} failed ({r.returncode}): {' '.join(argv)}\n{output}")
        self.timings[what] = round(time.monotonic() - t0, 2)
        return r

    def ceph(self, *args, timeout=30):
        """Run the `ceph` CLI on this cluster; a CompletedProcess (bytes).

        There is no ceph-mgr: mgr commands (`ceph osd df`, `ceph df`, `ceph pg
        ...`) get no answer and end with the timeout."""
        return self._run([_bin("ceph"), "-c", self.conf, "--connect-timeout", str(timeout),
                          *args], timeout=timeout + 5, check=False, what="ceph " + args[0])

    def radosgw_admin(self, *args, timeout=60):
        """Run radosgw-admin on this cluster; a CompletedProcess (bytes)."""
        return self._run([_bin("radosgw-admin"), "-c", self.conf, *args], timeout=timeout,
                         check=False, what="radosgw-admin " + args[0])

    def _daemon_failed(self, d):
        log = self._path("log", f"ceph-{d.name}.log")
        return RGWError(f"{d.name} exited with status {d.popen.returncode} during start: "
                        f"{' '.join(d.argv)}\n--- {d.output}\n{_tail(d.output)}\n"
                        f"--- {log}\n{_tail(log)}")

    def _wait(self, what, cond, deadline, daemons=()):
        while True:
            for d in daemons:
                if d is not None and d.popen is not None and d.popen.poll() is not None:
                    raise self._daemon_failed(d)
            if cond():
                return
            if time.monotonic() > deadline:
                raise RGWError(f"timed out waiting for {what} (workdir {self.workdir}); logs:\n"
                               + "\n".join(f"--- {p}\n{_tail(p, 15)}" for p in sorted(
                                   self._path("log", f) for f in os.listdir(self._path("log")))))
            time.sleep(0.05)

    # ---- lifecycle

    def start(self, timeout=90):
        missing = missing_binaries()
        if missing:
            raise RGWError("Ceph RGW needs binaries that are not installed: "
                           + ", ".join(f"{b} (Debian package {p})" for b, p in missing)
                           + "; install with: apt-get install -y --no-install-recommends "
                           + " ".join(sorted({p for _, p in missing})))
        if self.mon is not None:
            raise RGWError("RGW already started")
        t0 = time.monotonic()
        deadline = t0 + timeout
        for attempt in range(3):
            try:
                self._start(deadline)
                break
            except BaseException as e:
                self.stop(grace=0)  # SIGKILL: a booting OSD ignores SIGTERM for 5 s
                # Another process took a port between free_port() and bind(): again.
                if not (isinstance(e, RGWError) and "Address already in use" in str(e)
                        and attempt < 2 and time.monotonic() < deadline - 10):
                    raise
                self.log(f"rgw: a port was taken, starting again: {str(e).splitlines()[0]}")
        self.timings["start"] = round(time.monotonic() - t0, 2)
        self.log(f"rgw: {self.endpoint} ready in {self.timings['start']:.1f}s "
                 f"(region {self.region}, bucket {self.bucket}, workdir {self.workdir})")
        return self

    def _start(self, deadline):
        w = self.workdir
        # A new cluster each start (memstore data dies with the OSD anyway):
        # drop what a previous start() in this workdir left; logs are kept.
        for d in ("run", "mon", "osd", "rgw", "crash"):
            shutil.rmtree(self._path(d), ignore_errors=True)
        self.fsid = str(uuid.uuid4())
        for d in ("run", "log", "crash", "mon", "osd/ceph-0", "rgw"):
            os.makedirs(self._path(d), exist_ok=True)
        self.mon_port, self.rgw_port = free_port(), free_port()
        while self.rgw_port == self.mon_port:
            self.rgw_port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.rgw_port}"
        with open(self.conf, "w") as f:
            f.write(CONF.format(fsid=self.fsid, mon_port=self.mon_port, rgw_port=self.rgw_port,
                                w=w, device_bytes=self.device_bytes,
                                rgw_threads=self.rgw_threads))
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("CEPH_") and k.lower() not in
               ("http_proxy", "https_proxy", "all_proxy", "no_proxy")}
        env["CEPH_CONF"] = self.conf
        # glibc keeps freed 4 MiB buffers in its arenas: radosgw grew from 47 to
        # 170 MB RSS over 400 MiB of PUTs; with a fixed mmap threshold it stays ~48 MB.
        env.setdefault("MALLOC_MMAP_THRESHOLD_", "131072")
        self._env = env
        with _LOCK:
            _INSTANCES.add(self)

        keyring = self._path("keyring")
        self._run([_bin("ceph-authtool"), "--create-keyring", keyring, "--gen-key",
                   "-n", "mon.", "--cap", "mon", "allow *"], what="ceph-authtool mon.")
        self._run([_bin("ceph-authtool"), keyring, "--gen-key", "-n", "client.admin",
                   "--cap", "mon", "allow *", "--cap", "osd", "allow *",
                   "--cap", "mgr", "allow *"], what="ceph-authtool client.admin")
        monmap, osdmap = self._path("monmap"), self._path("osdmap")
        self._run([_bin("monmaptool"), "--create", "--clobber", "--fsid", self.fsid,
                   "--addv", "a", f"[v1:127.0.0.1:{self.mon_port}]", monmap],
                  what="monmaptool")
        # The initial OSD map already holds osd.0 in the CRUSH map (host
        # "localhost"), so no `ceph osd new` (a CLI round trip) is needed and
        # the OSD starts alongside the monitor. The OSD sends no monitor
        # command at boot (crush/class update on start are off): with auth
        # none it may send one before it has the monmap, and the monitor
        # rejects it with "wrong fsid" (fsid 0), which kills the OSD.
        self._run([_bin("osdmaptool"), "-c", self.conf, "--createsimple", "1", "--clobber",
                   osdmap], what="osdmaptool")
        self._run([_bin("ceph-mon"), "-c", self.conf, "--mkfs", "-i", "a",
                   "--monmap", monmap, "--osdmap", osdmap, "--keyring", keyring],
                  what="ceph-mon --mkfs")
        self.mon = _Daemon("mon.a", [_bin("ceph-mon"), "-f", "-c", self.conf, "-i", "a"],
                           self._path("log", "mon.a.out"), env).start()
        self._run([_bin("ceph-osd"), "-c", self.conf, "-i", "0", "--mkfs",
                   "--osd-uuid", str(uuid.uuid4()), "--no-mon-config"], what="ceph-osd --mkfs")
        self.osd = _Daemon("osd.0", [_bin("ceph-osd"), "-f", "-c", self.conf, "-i", "0"],
                           self._path("log", "osd.0.out"), env).start()
        self._start_gateway(deadline)

        # User and bucket.
        self._run([_bin("radosgw-admin"), "-c", self.conf, "user", "create",
                   "--uid", self.access_key, "--display-name", self.access_key,
                   "--access-key", self.access_key, "--secret-key", self.secret_key],
                  what="radosgw-admin user create",
                  timeout=max(5.0, deadline - time.monotonic()))
        st, _, body = self.s3("PUT", "/" + self.bucket)
        if st != 200:
            raise RGWError(f"PUT {self.endpoint}/{self.bucket} (create bucket): {st} "
                           f"{body[:500]!r}")

    def _start_gateway(self, deadline):
        t0 = time.monotonic()
        if port_open(self.rgw_port):
            raise RGWError(f"cannot start radosgw: 127.0.0.1:{self.rgw_port}: "
                           "Address already in use")
        self.gw = _Daemon("client.rgw.a", [_bin("radosgw"), "-f", "-c", self.conf,
                                           "-n", "client.rgw.a"],
                          self._path("log", "rgw.a.out"), self._env).start()

        def ready():
            if not port_open(self.rgw_port):
                return False
            try:
                st, _, _ = request("GET", self.endpoint, "/", timeout=2)
            except OSError:
                return False
            return st in (200, 403)
        self._wait(f"radosgw on {self.endpoint}", ready, deadline, [self.mon, self.osd, self.gw])
        self.timings["radosgw ready"] = round(time.monotonic() - t0, 2)

    def stop_gateway(self, sig=signal.SIGTERM, grace=5.0):
        """Stop only radosgw (SIGKILL with sig=signal.SIGKILL: a crash). Data stays."""
        if self.gw is not None:
            t0 = time.monotonic()
            self.gw.stop(grace=grace, sig=sig)
            self.gw = None
            self.timings["stop_gateway"] = round(time.monotonic() - t0, 2)
            # The port is closed once the process is gone.

    def start_gateway(self, timeout=60):
        """Start radosgw again on the same port (after stop_gateway())."""
        if self.mon is None or self.osd is None:
            raise RGWError("start_gateway() needs a started cluster (call start() first)")
        if self.gw is not None and self.gw.alive():
            return self
        self._start_gateway(time.monotonic() + timeout)
        return self

    def stop(self, grace=5.0):
        """Stop radosgw, the OSD and the monitor; idempotent; kills leftovers.

        Each gets SIGTERM and is waited on (its real PID) for up to grace
        seconds, then its whole process group gets SIGKILL; grace=0 kills
        at once. Normally the three are gone in ~0.4 s."""
        t0 = time.monotonic()
        # One after the other: radosgw hangs in its shutdown if the OSD goes at
        # the same time, and the OSD tells the monitor it is going down.
        for attr in ("gw", "osd", "mon"):
            d = getattr(self, attr)
            if d is not None:
                d.stop(grace=grace)
                setattr(self, attr, None)
        with _LOCK:
            _INSTANCES.discard(self)
        self.timings["stop"] = round(time.monotonic() - t0, 2)

    def __enter__(self):
        if self.mon is None:
            self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    # ---- clients

    def pids(self):
        """{name: pid} of the running daemons."""
        return {d.name: d.pid for d in (self.mon, self.osd, self.gw) if d is not None and d.alive()}

    def s3(self, method, path, query=None, body=b"", headers=None, secret_key=None,
           timeout=30):
        """A SigV4-signed request: path raw ("/bucket/key"), query a dict.
        Returns (status, headers with lower-case names, body bytes)."""
        return request(method, self.endpoint, path, query, self.access_key,
                       secret_key if secret_key is not None else self.secret_key,
                       self.region, body=body, headers=headers, timeout=timeout)

    def put(self, key, data, headers=None):
        """PUT bytes at key in the bucket; the status."""
        return self.s3("PUT", f"/{self.bucket}/{key}", body=data, headers=headers)[0]

    def get(self, key):
        """The bytes at key in the bucket, or None (404); raises on other errors."""
        st, _, body = self.s3("GET", f"/{self.bucket}/{key}")
        if st == 404:
            return None
        if st != 200:
            raise RGWError(f"GET {key}: {st} {body[:300]!r}")
        return body

    def delete(self, key):
        return self.s3("DELETE", f"/{self.bucket}/{key}")[0]

    def keys(self, prefix=""):
        """Every key in the bucket under prefix (ListObjectsV2, all pages)."""
        import xml.etree.ElementTree as ET
        ns = "{http://s3.amazonaws.com/doc/2006-03-01/}"
        out, token = [], None
        while True:
            q = {"list-type": "2", "prefix": prefix, "max-keys": "1000"}
            if token:
                q["continuation-token"] = token
            st, _, body = self.s3("GET", f"/{self.bucket}", q)
            if st != 200:
                raise RGWError(f"ListObjectsV2 {prefix!r}: {st} {body[:300]!r}")
            doc = ET.fromstring(body)
            out += [e.findtext(ns + "Key") for e in doc.findall(ns + "Contents")]
            token = doc.findtext(ns + "NextContinuationToken")
            if doc.findtext(ns + "IsTruncated") != "true" or not token:
                return out

    def aws_env(self):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("AWS_") and k.lower() not in
               ("http_proxy", "https_proxy", "all_proxy", "no_proxy")}
        env.update(AWS_ACCESS_KEY_ID=self.access_key, AWS_SECRET_ACCESS_KEY=self.secret_key,
                   AWS_DEFAULT_REGION=self.region, AWS_REGION=self.region,
                   AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null",
                   AWS_PAGER="", AWS_EC2_METADATA_DISABLED="true", NO_PROXY="*", no_proxy="*")
        return env

    def aws(self, *args, check=False, timeout=120, input=None, env=None):
        """Run Debian's /usr/bin/aws against the gateway: a CompletedProcess
        (text; returncode -9 and .timed_out on timeout). Credentials, region
        and an empty config come through the environment (aws_env())."""
        if not os.access(AWS, os.X_OK):
            raise RGWError(f"{AWS} not found: install Debian package awscli")
        argv = [AWS, "--endpoint-url", self.endpoint, *args]
        r = run_command(argv, env=env or self.aws_env(), timeout=timeout, input=input,
                        text=True)
        if check and r.returncode != 0:
            raise RGWError(f"aws {' '.join(args)} failed ({r.returncode}"
                           f"{', timed out' if r.timed_out else ''}): {r.stderr.strip()}")
        return r

    def rss_kb(self):
        """{name: VmRSS in kB} of the running daemons."""
        out = {}
        for name, pid in self.pids().items():
            try:
                with open(f"/proc/{pid}/status") as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            out[name] = int(line.split()[1])
            except OSError:
                pass
        return out


# ------------------------------------------------------------ selftest

def _gone(pid):
    """True if pid has exited (a zombie counts: here pid 1 may not reap)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True


def selftest(keep=False):
    """Check the gateway with the real aws cli and curl; 0 if all passed."""
    import json
    results = []
    timings = {}

    def check(name, cond, detail=""):
        results.append(bool(cond))
        print(("PASS " if cond else "FAIL ") + name + ("" if cond else f": {detail}"), flush=True)
        return cond

    def timed(name, fn, *a, **kw):
        t = time.monotonic()
        try:
            return fn(*a, **kw)
        finally:
            timings[name] = round(time.monotonic() - t, 2)

    tmp = tempfile.mkdtemp(prefix="rgw-selftest-")
    g = RGW(os.path.join(tmp, "rgw"))
    t0 = time.monotonic()
    try:
        timed("start", g.start)
        print(f"start steps: {g.timings}", flush=True)
        print(f"RSS kB after start: {g.rss_kb()}", flush=True)
        r = g.aws("s3api", "head-bucket", "--bucket", g.bucket)
        check(f"bucket {g.bucket} exists (aws s3api head-bucket)", r.returncode == 0, r.stderr)

        r = subprocess.run(["ss", "-Hltnp"], stdout=subprocess.PIPE, text=True)
        pids = set(g.pids().values())
        socks = [l for l in r.stdout.splitlines() if any(f"pid={p}," in l for p in pids)]
        bad = [l for l in socks if not l.split()[3].startswith("127.0.0.1:")]
        check("daemons listen only on 127.0.0.1", socks and not bad,
              "\n".join(bad or ["no listening sockets found"]))

        payload = os.urandom(1000) + b"gomirror"
        src = os.path.join(tmp, "blob")
        with open(src, "wb") as f:
            f.write(payload)
        odd = "example.com/!upper/@v/v1.0.0+incompatible.zip"
        tilde = "example.com/~user/@v/list"
        for key in (odd, tilde):
            r = g.aws("s3api", "put-object", "--bucket", g.bucket, "--key", key, "--body", src)
            check(f"aws put-object {key}", r.returncode == 0, r.stderr)
        dst = os.path.join(tmp, "got")
        r = g.aws("s3api", "get-object", "--bucket", g.bucket, "--key", odd, dst)
        check("aws get-object returns the same bytes",
              r.returncode == 0 and open(dst, "rb").read() == payload, r.stderr)
        check("stdlib SigV4 GET of the same key", g.get(odd) == payload)
        check("stdlib GET of a missing key -> None (404)", g.get("example.com/nope") is None)

        # Five objects, listed two at a time with continuation tokens.
        keys = [f"list/k{i}@v1+x!~" for i in range(5)]
        for k in keys:
            g.put(k, k.encode())
        seen, token, pages = [], None, 0
        while pages < 6:
            args = ["s3api", "list-objects-v2", "--bucket", g.bucket, "--prefix", "list/",
                    "--max-keys", "2", "--no-paginate"]
            if token:
                args += ["--continuation-token", token]
            r = g.aws(*args)
            if not check(f"aws list-objects-v2 --max-keys 2, page {pages + 1}",
                         r.returncode == 0, r.stderr):
                break
            doc = json.loads(r.stdout or "{}")
            pages += 1
            seen += [c["Key"] for c in doc.get("Contents", [])]
            if not doc.get("IsTruncated"):
                break
            token = doc.get("NextContinuationToken")
            if not check("NextContinuationToken on a truncated page", token, doc):
                break
        check("continuation: 5 keys in 3 pages, in order", seen == keys and pages == 3,
              f"pages={pages} keys={seen}")
        check("stdlib keys() lists the same", g.keys("list/") == keys, g.keys("list/"))
        r = g.aws("s3api", "list-objects-v2", "--bucket", g.bucket, "--delimiter", "/",
                  "--prefix", "example.com/")
        doc = json.loads(r.stdout or "{}") if r.returncode == 0 else {}
        cps = sorted(p["Prefix"] for p in doc.get("CommonPrefixes", []))
        check("delimiter gives CommonPrefixes",
              cps == ["example.com/!upper/", "example.com/~user/"], f"{cps} {r.stderr}")

        # Conditional PUT and signatures, checked with curl --aws-sigv4.
        out_file = os.path.join(tmp, "curl.out")

        def curl(*args, secret=None):
            cmd = ["curl", "-sS", "--noproxy", "*", "-o", out_file, "-w", "%{http_code}",
                   "--aws-sigv4", f"aws:amz:{g.region}:s3",
                   "--user", f"{g.access_key}:{secret or g.secret_key}",
                   "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD", *args]
            r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            with open(out_file, "rb") as f:
                return r.stdout.strip() or r.stderr.strip(), f.read().decode(errors="replace")

        def url(key):
            return f"{g.endpoint}/{g.bucket}/{urllib.parse.quote(key, safe='/-_.~')}"
        code, out = curl("-X", "PUT", "-H", "If-None-Match: *", "--data-binary", "@" + src,
                         url(odd))
        check("curl PUT If-None-Match: * on an existing key -> 412", code == "412",
              f"{code} {out[:300]}")
        newkey = "example.com/new/@v/v0.1.0.mod"
        code, out = curl("-X", "PUT", "-H", "If-None-Match: *", "--data-binary", "@" + src,
                         url(newkey))
        check("curl PUT If-None-Match: * on a new key -> 200", code == "200",
              f"{code} {out[:300]}")
        st, _, body = g.s3("PUT", f"/{g.bucket}/{odd}", body=b"x",
                           headers={"If-None-Match": "*"})
        check("stdlib PUT If-None-Match: * on an existing key -> 412", st == 412,
              f"{st} {body[:200]!r}")
        check("the existing key kept its bytes", g.get(odd) == payload)
        code, out = curl(url(odd), secret="wrong-secret")
        check("curl with a wrong secret -> 403 SignatureDoesNotMatch",
              code == "403" and "SignatureDoesNotMatch" in out, f"{code} {out[:300]}")
        st, _, body = g.s3("GET", f"/{g.bucket}/{odd}", secret_key="wrong-secret")
        check("stdlib with a wrong secret -> 403 SignatureDoesNotMatch",
              st == 403 and b"SignatureDoesNotMatch" in body, f"{st} {body[:300]!r}")
        code, out = curl(url(odd))
        check("curl --aws-sigv4 GET of the odd key -> 200", code == "200", f"{code} {out[:300]}")
        for region in ("default", "eu-west-9"):
            st, _, body = request("GET", g.endpoint, f"/{g.bucket}/{odd}", None,
                                  g.access_key, g.secret_key, region)
            check(f"signing region {region!r} is accepted too", st == 200,
                  f"{st} {body[:200]!r}")

        # Multipart upload: aws s3 cp of 20 MiB with a 5 MiB threshold/part size.
        big = os.path.join(tmp, "big")
        data = os.urandom(20 << 20)
        with open(big, "wb") as f:
            f.write(data)
        cfg = os.path.join(tmp, "aws-config")
        with open(cfg, "w") as f:
            f.write("[default]\ns3 =\n  multipart_threshold = 5MB\n"
                    "  multipart_chunksize = 5MB\n")
        env = g.aws_env()
        env["AWS_CONFIG_FILE"] = cfg
        bigkey = "big/@v/v2.0.0.zip"
        r = timed("multipart upload 20 MiB", g.aws, "s3", "cp", big,
                  f"s3://{g.bucket}/{bigkey}", env=env)
        check("multipart upload of 20 MiB (aws s3 cp)", r.returncode == 0, r.stderr)
        r = g.aws("s3api", "head-object", "--bucket", g.bucket, "--key", bigkey)
        etag = json.loads(r.stdout or "{}").get("ETag", "") if r.returncode == 0 else ""
        check("it has a 4-part multipart ETag", etag.endswith('-4"'), f"{etag} {r.stderr}")
        check("it reads back intact", g.get(bigkey) == data)

        # Only the gateway stops and starts again; the data stays in the OSD.
        timed("stop_gateway", g.stop_gateway)
        check("gateway port closed after stop_gateway()", not port_open(g.rgw_port))
        r = g.aws("s3api", "head-bucket", "--bucket", g.bucket, "--cli-connect-timeout", "2")
        check("aws fails while the gateway is down", r.returncode != 0, r.stdout)
        timed("start_gateway", g.start_gateway)
        n = len(g.keys())
        check("objects survive a gateway restart (same port)", n == 2 + 5 + 1 + 1, f"{n} objects")
        check("the odd key reads back after the restart", g.get(odd) == payload)
        timed("SIGKILL radosgw + start_gateway",
              lambda: (g.stop_gateway(sig=signal.SIGKILL), g.start_gateway()))
        check("the odd key reads back after radosgw was SIGKILLed", g.get(odd) == payload)
        print(f"RSS kB at the end: {g.rss_kb()}", flush=True)
    except Exception as e:  # noqa: BLE001
        check("no exception", False, f"{type(e).__name__}: {e}")
    finally:
        pids = list(g.pids().values())
        timed("stop", g.stop)
        g.stop()  # idempotent
        left = [p for p in pids if not _gone(p)]
        check("all daemons gone after stop()", pids and not left, f"pids {pids}, left {left}")

    # A test process that dies by SIGKILL leaves no daemon behind (the watchdog).
    line = []
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys, rgw; g = rgw.RGW(sys.argv[1], log=None).start(); "
         "print(*g.pids().values(), flush=True); sys.stdin.read()",
         os.path.join(tmp, "orphan")],
        cwd=os.path.dirname(os.path.abspath(__file__)), stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, start_new_session=True)
    try:
        line = child.stdout.readline().split()
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not all(_gone(int(p)) for p in line):
            time.sleep(0.05)
        check("daemons die with a SIGKILLed test process", len(line) == 3 and
              all(_gone(int(p)) for p in line), f"pids {line}")
    finally:
        try:
            os.killpg(child.pid, signal.SIGKILL)
        except OSError:
            pass
        for p in line:
            try:
                os.killpg(int(p), signal.SIGKILL)
            except (OSError, ValueError):
                pass

    if keep:
        print(f"kept {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    print("timings (s): " + ", ".join(f"{k} {v}" for k, v in timings.items())
          + f", total {time.monotonic() - t0:.1f}")
    npass = sum(results)
    nfail = len(results) - npass
    print(f"selftest: {npass} passed, {nfail} failed")
    return 1 if nfail else 0


def main(argv):
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("selftest", help="start a gateway and check it with aws/curl")
    s.add_argument("--keep", action="store_true", help="keep the temporary directory")
    r = sub.add_parser("run", help="start a gateway and wait for ^C")
    r.add_argument("--workdir")
    a = ap.parse_args(argv)
    if a.cmd == "selftest":
        return selftest(a.keep)
    wd = a.workdir or tempfile.mkdtemp(prefix="rgw-")
    g = RGW(wd)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with g:
        print(f"endpoint={g.endpoint} region={g.region} access_key={g.access_key} "
              f"secret_key={g.secret_key} bucket={g.bucket}", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
