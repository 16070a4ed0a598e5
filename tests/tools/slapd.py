#!/usr/bin/env python3
"""A real OpenLDAP server (Debian slapd 2.5) on loopback, for gomirror's tests.

    import slapd, tls
    ca = tls.make_ca(DIR + "/ca")
    s = slapd.Slapd(DIR, ca,
                    users={"alice": "pw-a", "bob": {"password": "pw-b", "rdn": "cn=Bob"}},
                    groups={"payments": ["alice"], "ops": {"memberUid": ["bob"]}},
                    proc_factory=...)       # optional: see below
    s.start()          # first start: writes slapd.conf, starts, waits, loads the entries
    s.url              # "ldap://127.0.0.1:P1"   (plain, and StartTLS)
    s.ldaps_url        # "ldaps://127.0.0.1:P2"
    s.ca               # the CA file that signed the server certificate
    s.service_dn, s.service_password    # the account for auth_ldap_bind_dn
    s.user_base, s.group_base           # ou=people,..., ou=groups,...
    s.dn("alice")                       # a user's DN
    s.stop(); s.start()                 # same data directory and ports
    s.add(ldif, ...)                    # more entries (ldapadd as the rootdn)
    s.hash_password(pw)                 # "{SSHA}..." by slappasswd
    s.search(base, filter, attr, ...)   # ldapsearch (service account; url="starttls")
    s.log_text()                        # slapd's `-d stats` output (connections, binds
                                        # with their ssf: 0 plain text, >0 TLS)

What it writes under DIR: slapd.conf (core, cosine, inetorgperson, nis
schemas from /etc/ldap/schema; back_mdb loaded from /usr/lib/ldap; TLS with
the given certificate), data/ (the mdb database), slapd.pid, slapd.args,
slapd.log, entries.ldif and the root password file. Nothing outside DIR is
touched; /etc/ldap/slapd.d and the system service are not used. slapd runs
in the foreground (`-d stats`) in a process group of its own, listening on
ldap://127.0.0.1:P1/ and ldaps://127.0.0.1:P2/ (free ports chosen once, kept
across restarts).

The directory tree (suffix dc=corp,dc=example):

    ou=people     users: inetOrgPerson, uid, userPassword ({SSHA} by slappasswd)
    ou=groups     groupOfNames (member = user DNs) or posixGroup (memberUid)
    ou=services   cn=gomirror: the service account (simpleSecurityObject)

Access control is what a real directory has: user passwords can only be used
to bind (`by anonymous auth`), a user reads only their own entry, and only
the service account (and the rootdn) can search people and groups. An
identity source that read groups as the user would see none.

proc_factory(name, argv, output, ready_port) makes the process object; the
default is a plain harness.Proc. Tests pass one that also registers it with
the test, so slapd is killed with the test's other processes (and at exit or
on a signal). The object needs start(), stop(), alive(), popen and output,
as harness.Proc has.

Every wait is bounded (timeout, default 20 s); a missing binary raises
SlapdError naming its Debian package.

    python3 slapd.py selftest     # starts one, binds, searches over ldap, StartTLS and ldaps
"""

import base64
import os
import shutil
import subprocess
import sys
import time
from netutil import free_port, port_open  # noqa: E402,F401

SUFFIX = "dc=corp,dc=example"
SCHEMAS = ("core", "cosine", "inetorgperson", "nis")
SCHEMA_DIR = "/etc/ldap/schema"
MODULE_DIR = "/usr/lib/ldap"
BINARIES = {"slapd": "slapd", "slappasswd": "slapd", "slaptest": "slapd", "ldapadd": "ldap-utils",
            "ldapsearch": "ldap-utils", "ldapmodify": "ldap-utils"}


class SlapdError(Exception):
    pass


def _bin(name):
    for d in ("/usr/sbin", "/usr/bin"):
        p = os.path.join(d, name)
        if os.access(p, os.X_OK):
            return p
    p = shutil.which(name)
    if not p:
        raise SlapdError(f"{name} not found (Debian package {BINARIES.get(name, name)})")
    return p


def _tail(path, n=25):
    try:
        with open(path, "rb") as f:
            return "\n".join(f.read().decode(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


def _harness():
    """tests/integration/harness.py, whose Proc runs slapd by default."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))), "integration"))
    import harness  # noqa: E402
    return harness


def _secret_file(path, secret):
    """Writes secret (no newline: ldap tools read the whole file) mode 0600."""
    if os.path.exists(path):
        os.unlink(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secret)
    return path


def _ldif_value(attr, value):
    """attr: value, base64-encoded (attr:: ...) when LDIF needs it."""
    v = str(value)
    safe = v and v[0] not in " :<" and v[-1] != " " and all(
        32 <= ord(c) < 127 for c in v)
    if safe:
        return f"{attr}: {v}\n"
    return f"{attr}:: {base64.b64encode(v.encode()).decode()}\n"


class Slapd:
    def __init__(self, d, ca, users=None, groups=None, suffix=SUFFIX,
                 service_password="svc-secret-Zq81", root_password="root-secret-Hw27",
                 proc_factory=None, timeout=20):
        """ca: tls.make_ca()'s dict (ca, cert, key). users: uid -> password
        or {"password": ..., "rdn": "cn=..."} (default rdn uid=UID). groups:
        cn -> [uid, ...] (groupOfNames) or {"memberUid": [uid, ...]}
        (posixGroup)."""
        self.dir = os.path.abspath(d)
        os.makedirs(self.dir, exist_ok=True)
        self.tls = ca
        self.ca = ca["ca"]
        self.suffix = suffix
        self.users = {}
        for uid, spec in (users or {}).items():
            spec = spec if isinstance(spec, dict) else {"password": spec}
            self.users[uid] = {"password": spec["password"],
                               "rdn": spec.get("rdn", f"uid={uid}")}
        self.groups = groups or {}
        self.people = f"ou=people,{suffix}"
        self.user_base = self.people
        self.group_base = f"ou=groups,{suffix}"
        self.service_dn = f"cn=gomirror,ou=services,{suffix}"
        self.service_password = service_password
        self.root_dn = f"cn=admin,{suffix}"
        self.root_password = root_password
        self.port, self.tls_port = free_port(), free_port()
        self.url = f"ldap://127.0.0.1:{self.port}"
        self.ldaps_url = f"ldaps://127.0.0.1:{self.tls_port}"
        self.conf = os.path.join(self.dir, "slapd.conf")
        self.data = os.path.join(self.dir, "data")
        self.log = os.path.join(self.dir, "slapd.log")
        self.timeout = timeout
        self.loaded = False
        argv = [_bin("slapd"), "-h", f"{self.url}/ {self.ldaps_url}/", "-f", self.conf,
                "-d", "stats"]
        factory = proc_factory or (lambda name, argv, output, ready_port:
                                   _harness().Proc(name, argv, output,
                                                   ready_port=ready_port, timeout=timeout))
        self.proc = factory("slapd", argv, self.log, self.port)

    # -- set-up ---------------------------------------------------------

    def dn(self, uid):
        return f"{self.users[uid]['rdn']},{self.people}"

    def hash_password(self, password):
        """password as {SSHA}, by slappasswd."""
        # -T reads the secret from a file: it never shows in a process list.
        pw = _secret_file(os.path.join(self.dir, ".pw"), password)
        try:
            r = self._run([_bin("slappasswd"), "-h", "{SSHA}", "-T", pw], what="slappasswd")
        finally:
            os.unlink(pw)
        return r.stdout.strip()

    def _env(self):
        env = dict(os.environ)
        for k in list(env):
            if k.startswith("LDAP"):
                del env[k]
        env.update(HOME=self.dir, LDAPTLS_CACERT=self.ca, LDAPTLS_REQCERT="demand")
        return env

    def _run(self, argv, what, input=None, check=True, timeout=15):
        try:
            r = subprocess.run(argv, input=input, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=self._env(),
                               cwd=self.dir, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise SlapdError(f"{what} timed out after {timeout}s")
        if check and r.returncode != 0:
            raise SlapdError(f"{what} exited with {r.returncode}: {r.stderr.strip()}"
                             f"{r.stdout.strip()[-500:]}")
        return r

    def _write_conf(self):
        os.makedirs(self.data, exist_ok=True)
        schemas = "".join(f"include {SCHEMA_DIR}/{s}.schema\n" for s in SCHEMAS)
        self.root_pw_file = _secret_file(os.path.join(self.dir, "rootpw"), self.root_password)
        conf = f"""# written by tests/tools/slapd.py
{schemas}
pidfile {self.dir}/slapd.pid
argsfile {self.dir}/slapd.args
modulepath {MODULE_DIR}
moduleload back_mdb
TLSCACertificateFile {self.tls["ca"]}
TLSCertificateFile {self.tls["cert"]}
TLSCertificateKeyFile {self.tls["key"]}
TLSVerifyClient never
sizelimit 500

database mdb
maxsize 67108864
suffix "{self.suffix}"
rootdn "{self.root_dn}"
rootpw {self.hash_password(self.root_password)}
directory {self.data}
index objectClass eq
index uid eq
index cn eq
index member eq
index memberUid eq

access to attrs=userPassword
  by self =xw
  by anonymous auth
  by * none
access to *
  by dn.exact="{self.service_dn}" read
  by self read
  by * none
"""
        with open(self.conf, "w") as f:
            f.write(conf)

    def _ldif(self):
        s = self.suffix
        dc = s.split(",")[0].split("=", 1)[1]
        out = [f"dn: {s}\nobjectClass: dcObject\nobjectClass: organization\ndc: {dc}\n"
               f"o: {dc}\n"]
        for ou in ("people", "groups", "services"):
            out.append(f"dn: ou={ou},{s}\nobjectClass: organizationalUnit\nou: {ou}\n")
        out.append(f"dn: {self.service_dn}\nobjectClass: organizationalRole\n"
                   f"objectClass: simpleSecurityObject\ncn: gomirror\n"
                   + _ldif_value("userPassword", self.hash_password(self.service_password)))
        for uid, u in self.users.items():
            cn = u["rdn"].split("=", 1)[1].replace("\\", "") if u["rdn"].startswith("cn=") \
                else uid
            out.append(_ldif_value("dn", self.dn(uid)) + "objectClass: inetOrgPerson\n"
                       + _ldif_value("uid", uid) + _ldif_value("cn", cn)
                       + _ldif_value("sn", uid)
                       + _ldif_value("userPassword", self.hash_password(u["password"])))
        for gid, (cn, members) in enumerate(self.groups.items(), 5000):
            if isinstance(members, dict):
                out.append(f"dn: cn={cn},{self.group_base}\nobjectClass: posixGroup\n"
                           f"cn: {cn}\ngidNumber: {gid}\n"
                           + "".join(_ldif_value("memberUid", m)
                                     for m in members.get("memberUid", [])))
            else:
                out.append(f"dn: cn={cn},{self.group_base}\nobjectClass: groupOfNames\n"
                           f"cn: {cn}\n" + "".join(_ldif_value("member", self.dn(m))
                                                  for m in members))
        return "\n".join(out)

    # -- life cycle -----------------------------------------------------

    def start(self):
        """Starts slapd and waits until it answers; the first start also
        writes the configuration and loads the entries. Returns self."""
        first = not os.path.exists(self.conf)
        if first:
            self._write_conf()
            # A configuration error in one clear line, before any wait.
            self._run([_bin("slaptest"), "-u", "-f", self.conf], what="slaptest")
        self.proc.start()
        self.wait_ready()
        if not self.loaded:
            ldif = os.path.join(self.dir, "entries.ldif")
            with open(ldif, "w") as f:
                f.write(self._ldif())
            self._run([_bin("ldapadd"), "-x", "-H", self.url, "-D", self.root_dn,
                       "-y", self.root_pw_file, "-o", "nettimeout=5", "-f", ldif],
                      what="ldapadd")
            self.loaded = True
        return self

    def wait_ready(self):
        deadline = time.time() + self.timeout
        last = ""
        while True:
            if not self.proc.alive():
                raise SlapdError(f"slapd exited:\n{_tail(self.log)}")
            r = self._run([_bin("ldapsearch"), "-x", "-LLL", "-H", self.url, "-o",
                           "nettimeout=2", "-b", "", "-s", "base", "namingContexts"],
                          what="ldapsearch", check=False, timeout=5)
            if r.returncode == 0 and self.suffix in r.stdout:
                return
            last = (r.stderr or r.stdout).strip()
            if time.time() > deadline:
                raise SlapdError(f"slapd does not answer on {self.url} after "
                                 f"{self.timeout}s ({last})\n{_tail(self.log)}")
            time.sleep(0.05)

    def stop(self):
        """Stops slapd (SIGTERM, then SIGKILL); data and ports are kept."""
        self.proc.stop()

    def alive(self):
        return self.proc.alive()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- helpers --------------------------------------------------------

    def search(self, base, filt="(objectClass=*)", *attrs, url=None, bind_dn=None,
               password=None, check=True):
        """ldapsearch as bind_dn (default the service account) over url
        (default plain ldap://); its result (returncode, stdout, stderr)."""
        bind_dn = self.service_dn if bind_dn is None else bind_dn
        password = self.service_password if password is None else password
        pw = _secret_file(os.path.join(self.dir, ".searchpw"), password)
        argv = [_bin("ldapsearch"), "-x", "-LLL", "-o", "nettimeout=5",
                "-H", url or self.url, "-b", base, filt, *attrs]
        if bind_dn:
            argv[2:2] = ["-D", bind_dn, "-y", pw]
        if url == "starttls":
            argv[argv.index("starttls")] = self.url
            argv.insert(1, "-ZZ")
        try:
            return self._run(argv, what="ldapsearch", check=check)
        finally:
            os.unlink(pw)

    def add(self, *entries):
        """ldapadd the LDIF entries (text each, in order) as the rootdn."""
        ldif = os.path.join(self.dir, f"add-{time.monotonic_ns()}.ldif")
        with open(ldif, "w") as f:
            f.write("\n".join(e.rstrip("\n") + "\n" for e in entries))
        self._run([_bin("ldapadd"), "-x", "-H", self.url, "-D", self.root_dn,
                   "-y", self.root_pw_file, "-o", "nettimeout=5", "-f", ldif], what="ldapadd")

    def log_text(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""


def selftest():
    import tempfile
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import tls  # noqa: E402
    d = tempfile.mkdtemp(prefix="slapd-selftest-")
    ok = True
    s = None

    def check(name, cond, detail=""):
        nonlocal ok
        ok &= bool(cond)
        print(f"{'ok  ' if cond else 'FAIL'} {name}{'' if cond else ': ' + detail}")

    try:
        t0 = time.time()
        ca = tls.make_ca(os.path.join(d, "ca"))
        s = Slapd(os.path.join(d, "slapd"), ca, users={"alice": "a-pw", "bob": "b-pw"},
                  groups={"payments": ["alice"], "ops": {"memberUid": ["bob"]}})
        s.start()
        print(f"started in {time.time() - t0:.2f}s: {s.url} {s.ldaps_url}")
        r = s.search(s.group_base, "(member=%s)" % s.dn("alice"), "cn")
        check("service account sees alice's groups", "cn: payments" in r.stdout, r.stdout)
        r = s.search(s.group_base, "(objectClass=*)", "cn", bind_dn=s.dn("alice"),
                     password="a-pw", check=False)
        check("a user binds but does not see the groups",
              r.returncode in (0, 32) and "cn: payments" not in r.stdout,
              r.stdout + r.stderr)
        r = s.search(s.people, "(uid=bob)", "cn", bind_dn=s.dn("alice"), password="nope",
                     check=False)
        check("wrong password refused", r.returncode == 49, r.stderr)
        r = s.search(s.people, "(uid=bob)", "cn", url="starttls")
        check("StartTLS", "cn: bob" in r.stdout, r.stderr)
        r = s.search(s.people, "(uid=bob)", "cn", url=s.ldaps_url)
        check("ldaps", "cn: bob" in r.stdout, r.stderr)
        s.stop()
        check("stopped", not port_open(s.port))
        s.start()
        r = s.search(s.people, "(uid=alice)", "uid")
        check("restarted with the same data", "uid: alice" in r.stdout, r.stderr)
        s.stop()
    finally:
        if s is not None:
            s.stop()
        shutil.rmtree(d, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    if sys.argv[1:] == ["selftest"]:
        sys.exit(selftest())
    print(__doc__)
    sys.exit(2)
