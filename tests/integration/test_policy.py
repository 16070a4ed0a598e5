"""The version policy with the real go client: deny rules with their
one-line reason, @latest and lists without denied or cooling versions, the
cooldown from the upstream's .info Time (2 days old held back, 8 days old
served), cooldown_exempt users (audited), `only` refusing without any
upstream request, the policy file re-read without a restart, `gomirror
policy check`, and the policy hook (allow, deny, down with each failure
mode)."""

import http.server
import json
import os
import subprocess
import threading
import time

import harness  # noqa: I001  (puts tests/tools on sys.path)
import fixtures
import govmodules
import tls
from harness import check, eq, run_go

GOV = "example.com/gov"
VULN = "example.com/vuln"
OTHER = "example.org/other"

POLICY = f"""# the security team's rules
deny      {VULN}    <v1.1.0    "CVE-2099-0001: use v1.1.0 or later"
cooldown  example.com/*         7d     # fresh releases wait a week
only      example.com/*
"""


def upstream_root(t):
    return govmodules.layout(t.mkdtemp("layout"), {
        GOV: {"v1.0.0": 20, "v1.1.0": 8, "v1.2.0": 2},
        VULN: {"v1.0.0": 60, "v1.1.0": 30},
        OTHER: {"v1.0.0": 60},
    })


def write(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def metric(gm, decision):
    text = gm.get("/metrics").text
    for line in text.splitlines():
        if line.startswith(f'gomirror_policy_decisions_total{{decision="{decision}"}} '):
            return int(line.split()[-1])
    raise harness.Failure(f"no policy decision metric {decision} in /metrics")


def versions(env, module):
    r = run_go(["list", "-m", "-retracted", "-versions", "-json", module], env)
    return r.json_stream()[0].get("Versions")


def test_deny_cooldown_latest_and_reload(t):
    up = t.start_upstream(root=upstream_root(t))
    pol = t.path("policy", "policy.txt")
    write(pol, POLICY)
    gm = t.start_gomirror(upstream=up, policy=pol)
    env = t.go_env(gm.url)
    src = govmodules.program(t, {GOV: "v1.0.0"})

    # A denied version: the go command prints the rule's one-line reason.
    r = run_go(["get", f"{VULN}@v1.0.0"], env, cwd=src, check=False)
    check(not r.ok, f"a denied version was fetched:\n{r}")
    check("CVE-2099-0001: use v1.1.0 or later" in r.out + r.err,
          f"the go command does not print the deny reason:\n{r}")
    eq(versions(env, VULN), ["v1.1.0"], "the list without the denied version")

    # The cooldown: v1.2.0 was published 2 days ago, v1.1.0 8 days ago.
    eq(versions(env, GOV), ["v1.0.0", "v1.1.0"], "the list without the cooling version")
    run_go(["get", f"{GOV}@latest"], env, cwd=src)
    with open(os.path.join(src, "go.mod")) as f:
        check(f"{GOV} v1.1.0" in f.read(), "go get @latest did not pick v1.1.0")
    r = run_go(["list", "-m", "-json", f"{GOV}@latest"], env, cwd=src)
    eq(r.json_stream()[0]["Version"], "v1.1.0", "@latest")
    resp = gm.get(f"/{GOV}/@latest")
    eq((resp.status, json.loads(resp.text)["Version"]), (200, "v1.1.0"), "gomirror's @latest")
    r = run_go(["get", f"{GOV}@v1.2.0"], env, cwd=src, check=False)
    avail = govmodules.rfc3339(time.time() - 2 * 86400 + 7 * 86400)[:10]
    check(not r.ok and "cooldown" in r.out + r.err and avail in r.out + r.err,
          f"the young version was not refused with its date ({avail}):\n{r}")
    check(not [k for k in gm.stored_keys() if "v1.2.0" in k],
          f"a version inside its cooldown was stored: {gm.stored_keys()}")
    run_go(["build", "./..."], env, cwd=src)
    check(metric(gm, "deny") >= 1 and metric(gm, "cooldown") >= 1 and
          metric(gm, "filtered") >= 1, "decisions not counted in /metrics")

    # Edits take effect without a restart; a stored version stays stored
    # while denied, is not served (hot cache or not), and comes back
    # without a refetch when the rule goes.
    info = f"/{GOV}/@v/v1.0.0.info"
    eq(gm.get(info).status, 200, "v1.0.0 before the edit")
    eq(gm.get(f"/{GOV}/@v/v1.0.0.zip").status, 200, "v1.0.0's zip before the edit")
    write(pol, POLICY + f'deny {GOV} =v1.0.0 "pulled: SR-7"\n')
    deadline = time.time() + 5
    while gm.get(info).status == 200 and time.time() < deadline:
        time.sleep(0.2)
    resp = gm.get(info)
    eq(resp.status, 403, "a stored version after a deny rule was added")
    eq(resp.text.strip(), f"{GOV}@v1.0.0 is denied: pulled: SR-7 (policy line 5)",
       "the 403 line")
    eq(gm.get(f"/{GOV}/@v/v1.0.0.zip").status, 403, "its zip")
    check([k for k in gm.stored_keys() if "v1.0.0.zip" in k and GOV in k],
          "the denied version left storage")
    # A file that does not parse keeps the last good rules.
    write(pol, "deny this is not a rule\n")
    time.sleep(1.5)
    eq(gm.get(info).status, 403, "after a bad edit (the last good policy stays)")
    fetched = len(up.requests())
    write(pol, POLICY)
    deadline = time.time() + 5
    while gm.get(info).status != 200 and time.time() < deadline:
        time.sleep(0.2)
    eq(gm.get(info).status, 200, "the rule lifted")
    eq(gm.get(f"/{GOV}/@v/v1.0.0.zip").status, 200, "its zip again")
    eq([p for p in up.paths()[fetched:] if "v1.0.0" in p], [], "refetched after lifting")
    with open(gm.log) as f:
        log = f.read()
    check(log.count("keeping the last good policy") == 1,
          "the bad policy file was not logged exactly once")


def test_cooldown_exempt_user_is_audited(t):
    up = t.start_upstream(root=upstream_root(t))
    d = t.mkdtemp("auth")
    hp = os.path.join(d, "htpasswd")
    for i, (user, pw) in enumerate((("alice", "alice-pw"), ("bob", "bob-pw"))):
        p = subprocess.run(["htpasswd", "-b"] + (["-c"] if i == 0 else []) +
                           ["-B", hp, user, pw], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
        check(p.returncode == 0, f"htpasswd: {p.stdout!r}")
    groups = os.path.join(d, "groups")
    write(groups, "release: alice\n")
    audit = os.path.join(d, "audit.log")
    pol = t.path("policy", "policy.txt")
    write(pol, POLICY)
    gm = t.start_gomirror(upstream=up, policy=pol, auth_htpasswd=hp, auth_groups=groups,
                          audit_log=audit, audit_public="false",
                          cooldown_exempt="group:release")
    # The go command sends credentials over https only: TLS in front.
    ca = tls.make_ca(t.mkdtemp("tls"))
    hp = t.start_haproxy([gm], tls=ca)
    host = hp.url[len("https://"):]
    src = govmodules.program(t, {GOV: "v1.0.0"})
    bob = t.go_env(f"https://bob:bob-pw@{host}", SSL_CERT_FILE=ca["ca"])
    r = run_go(["get", f"{GOV}@v1.2.0"], bob, cwd=src, check=False)
    check(not r.ok and "cooldown" in r.out + r.err, f"bob got the young version:\n{r}")
    eq(versions(bob, GOV), ["v1.0.0", "v1.1.0"], "bob's list")
    alice = t.go_env(f"https://alice:alice-pw@{host}", SSL_CERT_FILE=ca["ca"])
    eq(versions(alice, GOV), ["v1.0.0", "v1.1.0", "v1.2.0"], "alice's list")
    run_go(["get", f"{GOV}@v1.2.0"], alice, cwd=src)
    run_go(["build", "./..."], alice, cwd=src)
    # Committed by alice, the young version is still held back from bob.
    eq(harness.http_get(f"{gm.url}/{GOV}/@v/v1.2.0.zip",
                        headers={"Authorization": "Basic Ym9iOmJvYi1wdw=="}).status,
       403, "bob, once alice's fetch committed it")
    time.sleep(0.3)
    with open(audit) as f:
        lines = [json.loads(l) for l in f if l.strip()]
    waived = [l for l in lines if l.get("action") == "cooldown_exempt"]
    check(waived, f"no cooldown_exempt audit line: {lines}")
    check(all(l["user"] == "alice" for l in waived), f"someone else was exempt: {waived}")
    check(any(l["version"] == "v1.2.0" and l["module"] == GOV and l["status"] == 200
              for l in waived), f"the exempt download is not audited: {waived}")
    check("cooldown" in waived[0].get("detail", ""), f"the audit line names no rule: {waived}")
    refused = [l for l in lines if l.get("action") == "policy_cooldown"]
    check(refused and all(l["user"] == "bob" and l["status"] == 403 for l in refused),
          f"bob's refusals are not audited: {lines}")
    check(metric(gm, "cooldown_exempt") >= 1, "exemptions not counted")


def test_only_refuses_without_upstream_request(t):
    up = t.start_upstream(root=upstream_root(t))
    pol = t.path("policy", "policy.txt")
    write(pol, POLICY)
    gm = t.start_gomirror(upstream=up, policy=pol)
    env = t.go_env(gm.url)
    src = govmodules.program(t, {GOV: "v1.0.0"})
    before = len(up.requests())
    r = run_go(["get", f"{OTHER}@v1.0.0"], env, cwd=src, check=False)
    check(not r.ok and "not in the policy's only list" in r.out + r.err,
          f"an unlisted module was not refused with the reason:\n{r}")
    for path in ("/@v/list", "/@latest", "/@v/v1.0.0.info", "/@v/v1.0.0.zip"):
        eq(gm.get(f"/{OTHER}{path}").status, 403, f"{OTHER}{path}")
    eq([p for p in up.paths()[before:] if OTHER in p], [],
       "upstream requests for a module outside `only`")
    check(metric(gm, "only") >= 1, "only refusals not counted")
    # Listed modules are fetched as usual.
    run_go(["get", f"{GOV}@v1.1.0"], env, cwd=src)


def test_policy_check_command(t):
    up = t.start_upstream(root=upstream_root(t))
    pol = t.path("policy", "policy.txt")
    write(pol, POLICY + f"keep {GOV} >=v1.1.0\n")
    data = t.mkdtemp("data")

    def check_cmd(*mv):
        p = subprocess.run([t.binary, "policy", "check", *mv, f"--policy={pol}",
                            f"--upstream={up.url}", f"--storage=fs://{data}",
                            "--log_level=error"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=30, cwd=t.tmp)
        return p.returncode, p.stdout + p.stderr

    rc, out = check_cmd(f"{VULN}@v1.0.0")
    eq(rc, 1, f"exit status of a denied version: {out}")
    check("denied by line 2" in out and "CVE-2099-0001" in out, f"output: {out}")
    rc, out = check_cmd(f"{GOV}@v1.2.0")
    eq(rc, 1, f"exit status of a cooling version: {out}")
    check("cooldown by line 3" in out and "held back until" in out, f"output: {out}")
    check("keep (line 5)" in out, f"the keep rule: {out}")
    rc, out = check_cmd(f"{GOV}@v1.1.0", f"{VULN}@v1.1.0")
    eq(rc, 0, f"exit status of allowed versions: {out}")
    check("allowed since" in out and f"{VULN}@v1.1.0" in out, f"output: {out}")
    rc, out = check_cmd(f"{OTHER}@v1.0.0")
    check("only (line 4)" in out, f"the only rule: {out}")
    rc, out = check_cmd("not a version")
    eq(rc, 2, f"a bad argument: {out}")


# ------------------------------------------------------------ the hook

class Hook:
    """A policy hook: 200 for modules under example.com/gov, 403 with a
    reason for the rest; every request body kept."""

    def __init__(self):
        self.bodies = []
        hook = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(n))
                hook.bodies.append(body)
                ok = body["module"] == GOV
                text = b"" if ok else b"blocked by the scanner: SCAN-42\nmore detail\n"
                self.send_response(200 if ok else 403)
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text)

            def log_message(self, *a):
                pass

        self.port = int(harness.free_port())
        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), H)
        self.thread = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.port}/check"

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()


def test_hook_allow_and_deny(t):
    root = upstream_root(t)
    up = t.start_upstream(root=root)
    hook = Hook()
    try:
        gm = t.start_gomirror(upstream=up, policy_hook=hook.url)
        env = t.go_env(gm.url)
        src = govmodules.program(t, {GOV: "v1.0.0"})
        run_go(["build", "./..."], env, cwd=src)
        got = [b for b in hook.bodies if b["version"] == "v1.0.0"]
        eq(len(got), 1, f"hook calls for {GOV}@v1.0.0: {hook.bodies}")
        zip_path = os.path.join(root, GOV, "@v", "v1.0.0.zip")
        eq(got[0], {"module": GOV, "version": "v1.0.0", "h1": fixtures.h1_zip(zip_path)},
           "the hook's request")
        r = run_go(["get", f"{VULN}@v1.1.0"], env, cwd=src, check=False)
        check(not r.ok and "blocked by the scanner: SCAN-42" in r.out + r.err and
              "more detail" not in r.out + r.err,
              f"the hook's refusal is not the go command's one line:\n{r}")
        check(not [k for k in gm.stored_keys() if "vuln" in k],
              f"a refused version was stored: {gm.stored_keys()}")
        n = len(hook.bodies)
        eq(gm.get(f"/{VULN}/@v/v1.1.0.info").status, 403, "the refusal again")
        eq(len(hook.bodies), n, "the refusal was not cached")
        check(metric(gm, "hook_allow") >= 1 and metric(gm, "hook_deny") >= 1,
              "hook answers not counted")
    finally:
        hook.stop()


def test_hook_down_closed_and_open(t):
    up = t.start_upstream(root=upstream_root(t))
    down = f"http://127.0.0.1:{harness.free_port()}/check"  # nothing listens
    closed = t.start_gomirror(upstream=up, policy_hook=down, policy_hook_timeout=2)
    resp = closed.get(f"/{GOV}/@v/v1.1.0.info")
    eq(resp.status, 503, f"hook down, failure closed: {resp.text}")
    check("policy hook is unavailable" in resp.text, f"reason: {resp.text!r}")
    check(not [k for k in closed.stored_keys() if "v1.1.0" in k], "committed while closed")
    check(metric(closed, "hook_down_refused") >= 1, "not counted")
    opened = t.start_gomirror(upstream=up, policy_hook=down, policy_hook_timeout=2,
                              policy_hook_failure="open")
    env = t.go_env(opened.url)
    src = govmodules.program(t, {GOV: "v1.1.0"})
    run_go(["build", "./..."], env, cwd=src)
    check([k for k in opened.stored_keys() if "v1.1.0.zip" in k], "not committed while open")
    check(metric(opened, "hook_down_allowed") >= 1, "not counted")
    with open(opened.log) as f:
        check("committing" in f.read(), "no warning for a commit without the hook")


if __name__ == "__main__":
    harness.main()
