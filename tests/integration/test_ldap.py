"""LDAP as gomirror's identity source, against a real OpenLDAP slapd 2.5
(tests/tools/slapd.py) on loopback: users (inetOrgPerson, {SSHA} passwords)
in groupOfNames and posixGroup groups that only the service account may
read, gomirror searching and binding over ldap://, StartTLS and ldaps://
with a CA made by tests/tools/tls.py. Plain HTTP requests with Basic
credentials check: the group rules, 401 for a wrong password or an unknown
user, TLS that fails closed (untrusted or wrong-host certificate: 503, no
plain-text fallback), slapd stopped or hung (cached credentials keep working,
an uncached user gets 503 within the timeout, slapd back: works again), many
first logins at once, and that no password is ever logged or answered."""

import base64
import os
import re
import secrets
import signal
import threading
import time

import harness
import slapd
import tls
from harness import check, eq

HELLO = "example.com/hello"
LEGACY = "example.com/legacy"

RULES = """# first match wins
deny   user:bob        example.com/notags
allow  group:payments  example.com/hello
allow  group:ops       example.com/hello
deny   *               example.com/hello
allow  authenticated   *
"""

# Random each run, so finding one in a log cannot be a coincidence of the
# fixtures.
PW = {u: f"{u}-{secrets.token_urlsafe(12)}" for u in
      ("alice", "bob", "carol", "jsmith", "twin", "nogroup")}
PW.update({f"user{i:02d}": f"u{i:02d}-{secrets.token_urlsafe(12)}" for i in range(16)})
# A colon (Basic splits at the first one only), a space and UTF-8.
PW["carol"] = f"c:{secrets.token_urlsafe(9)} w\u00f6rd \u20ac"
SERVICE_PW = "svc-" + secrets.token_urlsafe(12)
ROOT_PW = "root-" + secrets.token_urlsafe(12)
WRONG_PW = "wrong-" + secrets.token_urlsafe(12)  # typed by mistake: a secret too
USERS = {u: pw for u, pw in PW.items() if u != "twin"}  # twin: added by its test
# A DN with characters RFC 4515 makes gomirror escape in the group filter.
USERS["jsmith"] = {"password": PW["jsmith"], "rdn": r"cn=Smith\, John (Pay*ments)"}
CROWD = [f"user{i:02d}" for i in range(16)]
GROUPS = {
    "payments": ["alice", "jsmith"],           # groupOfNames, member = DN
    "platform": ["bob"] + CROWD,
    "ops": {"memberUid": ["carol"]},          # posixGroup, memberUid = uid
}
ALL_SECRETS = list(PW.values()) + [SERVICE_PW, ROOT_PW, WRONG_PW]


# ------------------------------------------------------------------ set-up

_CA = {}


def make_ca(t, key="good", **kw):
    """One CA (and server certificate) per script run and kind."""
    if key not in _CA:
        _CA[key] = tls.make_ca(os.path.join(t.runner.tmp, f"ca-{key}"), **kw)
    return _CA[key]


def start_slapd(t, ca=None):
    """slapd with the users and groups above, killed with the test."""
    def factory(name, argv, output, ready_port):
        p = harness.Proc(name, argv, output, ready_port=ready_port)
        t.procs.append(p)  # stopped by t.cleanup(), and at exit by harness
        return p
    s = slapd.Slapd(t.mkdtemp("slapd"), ca or make_ca(t), users=USERS, groups=GROUPS,
                    service_password=SERVICE_PW, root_password=ROOT_PW,
                    proc_factory=factory)
    try:
        return s.start()
    except slapd.SlapdError as e:
        raise harness.Failure(f"slapd: {e}")


def basic(user, pw):
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()}


SENT = set()  # every Authorization header value sent: secrets as well


class Env:
    """slapd, an upstream and a gomirror using the directory; get() keeps
    every response for the secrets check."""

    def __init__(self, t, url=None, s=None, **keys):
        self.t = t
        self.s = s or start_slapd(t)
        self.rules = os.path.join(t.mkdtemp("rules"), "rules")
        with open(self.rules, "w") as f:
            f.write(RULES)
        url = self.s.ldaps_url if url == "ldaps" else url or self.s.url
        flags = dict(auth_ldap_url=url,
                     auth_ldap_bind_dn=self.s.service_dn,
                     auth_ldap_bind_password=SERVICE_PW,
                     auth_ldap_user_base=self.s.user_base,
                     auth_ldap_group_base=self.s.group_base,
                     auth_rules=self.rules, auth_cache_ttl=300, auth_ldap_timeout=2)
        flags.update(keys)
        self.gm = t.start_gomirror(upstream=t.start_upstream(), **flags)
        self.responses = []

    def get(self, path, user=None, pw=None, timeout=15):
        h = basic(user, PW[user] if pw is None else pw) if user else {}
        if h:
            SENT.add(h["Authorization"].split(" ", 1)[1])
        r = self.gm.get(path, headers=h, timeout=timeout)
        self.responses.append((path, user, r))
        return r

    def list_(self, module, user, pw=None):
        return self.get(f"/{module}/@v/list", user, pw)

    def finish(self):
        """No password in gomirror's log (the audit log goes there too) or
        in any response; also asks the endpoints that describe the server."""
        for path in ("/healthz", "/readyz", "/metrics", "/stats"):
            self.get(path, "alice")
        found = []
        with open(self.gm.log, "rb") as f:
            log = f.read()
        check(b"access GET" in log, "gomirror's log holds no access lines: wrong file?")
        needles = [s.encode() for s in ALL_SECRETS] + [s.encode() for s in SENT]
        for sec in needles:
            if sec in log:
                found.append(f"gomirror log: {sec[:6]}...")
            for path, user, r in self.responses:
                if sec in r.body + str(r.headers).encode():
                    found.append(f"response to {user}'s {path}: {sec[:6]}...")
        eq(found, [], "passwords (or Authorization values) found")


def one_line(r, what):
    """The body is exactly one line of text."""
    text = r.text
    check(text.endswith("\n") and text.count("\n") == 1,
          f"{what}: body is not one line: {text!r}")
    return text.strip()


def expect_401(r, what):
    eq(r.status, 401, f"{what}: status ({r.text.strip()})")
    eq(r.headers.get("WWW-Authenticate"), 'Basic realm="gomirror"',
       f"{what}: WWW-Authenticate")
    line = one_line(r, what)
    check(line.startswith("authentication failed"), f"{what}: body {line!r}")


def expect_503(r, what):
    eq(r.status, 503, f"{what}: status ({r.text.strip()})")
    line = one_line(r, what)
    check("identity provider" in line and "unavailable" in line and "LDAP" in line,
          f"{what}: the body does not say the identity provider (LDAP) is unavailable: "
          f"{line!r}")
    check(r.headers.get("WWW-Authenticate") is None,
          f"{what}: a 503 must not ask for other credentials")
    return line


def expect_versions(r, what):
    eq(r.status, 200, f"{what}: status ({r.text.strip()})")
    check("v1.0.0" in r.text.split(), f"{what}: no v1.0.0 in the version list {r.text!r}")


def slapd_saw(s, needle):
    return [l for l in s.log_text().splitlines() if needle in l]


_BIND = re.compile(r'BIND dn="([^"]*)" mech=SIMPLE .*\bssf=(\d+)')


def bind_ssf(s, dn):
    """The security strength (0: plain text, 256: TLS) of every simple
    bind slapd logged for dn."""
    out = []
    for line in s.log_text().splitlines():
        m = _BIND.search(line)
        if m and m.group(1).lower() == dn.lower():
            out.append(int(m.group(2)))
    return out


# ------------------------------------------------------------------ tests

def test_group_rules(t):
    """Groups from the directory decide: payments (groupOfNames) and ops
    (posixGroup memberUid) read example.com/hello, platform gets a 403 that
    names the user and the rule, everyone reads the rest."""
    e = Env(t)
    expect_versions(e.list_(HELLO, "alice"), "alice (payments) lists hello")
    expect_versions(e.list_(HELLO, "carol"), "carol (ops, posixGroup) lists hello")
    # jsmith's DN has ',', '(' , ')' and '*': the {dn} in the group filter
    # must be escaped for the member match to work.
    expect_versions(e.list_(HELLO, "jsmith"), "jsmith (payments, DN with specials)")
    r = e.get(f"/{HELLO}/@v/v1.0.0.info", "alice")
    eq(r.status, 200, "alice reads hello's .info")
    eq(r.json().get("Version"), "v1.0.0", "hello .info version")

    for user in ("bob", "nogroup"):
        r = e.list_(HELLO, user)
        eq(r.status, 403, f"{user} lists hello ({r.text.strip()})")
        line = one_line(r, f"{user}'s 403")
        check(line.startswith(f"access denied: {user} may not read {HELLO}"),
              f"{user}'s 403 does not name the user and module: {line!r}")
        check(f"deny * {HELLO}" in line, f"{user}'s 403 does not name the rule: {line!r}")
        expect_versions(e.list_(LEGACY, user), f"{user} lists legacy")
    expect_versions(e.list_(LEGACY, "alice"), "alice lists legacy")
    r = e.list_(HELLO, None)
    eq(r.status, 401, "anonymous lists hello")
    eq(r.headers.get("WWW-Authenticate"), 'Basic realm="gomirror"', "anonymous 401")
    # gomirror bound as the service account and as each user, over plain
    # ldap:// here (the TLS tests check the same binds are encrypted).
    check(bind_ssf(e.s, e.s.service_dn), "no service-account bind in slapd.log")
    eq(set(bind_ssf(e.s, e.s.dn("alice"))), {0}, "alice's binds (ssf) over ldap://")
    e.finish()


def test_wrong_password_unknown_user(t):
    """A wrong password, an unknown user, an empty password and an
    ambiguous user name are 401 with the Basic challenge; the right password
    works at once after a wrong one."""
    e = Env(t)
    expect_401(e.list_(LEGACY, "alice", WRONG_PW), "alice with a wrong password")
    expect_401(e.list_(LEGACY, "alice", WRONG_PW), "alice with a wrong password again")
    expect_401(e.list_(LEGACY, "alice", PW["bob"]), "alice with bob's password")
    expect_401(e.list_(LEGACY, "mallory", PW["alice"]), "an unknown user")
    expect_401(e.list_(LEGACY, "alice", ""), "alice with an empty password")
    expect_versions(e.list_(LEGACY, "alice"), "alice with her password after a wrong one")
    # Two entries with uid=twin: refused, never one picked at random.
    hashed = e.s.hash_password(PW["twin"])
    e.s.add(f"dn: ou=contractors,{e.s.people}\nobjectClass: organizationalUnit\n"
            "ou: contractors\n",
            f"dn: uid=twin,{e.s.people}\nobjectClass: inetOrgPerson\n"
            f"uid: twin\ncn: twin\nsn: twin\nuserPassword: {hashed}\n",
            f"dn: uid=twin,ou=contractors,{e.s.people}\nobjectClass: inetOrgPerson\n"
            f"uid: twin\ncn: twin2\nsn: twin2\nuserPassword: {hashed}\n")
    expect_401(e.list_(LEGACY, "twin"), "a user name with two entries")
    e.finish()


def test_user_name_case(t):
    """The directory matches uid without regard to case; gomirror must then
    know the user by the directory's spelling, or `deny user:bob` would not
    stop BOB (nor would rate limits or the audit log know them as one)."""
    e = Env(t)
    NOTAGS = "example.com/notags"
    r = e.list_(NOTAGS, "bob")
    eq(r.status, 403, f"bob lists {NOTAGS} ({r.text.strip()})")
    for typed in ("BOB", "Bob"):
        r = e.get(f"/{NOTAGS}/@v/list", typed, PW["bob"])
        eq(r.status, 403, f"{typed} (bob's password) lists {NOTAGS} ({r.text.strip()})")
        line = one_line(r, f"{typed}'s 403")
        check(line.startswith(f"access denied: bob may not read {NOTAGS}"),
              f"{typed} is not known as bob: {line!r}")
        check("deny user:bob" in line, f"{typed}'s 403 names another rule: {line!r}")
    r = e.get(f"/{LEGACY}/@v/list", "ALICE", PW["alice"])
    expect_versions(r, "ALICE (alice's password) lists legacy")
    with open(e.gm.log, errors="replace") as f:
        audit = [l for l in f if l.startswith("{") and '"source":"ldap"' in l]
    check(audit and not any('"user":"BOB"' in l or '"user":"ALICE"' in l for l in audit),
          "the audit log names a user as typed, not as the directory knows them")
    e.finish()


def test_starttls(t):
    """ldap:// with auth_ldap_starttls=true and the test CA: works, and slapd
    saw StartTLS; without the CA it fails closed (503, no plain fallback)."""
    e = Env(t, auth_ldap_starttls="true", auth_ldap_ca_file=make_ca(t)["ca"])
    expect_versions(e.list_(LEGACY, "bob"), "bob over StartTLS")
    expect_versions(e.list_(HELLO, "carol"), "carol over StartTLS")
    check(slapd_saw(e.s, "EXT oid=1.3.6.1.4.1.1466.20037"),
          "slapd did not see a StartTLS request")
    for dn in (e.s.service_dn, e.s.dn("bob"), e.s.dn("carol")):
        ssf = bind_ssf(e.s, dn)
        check(ssf and min(ssf) > 0, f"binds as {dn} not all over TLS (ssf {ssf})")
    e.finish()

    # The same directory, a gomirror trusting only the system CAs.
    e2 = Env(t, s=e.s, auth_ldap_starttls="true")
    n_service = len(bind_ssf(e.s, e.s.service_dn))
    expect_503(e2.list_(LEGACY, "nogroup"), "StartTLS with an untrusted certificate")
    eq(bind_ssf(e.s, e.s.dn("nogroup")), [], "nogroup's binds although TLS failed")
    eq(len(bind_ssf(e.s, e.s.service_dn)), n_service,
       "the service account bound although TLS failed")
    e2.finish()


def test_ldaps(t):
    """ldaps:// with auth_ldap_ca_file works; with no CA file (untrusted
    certificate) or a trusted certificate for another host it fails closed
    with 503 and says the identity provider is unavailable."""
    e = Env(t, url="ldaps", auth_ldap_ca_file=make_ca(t)["ca"])
    expect_versions(e.list_(HELLO, "alice"), "alice over ldaps")
    r = e.list_(HELLO, "bob")
    eq(r.status, 403, "bob over ldaps lists hello")
    expect_401(e.list_(LEGACY, "bob", WRONG_PW), "bob over ldaps, wrong password")
    check(slapd_saw(e.s, f"(IP=127.0.0.1:{e.s.tls_port})"),
          "slapd saw no connection on its ldaps port")
    for dn in (e.s.service_dn, e.s.dn("alice"), e.s.dn("bob")):
        ssf = bind_ssf(e.s, dn)
        check(ssf and min(ssf) > 0, f"binds as {dn} not all over TLS (ssf {ssf})")
    e.finish()

    untrusted = Env(t, s=e.s, url="ldaps")  # the system CAs only
    n_service = len(bind_ssf(e.s, e.s.service_dn))
    expect_503(untrusted.list_(LEGACY, "carol"), "ldaps, untrusted certificate")
    eq(bind_ssf(e.s, e.s.dn("carol")), [], "carol's binds although TLS failed")
    eq(len(bind_ssf(e.s, e.s.service_dn)), n_service,
       "the service account bound although TLS failed")
    untrusted.finish()

    # A certificate from the trusted CA, but for other.example only.
    other = make_ca(t, "other-host", names=("other.example",), ips=())
    wrong = start_slapd(t, ca=other)
    wrong_host = Env(t, s=wrong, url="ldaps", auth_ldap_ca_file=other["ca"])
    expect_503(wrong_host.list_(LEGACY, "carol"), "ldaps, certificate for another host")
    wrong_host.finish()


def test_slapd_stopped(t):
    """slapd stopped: a cached user keeps working, an uncached user (and a
    cached user with another password) gets 503 saying the identity provider
    is unavailable, at once; slapd back: the uncached user works."""
    e = Env(t, auth_cache_ttl=300)
    expect_versions(e.list_(HELLO, "alice"), "alice before slapd stops")
    expect_versions(e.list_(LEGACY, "bob"), "bob before slapd stops")
    e.s.stop()
    check(not harness.port_open(e.s.port), "slapd still listens")
    expect_versions(e.list_(HELLO, "alice"), "alice (cached) with slapd stopped")
    r = e.list_(HELLO, "bob")
    eq(r.status, 403, f"bob (cached) lists hello with slapd stopped ({r.text.strip()})")
    t0 = time.time()
    expect_503(e.list_(LEGACY, "carol"), "carol (never seen) with slapd stopped")
    check(time.time() - t0 < 2, f"the 503 took {time.time() - t0:.1f}s with slapd down")
    expect_503(e.list_(LEGACY, "alice", WRONG_PW), "alice, another password, slapd stopped")
    e.s.start()
    expect_versions(e.list_(HELLO, "carol"), "carol once slapd is back")
    expect_401(e.list_(LEGACY, "alice", WRONG_PW), "alice's wrong password once slapd is back")

    # With the cache off, alice depends on slapd too: the cache is what
    # kept her working above.
    e2 = Env(t, s=e.s, auth_cache_ttl=0)
    expect_versions(e2.list_(HELLO, "alice"), "alice, no cache")
    e.s.stop()
    expect_503(e2.list_(HELLO, "alice"), "alice, no cache, slapd stopped")
    e.s.start()
    expect_versions(e2.list_(HELLO, "alice"), "alice, no cache, slapd back")
    e.finish()
    e2.finish()


def test_slapd_hangs(t):
    """slapd frozen (SIGSTOP: connections are accepted by the kernel, never
    answered): an uncached user gets 503 within auth_ldap_timeout, over
    ldap:// and ldaps://; slapd resumed: works."""
    e = Env(t, auth_ldap_timeout=1)
    e2 = Env(t, s=e.s, url="ldaps", auth_ldap_ca_file=make_ca(t)["ca"],
             auth_ldap_timeout=1)
    expect_versions(e.list_(LEGACY, "alice"), "alice before slapd hangs")
    os.killpg(e.s.proc.popen.pid, signal.SIGSTOP)
    try:
        for env, what in ((e, "ldap"), (e2, "ldaps")):
            t0 = time.time()
            expect_503(env.list_(LEGACY, "bob"), f"bob with slapd frozen ({what})")
            took = time.time() - t0
            check(took < 4, f"{what}: the 503 took {took:.1f}s with auth_ldap_timeout=1")
        expect_versions(e.list_(LEGACY, "alice"), "alice (cached) with slapd frozen")
    finally:
        os.killpg(e.s.proc.popen.pid, signal.SIGCONT)
    expect_versions(e2.list_(LEGACY, "bob"), "bob once slapd resumes")
    e.finish()
    e2.finish()


def test_many_first_logins(t):
    """17 users never seen before, each twice, all at once over ldaps: each
    gets its own answer (alice reads hello, every platform user gets a 403
    naming itself: no crossed identities, no crash), and then from the
    cache."""
    e = Env(t, url="ldaps", auth_ldap_ca_file=make_ca(t)["ca"])
    users = CROWD + ["alice"]
    for rnd in ("first logins", "cached"):
        results = {}

        def one(user, i):
            results[(user, i)] = e.list_(HELLO, user)
        threads = [threading.Thread(target=one, args=(u, i)) for u in users for i in range(2)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(30)
        eq(len(results), len(threads), f"{rnd}: requests that finished")
        for (user, i), r in sorted(results.items()):
            what = f"{rnd}: {user} (#{i}) at once with the others"
            if user == "alice":
                expect_versions(r, what)
                continue
            eq(r.status, 403, f"{what}: status ({r.text.strip()})")
            check(r.text.startswith(f"access denied: {user} may not read {HELLO}"),
                  f"{what}: {r.text.strip()!r}")
    e.finish()


def test_service_account_refused(t):
    """A wrong auth_ldap_bind_password: 503 for everyone (the directory
    cannot be searched), one log line saying the service account was
    refused, and neither password in the log."""
    wrong_svc = "svcwrong-" + secrets.token_urlsafe(12)
    ALL_SECRETS.append(wrong_svc)
    e = Env(t, auth_ldap_bind_password=wrong_svc)
    expect_503(e.list_(LEGACY, "alice"), "alice with the service account refused")
    with open(e.gm.log, errors="replace") as f:
        log = f.read()
    check("service account" in log and "auth_ldap_bind_password" in log,
          "no log line saying the service account was refused")
    e.finish()


if __name__ == "__main__":
    harness.main()
