#!/usr/bin/env python3
"""A real module graph for benchmarks, built offline from Debian's Go sources.

Every module tree under /usr/share/gocode/src (shipped by Debian's
golang-*-dev packages; a directory with a go.mod, or else the repository
root github.com/<owner>/<repo>, golang.org/x/<repo>, gopkg.in/<pkg>.vN,
<host>/<name>) becomes a git repository whose go.mod names its import path
and requires, at the versions tagged here, the other modules its .go files
import. Each is tagged with its Debian upstream version (v1.6.1 for
1.6.1-1; the major version follows the path: /v2 -> v2.x.y, .v3 -> v3.x.y).
Then, exactly as tests/tools/fixtures.py does it, `go mod download -json`
with GOPROXY=direct, GOPRIVATE and the go-get trick (gogetproxy plus an
insteadOf git config) turns them into a static GOPROXY layout, and a root
module example.com/graph requires all of them, with a go.sum, so that
`go mod download all` in it downloads every one.

Debian's trees do not reproduce the public zips' hashes: use GOSUMDB=off
(the root's go.sum still checks every download) or your own checksum
database.

Output directory (cached; rebuilt when this script, fixtures.py,
gogetproxy.py, `go version` or the source trees change):
  git/            bare repositories <host>/<repo>
  gitconfig       GIT_CONFIG_GLOBAL mapping https://<host>/ there
  upstream/       the GOPROXY layout (cache/download without sumdb and locks)
  root/           example.com/graph: go.mod and go.sum
  manifest.json   modules (path, version, zip bytes, requires), counts

    graph_fixtures.py [--cache DIR] [--force] [--src DIR]   print the directory

From Python: `graph_fixtures.ensure(cache_dir=None) -> manifest` (paths absolute).
"""

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time

TOOLS = os.path.dirname(os.path.abspath(__file__))
REPO_TOP = os.path.dirname(os.path.dirname(TOOLS))
sys.path.insert(0, TOOLS)
import fixtures  # noqa: E402
import gogetproxy  # noqa: E402
from fixtures import FixtureError, Git, rmtree, run  # noqa: E402

SRC = "/usr/share/gocode/src"
ROOT_MODULE = "example.com/graph"
KEY_FILES = [os.path.abspath(__file__), os.path.join(TOOLS, "fixtures.py"),
             os.path.join(TOOLS, "gogetproxy.py")]
# Hosts whose repositories are <host>/<owner>/<repo>; any other host: <host>/<name>.
THREE_ELEMS = ("github.com", "gitlab.com", "bitbucket.org", "golang.org", "go.googlesource.com")
MIN_MODULES = 15
APT_HINT = ("apt-get install -y golang-github-spf13-cobra-dev golang-github-stretchr-testify-dev "
            "golang-github-sirupsen-logrus-dev golang-github-google-uuid-dev "
            "golang-github-gorilla-mux-dev golang-github-pkg-errors-dev")


# ---------------------------------------------------------------- discovery

def _modfile_path(gomod):
    with open(gomod, errors="replace") as f:
        for line in f:
            m = re.match(r'\s*module\s+"?([^"\s]+)"?', line)
            if m:
                return m.group(1)
    return None


def _has_go(d):
    for dirpath, dirnames, filenames in os.walk(d):  # does not follow symlinks
        dirnames[:] = [x for x in dirnames if x not in ("testdata", "vendor")
                       and not os.path.islink(os.path.join(dirpath, x))]
        if any(f.endswith(".go") and not os.path.islink(os.path.join(dirpath, f))
               for f in filenames):
            return True
    return False


def _major_suffix(path):
    """(prefix, N) for .../vN or gopkg.in/x.vN paths, else (path, None)."""
    m = re.match(r"^(.*)/v(\d+)$", path)
    if m and int(m.group(2)) >= 2:
        return m.group(1), int(m.group(2))
    m = re.match(r"^gopkg\.in/.*\.v(\d+)$", path)
    if m:
        return path, int(m.group(1))
    return path, None


def discover(src=SRC):
    """[{path, dir}] of module trees under src: directories with a go.mod
    (first one down each branch), else the repository root by host rule.
    Symlinked aliases (code.google.com/p/..., gopkg.in/fsnotify.v1) are
    skipped; nested go.mod directories are dropped from their parent."""
    mods = []
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames[:] = sorted(x for x in dirnames
                             if not os.path.islink(os.path.join(dirpath, x)))
        rel = os.path.relpath(dirpath, src)
        if rel == ".":
            continue
        elems = rel.split(os.sep)
        host = elems[0]
        depth = 3 if host in THREE_ELEMS else 2
        if "go.mod" in filenames:
            path = _modfile_path(os.path.join(dirpath, "go.mod")) or rel.replace(os.sep, "/")
            mods.append({"path": path, "dir": dirpath})
            dirnames[:] = []
            continue
        if len(elems) == depth:
            # A repository root without go.mod, unless a go.mod lies below
            # (github.com/cpuguy83/go-md2man holds only v2/ with its go.mod).
            below = any("go.mod" in fs for _, _, fs in os.walk(dirpath))
            if not below and _has_go(dirpath):
                mods.append({"path": rel.replace(os.sep, "/"), "dir": dirpath})
                dirnames[:] = []
    return mods


def dpkg_version(d):
    """Upstream version of the Debian package owning directory d ('1.6.1'),
    or None."""
    try:
        out = subprocess.run(["dpkg", "-S", d], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True, timeout=60).stdout
        pkg = out.split(":", 1)[0].split(",")[0].strip()
        if not pkg:
            return None
        v = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", pkg],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                           timeout=60).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return None
    v = v.split(":", 1)[-1]  # epoch
    m = re.match(r"^(\d+)\.(\d+)(?:\.(\d+))?", v)
    if not m:
        return None
    return f"{int(m.group(1))}.{int(m.group(2))}.{int(m.group(3) or 0)}"


def tag_for(path, upstream):
    """A semantic version tag valid for path: the Debian upstream version
    when its major fits the path, else vN.0.0 (v1.0.0 without a suffix)."""
    _, major = _major_suffix(path)
    if upstream:
        maj = int(upstream.split(".")[0])
        if (major is None and maj <= 1) or (major is not None and maj == major):
            return "v" + upstream
    if major is None:
        return "v1.0.0"
    return f"v{major}.0.0"


IMPORT_RE = re.compile(r'^import\s*(?:\(\s*(.*?)\)|([^\n]*))', re.S | re.M)
QUOTED_RE = re.compile(r'"([^"\n]+)"|`([^`\n]+)`')


def go_imports(d):
    """Import paths used by the .go files (tests included) under d,
    outside testdata/ and vendor/ and nested modules."""
    out = set()
    for dirpath, dirnames, filenames in os.walk(d):
        dirnames[:] = [x for x in dirnames if x not in ("testdata", "vendor")
                       and not x.startswith((".", "_"))
                       and not os.path.islink(os.path.join(dirpath, x))
                       and not os.path.exists(os.path.join(dirpath, x, "go.mod"))]
        for fn in filenames:
            if not fn.endswith(".go"):
                continue
            try:
                with open(os.path.join(dirpath, fn), errors="replace") as f:
                    text = f.read()
            except OSError:
                continue
            # Only the header: imports come before the first declaration.
            cut = re.search(r"^(func|type|var|const)\b", text, re.M)
            head = text[:cut.start()] if cut else text
            head = re.sub(r"//[^\n]*", "", head)
            head = re.sub(r"/\*.*?\*/", "", head, flags=re.S)
            for m in IMPORT_RE.finditer(head):
                for q in QUOTED_RE.finditer(m.group(1) or m.group(2) or ""):
                    out.add(q.group(1) or q.group(2))
    return out


def owner(imp, paths):
    """The module (longest path prefix) providing import path imp, or None."""
    best = None
    for p in paths:
        if imp == p or imp.startswith(p + "/"):
            if best is None or len(p) > len(best):
                best = p
    return best


def plan(src=SRC):
    """Modules with versions, repository roots and requirements."""
    mods = discover(src)
    paths = [m["path"] for m in mods]
    for m in mods:
        m["version"] = tag_for(m["path"], dpkg_version(m["dir"]))
        prefix, major = _major_suffix(m["path"])
        m["repo"] = prefix if (major and not m["path"].startswith("gopkg.in/")) else m["path"]
        deps = {owner(i, paths) for i in go_imports(m["dir"])}
        deps.discard(None)
        deps.discard(m["path"])
        m["requires"] = sorted(deps)
    return mods


def source_key(src=SRC):
    """Changes when a tree under src changes (package install or upgrade)."""
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames.sort()
        for fn in sorted(filenames):
            p = os.path.join(dirpath, fn)
            try:
                st = os.lstat(p)
            except OSError:
                continue
            h.update(f"{p}\0{st.st_size}\0{int(st.st_mtime)}\n".encode())
    return h.hexdigest()


def cache_key(src=SRC):
    h = hashlib.sha256()
    for f in KEY_FILES:
        with open(f, "rb") as fh:
            h.update(f.encode() + b"\0" + fh.read() + b"\0")
    h.update(source_key(src).encode())
    h.update(subprocess.run([fixtures.which("go"), "version"], stdout=subprocess.PIPE).stdout)
    h.update(subprocess.run([fixtures.which("git"), "--version"], stdout=subprocess.PIPE).stdout)
    return h.hexdigest()[:16]


def default_cache_dir():
    if os.environ.get("GOMIRROR_GRAPH_FIXTURES"):
        return os.path.abspath(os.environ["GOMIRROR_GRAPH_FIXTURES"])
    return os.path.join(REPO_TOP, "build", "graph-fixtures")


# ---------------------------------------------------------------- build

def gomod_text(path, requires):
    req = "".join(f"\t{p} {v}\n" for p, v in requires)
    return f"module {path}\n\ngo 1.19\n" + (f"\nrequire (\n{req})\n" if req else "")


def build(out, src=SRC, log=None):
    for tool in ("go", "git"):
        fixtures.which(tool)
    t0 = time.time()
    mods = plan(src)
    if len(mods) < MIN_MODULES:
        raise FixtureError(f"only {len(mods)} module trees under {src}, need {MIN_MODULES}: "
                           f"{APT_HINT}")
    version = {m["path"]: m["version"] for m in mods}
    tmp = os.path.join(out, ".tmp")
    os.makedirs(tmp)
    env = fixtures.base_env(tmp)
    gitdir = os.path.join(out, "git")
    hosts = sorted({m["path"].split("/")[0] for m in mods} | {"example.com"})
    gitconfig = os.path.join(tmp, "gitconfig")
    with open(gitconfig, "w") as f:
        f.write(gogetproxy.git_config_text(gitdir, hosts))
    env["GIT_CONFIG_GLOBAL"] = gitconfig

    for i, m in enumerate(mods):
        if log:
            log(f"  repo {i + 1}/{len(mods)}: {m['path']} {m['version']} "
                f"({len(m['requires'])} requires)")
        g = Git(os.path.join(tmp, "work", m["repo"]), env)
        # Nested modules (a go.mod below) are not part of this module.
        def ignore(d, names):
            return [n for n in names
                    if n in (".git", "vendor", "go.sum")
                    or (os.path.isdir(os.path.join(d, n))
                        and os.path.isfile(os.path.join(d, n, "go.mod")))
                    or (os.path.islink(os.path.join(d, n))
                        and not os.path.exists(os.path.join(d, n)))]
        shutil.copytree(m["dir"], g.path, dirs_exist_ok=True, symlinks=False, ignore=ignore,
                        ignore_dangling_symlinks=True)
        g.write({"go.mod": gomod_text(m["path"], [(r, version[r]) for r in m["requires"]])})
        g.commit("2023-01-02T10:00:00Z", f"{m['path']} from Debian's sources")
        g.tag(m["version"])
        g.publish(os.path.join(gitdir, m["repo"]))
        rmtree(g.path)

    roots = sorted({m["repo"] for m in mods})
    srv, proxy_url = gogetproxy.start_in_thread(roots=roots, hosts=hosts,
                                                log_path=os.path.join(tmp, "gogetproxy.log"))
    try:
        modcache = os.path.join(tmp, "gopath", "pkg", "mod")
        genv = dict(env, GOPATH=os.path.join(tmp, "gopath"), GOMODCACHE=modcache,
                    GOCACHE=os.path.join(tmp, "gocache"), GOPROXY="direct", GOSUMDB="off",
                    GOFLAGS="-mod=mod -modcacherw", GOPRIVATE=",".join(hosts),
                    GOINSECURE=",".join(hosts),
                    HTTP_PROXY=proxy_url, HTTPS_PROXY=proxy_url, NO_PROXY="")
        scratch = os.path.join(tmp, "scratch")
        os.makedirs(scratch)
        if log:
            log(f"  go mod download -json of {len(mods)} modules (GOPROXY=direct) ...")
        results = fixtures.go_download(genv, scratch, [f"{m['path']}@{m['version']}" for m in mods])
    finally:
        srv.shutdown()
        srv.server_close()
    sums = {(r["Path"], r["Version"]): r for r in results}
    for m in mods:
        r = sums.get((m["path"], m["version"]))
        if not r:
            raise FixtureError(f"go mod download did not report {m['path']}@{m['version']}")
        m["sum"], m["gomodsum"] = r["Sum"], r["GoModSum"]
        m["zip_bytes"] = os.path.getsize(r["Zip"])

    upstream = os.path.join(out, "upstream")
    shutil.copytree(os.path.join(modcache, "cache", "download"), upstream,
                    ignore=shutil.ignore_patterns("*.lock", "*.ziphash", "*.partial",
                                                  "*.tmp", "*.tmp*"))
    rmtree(os.path.join(upstream, "sumdb"))
    for dirpath, _, filenames in os.walk(upstream):
        os.chmod(dirpath, 0o755)
        for fn in filenames:
            os.chmod(os.path.join(dirpath, fn), 0o644)

    # The root module: requires every module; its go.sum checks every download.
    root = os.path.join(out, "root")
    os.makedirs(root)
    with open(os.path.join(root, "go.mod"), "w") as f:
        f.write(gomod_text(ROOT_MODULE, [(m["path"], m["version"]) for m in mods]))
    with open(os.path.join(root, "go.sum"), "w") as f:
        for m in sorted(mods, key=lambda m: m["path"]):
            f.write(f"{m['path']} {m['version']} {m['sum']}\n"
                    f"{m['path']} {m['version']}/go.mod {m['gomodsum']}\n")

    # Check: `go mod download all` from the layout gets every module and
    # leaves go.mod and go.sum as they are.
    check = os.path.join(tmp, "check")
    cenv = dict(env, GOPATH=os.path.join(check, "gopath"),
                GOMODCACHE=os.path.join(check, "gopath", "pkg", "mod"),
                GOCACHE=os.path.join(check, "gocache"), GOPROXY="file://" + upstream,
                GOSUMDB="off", GOFLAGS="-mod=mod -modcacherw")
    before = {fn: open(os.path.join(root, fn)).read() for fn in ("go.mod", "go.sum")}
    run(["go", "mod", "download", "all"], env=cenv, cwd=root, timeout=600)
    listed = [line for line in run(["go", "list", "-m", "all"], env=dict(cenv, GOPROXY="off"),
                                   cwd=root).splitlines() if line and line != ROOT_MODULE]
    after = {fn: open(os.path.join(root, fn)).read() for fn in ("go.mod", "go.sum")}
    if after != before:
        raise FixtureError("go mod download all changed the root's go.mod/go.sum:\n"
                           + after["go.mod"] + after["go.sum"])
    got_zips = []
    for dirpath, _, filenames in os.walk(os.path.join(cenv["GOMODCACHE"], "cache", "download")):
        got_zips += [fn for fn in filenames if fn.endswith(".zip")]
    if len(listed) != len(mods) or len(got_zips) != len(mods):
        raise FixtureError(f"go mod download all: {len(listed)} modules listed, "
                           f"{len(got_zips)} zips downloaded, want {len(mods)}")

    rmtree(tmp)
    manifest = {
        "root_module": ROOT_MODULE, "root": "root", "upstream": "upstream", "gitdir": "git",
        "gitconfig": "gitconfig", "hosts": hosts, "roots": roots, "src": src,
        "modules": [{k: m[k] for k in ("path", "version", "repo", "requires", "sum",
                                       "gomodsum", "zip_bytes")} for m in mods],
        "count": len(mods), "edges": sum(len(m["requires"]) for m in mods),
        "zip_bytes": sum(m["zip_bytes"] for m in mods),
        "build_seconds": round(time.time() - t0, 1),
    }
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")


def absolutize(manifest, d):
    return fixtures.absolutize(manifest, d, ("root", "upstream", "gitdir", "gitconfig"))


def ensure(cache_dir=None, force=False, log=None, src=SRC):
    """Build the graph fixtures if needed; return the manifest with absolute paths."""
    final = fixtures.cached_build(
        cache_dir or default_cache_dir(), cache_key(src), lambda d: build(d, src, log),
        lambda name: not name.startswith(".") and len(name) == 16,
        force=force, log=log, what="graph fixtures")
    with open(os.path.join(final, "manifest.json")) as f:
        m = absolutize(json.load(f), final)
    fixtures.refresh_gitconfig(m)
    return m


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", help="cache directory (default $GOMIRROR_GRAPH_FIXTURES "
                                    "or build/graph-fixtures)")
    ap.add_argument("--force", action="store_true", help="rebuild even if cached")
    ap.add_argument("--src", default=SRC, help="Go source trees (default %(default)s)")
    ap.add_argument("--plan", action="store_true",
                    help="print the modules, versions and requires found, build nothing")
    args = ap.parse_args()
    log = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    if args.plan:
        for m in plan(args.src):
            print(f"{m['path']} {m['version']} (repo {m['repo']}): {' '.join(m['requires'])}")
        return 0
    t0 = time.time()
    try:
        m = ensure(args.cache, args.force, log=log, src=args.src)
    except FixtureError as e:
        print(f"graph_fixtures: {e}", file=sys.stderr)
        return 1
    print(m["dir"])
    print(f"graph fixtures ready in {time.time() - t0:.1f}s: {m['count']} modules, "
          f"{m['edges']} requires, {m['zip_bytes'] / 1e6:.1f} MB of zips", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
