#!/usr/bin/env python3
"""Offline module fixtures for gomirror's integration tests.

Builds, once and cached, from nothing but git and the go command:
  git/        bare repositories, <gitdir>/<host>/<repo>  (example.com/..., golang.org/x/mod)
  gitconfig   GIT_CONFIG_GLOBAL mapping https://<host>/ to those repositories
  upstream/   a static GOPROXY layout: $GOMODCACHE/cache/download made by
              `go mod download -json` with GOPROXY=direct (sumdb/ and lock
              files removed)
  bin/sumdb   the checksum database of tests/tools/sumdb
  manifest.json  module -> versions, pseudo-versions, h1 sums, paths

The cache directory is $GOMIRROR_FIXTURES, else <build dir>/fixtures; each
build lives in a subdirectory named after a hash of this script, the other
tool sources and `go version`, so editing any of them rebuilds. Concurrent
builders serialise on a lock file; a build is renamed into place only when
complete.

    fixtures.py [--cache DIR] [--force]     build if needed, print the directory

From Python: `fixtures.ensure(cache_dir=None) -> manifest dict` (paths absolute).
"""

import argparse
import base64
import fcntl
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import zipfile

TOOLS = os.path.dirname(os.path.abspath(__file__))
REPO_TOP = os.path.dirname(os.path.dirname(TOOLS))
sys.path.insert(0, TOOLS)
import gogetproxy  # noqa: E402

# Hosts the go-get proxy answers for, and explicit repository roots (a
# module path maps to the longest root that prefixes it).
HOSTS = ["example.com", "golang.org"]
ROOTS = [
    "example.com/hello",
    "example.com/legacy",
    "example.com/Upper/Lib",
    "example.com/notags",
    "example.com/app",
    "golang.org/x/mod",
]
XMOD_SRC = "/usr/share/gocode/src/golang.org/x/mod"
SUMDB_SRC = os.path.join(TOOLS, "sumdb")

# Build inputs: changing any of these rebuilds the fixtures.
KEY_FILES = [
    os.path.abspath(__file__),
    os.path.join(TOOLS, "gogetproxy.py"),
    os.path.join(SUMDB_SRC, "main.go"),
    os.path.join(SUMDB_SRC, "go.mod"),
]


class FixtureError(Exception):
    pass


# ---------------------------------------------------------------- hashing

def hash1(files):
    """dirhash.Hash1 over [(name, bytes)]."""
    lines = []
    for name, data in sorted(files, key=lambda f: f[0].encode()):
        if "\n" in name:
            raise ValueError("filenames with newlines are not supported")
        lines.append(f"{hashlib.sha256(data).hexdigest()}  {name}\n")
    summary = hashlib.sha256("".join(lines).encode()).digest()
    return "h1:" + base64.b64encode(summary).decode()


def h1_zip(path):
    """dirhash.HashZip(path, dirhash.Hash1): every entry, directories included."""
    with zipfile.ZipFile(path) as z:
        return hash1([(i.filename, z.read(i)) for i in z.infolist()])


def h1_mod(data):
    """The go.sum hash of a .mod file's bytes."""
    return hash1([("go.mod", data)])


# ---------------------------------------------------------------- escaping

def escape_path(path):
    """module.EscapePath / EscapeVersion case-encoding."""
    return "".join("!" + c.lower() if "A" <= c <= "Z" else c for c in path)


# ---------------------------------------------------------------- helpers

def rmtree(path):
    """shutil.rmtree that copes with the go module cache's read-only dirs."""
    def onerror(func, p, _exc):
        try:
            os.chmod(os.path.dirname(p), 0o755)
            os.chmod(p, stat.S_IWUSR | stat.S_IRUSR | stat.S_IXUSR)
        except OSError:
            pass
        func(p)
    if os.path.lexists(path):
        shutil.rmtree(path, onerror=onerror)


def which(tool):
    p = shutil.which(tool)
    if not p:
        raise FixtureError(f"required tool not found on PATH: {tool}")
    return p


def run(cmd, env=None, cwd=None, timeout=300):
    p = subprocess.run(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout)
    if p.returncode != 0:
        raise FixtureError(f"{' '.join(cmd)} (in {cwd}) failed with {p.returncode}:\n"
                           f"{p.stdout.decode(errors='replace')}{p.stderr.decode(errors='replace')}")
    return p.stdout.decode()


def base_env(tmp):
    """A clean environment: no proxies, no user git or go configuration."""
    env = {k: v for k, v in os.environ.items()
           if not k.upper().endswith("_PROXY") and not k.startswith("GO")
           and not k.startswith("GIT_")}
    env["HOME"] = os.path.join(tmp, "home")
    os.makedirs(env["HOME"], exist_ok=True)
    env["GIT_CONFIG_NOSYSTEM"] = "1"
    env["GIT_TERMINAL_PROMPT"] = "0"
    env["GOENV"] = "off"
    env["GOWORK"] = "off"
    env["CGO_ENABLED"] = "0"
    return env


def cache_key():
    h = hashlib.sha256()
    for f in KEY_FILES:
        with open(f, "rb") as fh:
            h.update(f.encode() + b"\0" + fh.read() + b"\0")
    h.update(subprocess.run([which("go"), "version"], stdout=subprocess.PIPE).stdout)
    h.update(subprocess.run([which("git"), "--version"], stdout=subprocess.PIPE).stdout)
    return h.hexdigest()[:16]


def default_cache_dir(build_dir=None):
    if os.environ.get("GOMIRROR_FIXTURES"):
        return os.path.abspath(os.environ["GOMIRROR_FIXTURES"])
    if build_dir:
        return os.path.join(os.path.abspath(build_dir), "fixtures")
    return os.path.join(REPO_TOP, "build", "fixtures")


# ---------------------------------------------------------------- git

class Git:
    """A work tree whose commits have fixed authors and dates (reproducible hashes)."""

    def __init__(self, path, env):
        self.path = path
        self.env = dict(env)
        os.makedirs(path, exist_ok=True)
        self("init", "-q", "-b", "master")

    def __call__(self, *args, env=None):
        return run(["git", *args], env=env or self.env, cwd=self.path).strip()

    def write(self, files):
        for name, content in files.items():
            p = os.path.join(self.path, name)
            if content is None:
                os.remove(p)
                continue
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "w") as f:
                f.write(content)

    def commit(self, date, message, files=None):
        if files:
            self.write(files)
        self("add", "-A")
        env = dict(self.env, GIT_AUTHOR_NAME="Fixture", GIT_AUTHOR_EMAIL="fixture@example.com",
                   GIT_COMMITTER_NAME="Fixture", GIT_COMMITTER_EMAIL="fixture@example.com",
                   GIT_AUTHOR_DATE=date, GIT_COMMITTER_DATE=date)
        self("commit", "-q", "--allow-empty", "-m", message, env=env)
        return self("rev-parse", "HEAD")

    def tag(self, name):
        self("tag", name)

    def publish(self, bare_path):
        os.makedirs(os.path.dirname(bare_path), exist_ok=True)
        run(["git", "clone", "-q", "--bare", self.path, bare_path], env=self.env)


def gomod(path, extra=""):
    return f"module {path}\n\ngo 1.19\n{extra}"


def make_repos(work, gitdir, env):
    """Create the bare repositories. Returns (downloads, pseudo_queries, info)
    where downloads is [(module, version)] of tagged versions and
    pseudo_queries is [(module, commit)] to resolve to pseudo-versions."""
    downloads, pseudo = [], []

    # example.com/hello: v1.0.0, v1.1.0, v1.2.0-rc.1, an untagged later
    # commit; branch v2 with go.mod example.com/hello/v2, tag v2.0.0.
    g = Git(os.path.join(work, "hello"), env)
    def hello_go(s):
        return f'// Package hello says hello.\npackage hello\n\n// Hello greets.\nfunc Hello() string {{ return "{s}" }}\n'
    g.commit("2023-01-02T10:00:00Z", "v1.0.0", {"go.mod": gomod("example.com/hello"),
                                               "hello.go": hello_go("hello v1.0.0"),
                                               "README.md": "hello\n"})
    g.tag("v1.0.0")
    g.commit("2023-02-03T10:00:00Z", "v1.1.0", {"hello.go": hello_go("hello v1.1.0"),
                                               "sub/sub.go": "package sub\n\nconst Name = \"sub\"\n"})
    g.tag("v1.1.0")
    g.commit("2023-03-04T10:00:00Z", "v1.2.0-rc.1", {"hello.go": hello_go("hello v1.2.0-rc.1")})
    g.tag("v1.2.0-rc.1")
    head = g.commit("2023-04-05T10:00:00Z", "untagged", {"hello.go": hello_go("hello untagged")})
    pseudo.append(("example.com/hello", head))
    g("checkout", "-q", "-b", "v2", "v1.1.0")
    g.commit("2023-05-06T10:00:00Z", "v2.0.0", {"go.mod": gomod("example.com/hello/v2"),
                                               "hello.go": hello_go("hello v2.0.0")})
    g.tag("v2.0.0")
    g("checkout", "-q", "master")
    g.publish(os.path.join(gitdir, "example.com", "hello"))
    downloads += [("example.com/hello", v) for v in ("v1.0.0", "v1.1.0", "v1.2.0-rc.1")]
    downloads += [("example.com/hello/v2", "v2.0.0")]

    # example.com/legacy: no go.mod; v2.0.0 is v2.0.0+incompatible.
    g = Git(os.path.join(work, "legacy"), env)
    def legacy_go(s):
        return f'// Package legacy predates modules.\npackage legacy\n\n// Version reports the version.\nfunc Version() string {{ return "{s}" }}\n'
    g.commit("2022-06-01T10:00:00Z", "v1", {"legacy.go": legacy_go("legacy v1.0.0")})
    g.tag("v1.0.0")
    g.commit("2022-07-01T10:00:00Z", "v2", {"legacy.go": legacy_go("legacy v2.0.0")})
    g.tag("v2.0.0")
    g.publish(os.path.join(gitdir, "example.com", "legacy"))
    downloads += [("example.com/legacy", "v1.0.0"), ("example.com/legacy", "v2.0.0+incompatible")]

    # example.com/Upper/Lib: upper case, escaped example.com/!upper/!lib.
    g = Git(os.path.join(work, "upper"), env)
    def lib_go(s):
        return f'// Package lib has an upper-case module path.\npackage lib\n\n// Name names it.\nfunc Name() string {{ return "{s}" }}\n'
    g.commit("2022-08-01T10:00:00Z", "v1.0.0", {"go.mod": gomod("example.com/Upper/Lib"),
                                               "lib.go": lib_go("Upper/Lib v1.0.0")})
    g.tag("v1.0.0")
    g.commit("2022-08-02T10:00:00Z", "v1.0.1", {"lib.go": lib_go("Upper/Lib v1.0.1")})
    g.tag("v1.0.1")
    g.publish(os.path.join(gitdir, "example.com", "Upper", "Lib"))
    downloads += [("example.com/Upper/Lib", "v1.0.0"), ("example.com/Upper/Lib", "v1.0.1")]

    # example.com/notags: no tags at all, only pseudo-versions.
    g = Git(os.path.join(work, "notags"), env)
    def notags_go(s):
        return f'// Package notags has never been tagged.\npackage notags\n\n// Rev names the revision.\nconst Rev = "{s}"\n'
    c1 = g.commit("2023-06-01T10:00:00Z", "first", {"go.mod": gomod("example.com/notags"),
                                                   "notags.go": notags_go("first")})
    c2 = g.commit("2023-06-02T10:00:00Z", "second", {"notags.go": notags_go("second")})
    g.publish(os.path.join(gitdir, "example.com", "notags"))
    pseudo += [("example.com/notags", c1), ("example.com/notags", c2)]

    # golang.org/x/mod from Debian's sources, tagged v0.7.0: a real-looking
    # public module (its hashes are not the public ones: use our sumdb).
    if os.path.isfile(os.path.join(XMOD_SRC, "go.mod")):
        g = Git(os.path.join(work, "xmod"), env)
        shutil.copytree(XMOD_SRC, g.path, dirs_exist_ok=True, symlinks=False)
        g.commit("2022-11-30T10:00:00Z", "x/mod from Debian")
        g.tag("v0.7.0")
        g.publish(os.path.join(gitdir, "golang.org", "x", "mod"))
        downloads += [("golang.org/x/mod", "v0.7.0")]
    return downloads, pseudo


APP_DEPS = [
    ("example.com/hello", "v1.1.0"),
    ("example.com/hello/v2", "v2.0.0"),
    ("example.com/legacy", "v2.0.0+incompatible"),
    ("example.com/Upper/Lib", "v1.0.1"),
]

APP_MAIN = '''// Command app uses every fixture module.
package main

import (
	"fmt"

	"example.com/Upper/Lib"
	"example.com/hello"
	"example.com/hello/v2"
	"example.com/legacy"
)

func main() {
	fmt.Println(hello.Hello())
	fmt.Println(hello2.Hello())
	fmt.Println(legacy.Version())
	fmt.Println(lib.Name())
}
'''


def app_sources(sums):
    """go.mod, go.sum and main.go of example.com/app, given the deps' sums."""
    req = "".join(f"\t{m} {v}\n" for m, v in APP_DEPS)
    mod = gomod("example.com/app", f"\nrequire (\n{req})\n")
    gosum = ""
    for m, v in sorted(APP_DEPS):
        s = sums[(m, v)]
        gosum += f"{m} {v} {s['Sum']}\n{m} {v}/go.mod {s['GoModSum']}\n"
    main = APP_MAIN.replace('"example.com/hello/v2"', 'hello2 "example.com/hello/v2"')
    return {"go.mod": mod, "go.sum": gosum, "main.go": main}


def go_download(env, cwd, queries):
    """`go mod download -json` for module@query strings; returns the JSON objects."""
    p = subprocess.run(["go", "mod", "download", "-json", *queries], env=env, cwd=cwd,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=600)
    out = p.stdout.decode()
    objs, dec, i = [], json.JSONDecoder(), 0
    while True:
        while i < len(out) and out[i].isspace():
            i += 1
        if i >= len(out):
            break
        obj, i = dec.raw_decode(out, i)
        objs.append(obj)
    errs = [o for o in objs if o.get("Error")]
    if p.returncode != 0 or errs:
        raise FixtureError(f"go mod download {' '.join(queries)} failed ({p.returncode}):\n"
                           f"{p.stderr.decode(errors='replace')}\n{json.dumps(errs, indent=1)}")
    return objs


def build_sumdb(out_bin, tmp, env):
    src = os.path.join(tmp, "sumdb-src")
    shutil.copytree(SUMDB_SRC, src)
    benv = dict(env, GOPROXY="off", GOFLAGS="-mod=mod", GOSUMDB="off",
                GOPATH=os.path.join(tmp, "gopath"), GOMODCACHE=os.path.join(tmp, "gopath", "pkg", "mod"),
                GOCACHE=os.path.join(tmp, "gocache"))
    run(["go", "build", "-o", out_bin, "."], env=benv, cwd=src)


def build(out):
    """Build every fixture into the (new, empty) directory out."""
    for tool in ("go", "git"):
        which(tool)
    t0 = time.time()
    tmp = os.path.join(out, ".tmp")
    os.makedirs(tmp)
    env = base_env(tmp)
    gitdir = os.path.join(out, "git")
    gitconfig = os.path.join(tmp, "gitconfig")  # out/gitconfig is written by ensure()
    with open(gitconfig, "w") as f:
        f.write(gogetproxy.git_config_text(gitdir, HOSTS))
    env["GIT_CONFIG_GLOBAL"] = gitconfig

    downloads, pseudo = make_repos(os.path.join(tmp, "work"), gitdir, env)

    srv, proxy_url = gogetproxy.start_in_thread(roots=ROOTS, hosts=HOSTS,
                                                log_path=os.path.join(tmp, "gogetproxy.log"))
    try:
        modcache = os.path.join(tmp, "gopath", "pkg", "mod")
        genv = dict(env,
                    GOPATH=os.path.join(tmp, "gopath"), GOMODCACHE=modcache,
                    GOCACHE=os.path.join(tmp, "gocache"),
                    GOPROXY="direct", GOSUMDB="off", GOFLAGS="-mod=mod",
                    GOPRIVATE="example.com,golang.org/x/mod",
                    GOINSECURE=",".join(HOSTS),
                    HTTP_PROXY=proxy_url, HTTPS_PROXY=proxy_url, NO_PROXY="")
        scratch = os.path.join(tmp, "scratch")
        os.makedirs(scratch)
        results = go_download(genv, scratch, [f"{m}@{v}" for m, v in downloads])
        for m, c in pseudo:
            results += go_download(genv, scratch, [f"{m}@{c}"])
        sums = {(r["Path"], r["Version"]): r for r in results}
        for m, v in downloads:
            if (m, v) not in sums:
                raise FixtureError(f"go mod download did not report {m}@{v}")

        # example.com/app, whose go.sum needs the deps' sums.
        g = Git(os.path.join(tmp, "work", "app"), env)
        g.commit("2023-07-01T10:00:00Z", "app v1.0.0", app_sources(sums))
        g.tag("v1.0.0")
        g.publish(os.path.join(gitdir, "example.com", "app"))
        results += go_download(genv, scratch, ["example.com/app@v1.0.0"])
    finally:
        srv.shutdown()
        srv.server_close()

    # The upstream layout: cache/download minus sumdb and the go command's own files.
    upstream = os.path.join(out, "upstream")
    src = os.path.join(modcache, "cache", "download")
    shutil.copytree(src, upstream, ignore=shutil.ignore_patterns(
        "*.lock", "*.ziphash", "*.partial", "*.tmp", "*.tmp*"))
    rmtree(os.path.join(upstream, "sumdb"))
    for dirpath, dirnames, filenames in os.walk(upstream):
        os.chmod(dirpath, 0o755)
        for fn in filenames:
            os.chmod(os.path.join(dirpath, fn), 0o644)

    manifest = {"hosts": HOSTS, "roots": ROOTS, "upstream": "upstream", "gitdir": "git",
                "gitconfig": "gitconfig", "sumdb_bin": "bin/sumdb", "modules": {}}
    pseudo_commits = {c[:12]: (m, c) for m, c in pseudo}
    for r in results:
        m, v = r["Path"], r["Version"]
        ent = manifest["modules"].setdefault(m, {
            "escaped": escape_path(m), "versions": [], "pseudo": [], "sums": {},
            "commits": {}})
        base = os.path.join(upstream, escape_path(m), "@v", escape_path(v))
        zip_sum = h1_zip(base + ".zip")
        with open(base + ".mod", "rb") as f:
            mod_sum = h1_mod(f.read())
        with open(r["Zip"] + "hash") as f:
            ziphash = f.read().strip()
        if not (zip_sum == r["Sum"] == ziphash and mod_sum == r["GoModSum"]):
            raise FixtureError(f"{m}@{v}: hashes disagree: python {zip_sum} {mod_sum}, "
                               f"go {r['Sum']} {r['GoModSum']}, ziphash {ziphash}")
        with open(base + ".info") as f:
            info = json.load(f)
        ent["sums"][v] = {"Sum": r["Sum"], "GoModSum": r["GoModSum"], "Time": info.get("Time")}
        suffix = v.rsplit("-", 1)[-1]
        if suffix in pseudo_commits and pseudo_commits[suffix][0] == m:
            ent["pseudo"].append(v)
            ent["commits"][v] = pseudo_commits[suffix][1]
        else:
            ent["versions"].append(v)
    for m, ent in manifest["modules"].items():
        # Versions were produced in ascending order; the latest release is
        # the highest without a pre-release part.
        releases = [v for v in ent["versions"] if "-" not in v.split("+")[0]]
        ent["latest"] = releases[-1] if releases else (ent["pseudo"][-1] if ent["pseudo"] else None)
        ent["gosum"] = "".join(
            f"{m} {v} {s['Sum']}\n{m} {v}/go.mod {s['GoModSum']}\n" for v, s in ent["sums"].items())
    manifest["app"] = {"module": "example.com/app", "version": "v1.0.0",
                       "deps": [list(d) for d in APP_DEPS],
                       "output": ["hello v1.1.0", "hello v2.0.0", "legacy v2.0.0", "Upper/Lib v1.0.1"]}

    os.makedirs(os.path.join(out, "bin"))
    build_sumdb(os.path.join(out, "bin", "sumdb"), tmp, env)
    rmtree(tmp)
    manifest["build_seconds"] = round(time.time() - t0, 1)
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")


def absolutize(manifest, d, keys=("upstream", "gitdir", "gitconfig", "sumdb_bin")):
    """The manifest with the paths under keys made absolute (relative to d)."""
    m = dict(manifest)
    m["dir"] = d
    for k in keys:
        m[k] = os.path.join(d, m[k])
    return m


def cached_build(cache_dir, key, build_fn, stale, lock=".lock", force=False, log=None,
                 what="fixtures"):
    """Builds into <cache_dir>/<key> once: under a file lock, into a temp
    dir renamed into place (so a crash leaves no half build), then removes
    older builds whose names stale(name) accepts. Returns the build dir."""
    cache_dir = os.path.abspath(cache_dir)
    os.makedirs(cache_dir, exist_ok=True)
    final = os.path.join(cache_dir, key)
    with open(os.path.join(cache_dir, lock), "w") as lockf:
        fcntl.flock(lockf, fcntl.LOCK_EX)
        if force:
            rmtree(final)
        if not os.path.isfile(os.path.join(final, "manifest.json")):
            if log:
                log(f"building {what} into {final} ...")
            rmtree(final)
            partial = tempfile.mkdtemp(prefix=f".{key}.", dir=cache_dir)
            os.chmod(partial, 0o755)
            try:
                build_fn(partial)
                os.rename(partial, final)
            except BaseException:
                rmtree(partial)
                raise
            for name in os.listdir(cache_dir):
                if name != key and stale(name):
                    rmtree(os.path.join(cache_dir, name))
    return final


def refresh_gitconfig(m):
    """The git config names the repositories by absolute path: (re)write it
    for where the build lives now."""
    text = gogetproxy.git_config_text(m["gitdir"], m["hosts"])
    try:
        with open(m["gitconfig"]) as f:
            current = f.read()
    except FileNotFoundError:
        current = None
    if current != text:
        with open(m["gitconfig"] + ".tmp", "w") as f:
            f.write(text)
        os.replace(m["gitconfig"] + ".tmp", m["gitconfig"])


def ensure(cache_dir=None, force=False, log=None):
    """Build the fixtures if needed; return the manifest with absolute paths."""
    final = cached_build(cache_dir or default_cache_dir(), cache_key(), build,
                         lambda name: not name.startswith(".") and len(name) == 16,
                         force=force, log=log)
    with open(os.path.join(final, "manifest.json")) as f:
        m = absolutize(json.load(f), final)
    refresh_gitconfig(m)
    return m


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", help="cache directory (default $GOMIRROR_FIXTURES or build/fixtures)")
    ap.add_argument("--force", action="store_true", help="rebuild even if cached")
    args = ap.parse_args()
    t0 = time.time()
    try:
        m = ensure(args.cache, args.force, log=lambda s: print(s, file=sys.stderr, flush=True))
    except FixtureError as e:
        print(f"fixtures: {e}", file=sys.stderr)
        return 1
    print(m["dir"])
    print(f"fixtures ready in {time.time() - t0:.1f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
