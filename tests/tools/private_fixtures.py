#!/usr/bin/env python3
"""Private-module fixtures: bare git repositories at git.corp.example.

Built once, cached, from nothing but git (and checked with the go command):
  git/git.corp.example/team/alpha   tags v1.0.0, v1.1.0; an untagged commit
                                    on master after v1.1.0; branch `feature`
                                    (one commit on top of v1.0.0)
  git/git.corp.example/team/beta    v1.0.0 at the root (module .../beta) and,
                                    on the major branch `v2`, go.mod
                                    `module git.corp.example/team/beta/v2`
                                    tagged v2.0.0
  git/git.corp.example/team/legacy  no go.mod; tags v1.0.0 and v2.0.0
                                    (-> v2.0.0+incompatible)
  git/git.corp.example/payments/ledger  v1.0.0: one team's module, for the
                                    access-control tests
  gitconfig    GIT_CONFIG_GLOBAL mapping https://git.corp.example/ to git/
  manifest.json  modules -> versions, expected pseudo-versions, commits

Commit dates are fixed, so commit hashes and pseudo-versions are stable. The
expected versions are computed here and then checked against the real go
command (`go mod download -json`, `go list -m -versions -json` with
GOPROXY=off and GOPRIVATE=git.corp.example through the go-get proxy of
tests/tools/gogetproxy.py), so a test can trust the manifest.

The cache layout follows tests/tools/fixtures.py: <cache>/private-<key>,
where <key> hashes this script, fixtures.py, gogetproxy.py, `go version` and
`git --version`; concurrent builders serialise on <cache>/.private.lock.

    private_fixtures.py DIR [--force]   build into DIR if needed, print the path

From Python:
    m = private_fixtures.ensure(DIR)          manifest, paths absolute
    m2 = private_fixtures.copy_gitdir(m, D)   a private copy to mutate
    private_fixtures.move_tag(m2["repos"]["alpha"], "v1.0.0")
"""

import argparse
import datetime
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

TOOLS = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, TOOLS)
import fixtures  # noqa: E402
import gogetproxy  # noqa: E402
from fixtures import FixtureError, Git, gomod, rmtree, run  # noqa: E402

HOST = "git.corp.example"
PRIVATE = HOST  # the GOPRIVATE / `private` value that covers every module
KEY_FILES = [
    os.path.abspath(__file__),
    os.path.join(TOOLS, "fixtures.py"),
    os.path.join(TOOLS, "gogetproxy.py"),
]
PREFIX = "private-"


# ---------------------------------------------------------------- versions

def pseudo_version(base, date, commit, major="v0"):
    """module.PseudoVersion: the version go gives a commit whose latest tagged
    ancestor is base ("" for none), committed at date (RFC 3339, UTC)."""
    t = datetime.datetime.strptime(date, "%Y-%m-%dT%H:%M:%SZ").strftime("%Y%m%d%H%M%S")
    rev = commit[:12]
    if not base:
        return f"{major}.0.0-{t}-{rev}"
    core, _, pre = base.partition("-")
    if pre:
        return f"{base}.0.{t}-{rev}"
    x, y, z = core[1:].split(".")
    return f"v{x}.{y}.{int(z) + 1}-0.{t}-{rev}"


# ---------------------------------------------------------------- repositories

def go_file(pkg, text):
    return (f"// Package {pkg} is a private fixture.\npackage {pkg}\n\n"
            f"// Version names the revision.\nconst Version = \"{text}\"\n")


def make_repos(work, gitdir, env):
    """Creates the bare repositories; returns the manifest's "modules"."""
    modules = {}
    team = os.path.join(gitdir, HOST, "team")

    # alpha: v1.0.0, v1.1.0, an untagged master commit; feature off v1.0.0.
    mod = f"{HOST}/team/alpha"
    g = Git(os.path.join(work, "alpha"), env)
    d = ["2023-03-01T10:00:00Z", "2023-03-02T10:00:00Z", "2023-03-03T10:00:00Z",
         "2023-03-04T10:00:00Z"]
    c1 = g.commit(d[0], "v1.0.0", {"go.mod": gomod(mod), "alpha.go": go_file("alpha", "v1.0.0")})
    g.tag("v1.0.0")
    c2 = g.commit(d[1], "v1.1.0", {"alpha.go": go_file("alpha", "v1.1.0")})
    g.tag("v1.1.0")
    c3 = g.commit(d[2], "untagged", {"alpha.go": go_file("alpha", "master")})
    g("checkout", "-q", "-b", "feature", "v1.0.0")
    cf = g.commit(d[3], "feature", {"alpha.go": go_file("alpha", "feature")})
    g("checkout", "-q", "master")
    g.publish(os.path.join(team, "alpha"))
    master_pv = pseudo_version("v1.1.0", d[2], c3)
    feature_pv = pseudo_version("v1.0.0", d[3], cf)
    modules[mod] = {
        "repo_name": "alpha", "versions": ["v1.0.0", "v1.1.0"], "latest": "v1.1.0",
        "commits": {"v1.0.0": c1, "v1.1.0": c2, "master": c3, "feature": cf},
        "pseudo": {"master": master_pv, "feature": feature_pv},
        "queries": {"v1.0.0": "v1.0.0", "v1.1.0": "v1.1.0", "latest": "v1.1.0",
                    "master": master_pv, "feature": feature_pv,
                    c3: master_pv, c3[:12]: master_pv, cf[:12]: feature_pv},
    }

    # beta: v1.0.0 at the root, v2.0.0 on the major branch v2 (go.mod /v2).
    mod = f"{HOST}/team/beta"
    g = Git(os.path.join(work, "beta"), env)
    d = ["2023-04-01T10:00:00Z", "2023-04-02T10:00:00Z"]
    b1 = g.commit(d[0], "v1.0.0", {"go.mod": gomod(mod), "beta.go": go_file("beta", "v1.0.0")})
    g.tag("v1.0.0")
    g("checkout", "-q", "-b", "v2")
    b2 = g.commit(d[1], "v2.0.0", {"go.mod": gomod(mod + "/v2"),
                                   "beta.go": go_file("beta", "v2.0.0")})
    g.tag("v2.0.0")
    g("checkout", "-q", "master")
    g.publish(os.path.join(team, "beta"))
    modules[mod] = {
        "repo_name": "beta", "versions": ["v1.0.0"], "latest": "v1.0.0",
        "commits": {"v1.0.0": b1}, "pseudo": {},
        "queries": {"v1.0.0": "v1.0.0", "latest": "v1.0.0"},
    }
    modules[mod + "/v2"] = {
        "repo_name": "beta", "versions": ["v2.0.0"], "latest": "v2.0.0",
        "commits": {"v2.0.0": b2}, "pseudo": {},
        "queries": {"v2.0.0": "v2.0.0", "latest": "v2.0.0"},
    }

    # legacy: no go.mod at all, so v2.0.0 is v2.0.0+incompatible.
    mod = f"{HOST}/team/legacy"
    g = Git(os.path.join(work, "legacy"), env)
    d = ["2023-05-01T10:00:00Z", "2023-05-02T10:00:00Z"]
    l1 = g.commit(d[0], "v1.0.0", {"legacy.go": go_file("legacy", "v1.0.0")})
    g.tag("v1.0.0")
    l2 = g.commit(d[1], "v2.0.0", {"legacy.go": go_file("legacy", "v2.0.0")})
    g.tag("v2.0.0")
    g.publish(os.path.join(team, "legacy"))
    modules[mod] = {
        "repo_name": "legacy", "versions": ["v1.0.0", "v2.0.0+incompatible"],
        "latest": "v2.0.0+incompatible",
        "commits": {"v1.0.0": l1, "v2.0.0+incompatible": l2}, "pseudo": {},
        "queries": {"v1.0.0": "v1.0.0", "v2.0.0+incompatible": "v2.0.0+incompatible",
                    "latest": "v2.0.0+incompatible"},
    }
    # payments/ledger: one team's module (access rules by path prefix).
    mod = f"{HOST}/payments/ledger"
    g = Git(os.path.join(work, "ledger"), env)
    p1 = g.commit("2023-06-01T10:00:00Z", "v1.0.0",
                  {"go.mod": gomod(mod), "ledger.go": go_file("ledger", "v1.0.0")})
    g.tag("v1.0.0")
    g.publish(os.path.join(gitdir, HOST, "payments", "ledger"))
    modules[mod] = {
        "repo_name": "ledger", "versions": ["v1.0.0"], "latest": "v1.0.0",
        "commits": {"v1.0.0": p1}, "pseudo": {},
        "queries": {"v1.0.0": "v1.0.0", "latest": "v1.0.0"},
    }
    for m in modules.values():
        m["escaped"] = None  # filled in by build()
    return modules


# ---------------------------------------------------------------- checking

def go_env(env, tmp, gitconfig, proxy_url):
    """The environment gomirror's vcs.c gives the go command."""
    return dict(env,
                GOPATH=os.path.join(tmp, "gopath"),
                GOMODCACHE=os.path.join(tmp, "gopath", "pkg", "mod"),
                GOCACHE=os.path.join(tmp, "gocache"),
                GOPROXY="off", GOPRIVATE=PRIVATE, GONOPROXY=PRIVATE, GONOSUMDB=PRIVATE,
                GOFLAGS="-mod=mod", GOINSECURE=HOST, GIT_CONFIG_GLOBAL=gitconfig,
                HTTP_PROXY=proxy_url, HTTPS_PROXY=proxy_url, NO_PROXY="")


def check_with_go(modules, env, tmp, gitconfig):
    """Every expected version and list, as the real go command sees them."""
    srv, proxy_url = gogetproxy.start_in_thread(hosts=[HOST])
    try:
        genv = go_env(env, tmp, gitconfig, proxy_url)
        scratch = os.path.join(tmp, "scratch")
        os.makedirs(scratch, exist_ok=True)
        for mod, ent in modules.items():
            for query, want in ent["queries"].items():
                got = fixtures.go_download(genv, scratch, [f"{mod}@{query}"])[0]
                if got.get("Version") != want:
                    raise FixtureError(f"{mod}@{query}: go says {got.get('Version')}, "
                                       f"expected {want}")
            out = run(["go", "list", "-m", "-versions", "-json", mod], env=genv, cwd=scratch)
            listed = json.loads(out).get("Versions") or []
            if listed != ent["versions"]:
                raise FixtureError(f"{mod}: go lists {listed}, expected {ent['versions']}")
    finally:
        srv.shutdown()
        srv.server_close()


# ---------------------------------------------------------------- build and cache

def build(out, verify=True):
    """Builds every fixture into the (new, empty) directory out."""
    for tool in ("go", "git"):
        fixtures.which(tool)
    t0 = time.time()
    tmp = os.path.join(out, ".tmp")
    os.makedirs(tmp)
    env = fixtures.base_env(tmp)
    gitdir = os.path.join(out, "git")
    gitconfig = os.path.join(tmp, "gitconfig")  # out/gitconfig is written by ensure()
    with open(gitconfig, "w") as f:
        f.write(gogetproxy.git_config_text(gitdir, [HOST]))
    env["GIT_CONFIG_GLOBAL"] = gitconfig
    modules = make_repos(os.path.join(tmp, "work"), gitdir, env)
    for mod, ent in modules.items():
        ent["escaped"] = fixtures.escape_path(mod)
    if verify:
        check_with_go(modules, env, tmp, gitconfig)
    rmtree(tmp)
    manifest = {
        "host": HOST, "hosts": [HOST], "private": PRIVATE, "insecure": HOST,
        "gitdir": "git", "gitconfig": "gitconfig",
        "repos": dict({name: os.path.join("git", HOST, "team", name)
                       for name in ("alpha", "beta", "legacy")},
                      ledger=os.path.join("git", HOST, "payments", "ledger")),
        "modules": modules,
        "build_seconds": round(time.time() - t0, 1),
    }
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")


def cache_key():
    h = hashlib.sha256()
    for f in KEY_FILES:
        with open(f, "rb") as fh:
            h.update(f.encode() + b"\0" + fh.read() + b"\0")
    for cmd in (["go", "version"], ["git", "--version"]):
        h.update(subprocess.run([fixtures.which(cmd[0])] + cmd[1:],
                                stdout=subprocess.PIPE).stdout)
    return h.hexdigest()[:16]


def absolutize(manifest, d):
    m = json.loads(json.dumps(manifest))
    m["dir"] = d
    m["gitdir"] = os.path.join(d, manifest["gitdir"])
    m["gitconfig"] = os.path.join(d, manifest["gitconfig"])
    m["repos"] = {k: os.path.join(d, v) for k, v in manifest["repos"].items()}
    for ent in m["modules"].values():
        ent["repo"] = m["repos"][ent["repo_name"]]
    return m


def write_gitconfig(m):
    """(Re)writes m's git config for wherever its git directory lives now."""
    text = gogetproxy.git_config_text(m["gitdir"], m["hosts"])
    try:
        with open(m["gitconfig"]) as f:
            if f.read() == text:
                return
    except FileNotFoundError:
        pass
    with open(m["gitconfig"] + ".tmp", "w") as f:
        f.write(text)
    os.replace(m["gitconfig"] + ".tmp", m["gitconfig"])


def ensure(cache_dir, force=False, log=None, verify=True):
    """Builds the fixtures under cache_dir if needed; returns the manifest
    with absolute paths (modules[...]["repo"] is the bare repository)."""
    # Older builds dropped are only ours: fixtures.py keeps its own
    # 16-character directories in the same place.
    final = fixtures.cached_build(
        cache_dir, PREFIX + cache_key(), lambda d: build(d, verify=verify),
        lambda name: name.startswith(PREFIX), lock=".private.lock", force=force,
        log=log, what="private fixtures")
    with open(os.path.join(final, "manifest.json")) as f:
        m = absolutize(json.load(f), final)
    write_gitconfig(m)
    return m


# ---------------------------------------------------------------- mutations

def copy_gitdir(manifest, dest):
    """Copies the repositories to dest (git/ and gitconfig) so a test can
    change them without touching the shared cache; returns the manifest for
    the copy."""
    dest = os.path.abspath(dest)
    os.makedirs(dest, exist_ok=True)
    shutil.copytree(manifest["gitdir"], os.path.join(dest, "git"), symlinks=True)
    with open(os.path.join(manifest["dir"], "manifest.json")) as f:
        m = absolutize(json.load(f), dest)
    write_gitconfig(m)
    return m


def move_tag(repo, tag, date="2024-01-01T10:00:00Z", message=None):
    """Force-moves tag in the bare repository repo to a new commit on top of
    the commit it named (a file changes, so the zip's hash does too), as a
    careless maintainer would. Returns the new commit hash."""
    with tempfile.TemporaryDirectory(prefix="move-tag-") as tmp:
        env = dict(fixtures.base_env(tmp),
                   GIT_AUTHOR_NAME="Fixture", GIT_AUTHOR_EMAIL="fixture@example.com",
                   GIT_COMMITTER_NAME="Fixture", GIT_COMMITTER_EMAIL="fixture@example.com",
                   GIT_AUTHOR_DATE=date, GIT_COMMITTER_DATE=date)
        work = os.path.join(tmp, "work")
        run(["git", "clone", "-q", repo, work], env=env)

        def git(*args):
            return run(["git", *args], env=env, cwd=work).strip()
        git("checkout", "-q", "--detach", f"refs/tags/{tag}")
        with open(os.path.join(work, "MOVED.txt"), "w") as f:
            f.write(f"{tag} was moved to this commit\n")
        git("add", "-A")
        git("commit", "-q", "-m", message or f"{tag} moved")
        git("tag", "-f", tag)
        git("push", "-q", "--force", "origin", f"refs/tags/{tag}:refs/tags/{tag}")
        return git("rev-parse", "HEAD")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dir", help="cache directory (builds go in DIR/private-<key>)")
    ap.add_argument("--force", action="store_true", help="rebuild even if cached")
    ap.add_argument("--no-verify", action="store_true",
                    help="skip the check against the go command")
    args = ap.parse_args()
    t0 = time.time()
    try:
        m = ensure(args.dir, args.force, log=lambda s: print(s, file=sys.stderr, flush=True),
                   verify=not args.no_verify)
    except FixtureError as e:
        print(f"private_fixtures: {e}", file=sys.stderr)
        return 1
    print(m["dir"])
    print(f"private fixtures ready in {time.time() - t0:.1f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
