"""The status page (GET /) and the metrics a dashboard needs (issue 11).

The page is loaded in a real headless Chromium (Debian's /usr/bin/chromium)
after hits, misses, a 404 and a 5xx from a broken upstream: its figures must
match what the access log says happened, it must load without a console
message (it has no scripts; a CSP violation would be one), and every string
from outside must arrive escaped. With access control on, anonymous clients
get 401, a normal user sees neither per-user detail nor private or forbidden
modules, and an administrator sees both. Every metric name the Grafana
dashboard (deploy/grafana/gomirror.json) and the chart's alert rules
(helm/.../templates, PrometheusRule, whatever exists when this runs) query
must exist in /metrics, and the new metrics must move when requests are made.

Set GOMIRROR_STATUS_SCREENSHOT=path to keep the browser's screenshot (that
is how docs/status-page.png is made)."""

import base64
import glob
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import time
import zlib
from html.parser import HTMLParser

import harness
import private_fixtures
from harness import Failure, check, eq

ROOT = os.path.dirname(os.path.dirname(harness.HERE))
CHROMIUM = "/usr/bin/chromium"
HELLO = "example.com/hello"
LEGACY = "example.com/legacy"
LEDGER = "git.corp.example/payments/ledger"
# The broken upstream's answer: markup and quotes, to prove the escaping.
BOOM = 'status-test <b>boom</b> & "quoted"'
BROKEN = f"/{LEGACY}/@v/v1.0.0.info"


def cmake_version():
    with open(os.path.join(ROOT, "CMakeLists.txt")) as f:
        m = re.search(r"project\(gomirror\s+VERSION\s+([0-9][0-9.]*)", f.read())
    check(m, "no project(gomirror VERSION ...) in CMakeLists.txt")
    return m.group(1)


# ------------------------------------------------------------------ HTML

class Page(HTMLParser):
    """The text of every element with an id, and every table with an id as
    rows of cell texts (the header row left out)."""

    def __init__(self, html):
        super().__init__(convert_charrefs=True)
        self.ids, self.tables = {}, {}
        self._open = []  # (tag, id, parts) of elements with an id
        self._table = self._row = self._cell = None
        self.feed(html)
        self.close()
        for k in self.tables:
            self.tables[k] = self.tables[k][1:]

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table" and a.get("id"):
            self._table = a["id"]
            self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self._row = []
            self.tables[self._table].append(self._row)
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
        if a.get("id"):
            self._open.append((tag, a["id"], []))

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = self._row = None
        if self._open and self._open[-1][0] == tag:
            _, id_, parts = self._open.pop()
            self.ids[id_] = "".join(parts).strip()

    def handle_data(self, data):
        for _, _, parts in self._open:
            parts.append(data)
        if self._cell is not None:
            self._cell.append(data)

    def get(self, id_):
        check(id_ in self.ids, f"the page has no element #{id_}")
        return self.ids[id_]

    def table(self, id_):
        check(id_ in self.tables, f"the page has no table #{id_}")
        return self.tables[id_]


def fmt_bytes(n):
    """status page's fmt_bytes."""
    v, u = float(n), 0
    units = ["B", "KiB", "MiB", "GiB", "TiB"]
    while v >= 1024 and u + 1 < len(units):
        v /= 1024
        u += 1
    return f"{v:.0f} B" if u == 0 else f"{v:.1f} {units[u]}"


def fmt_ratio(hits, misses):
    return "n/a" if hits + misses <= 0 else f"{100.0 * hits / (hits + misses):.1f} %"


def access_lines(path):
    """The JSON access-log lines of a gomirror started with log_format=json."""
    out = []
    with open(path, errors="replace") as f:
        for line in f:
            try:
                o = json.loads(line)
            except ValueError:
                continue
            if isinstance(o, dict) and o.get("msg") == "access":
                out.append(o)
    return out


# ------------------------------------------------------------------ Chromium

def chromium(t, url, *extra, timeout=120):
    """Runs headless Chromium on url with a fresh profile; (exit status,
    stdout, console lines). Chromium and its helpers run in their own
    process group, killed when it is done."""
    if not os.access(CHROMIUM, os.X_OK):
        raise Failure(f"{CHROMIUM} not found: install Debian's chromium "
                      "(deploy/install-deps.sh test)")
    profile = t.mkdtemp("chromium-profile")
    env = harness.clean_env(t.mkdtemp("chromium-home"))
    argv = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--hide-scrollbars",
            f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", *extra, url]
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         stdin=subprocess.DEVNULL, env=env, cwd=profile,
                         start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        raise Failure(f"chromium did not finish within {timeout}s: {' '.join(argv)}")
    finally:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    err = err.decode(errors="replace")
    # Console messages (log, errors, CSP violations) print as
    # "[...:INFO:CONSOLE:<line>] "<text>", source: <url> (<line>)".
    console = [l for l in err.splitlines() if ":CONSOLE" in l]
    if p.returncode != 0:
        raise Failure(f"chromium exited with {p.returncode}:\n{err[-3000:]}")
    return out.decode(errors="replace"), console


def png_info(path):
    """(width, height, distinct byte values of the pixel data) of a PNG."""
    with open(path, "rb") as f:
        data = f.read()
    check(data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG")
    width, height = struct.unpack(">II", data[16:24])
    idat, pos = b"", 8
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"IDAT":
            idat += data[pos + 8:pos + 8 + n]
        pos += 12 + n
    return width, height, len(set(zlib.decompress(idat)))


# ------------------------------------------------------------------ tests

def test_status_page_in_a_browser(t):
    up = t.start_upstream(faults={BROKEN: {"status": 500, "body": BOOM}})
    sdb = t.start_sumdb(name="sumdb.test")
    t0 = time.time()
    gm = t.start_gomirror(upstream=up, sumdb=sdb, log_format="json")
    v = t.fx["modules"][HELLO]["versions"][0]
    for i in range(4):  # a miss, then hits
        eq(gm.get(f"/{HELLO}/@v/{v}.info").status, 200, f"hello .info #{i}")
    eq(gm.get(f"/{HELLO}/@v/{v}.mod").status, 200, "hello .mod")
    eq(gm.get(f"/{HELLO}/@v/list").status, 200, "hello list")
    eq(gm.get("/example.com/nosuch/@v/v1.0.0.info").status, 404, "unknown module")
    r = gm.get(BROKEN)
    eq(r.status, 502, "a broken upstream")
    check("boom" in r.text, f"502 body: {r.text!r}")
    eq(gm.get(f"/sumdb/sumdb.test/lookup/{HELLO}@{v}").status, 200, "sumdb lookup")

    dom, console = chromium(t, gm.url + "/", "--dump-dom")
    eq(console, [], "console messages while loading the status page")
    page = Page(dom)

    # What happened, from the access log: every request before the page's.
    log = access_lines(gm.log)
    first_page = next((i for i, l in enumerate(log) if l["path"] == "/"), None)
    check(first_page is not None, "the browser's request is not in the access log")
    before = log[:first_page]
    hits = sum(1 for l in before if l["cache"] in ("hit", "stale"))
    misses = sum(1 for l in before if l["cache"] == "miss")
    errors = sum(1 for l in before if l["status"] >= 500)
    nbytes = sum(l["bytes"] for l in before)
    # The figures below are only worth checking if the workload made them.
    check(hits >= 3 and misses >= 1 and errors == 1, f"workload: {hits} hits, {misses} "
          f"misses, {errors} 5xx")
    check(any(l["status"] == 404 for l in before), "no 404 in the workload")

    eq(page.get("version"), cmake_version(), "version")
    eq(page.get("replica"), socket.gethostname(), "replica name")
    eq(page.get("ready"), "ready", "readiness")
    eq(page.get("requests-start"), str(len(before)), "requests since start")
    eq(page.get("requests-hour"), str(len(before)), "requests in the last hour")
    if time.time() - t0 < 55:
        eq(page.get("requests-minute"), str(len(before)), "requests in the last minute")
    else:
        check(int(page.get("requests-minute")) <= len(before), "requests in the last minute")
    eq(page.get("hits-start"), str(hits), "hits")
    eq(page.get("misses-start"), str(misses), "misses")
    eq(page.get("errors-start"), str(errors), "5xx answers")
    eq(page.get("ratio-start"), fmt_ratio(hits, misses), "hit ratio")
    eq(page.get("bytes-start"), fmt_bytes(nbytes), "bytes served")

    top = page.table("top-modules")
    answered = sum(1 for l in before
                   if l["path"].startswith(f"/{HELLO}/@v/") and l["status"] < 400)
    check(top and top[0] == [HELLO, str(answered)],
          f"top modules: {top}, want {HELLO} first with {answered}")
    check(all(row[0] != "example.com/nosuch" for row in top), f"a 404 in the top list: {top}")
    check("top-users" not in page.tables, "per-user detail without access control")

    errs = page.table("errors")
    check(errs, "no error lines")
    eq(errs[0][1:3], ["502", f"GET {BROKEN}"], "the last error line")
    check(BOOM in errs[0][3], f"the error line's reason: {errs[0][3]!r}")
    # Escaped: the markup arrives as text, never as an element.
    check("<b>boom</b>" not in dom and "&lt;b&gt;boom&lt;/b&gt;" in dom,
          "the upstream's markup was not escaped")

    ups = {row[0]: row for row in page.table("upstreams")}
    row = ups.get(up.url)
    check(row, f"upstream {up.url} missing: {ups}")
    check(row[2].endswith("ago") and row[3].endswith("ago"),
          f"upstream times (answer, error): {row}")
    check("answered 500" in row[4] and BOOM in row[4], f"upstream error: {row}")
    sumdb_rows = [r for k, r in ups.items() if k.startswith("sumdb.test (")]
    check(sumdb_rows and sumdb_rows[0][2].endswith("ago") and sumdb_rows[0][3] == "never",
          f"checksum database row: {sumdb_rows}")

    # HEAD answers the headers only.
    h = gm.get("/", method="HEAD")
    eq(h.status, 200, "HEAD /")
    eq(h.headers["Content-Type"], "text/html; charset=utf-8", "Content-Type")
    eq(h.body, b"", "HEAD body")
    check("default-src 'none'" in (h.headers["Content-Security-Policy"] or ""),
          f"CSP: {h.headers['Content-Security-Policy']}")

    # The screenshot: a real rendering of the whole page, not a blank one.
    shot = t.path("status-page.png")
    _, console = chromium(t, gm.url + "/", f"--screenshot={shot}", "--window-size=1100,1480")
    eq(console, [], "console messages while taking the screenshot")
    w, hgt, distinct = png_info(shot)
    eq((w, hgt), (1100, 1480), "screenshot size")
    check(distinct > 20, f"the screenshot looks blank ({distinct} distinct bytes)")
    keep = os.environ.get("GOMIRROR_STATUS_SCREENSHOT")
    if keep:
        shutil.copyfile(shot, keep)

    # The console check above can fail: a page with a script error and a
    # CSP violation gives console lines.
    bad = t.path("bad.html")
    with open(bad, "w") as f:
        f.write("<!DOCTYPE html><meta http-equiv='Content-Security-Policy' "
                "content=\"default-src 'none'\"><p>x</p><script>nosuch()</script>")
    _, console = chromium(t, "file://" + bad, "--dump-dom")
    check(console, "the console check saw nothing on a page with a CSP violation")


def htpasswd(path, user, pw, create=False):
    p = subprocess.run(["htpasswd", "-b", "-B"] + (["-c"] if create else []) + [path, user, pw],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    check(p.returncode == 0, f"htpasswd: {p.stdout.decode(errors='replace')}")


def basic(user, pw):
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()}


def test_access_control(t):
    pm = private_fixtures.ensure(t.runner.args.fixtures or os.path.join(
        os.path.dirname(t.binary), "fixtures"), log=None)
    up = t.start_upstream(faults={BROKEN: {"status": 500, "body": BOOM}})
    gg = t.start_gogetproxy(roots=[], hosts=[pm["host"]], depth=2)
    d = t.mkdtemp("auth")
    users = {"alice": "Alice-pw-31c", "dave": "Dave-pw-8e2"}
    pwfile = os.path.join(d, "htpasswd")
    htpasswd(pwfile, "alice", users["alice"], create=True)
    htpasswd(pwfile, "dave", users["dave"])
    groups, rules = os.path.join(d, "groups"), os.path.join(d, "rules")
    with open(groups, "w") as f:
        f.write("admins: dave\n")
    with open(rules, "w") as f:
        f.write(f"allow group:admins *\ndeny * {LEGACY}\nallow authenticated *\n")
    token = "status-admin-token-5b1"
    gm = t.start_gomirror(upstream=up, private=pm["private"], vcs_gitconfig=pm["gitconfig"],
                          vcs_insecure=pm["insecure"], vcs_http_proxy=gg.url,
                          auth_htpasswd=pwfile, auth_groups=groups, auth_rules=rules,
                          auth_admins="group:admins", admin_token=token)
    alice, dave = basic("alice", users["alice"]), basic("dave", users["dave"])
    get = lambda path, h=None, **kw: harness.http_get(gm.url + path, headers=h, **kw)  # noqa: E731

    eq(get(f"/{HELLO}/@v/v1.0.0.info", alice).status, 200, "alice reads hello")
    eq(get(f"/{LEDGER}/@v/v1.0.0.info", alice, timeout=120).status, 200,
       "alice reads the private ledger")
    eq(get(f"/{LEGACY}/@v/v2.0.0+incompatible.info", alice).status, 403, "alice may not read legacy")
    eq(get(f"/{LEGACY}/@v/v2.0.0+incompatible.info", dave).status, 200, "dave reads legacy")
    eq(get(BROKEN, dave).status, 502, "dave meets the broken upstream")

    r = get("/")
    eq(r.status, 401, "anonymous /")
    check("Basic" in (r.headers["WWW-Authenticate"] or ""), "401 without WWW-Authenticate")
    eq(get("/", method="HEAD").status, 401, "anonymous HEAD /")
    eq(get("/", basic("alice", "wrong")).status, 401, "a wrong password")

    r = get("/", alice)
    eq(r.status, 200, "alice's /")
    page = Page(r.text)
    mods = [row[0] for row in page.table("top-modules")]
    check(HELLO in mods, f"alice's top modules: {mods}")
    check(LEDGER not in mods, f"a private module shown to a normal user: {mods}")
    check(LEGACY not in mods, f"a module alice may not read shown to her: {mods}")
    check("top-users" not in page.tables and "dave" not in r.text,
          "per-user detail shown to a normal user")
    check(all(LEGACY not in " ".join(row) for row in page.table("errors")),
          f"an error line about a forbidden module: {page.table('errors')}")
    up_row = next(row for row in page.table("upstreams") if row[0] == up.url)
    check("boom" not in up_row[4] and "administrators" in up_row[4],
          f"the upstream's error text shown to a normal user: {up_row}")

    for who, hdr in (("dave", dave), ("the admin token", {"Authorization": f"Bearer {token}"})):
        r = get("/", hdr)
        eq(r.status, 200, f"{who}'s /")
        page = Page(r.text)
        mods = [row[0] for row in page.table("top-modules")]
        check({HELLO, LEDGER, LEGACY} <= set(mods), f"{who}'s top modules: {mods}")
        people = [row[0] for row in page.table("top-users")]
        check({"alice", "dave"} <= set(people), f"{who}'s top users: {people}")
        errs = page.table("errors")
        check(any(row[2] == f"GET {BROKEN}" and BOOM in row[3] for row in errs),
              f"{who} does not see the error line: {errs}")
        up_row = next(row for row in page.table("upstreams") if row[0] == up.url)
        check(BOOM in up_row[4], f"{who} does not see the upstream's error: {up_row}")


# ------------------------------------------------------------------ metric names

NAME = re.compile(r"\bgomirror_[a-z_]+")


def exposition(text):
    """(sample names, {family: type}) of a Prometheus text exposition."""
    samples, types = set(), {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            types[name] = kind.strip()
        elif line and not line.startswith("#"):
            samples.add(re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0))
    return samples, types


def unknown(names, samples, types):
    """Names a query selects that /metrics does not have. A histogram's
    _bucket/_sum/_count (a summary's _sum/_count) count when the family is
    declared, even with no observations yet; the bare family name of a
    histogram or summary selects nothing, so it does not count."""
    bad = []
    for n in sorted(set(names)):
        if n in samples or types.get(n) in ("counter", "gauge", "untyped"):
            continue
        base, _, suffix = n.rpartition("_")
        if suffix == "bucket" and types.get(base) == "histogram":
            continue
        if suffix in ("sum", "count") and types.get(base) in ("histogram", "summary"):
            continue
        bad.append(n)
    return bad


def dashboard_queries(o, out):
    """Every PromQL string of a Grafana dashboard: targets' expr, template
    variables' query and definition."""
    if isinstance(o, dict):
        for k, v in o.items():
            if k in ("expr", "query", "definition") and isinstance(v, str):
                out.append(v)
            else:
                dashboard_queries(v, out)
    elif isinstance(o, list):
        for v in o:
            dashboard_queries(v, out)
    return out


def rule_exprs(text):
    """The expr: values of a (templated) PrometheusRule manifest, inline or
    as a block scalar."""
    out, lines = [], text.splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"^(\s*)-?\s*expr:\s*(.*)$", line)
        if not m:
            continue
        indent, value = len(m.group(1)), m.group(2).strip()
        if value and value[0] not in "|>":
            out.append(value)
            continue
        block = []
        for nxt in lines[i + 1:]:
            if nxt.strip() and len(nxt) - len(nxt.lstrip()) <= indent:
                break
            block.append(nxt)
        out.append("\n".join(block))
    return out


def test_dashboard_and_alert_metrics_exist(t):
    up = t.start_upstream()
    gm = t.start_gomirror(upstream=up)
    eq(gm.get(f"/{HELLO}/@v/v1.0.0.info").status, 200, "a fetch")
    eq(gm.get(f"/{HELLO}/@v/v1.0.0.info").status, 200, "a hit")
    samples, types = exposition(gm.get("/metrics").text)
    # The check itself can fail.
    eq(unknown(["gomirror_no_such_metric", "gomirror_request_duration_seconds",
                "gomirror_requests_total"], samples, types),
       ["gomirror_no_such_metric", "gomirror_request_duration_seconds"], "the name check")

    path = os.path.join(ROOT, "deploy", "grafana", "gomirror.json")
    with open(path) as f:
        dash = json.load(f)
    check(36 <= dash.get("schemaVersion", 0) <= 41, f"schemaVersion {dash.get('schemaVersion')}")
    tvars = dash.get("templating", {}).get("list", [])
    check(any(v.get("type") == "datasource" and v.get("query") == "prometheus" for v in tvars),
          "no Prometheus data-source variable")
    panels = [p for p in dash["panels"] if p.get("type") != "row"]
    ids = [p["id"] for p in dash["panels"]]
    eq(len(ids), len(set(ids)), "panel ids are unique")
    for p in panels:
        check(p.get("datasource", {}).get("uid") == "${datasource}" and p.get("targets"),
              f"panel {p.get('title')!r} does not query ${{datasource}}")
    queries = dashboard_queries(dash, [])
    names = [n for q in queries for n in NAME.findall(q)]
    for family in ("gomirror_requests_total", "gomirror_request_duration_seconds_bucket",
                   "gomirror_cache_lookups_total", "gomirror_upstream_fetches_total",
                   "gomirror_upstream_request_seconds_bucket", "gomirror_upstream_errors_total",
                   "gomirror_in_flight_requests", "gomirror_hot_cache_bytes",
                   "gomirror_process_resident_memory_bytes"):
        check(family in names, f"the dashboard does not chart {family}")
    bad = {n: "deploy/grafana/gomirror.json" for n in unknown(names, samples, types)}

    # The chart's alert rules, if they are there yet.
    rule_files = [p for p in glob.glob(os.path.join(ROOT, "helm", "**", "*"), recursive=True)
                  if p.endswith((".yaml", ".yml", ".tpl")) and os.path.isfile(p)]
    nrules = 0
    for p in rule_files:
        with open(p, errors="replace") as f:
            text = f.read()
        if "PrometheusRule" not in text:
            continue
        exprs = rule_exprs(text)
        nrules += len(exprs)
        for n in unknown([n for e in exprs for n in NAME.findall(e)], samples, types):
            bad[n] = os.path.relpath(p, ROOT)
    print(f"  checked {len(set(names))} dashboard metric names and {nrules} alert "
          f"expressions in {len(rule_files)} chart files", flush=True)
    eq(bad, {}, "metric names queried but not in /metrics")


# ------------------------------------------------------------------ the metrics move

def scrape(gm):
    """{(name, frozenset(labels)): value} of gomirror's /metrics."""
    out = {}
    for line in gm.get("/metrics").text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$", line)
        check(m, f"a /metrics line that does not parse: {line!r}")
        labels = frozenset(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def val(s, name, **labels):
    return s.get((name, frozenset(labels.items())), 0.0)


def test_new_metrics_move(t):
    up = t.start_upstream(faults={BROKEN: {"status": 500, "body": "down"}})
    closed = harness.free_port()  # nothing listens: connection refused
    redis = t.start_redis()
    gm = t.start_gomirror(upstream=f"http://127.0.0.1:{closed}|{up.url}", meta=redis.url,
                          threads=17)
    s0 = scrape(gm)
    eq(val(s0, "gomirror_build_info", version=cmake_version()), 1.0, "build_info")
    v = t.fx["modules"][HELLO]["versions"][0]
    for _ in range(5):
        eq(gm.get(f"/{HELLO}/@v/{v}.info").status, 200, "hello .info")
    for _ in range(2):
        eq(gm.get("/example.com/nosuch/@v/v1.0.0.info").status, 404, "unknown module")
    eq(gm.get(BROKEN).status, 502, "the broken upstream")
    eq(gm.get("/stats").status, 200, "/stats (a Redis pipeline)")
    s1 = scrape(gm)

    def delta(name, **labels):
        return val(s1, name, **labels) - val(s0, name, **labels)

    hist = "gomirror_request_duration_seconds"
    eq(delta(hist + "_count", endpoint="info", **{"class": "2xx"}), 5.0, "info 2xx observed")
    eq(delta(hist + "_count", endpoint="info", **{"class": "4xx"}), 2.0, "info 4xx observed")
    eq(delta(hist + "_count", endpoint="info", **{"class": "5xx"}), 1.0, "info 5xx observed")
    eq(delta(hist + "_bucket", endpoint="info", le="+Inf", **{"class": "2xx"}), 5.0,
       "+Inf bucket")
    check(delta(hist + "_sum", endpoint="info", **{"class": "2xx"}) > 0, "duration sum")
    buckets = sorted((float(dict(k[1])["le"].replace("+Inf", "inf")), v_)
                     for k, v_ in s1.items()
                     if k[0] == hist + "_bucket" and dict(k[1]).get("endpoint") == "info"
                     and dict(k[1]).get("class") == "2xx")
    check(len(buckets) > 5 and all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:])),
          f"buckets are not cumulative: {buckets}")
    # The /stats request was answered before this scrape, the first scrape too.
    eq(delta(hist + "_count", endpoint="metrics", **{"class": "2xx"}), 1.0, "/metrics observed")

    check(val(s1, "gomirror_process_resident_memory_bytes") > 1 << 20, "resident memory")
    check(val(s1, "gomirror_process_open_fds") > 3, "open fds")
    check(val(s1, "gomirror_process_threads") >= 17, "process threads")
    check(val(s1, "gomirror_process_cpu_seconds_total") > 0, "CPU seconds")
    check(abs(val(s1, "gomirror_process_start_time_seconds") - time.time()) < 600,
          f"start time {val(s1, 'gomirror_process_start_time_seconds')}")
    eq(val(s1, "gomirror_worker_threads"), 17.0, "worker threads (the threads key)")
    # This scrape at least; a connection the harness left open may be busy too.
    busy = val(s1, "gomirror_worker_threads_busy")
    check(1.0 <= busy <= 3.0, f"busy workers (this scrape and at most a stray one): {busy}")

    check(delta("gomirror_storage_op_duration_seconds_count", op="put") >= 1,
          "storage put latency counted")
    check(delta("gomirror_storage_op_duration_seconds_count", op="stat")
          + delta("gomirror_storage_op_duration_seconds_count", op="get") >= 1,
          "storage stat/get latency counted")
    check(delta("gomirror_storage_op_duration_seconds_sum", op="put") > 0, "storage put sum")
    check(delta("gomirror_redis_op_duration_seconds_count", op="command") >= 1,
          "Redis command latency counted")
    check(delta("gomirror_redis_op_duration_seconds_count", op="pipeline") >= 1,
          "Redis pipeline latency counted")

    # Each fetch tries the closed port first ('|': then the next entry).
    fetches = delta("gomirror_upstream_errors_total", outcome="refused")
    check(fetches >= 3, f"refused upstream errors: {fetches}")
    eq(delta("gomirror_upstream_errors_total", outcome="status_5xx"), 1.0, "5xx upstream errors")
    eq(delta("gomirror_upstream_errors_total", outcome="timeout"), 0.0, "no timeouts")


if __name__ == "__main__":
    harness.main()
