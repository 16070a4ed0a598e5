"""Access control with the real go client: HAProxy terminates TLS in front of
gomirror (a CA made here with openssl, trusted through SSL_CERT_FILE), the
client sets GOPROXY=https://..., GOSUMDB on through gomirror and its
credentials in $HOME/.netrc, as a developer would. Users come from an
htpasswd file (bcrypt and SHA-512-crypt), a CI token from `gomirror token
new`, teams from a group file, and the rules say that only the payments team
reads git.corp.example/payments/*. Also: refused requests reach nothing (spy
upstream, spy checksum database and the git discovery proxy stay silent),
the audit log, rate limits (per replica and shared through Redis), the
bandwidth cap, file reloads, start-up checks, and that no secret is ever
logged. Both go clients (1.19 and 1.23) build through it."""

import base64
import json
import os
import re
import subprocess
import threading
import time
import urllib.request

import harness
import private_fixtures
import shipped_haproxy
import synthetic
import tls
from harness import check, eq, run_go

LEDGER = "git.corp.example/payments/ledger"
ALPHA = "git.corp.example/team/alpha"
HELLO = "example.com/hello"

ALICE, ALICE_PW = "alice", "Alice-pw-7f3a9"  # payments, bcrypt
BOB, BOB_PW = "bob", "Bob-pw-c41e2"  # platform, SHA-512-crypt
CAROL, CAROL_PW = "carol", "Carol-pw-99b0d"  # limited, bcrypt
DAVE, DAVE_PW = "dave", "Dave-pw-5e6f7"  # admins, bcrypt

RULES = """# who may read what; the first matching line wins
allow  group:payments  git.corp.example/payments/*
deny   *               git.corp.example/payments/*   # nobody else
allow  authenticated   *
"""


# ------------------------------------------------------------------ set-up

def htpasswd(path, user, pw, scheme="-B", create=False):
    args = ["htpasswd", "-b"] + (["-c"] if create else []) + [scheme, path, user, pw]
    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    check(p.returncode == 0, f"htpasswd: {p.stdout.decode(errors='replace')}")


def new_token(t, name, groups):
    """`gomirror token new`: (token, auth_tokens line)."""
    p = subprocess.run([t.binary, "token", "new", "--name", name, "--groups", groups],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
    eq(p.returncode, 0, f"token new: {p.stderr.decode()}")
    lines = [l for l in p.stdout.decode().splitlines() if l and not l.startswith("#")]
    eq(len(lines), 2, f"token new printed {lines}")
    token, line = lines
    check(token.startswith("gomirror_") and len(token) == len("gomirror_") + 43,
          f"token shape: {token}")
    check(line.startswith(f"{name} ") and token not in line, f"tokens line: {line}")
    return token, line


class Files:
    """The access-control files of one test, and every secret in them."""

    def __init__(self, t):
        d = t.mkdtemp("auth")
        self.htpasswd = os.path.join(d, "htpasswd")
        htpasswd(self.htpasswd, ALICE, ALICE_PW, create=True)
        htpasswd(self.htpasswd, BOB, BOB_PW, scheme="-5")
        htpasswd(self.htpasswd, CAROL, CAROL_PW)
        htpasswd(self.htpasswd, DAVE, DAVE_PW)
        self.token, line = new_token(t, "ci-payments", "ci")
        self.tokens = os.path.join(d, "tokens")
        with open(self.tokens, "w") as f:
            f.write("# CI tokens\n" + line + "\n")
        self.groups = os.path.join(d, "groups")
        with open(self.groups, "w") as f:
            f.write("payments: alice ci-payments\nplatform: bob\nlimited: carol\n"
                    "admins: dave\n")
        self.rules = os.path.join(d, "rules")
        with open(self.rules, "w") as f:
            f.write(RULES)
        self.audit = os.path.join(d, "audit.log")
        self.secrets = [ALICE_PW, BOB_PW, CAROL_PW, DAVE_PW, self.token]

    def keys(self, **extra):
        k = dict(auth_htpasswd=self.htpasswd, auth_tokens=self.tokens,
                 auth_groups=self.groups, auth_rules=self.rules, audit_log=self.audit,
                 auth_admins="group:admins")
        k.update(extra)
        return k


class Setup:
    pass


def setup(t, tls_front=True, **keys):
    """Spy upstream and checksum database, the git discovery proxy for
    git.corp.example, gomirror with access control, HAProxy with TLS."""
    s = Setup()
    s.pm = private_fixtures.ensure(t.runner.args.fixtures or os.path.join(
        os.path.dirname(t.binary), "fixtures"), log=None)
    s.files = Files(t)
    s.up = t.start_upstream()
    s.sdb = t.start_sumdb(name="sumdb.test")
    s.gg = t.start_gogetproxy(roots=[], hosts=[s.pm["host"]], depth=2)
    flags = dict(private=s.pm["private"], vcs_gitconfig=s.pm["gitconfig"],
                 vcs_insecure=s.pm["insecure"], vcs_http_proxy=s.gg.url,
                 trusted_proxies="127.0.0.1/32")
    flags.update(s.files.keys(**keys))
    s.gm = t.start_gomirror(upstream=s.up, sumdb=s.sdb, **flags)
    if tls_front:
        s.ca = tls.make_ca(t.mkdtemp("tls"))
        s.hp = t.start_haproxy([s.gm], tls=s.ca)
    return s


def client(t, s, login=None, password=None, go="go1.19"):
    """A developer's environment: GOPROXY through HAProxy over https, GOSUMDB
    on (found through gomirror), the private pattern in GONOSUMDB, and a
    .netrc line when login is given."""
    env = t.go_env(s.hp.url, gosumdb=s.sdb.key, GONOSUMDB="git.corp.example",
                   GOPRIVATE=None, GONOPROXY=None, SSL_CERT_FILE=s.ca["ca"], go=go)
    if login:
        # Go up to 1.22 matches the host name only, Go 1.23 the host and
        # port (req.Host) when the URL has one: a proxy on port 443 needs
        # just the first line.
        netrc = os.path.join(env["HOME"], ".netrc")
        with open(netrc, "w") as f:
            f.write(f"machine 127.0.0.1 login {login} password {password}\n"
                    f"machine 127.0.0.1:{s.hp.port} login {login} password {password}\n")
        os.chmod(netrc, 0o600)
    return env


def basic(user, pw):
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()}


def curl(url, ca, *args):
    """(status, body) of one curl request over https trusting ca."""
    p = subprocess.run(["curl", "-s", "--cacert", ca, "-o", "-", "-w", "\n%{http_code}",
                        *args, url], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=30)
    out = p.stdout.decode(errors="replace")
    body, _, code = out.rpartition("\n")
    return int(code or 0), body


def spies_saw(s, needle=""):
    """Requests the spies (upstream, checksum database, git discovery) got,
    whose line holds needle."""
    lines = s.up.requests() + s.sdb.requests()
    try:
        with open(s.gg.log) as f:
            lines += f.read().splitlines()
    except FileNotFoundError:
        pass
    return [l for l in lines if needle in l]


def assert_no_secrets(t, secrets):
    """No secret in any log, audit file or transcript of this test (the
    .netrc files and the token command's own output are the client's)."""
    found = []
    for dirpath, _dirs, files in os.walk(t.tmp):
        for fn in files:
            if fn == ".netrc" or fn in ("htpasswd", "tokens"):
                continue
            p = os.path.join(dirpath, fn)
            if not (fn.endswith(".log") or fn.startswith("audit") or "output" in fn):
                continue
            with open(p, "rb") as f:
                data = f.read()
            for sec in secrets:
                if sec.encode() in data or base64.b64encode(sec.encode()) in data:
                    found.append(f"{p}: {sec[:4]}...")
    eq(found, [], "secrets found in logs")


def audit_lines(path):
    try:
        with open(path) as f:
            return [json.loads(l) for l in f if l.strip()]
    except FileNotFoundError:
        return []


APP = ('package main\n\nimport (\n\t"fmt"\n\n\t"example.com/hello"\n'
       '\t"git.corp.example/payments/ledger"\n)\n\n'
       'func main() { fmt.Println(hello.Hello(), ledger.Version) }\n')


# ------------------------------------------------------------------ the go client

def test_no_netrc_prints_the_401_line(t):
    s = setup(t)
    for go in ("go1.19", "go1.23"):
        env = client(t, s, go=go)
        r = run_go(["mod", "download", "-json", f"{HELLO}@v1.0.0"], env, check=False)
        check(not r.ok, f"{go}: download without credentials succeeded")
        text = r.out + r.err
        check("authentication required" in text and ".netrc" in text,
              f"{go} did not print gomirror's 401 line: {text[-1500:]}")
    eq(spies_saw(s), [], "unauthenticated requests reached a spy")
    eq(s.gm.stored_keys(), [], "stored for an unauthenticated client")


def test_payments_user_builds_public_and_private(t):
    s = setup(t)
    for go in ("go1.19", "go1.23"):
        env = client(t, s, ALICE, ALICE_PW, go=go)
        src = t.scratch_module("example.com/app-" + go.replace(".", ""), {"main.go": APP})
        run_go(["get", f"{HELLO}@v1.1.0", f"{LEDGER}@v1.0.0"], env, cwd=src, timeout=300)
        out = os.path.join(t.tmp, "app-" + go)
        run_go(["build", "-o", out, "."], env, cwd=src, timeout=600)
        got = subprocess.run([out], stdout=subprocess.PIPE, timeout=30).stdout.decode()
        check("v1.0.0" in got, f"{go} app output: {got!r}")
        with open(os.path.join(src, "go.sum")) as f:
            gosum = f.read()
        check(f"{LEDGER} v1.0.0 h1:" in gosum and f"{HELLO} v1.1.0 h1:" in gosum,
              f"{go} go.sum: {gosum}")
    # The public module was verified through gomirror's checksum database.
    check(any("lookup/example.com/hello@" in p for p in s.sdb.requests()),
          f"no public lookup: {s.sdb.requests()}")
    eq([l for l in s.up.requests() + s.sdb.requests() if "corp.example" in l], [],
       "private path sent to the public upstream or checksum database")
    lines = audit_lines(s.files.audit)
    check(any(l["user"] == ALICE and l["module"] == LEDGER and l["action"] == "download"
              and l["status"] == 200 for l in lines), f"no audit line for the ledger: {lines[-5:]}")
    assert_no_secrets(t, s.files.secrets)


def test_other_team_gets_the_403_line(t):
    s = setup(t)
    env = client(t, s, BOB, BOB_PW)
    r = run_go(["mod", "download", "-json", f"{LEDGER}@v1.0.0"], env, check=False)
    check(not r.ok, "bob downloaded the payments module")
    text = r.out + r.err
    check(f"access denied: bob may not read {LEDGER}" in text and
          "git.corp.example/payments/*" in text,
          f"the go command did not print the 403 line: {text[-1500:]}")
    eq(spies_saw(s, "payments"), [], "a denied request reached a spy")
    eq([k for k in s.gm.stored_keys() if "payments" in k], [], "stored for a denied user")
    # Public modules still work for bob, and a 403 does not say whether the
    # module exists.
    got = run_go(["mod", "download", "-json", f"{HELLO}@v1.0.0"], env)
    check('"Version": "v1.0.0"' in got.out, f"public download: {got.out}")
    ca = s.ca["ca"]
    a = curl(f"{s.hp.url}/{LEDGER}/@v/v1.0.0.info", ca, "-u", f"{BOB}:{BOB_PW}")
    b = curl(f"{s.hp.url}/git.corp.example/payments/nonexistent/@v/v1.0.0.info", ca,
             "-u", f"{BOB}:{BOB_PW}")
    eq((a[0], b[0]), (403, 403), "403 for an existing and a missing module")
    eq(a[1].replace(LEDGER, "M"), b[1].replace("git.corp.example/payments/nonexistent", "M"),
       "403 lines differ between an existing and a missing module")
    eq(a[1].count("\n"), 1, "one-line 403")
    assert_no_secrets(t, s.files.secrets)


def test_ci_token_in_netrc_and_as_bearer(t):
    s = setup(t)
    env = client(t, s, "ci", s.files.token)
    got = run_go(["mod", "download", "-json", f"{LEDGER}@v1.0.0", f"{HELLO}@v1.0.0"], env)
    check(LEDGER in got.out and HELLO in got.out, f"token download: {got.out}")
    ca = s.ca["ca"]
    url = f"{s.hp.url}/{LEDGER}/@v/v1.0.0.mod"
    eq(curl(url, ca, "-H", f"Authorization: Bearer {s.files.token}")[0], 200, "Bearer token")
    wrong = s.files.token[:-4] + ("AAAA" if not s.files.token.endswith("AAAA") else "BBBB")
    st, body = curl(url, ca, "-H", f"Authorization: Bearer {wrong}")
    eq(st, 401, f"wrong token ({body!r})")
    eq(curl(url, ca, "-u", f"anyone:{wrong}")[0], 401, "wrong token as a password")
    lines = audit_lines(s.files.audit)
    check(any(l["user"] == "ci-payments" and l["source"] == "token" for l in lines),
          "token identity not in the audit log")
    assert_no_secrets(t, s.files.secrets + [wrong])


def test_removed_user_is_refused_without_restart(t):
    s = setup(t, tls_front=False)
    url = f"{s.gm.url}/{HELLO}/@v/v1.0.0.mod"
    eq(harness.http_get(url, headers=basic(BOB, BOB_PW)).status, 200, "bob before")
    # A file that no longer parses keeps the last good version.
    with open(s.files.htpasswd) as f:
        good = f.read()
    with open(s.files.htpasswd, "a") as f:
        f.write("mallory:$apr1$h4RCgVmM$yb4xGfr/JEedpiI3kvACw0\n")
    time.sleep(2.5)
    eq(harness.http_get(url, headers=basic(BOB, BOB_PW)).status, 200, "bob after a bad edit")
    with open(s.gm.log) as f:
        log = f.read()
    eq(log.count("keeping the last good version"), 1, "one error for the bad file")
    check("mallory" in log and "MD5-apr1" in log, "the error names the user and format")
    # Bob removed (written to a new file renamed into place, as a Kubernetes
    # Secret update does).
    tmp = s.files.htpasswd + ".new"
    with open(tmp, "w") as f:
        f.write("".join(l for l in good.splitlines(True) if not l.startswith("bob:")))
    os.replace(tmp, s.files.htpasswd)
    t0 = time.time()
    while True:
        st = harness.http_get(url, headers=basic(BOB, BOB_PW)).status
        if st == 401 or time.time() - t0 > 10:
            break
        time.sleep(0.2)
    eq(st, 401, "bob after removal")
    check(time.time() - t0 < 5, f"refused after {time.time() - t0:.1f}s")
    eq(harness.http_get(url, headers=basic(ALICE, ALICE_PW)).status, 200, "alice still in")
    assert_no_secrets(t, s.files.secrets)


# ------------------------------------------------------------------ refusals reach nothing

def test_refused_requests_reach_nothing(t):
    s = setup(t, tls_front=False)
    base = s.gm.url
    paths = []
    for mod in (LEDGER, HELLO):
        paths += [f"/{mod}/@v/list", f"/{mod}/@v/v1.0.0.info", f"/{mod}/@v/v1.0.0.mod",
                  f"/{mod}/@v/v1.0.0.zip", f"/{mod}/@latest", f"/{mod}/@v/master.info",
                  f"/sumdb/sumdb.test/lookup/{mod}@v1.0.0"]
    paths += ["/sumdb/sumdb.test/supported", "/sumdb/sumdb.test/latest", "/stats"]
    for p in paths:
        for hdrs, want in ((None, 401), (basic(ALICE, "wrong"), 401),
                           ({"Authorization": "Bearer gomirror_nope"}, 401)):
            r = harness.http_get(base + p, headers=hdrs)
            eq(r.status, want, f"GET {p} with {hdrs and list(hdrs.values())[0][:6]}")
            eq(r.headers.get("WWW-Authenticate"), 'Basic realm="gomirror"', f"{p} challenge")
            eq(r.text.count("\n"), 1, f"{p}: one line")
    for p in paths:
        if "payments" in p:
            r = harness.http_get(base + p, headers=basic(BOB, BOB_PW))
            eq(r.status, 403, f"bob GET {p}")
    eq(spies_saw(s), [], "refused requests reached the upstream, checksum database or git")
    eq(s.gm.stored_keys(), [], "refused requests stored something")
    # The spies do see allowed requests: the check above could fail.
    eq(harness.http_get(f"{base}/{LEDGER}/@v/v1.0.0.info", headers=basic(ALICE, ALICE_PW),
                        timeout=120).status, 200, "alice reads the ledger")
    check(spies_saw(s, "payments"), "the git discovery proxy saw no fetch for alice")


def test_probes_metrics_and_stats(t):
    s = setup(t, tls_front=False)
    for p in ("/healthz", "/readyz", "/metrics"):
        eq(s.gm.get(p).status, 200, f"{p} without credentials")
    # The status page names modules: like /stats it needs credentials.
    eq(s.gm.get("/").status, 401, "/ (the status page) without credentials")
    harness.http_get(f"{s.gm.url}/{LEDGER}/@v/v1.0.0.info", headers=basic(ALICE, ALICE_PW),
                     timeout=120)
    harness.http_get(f"{s.gm.url}/{HELLO}/@v/v1.0.0.info", headers=basic(BOB, BOB_PW))
    eq(s.gm.get("/stats").status, 401, "/stats anonymous")
    st = harness.http_get(f"{s.gm.url}/stats", headers=basic(BOB, BOB_PW)).json()
    mods = [m["module"] for m in st["top_today"]]
    check(HELLO in mods and LEDGER not in mods, f"bob's /stats modules: {mods}")
    check("top_users_today" not in st, "per-user detail shown to a non-admin")
    st = harness.http_get(f"{s.gm.url}/stats", headers=basic(DAVE, DAVE_PW)).json()
    users = {u["user"] for u in st.get("top_users_today", [])}
    check({ALICE, BOB} <= users, f"admin's per-user detail: {st}")
    check(LEDGER in [m["module"] for m in st["top_today"]], "admin sees every module")
    m = s.gm.get("/metrics").text
    for name in ("gomirror_auth_credentials_total", "gomirror_auth_denied_total",
                 "gomirror_rate_limited_total"):
        check(name in m, f"{name} missing from /metrics")
    # metrics_auth closes /metrics to anonymous clients.
    gm2 = t.start_gomirror(upstream="off", metrics_auth="true", **s.files.keys())
    eq(gm2.get("/metrics").status, 401, "/metrics anonymous with metrics_auth")
    eq(harness.http_get(f"{gm2.url}/metrics", headers=basic(BOB, BOB_PW)).status, 200,
       "/metrics with credentials")
    eq(gm2.get("/healthz").status, 200, "/healthz stays open")


# ------------------------------------------------------------------ audit

def test_audit_sequence(t):
    s = setup(t, tls_front=False, rate_limit_groups="limited:1/1")
    base = s.gm.url
    steps = [
        ("GET", f"/{HELLO}/@v/v1.0.0.info", basic(ALICE, ALICE_PW), 200),
        ("GET", f"/{LEDGER}/@v/v1.0.0.info", basic(BOB, BOB_PW), 403),
        ("GET", f"/{HELLO}/@v/v1.0.0.mod", basic(ALICE, "not-her-password"), 401),
        ("GET", f"/{HELLO}/@v/v1.0.0.mod", basic(CAROL, CAROL_PW), 200),
        ("GET", f"/{HELLO}/@v/v1.0.0.mod", basic(CAROL, CAROL_PW), 429),
        ("POST", f"/admin/purge?module={HELLO}", basic(DAVE, DAVE_PW), 200),
    ]
    got = []
    for method, path, hdrs, want in steps:
        r = harness.http_get(base + path, method=method, headers=hdrs)
        eq(r.status, want, f"{method} {path}")
        check(r.headers.get("X-Request-Id"), f"no X-Request-Id on {path}")
        got.append(r)
    s.gm.get("/healthz")  # probes leave no audit line
    deadline = time.time() + 5
    while len(audit_lines(s.files.audit)) < len(steps) and time.time() < deadline:
        time.sleep(0.05)
    lines = audit_lines(s.files.audit)
    want = [
        dict(user=ALICE, source="htpasswd", action="download", module=HELLO,
             version="v1.0.0", status=200, cache="miss"),
        dict(user=BOB, source="htpasswd", action="denied", module=LEDGER, version="v1.0.0",
             status=403, cache="-",
             detail="auth_rules line 3: deny * git.corp.example/payments/*"),
        dict(user=ALICE, source="anonymous", action="auth_failed", module="", version="",
             status=401, cache="-", detail="unknown user or wrong password"),
        dict(user=CAROL, source="htpasswd", action="download", module=HELLO,
             version="v1.0.0", status=200, cache="hit"),
        dict(user=CAROL, source="htpasswd", action="rate_limited", module="", version="",
             status=429, cache="-", detail="1/s burst 1 (this replica)"),
        dict(user=DAVE, source="htpasswd", action="admin_purge", module=HELLO, version="",
             status=200, cache="-"),
    ]
    eq(len(lines), len(want), f"audit lines: {lines}")
    # A line is written once its response has left, so lines of requests
    # close together may swap: each is found by its request id.
    by_id = {l["request_id"]: l for l in lines}
    for i, (w, r, step) in enumerate(zip(want, got, steps)):
        line = by_id.get(r.headers.get("X-Request-Id"))
        check(line, f"no audit line with request id {r.headers.get('X-Request-Id')}")
        shown = {k: line.get(k) for k in w}
        if "detail" not in w:
            check("detail" not in line, f"line {i}: unexpected detail {line.get('detail')}")
        eq(shown, w, f"audit line {i}")
        eq(line["request_id"], r.headers.get("X-Request-Id"), f"line {i} request id")
        eq(line["bytes"], len(r.body), f"line {i} bytes")
        eq(line["client"], "127.0.0.1", f"line {i} client")
        eq(line["path"], step[1].split("?")[0], f"line {i} path")
        check(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"]),
              f"line {i} time {line['time']}")
        check(isinstance(line["duration_ms"], float), f"line {i} duration")
        eq(sorted(line), sorted(["time", "request_id", "user", "source", "client", "action",
                                 "path", "module", "version", "status", "bytes",
                                 "duration_ms", "cache"] + (["detail"] if "detail" in w
                                                             else [])), f"line {i} keys")
    # The access log names the user too.
    with open(s.gm.log) as f:
        access = [l for l in f if " access " in l and "v1.0.0.info" in l]
    check(any(l.rstrip().endswith(" alice") for l in access), f"access log: {access}")
    assert_no_secrets(t, s.files.secrets + ["not-her-password"])


def test_audit_public_false_and_forwarded_client(t):
    s = setup(t, tls_front=True, audit_public="false")
    ca = s.ca["ca"]
    curl(f"{s.hp.url}/{HELLO}/@v/v1.0.0.info", ca, "-u", f"{BOB}:{BOB_PW}")
    curl(f"{s.hp.url}/{LEDGER}/@v/v1.0.0.info", ca, "-u", f"{ALICE}:{ALICE_PW}")
    curl(f"{s.hp.url}/{LEDGER}/@v/v1.0.0.info", ca, "-u", f"{BOB}:{BOB_PW}")
    time.sleep(0.3)
    lines = audit_lines(s.files.audit)
    eq([(l["user"], l["module"], l["status"]) for l in lines],
       [(ALICE, LEDGER, 200), (BOB, LEDGER, 403)], "private accesses and refusals only")
    # Through HAProxy (trusted) the client is X-Forwarded-For's address; a
    # client cannot claim another address to an untrusted gomirror.
    eq({l["client"] for l in lines}, {"127.0.0.1"}, "client through the proxy")
    r = harness.http_get(f"{s.gm.url}/{LEDGER}/@v/v1.0.0.info",
                         headers=dict(basic(BOB, BOB_PW), **{"X-Forwarded-For": "10.9.9.9"}))
    eq(r.status, 403, "bob direct")
    time.sleep(0.2)
    eq(audit_lines(s.files.audit)[-1]["client"], "10.9.9.9",
       "X-Forwarded-For from a trusted peer (127.0.0.1/32)")
    gm2 = t.start_gomirror(upstream="off", **s.files.keys(audit_log=t.path("audit2.log")))
    harness.http_get(f"{gm2.url}/{LEDGER}/@v/v1.0.0.info",
                     headers=dict(basic(BOB, BOB_PW), **{"X-Forwarded-For": "10.9.9.9"}))
    time.sleep(0.2)
    eq(audit_lines(t.path("audit2.log"))[-1]["client"], "127.0.0.1",
       "X-Forwarded-For from an untrusted peer is ignored")


# ------------------------------------------------------------------ rate limits

def test_rate_limit_burst_then_retry_after(t):
    s = setup(t, rate_limit="1", rate_burst="3")
    url = f"{s.gm.url}/{HELLO}/@v/v1.0.0.mod"
    statuses, last = [], None
    for _ in range(4):
        last = harness.http_get(url, headers=basic(ALICE, ALICE_PW))
        statuses.append(last.status)
    eq(statuses, [200, 200, 200, 429], "burst 3, then refused")
    after = int(last.headers.get("Retry-After") or 0)
    check(1 <= after <= 2, f"Retry-After: {last.headers.get('Retry-After')}")
    eq(last.text.count("\n"), 1, f"one-line 429: {last.text!r}")
    check("rate limit exceeded" in last.text and "alice" in last.text, last.text)
    # Other users have their own buckets.
    eq(harness.http_get(url, headers=basic(BOB, BOB_PW)).status, 200, "bob unaffected")
    time.sleep(after + 0.1)
    eq(harness.http_get(url, headers=basic(ALICE, ALICE_PW)).status, 200, "after Retry-After")
    # The go command prints the 429 line.
    for _ in range(4):
        harness.http_get(url, headers=basic(CAROL, CAROL_PW))
    env = client(t, s, CAROL, CAROL_PW)
    r = run_go(["mod", "download", "-json", f"{HELLO}@v1.1.0"], env, check=False)
    check(not r.ok and "rate limit exceeded" in r.out + r.err,
          f"the go command did not print the 429 line: {(r.out + r.err)[-800:]}")


def test_rate_limit_shared_through_redis(t):
    redis = t.start_redis()
    files = Files(t)
    up = t.start_upstream()
    data = t.mkdtemp("shared-data")  # replicas share one store
    reps = [t.start_gomirror(upstream=up, meta=redis.url, rate_limit="1", rate_burst="4",
                             data_dir=data, **files.keys()) for _ in range(2)]
    url = f"/{HELLO}/@v/v1.0.0.mod"
    statuses = [harness.http_get(reps[i % 2].url + url, headers=basic(ALICE, ALICE_PW)).status
                for i in range(5)]
    eq(statuses, [200, 200, 200, 200, 429], "one bucket of 4 across two replicas")
    check(redis.cli("--scan", "--pattern", "gomirror:rate:*").strip(), "no bucket in Redis")
    # Redis down: each replica limits on its own, and nobody is refused for it.
    redis.stop()
    for rep in reps:
        eq(harness.http_get(rep.url + url, headers=basic(BOB, BOB_PW)).status, 200,
           "with Redis down")
    with open(reps[0].log) as f:
        check("limiting per replica" in f.read(), "no log line about the fallback")


def test_bandwidth_cap_per_group(t):
    layout = t.mkdtemp("layout")
    synthetic.module(layout, "example.com/big", "v1.0.0", 512 << 10)
    up = t.start_upstream(root=layout)
    sdb = t.start_sumdb(root=layout, name="sumdb.test")
    files = Files(t)
    gm = t.start_gomirror(upstream=up, sumdb=sdb, rate_limit_mbps_groups="ci:4",
                          **files.keys())
    url = f"{gm.url}/example.com/big/@v/v1.0.0.zip"
    r = harness.http_get(url, headers=basic(ALICE, ALICE_PW), timeout=60)
    eq(r.status, 200, "warm the cache")
    size = len(r.body)

    def timed(hdrs):
        t0 = time.time()
        r = harness.http_get(url, headers=hdrs, timeout=60)
        eq((r.status, len(r.body)), (200, size), "zip")
        return time.time() - t0

    fast = timed(basic(ALICE, ALICE_PW))
    capped = timed({"Authorization": f"Bearer {files.token}"})
    # 4 Mbit/s is 500 kB/s; a quarter second's worth may go at once.
    floor = (size - 500_000 / 4) / 500_000
    check(capped >= floor * 0.9, f"capped download took {capped:.2f}s, cap floor {floor:.2f}s")
    check(fast < capped, f"uncapped {fast:.2f}s vs capped {capped:.2f}s")
    # Two downloads of one group share the cap.
    times = []
    ths = [threading.Thread(target=lambda: times.append(
        timed({"Authorization": f"Bearer {files.token}"}))) for _ in range(2)]
    t0 = time.time()
    for th in ths:
        th.start()
    for th in ths:
        th.join()
    both = time.time() - t0
    check(both >= (2 * size - 125_000) / 500_000 * 0.9, f"two capped downloads: {both:.2f}s")


# ------------------------------------------------------------------ deploy/haproxy.cfg

def test_shipped_haproxy_config_terminates_tls(t):
    """deploy/haproxy.cfg itself, with loopback addresses and a test
    certificate put in: https for the go command, http redirected, and the
    client's own X-Forwarded-For and X-Request-Id replaced by HAProxy's."""
    s = setup(t, tls_front=False)
    ca = tls.make_ca(t.mkdtemp("tls"))
    https, http = harness.free_port(), harness.free_port()
    cfg = shipped_haproxy.config(ca["pem"], https, http, [s.gm.port])
    path = t.path("haproxy.cfg")
    with open(path, "w") as f:
        f.write(cfg)
    p = subprocess.run(["haproxy", "-c", "-f", path], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT)
    eq(p.returncode, 0, f"haproxy -c: {p.stdout.decode()[-1500:]}")
    hp = harness.HAProxy("haproxy", ["haproxy", "-db", "-f", path], t.path("hp", "haproxy.log"),
                         ready_port=https)
    t._start(hp)
    hp.url, hp.port = f"https://127.0.0.1:{https}", https
    s.hp, s.ca = hp, ca
    env = client(t, s, ALICE, ALICE_PW)
    got = run_go(["mod", "download", "-json", f"{HELLO}@v1.0.0"], env)
    check('"Version": "v1.0.0"' in got.out, got.out)
    st = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}",
                         f"http://127.0.0.1:{http}/{HELLO}/@v/list"], stdout=subprocess.PIPE,
                        timeout=30).stdout.decode()
    check(st.startswith("301 https://"), f"plain http: {st}")
    p = subprocess.run(["curl", "-s", "-D", "-", "-o", "/dev/null", "--cacert", ca["ca"],
                        "-u", f"{BOB}:{BOB_PW}", "-H", "X-Forwarded-For: 10.6.6.6",
                        "-H", "X-Request-Id: spoofed", f"{hp.url}/{LEDGER}/@v/list"],
                       stdout=subprocess.PIPE, timeout=30)
    headers = p.stdout.decode()
    rid = re.search(r"(?im)^x-request-id: (\S+)", headers)
    check(rid and rid.group(1) != "spoofed", f"request id: {headers}")
    time.sleep(0.3)
    line = [l for l in audit_lines(s.files.audit) if l["user"] == BOB][-1]
    eq((line["client"], line["request_id"], line["status"]), ("127.0.0.1", rid.group(1), 403),
       "client address and request id through the shipped config")


# ------------------------------------------------------------------ start-up

def test_startup_refuses_weak_hashes_and_warns(t):
    bad = {
        "MD5-apr1": "eve:$apr1$h4RCgVmM$yb4xGfr/JEedpiI3kvACw0",
        "DES crypt": "eve:8ApQfYQt9sKLI",
        "SHA-1 ({SHA})": "eve:{SHA}GpHWL3ymc5liWkNopqtdSjuqYHM=",
        "plaintext": "eve:secret",
        "MD5-crypt": "eve:$1$abcdefgh$3s6QrCqKrwJ7eRZ4nTwmC/",
    }
    for name, line in bad.items():
        path = t.path(f"htpasswd-{len(line)}")
        with open(path, "w") as f:
            f.write(line + "\n")
        p = subprocess.run([t.binary, f"--auth_htpasswd={path}", "--listen=127.0.0.1:1",
                            "--upstream=off", f"--storage=fs://{t.mkdtemp('d')}"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
        err = p.stderr.decode()
        check(p.returncode != 0, f"{name}: gomirror started")
        last = [l for l in err.splitlines() if l.startswith("gomirror:")]
        eq(len(last), 1, f"{name}: one error line in {err!r}")
        check(f"{path}:1" in last[0] and "user eve" in last[0] and name.split(" ")[0] in last[0],
              f"{name}: {last[0]}")
        check("secret" not in err and "GpHWL3" not in err, f"{name}: hash echoed: {err}")
    # Auth on a non-loopback address: a warning about TLS; auth off: a line
    # saying so.
    files = Files(t)
    port = harness.free_port()
    log = t.path("wildcard.log")
    p = harness.Proc("gomirror", [t.binary, f"--listen=0.0.0.0:{port}", "--upstream=off",
                                  "--drain_delay=0",
                                  f"--storage=fs://{t.mkdtemp('d')}"] +
                     [f"--{k}={v}" for k, v in files.keys().items()], log,
                     ready_url=f"http://127.0.0.1:{port}/healthz")
    t._start(p)
    with open(log) as f:
        check("credentials cross the network in clear" in f.read(), "no TLS warning")
    gm2 = t.start_gomirror(upstream="off")
    with open(gm2.log) as f:
        check("access control is off" in f.read(), "no line saying access control is off")


if __name__ == "__main__":
    harness.main()
