#!/usr/bin/env python3
"""A real single-node Ceph RADOS Gateway on loopback, for gomirror's tests.

    import rgw
    with rgw.RGW(workdir) as g:          # start(): mon + memstore OSD + radosgw
        g.endpoint                       # "http://127.0.0.1:PORT"
        g.region                         # SigV4 region to sign with (see REGION)
        g.access_key, g.secret_key, g.bucket
        g.aws("s3api", "list-objects-v2", "--bucket", g.bucket)
        g.stop_gateway(); g.start_gateway()   # only radosgw, same port
    # stop(): radosgw, OSD, monitor; every leftover SIGKILLed

    python3 rgw.py selftest [--keep]      # checks the gateway with the real aws cli and curl
    python3 rgw.py run [--workdir DIR]    # start one and print its endpoint until ^C

Python 3 standard library only; nothing is installed: a missing Ceph binary
raises RGWError naming the Debian package (tests fail, never skip). What made
this work is recorded in TESTING.md ("S3-compatible servers"):

- one monitor (messenger v1 only: `ms bind msgr2 = false`, a v1 address in
  the monmap; a v2 address on a non-default port makes clients hang), auth
  none, pool size 1;
- one `memstore` OSD (data in RAM, kept while the OSD process lives, so
  stop_gateway()/start_gateway() keeps every object);
- radosgw with the beast frontend on 127.0.0.1:PORT;
- no ceph-mgr: radosgw, pool creation and PG creation work without it
  (only `ceph -s` health complains), and it saves a daemon and ~1 s.

Every daemon runs in the foreground (-f) under Popen in its own process
group, so its real PID is known (pid files vanish before the daemon exits);
all state, logs, sockets and the private ceph.conf live under workdir;
nothing listens on anything but 127.0.0.1 (the OSD picks its own ports in
6800-7300 on 127.0.0.1, skipping busy ones).
"""

import atexit
import datetime
import hashlib
import hmac
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
import weakref

# SigV4 region. RGW (Pacific) does not compare the credential-scope region
# with its zonegroup: it recomputes the signature with whatever region the
# client put in the scope, so any string verifies. "us-east-1" is what every
# S3 client assumes by default and, unlike "default", makes `aws s3api
# create-bucket` send no LocationConstraint. (Checked by the selftest.)
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
[global]
fsid = {fsid}
mon host = v1:127.0.0.1:{mon_port}
mon initial members = a
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind msgr2 = false
ms bind ipv6 = false
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
exit on mon down = false
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
paxos propose interval = 0.1
paxos min wait = 0.01
mon data = {w}/mon/$cluster-$id
osd data = {w}/osd/$cluster-$id
osd objectstore = memstore
memstore device bytes = {device_bytes}
osd max object name len = 460
osd max object namespace len = 64
osd crush update on start = false
osd class update on start = false
rgw data = {w}/rgw/$cluster-$id
rgw pool default pg num = 8
rgw_rados_pool_pg_num_min = 8
rgw gc obj min wait = 60
rgw gc processor period = 30

[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:{rgw_port} tcp_nodelay=1
rgw thread pool size = {rgw_threads}
log file = {w}/log/$cluster-$name.log
"""


class RGWError(Exception):
    """The gateway (or one of its daemons) could not be started or used."""


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def missing_binaries(names=BINARIES):
    """The (binary, package) pairs not found on PATH (or /usr/bin)."""
    out = []
    for b in names:
        if not (shutil.which(b) or os.access("/usr/bin/" + b, os.X_OK)):
            out.append((b, BINARIES.get(b, b)))
    return out


def _bin(name):
    return shutil.which(name) or "/usr/bin/" + name


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


def sign_v4(method, url, access_key, secret_key, region, headers=None, payload=b"",
            service="s3", now=None):
    """Headers (a dict) that sign a request with AWS Signature Version 4.

    The canonical URI percent-encodes every byte but unreserved ones and "/"
    (S3 style: once, so "!", "+", "@" become %21, %2B, %40); the request must
    go out with exactly that path (see request())."""
    u = urllib.parse.urlsplit(url)
    now = now or datetime.datetime.now(datetime.timezone.utc)
    amzdate = now.strftime("%Y%m%dT%H%M%SZ")
    day = amzdate[:8]
    path = _q(urllib.parse.unquote(u.path or "/"), safe="-_.~/")
    query = sorted(urllib.parse.parse_qsl(u.query, keep_blank_values=True))
    cquery = "&".join(f"{_q(k)}={_q(v)}" for k, v in query)
    phash = payload if isinstance(payload, str) else hashlib.sha256(payload).hexdigest()
    h = {k.lower(): str(v).strip() for k, v in (headers or {}).items()}
    h["host"] = u.netloc
    h["x-amz-date"] = amzdate
    h["x-amz-content-sha256"] = phash
    names = sorted(h)
    creq = "\n".join([method, path, cquery,
                      "".join(f"{k}:{h[k]}\n" for k in names),
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


def request(method, url, access_key=None, secret_key=None, region=REGION, body=b"",
            headers=None, timeout=10):
    """One HTTP request (signed if a key is given): (status, headers, body)."""
    import http.client
    u = urllib.parse.urlsplit(url)
    path = _q(urllib.parse.unquote(u.path or "/"), safe="-_.~/")
    if u.query:
        path += "?" + "&".join(f"{_q(k)}={_q(v)}" for k, v in
                               urllib.parse.parse_qsl(u.query, keep_blank_values=True))
    h = dict(headers or {})
    if access_key is not None:
        h = sign_v4(method, url, access_key, secret_key, region, h, body)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        c.close()


# ------------------------------------------------------------ daemons

_INSTANCES = weakref.WeakSet()
_INSTANCES_LOCK = threading.Lock()


def stop_all():
    """Stop every RGW started by this process (atexit, signal handlers)."""
    with _INSTANCES_LOCK:
        items = list(_INSTANCES)
    for g in items:
        try:
            g.stop()
        except Exception:  # noqa: BLE001 - best effort at exit
            pass


atexit.register(stop_all)


class _Daemon:
    def __init__(self, name, argv, output, env):
        self.name, self.argv, self.output, self.env = name, argv, output, env
        self.popen = None

    def start(self):
        with open(self.output, "ab") as out:
            self.popen = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, env=self.env,
                                          start_new_session=True, close_fds=True)
        return self

    @property
    def pid(self):
        return self.popen.pid if self.popen else None

    def alive(self):
        return self.popen is not None and self.popen.poll() is None

    def send(self, sig):
        if self.popen is None:
            return
        try:
            os.killpg(self.popen.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

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
        self.send(signal.SIGKILL)  # leftovers in the group, or a hung daemon
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            pass
        self.popen = None
        return p.returncode


class RGW:
    """A single-node Ceph cluster (mon + memstore OSD) and radosgw on loopback."""

    def __init__(self, workdir, access_key="gomirror", secret_key="gomirror-secret",
                 bucket="gomirror", log=print, device_bytes=1 << 31, rgw_threads=64):
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

    def _run(self, argv, timeout=60, check=True, what=None):
        t0 = time.monotonic()
        try:
            r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=self._env, timeout=timeout,
                               start_new_session=True)
        except subprocess.TimeoutExpired as e:
            raise RGWError(f"{what or argv[0]} timed out after {timeout}s: {' '.join(argv)}\n"
                           f"{(e.stderr or b'').decode(errors='replace')}") from None
        except OSError as e:
            raise RGWError(f"cannot run {argv[0]}: {e}") from None
        if check and r.returncode != 0:
            raise RGWError(f"{what or argv[0]} failed ({r.returncode}): {' '.join(argv)}\n"
                           f"{r.stdout.decode(errors='replace')}"
                           f"{r.stderr.decode(errors='replace')}")
        self.timings[what or os.path.basename(argv[0])] = round(time.monotonic() - t0, 2)
        return r

    def _ceph(self, *args, timeout=30, **kw):
        return self._run([_bin("ceph"), "-c", self.conf, "--connect-timeout", str(timeout),
                          *args], timeout=timeout + 5, **kw)

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
        try:
            self._start(deadline)
        except BaseException:
            self.stop()
            raise
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
        self._env = env
        with _INSTANCES_LOCK:
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
                  what="radosgw-admin user create")
        url = f"{self.endpoint}/{self.bucket}"
        st, _, body = self.s3("PUT", "/" + self.bucket)
        if st != 200:
            raise RGWError(f"PUT {url} (create bucket): {st} {body[:500]!r}")

    def _start_gateway(self, deadline):
        t0 = time.monotonic()
        if port_open(self.rgw_port):
            raise RGWError(f"port {self.rgw_port} is already in use; cannot start radosgw")
        self.gw = _Daemon("client.rgw.a", [_bin("radosgw"), "-f", "-c", self.conf,
                                           "-n", "client.rgw.a"],
                          self._path("log", "rgw.a.out"), self._env).start()

        def ready():
            if not port_open(self.rgw_port):
                return False
            try:
                st, _, _ = request("GET", self.endpoint + "/", timeout=2)
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

    def stop(self):
        """Stop radosgw, the OSD and the monitor; idempotent; kills leftovers."""
        t0 = time.monotonic()
        for attr, grace in (("gw", 5.0), ("osd", 5.0), ("mon", 5.0)):
            d = getattr(self, attr)
            if d is not None:
                d.stop(grace=grace)
                setattr(self, attr, None)
        with _INSTANCES_LOCK:
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

    def s3(self, method, path, body=b"", headers=None, secret_key=None, timeout=30):
        """A SigV4-signed request to the gateway: (status, headers, body)."""
        return request(method, self.endpoint + path, self.access_key,
                       secret_key if secret_key is not None else self.secret_key,
                       self.region, body=body, headers=headers, timeout=timeout)

    def aws_env(self):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("AWS_") and k.lower() not in
               ("http_proxy", "https_proxy", "all_proxy", "no_proxy")}
        env.update(AWS_ACCESS_KEY_ID=self.access_key, AWS_SECRET_ACCESS_KEY=self.secret_key,
                   AWS_DEFAULT_REGION=self.region, AWS_REGION=self.region,
                   AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null",
                   AWS_PAGER="", AWS_EC2_METADATA_DISABLED="true", NO_PROXY="*", no_proxy="*")
        return env

    def aws(self, *args, check=False, timeout=120, input=None):
        """Run Debian's /usr/bin/aws against the gateway; a CompletedProcess (text)."""
        if not os.access(AWS, os.X_OK):
            raise RGWError(f"{AWS} not found: install Debian package awscli")
        return subprocess.run([AWS, "--endpoint-url", self.endpoint, *args],
                              env=self.aws_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, timeout=timeout,
                              check=check, input=input,
                              stdin=None if input is not None else subprocess.DEVNULL)

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

def selftest(keep=False):
    import json
    results = []

    def check(name, cond, detail=""):
        results.append(bool(cond))
        print(("PASS " if cond else "FAIL ") + name + ("" if cond else f": {detail}"), flush=True)
        return cond

    tmp = tempfile.mkdtemp(prefix="rgw-selftest-")
    g = RGW(os.path.join(tmp, "rgw"))
    t0 = time.monotonic()
    try:
        g.start()
        print(f"start: {time.monotonic() - t0:.2f}s  steps: {g.timings}", flush=True)
        print(f"rss kB: {g.rss_kb()}", flush=True)
        check("bucket exists", g.aws("s3api", "head-bucket", "--bucket", g.bucket).returncode == 0)

        def listening():
            r = subprocess.run(["ss", "-Hltnp"], stdout=subprocess.PIPE, text=True)
            pids = set(g.pids().values())
            return [l for l in r.stdout.splitlines()
                    if any(f"pid={p}," in l for p in pids)]
        ls = listening()
        bad = [l for l in ls if not l.split()[3].startswith("127.0.0.1:")]
        check("daemons listen only on 127.0.0.1", ls and not bad, "\n".join(bad or ["no sockets"]))

        src = os.path.join(tmp, "blob")
        payload = os.urandom(1000) + b"gomirror"
        with open(src, "wb") as f:
            f.write(payload)
        odd = "example.com/!upper/@v/v1.0.0+incompatible.zip"
        tilde = "example.com/~user/@v/list"
        for key in (odd, tilde):
            r = g.aws("s3api", "put-object", "--bucket", g.bucket, "--key", key, "--body", src)
            check(f"put-object {key}", r.returncode == 0, r.stderr)
        dst = os.path.join(tmp, "got")
        r = g.aws("s3api", "get-object", "--bucket", g.bucket, "--key", odd, dst)
        ok = r.returncode == 0 and open(dst, "rb").read() == payload
        check("get-object returns the same bytes", ok, r.stderr)
        st, _, body = g.s3("GET", "/" + g.bucket + "/" + odd)
        check("stdlib SigV4 GET of the same key", st == 200 and body == payload, f"{st} {body[:300]!r}")

        # Five objects under one prefix, listed two at a time.
        keys = [f"list/k{i}@v1+x!" for i in range(5)]
        for k in keys:
            g.s3("PUT", f"/{g.bucket}/{k}", body=k.encode())
        seen, token, pages = [], None, 0
        while True:
            args = ["s3api", "list-objects-v2", "--bucket", g.bucket, "--prefix", "list/",
                    "--max-keys", "2", "--no-paginate"]
            if token:
                args += ["--continuation-token", token]
            r = g.aws(*args)
            if not check(f"list-objects-v2 page {pages + 1}", r.returncode == 0, r.stderr):
                break
            doc = json.loads(r.stdout or "{}")
            pages += 1
            seen += [c["Key"] for c in doc.get("Contents", [])]
            if not doc.get("IsTruncated"):
                break
            token = doc.get("NextContinuationToken")
            if not check("NextContinuationToken present", token, doc) or pages > 5:
                break
        check("continuation lists 5 keys in 3 pages", seen == keys and pages == 3,
              f"pages={pages} keys={seen}")
        r = g.aws("s3api", "list-objects-v2", "--bucket", g.bucket, "--delimiter", "/",
                  "--prefix", "example.com/")
        doc = json.loads(r.stdout or "{}") if r.returncode == 0 else {}
        cps = sorted(p["Prefix"] for p in doc.get("CommonPrefixes", []))
        check("delimiter gives CommonPrefixes", cps == ["example.com/!upper/", "example.com/~user/"],
              f"{cps} {r.stderr}")

        # Conditional PUT and signatures with curl --aws-sigv4.
        def curl(*args, secret=None):
            cmd = ["curl", "-sS", "--noproxy", "*", "-o", os.path.join(tmp, "curl.out"),
                   "-w", "%{http_code}", "--aws-sigv4", f"aws:amz:{g.region}:s3",
                   "--user", f"{g.access_key}:{secret or g.secret_key}",
                   "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD", *args]
            r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            with open(os.path.join(tmp, "curl.out"), "rb") as f:
                return r.stdout.strip(), f.read().decode(errors="replace")
        qodd = urllib.parse.quote(odd, safe="/-_.~")
        code, out = curl("-X", "PUT", "-H", "If-None-Match: *", "--data-binary", "@" + src,
                         f"{g.endpoint}/{g.bucket}/{qodd}")
        check("PUT If-None-Match: * on an existing key -> 412", code == "412", f"{code} {out[:300]}")
        newkey = "example.com/new/@v/v0.1.0.mod"
        code, out = curl("-X", "PUT", "-H", "If-None-Match: *", "--data-binary", "@" + src,
                         f"{g.endpoint}/{g.bucket}/{urllib.parse.quote(newkey, safe='/')}")
        check("PUT If-None-Match: * on a new key -> 200", code == "200", f"{code} {out[:300]}")
        st, _, body = g.s3("PUT", f"/{g.bucket}/{odd}", body=b"x", headers={"If-None-Match": "*"})
        check("stdlib PUT If-None-Match: * -> 412", st == 412, f"{st} {body[:200]!r}")
        code, out = curl(f"{g.endpoint}/{g.bucket}/{qodd}", secret="wrong-secret")
        check("wrong secret -> 403 SignatureDoesNotMatch",
              code == "403" and "SignatureDoesNotMatch" in out, f"{code} {out[:300]}")
        code, out = curl(f"{g.endpoint}/{g.bucket}/{qodd}")
        check("curl --aws-sigv4 GET of the odd key -> 200", code == "200", f"{code} {out[:300]}")
        # Any region in the credential scope verifies (RGW does not compare it).
        for region in ("default", "eu-west-9"):
            st, _, body = request("GET", f"{g.endpoint}/{g.bucket}/{odd}", g.access_key,
                                  g.secret_key, region)
            check(f"signing region {region!r} also accepted", st == 200, f"{st} {body[:200]!r}")

        # Multipart upload via aws s3 cp with a small threshold.
        big = os.path.join(tmp, "big")
        with open(big, "wb") as f:
            f.write(os.urandom(20 << 20))
        cfg = os.path.join(tmp, "aws-config")
        with open(cfg, "w") as f:
            f.write("[default]\ns3 =\n  multipart_threshold = 5MB\n  multipart_chunksize = 5MB\n")
        env_cfg = g.aws_env()
        env_cfg["AWS_CONFIG_FILE"] = cfg
        t1 = time.monotonic()
        r = subprocess.run([AWS, "--endpoint-url", g.endpoint, "s3", "cp", big,
                            f"s3://{g.bucket}/big/@v/v2.0.0.zip"], env=env_cfg,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        check("multipart upload of 20 MiB (aws s3 cp)", r.returncode == 0, r.stderr)
        print(f"multipart upload: {time.monotonic() - t1:.2f}s", flush=True)
        r = g.aws("s3api", "head-object", "--bucket", g.bucket, "--key", "big/@v/v2.0.0.zip")
        etag = json.loads(r.stdout or "{}").get("ETag", "") if r.returncode == 0 else ""
        check("multipart object has a multipart ETag", etag.endswith('-4"'), f"{etag} {r.stderr}")
        r = g.aws("s3", "cp", f"s3://{g.bucket}/big/@v/v2.0.0.zip", os.path.join(tmp, "big.got"))
        same = r.returncode == 0 and open(os.path.join(tmp, "big.got"), "rb").read() == open(big, "rb").read()
        check("multipart object downloads intact", same, r.stderr)

        # Gateway restart keeps the data.
        t1 = time.monotonic()
        g.stop_gateway()
        t_stop = time.monotonic() - t1
        check("gateway port closed after stop_gateway", not port_open(g.rgw_port))
        r = g.aws("s3api", "head-bucket", "--bucket", g.bucket, "--cli-read-timeout", "2",
                  "--cli-connect-timeout", "2")
        check("aws fails while the gateway is down", r.returncode != 0, r.stdout)
        t1 = time.monotonic()
        g.start_gateway()
        print(f"stop_gateway: {t_stop:.2f}s  start_gateway: {time.monotonic() - t1:.2f}s", flush=True)
        r = g.aws("s3api", "list-objects-v2", "--bucket", g.bucket)
        n = len(json.loads(r.stdout or "{}").get("Contents", [])) if r.returncode == 0 else -1
        check("objects survive a gateway restart", n == 2 + 5 + 1 + 1, f"{n} objects {r.stderr}")
        st, _, body = g.s3("GET", "/" + g.bucket + "/" + odd)
        check("odd key readable after restart", st == 200 and body == payload, st)
        t1 = time.monotonic()
        g.stop_gateway(sig=signal.SIGKILL)
        g.start_gateway()
        print(f"kill+start_gateway: {time.monotonic() - t1:.2f}s", flush=True)
        st, _, body = g.s3("GET", "/" + g.bucket + "/" + odd)
        check("odd key readable after a SIGKILL of radosgw", st == 200 and body == payload, st)
        print(f"rss kB: {g.rss_kb()}", flush=True)
    except Exception as e:  # noqa: BLE001
        check("no exception", False, f"{type(e).__name__}: {e}")
    finally:
        pids = list(g.pids().values())
        t1 = time.monotonic()
        g.stop()
        g.stop()  # idempotent
        print(f"stop: {time.monotonic() - t1:.2f}s", flush=True)
        left = [p for p in pids if os.path.exists(f"/proc/{p}")]
        check("all daemons gone after stop", not left, left)
        if keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    npass = sum(results)
    nfail = len(results) - npass
    print(f"total: {time.monotonic() - t0:.2f}s")
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
