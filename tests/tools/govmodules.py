"""Small buildable modules in a static GOPROXY layout, with chosen .info
publication times, for the governance tests (version policy, cooldown,
garbage collection, catalog).

Each module `<host>/<name>` holds one package `<name>` with
`const Version = "<version>"`; a program importing several of them prints
what it got. Hashes are whatever they are: run gomirror with sumdb_verify
warn (the harness default) and the go command with GOSUMDB=off."""

import json
import os
import time
import zipfile


def rfc3339(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def escape(path):
    return "".join("!" + c.lower() if "A" <= c <= "Z" else c for c in path)


def add(root, path, version, age_days=30.0, with_list=True):
    """Writes path@version (.info with Time age_days ago, .mod, .zip) under
    root and adds it to the module's list; returns the .info path."""
    d = os.path.join(root, escape(path), "@v")
    os.makedirs(d, exist_ok=True)
    name = path.rsplit("/", 1)[-1].replace("-", "").replace(".", "")
    gomod = f"module {path}\n\ngo 1.19\n"
    info = os.path.join(d, escape(version) + ".info")
    with open(info, "w") as f:
        json.dump({"Version": version, "Time": rfc3339(time.time() - age_days * 86400)}, f)
    with open(os.path.join(d, escape(version) + ".mod"), "w") as f:
        f.write(gomod)
    with zipfile.ZipFile(os.path.join(d, escape(version) + ".zip"), "w") as z:
        z.writestr(f"{path}@{version}/go.mod", gomod)
        z.writestr(f"{path}@{version}/{name}.go",
                   f"package {name}\n\nconst Version = \"{path}@{version}\"\n")
    if with_list:
        lp = os.path.join(d, "list")
        have = []
        if os.path.exists(lp):
            with open(lp) as f:
                have = [l.strip() for l in f if l.strip()]
        if version not in have:
            have.append(version)
        with open(lp, "w") as f:
            f.write("".join(v + "\n" for v in have))
    return info


def layout(root, mods):
    """mods: {module path: {version: age in days}}; the last version of
    each is also its @latest. Returns root."""
    for path, versions in mods.items():
        info = None
        for v, age in versions.items():
            info = add(root, path, v, age)
        with open(info) as f, open(os.path.join(root, escape(path), "@latest"), "w") as g:
            g.write(f.read())
    return root


def program(t, requires, name="example.com/prog"):
    """A main module requiring {module: version} that prints each package's
    Version; returns its directory (t.scratch_module)."""
    req = "".join(f"\t{m} {v}\n" for m, v in requires.items())
    imports = "".join(f"\t\"{m}\"\n" for m in requires)
    prints = "".join(f"\tfmt.Println({m.rsplit('/', 1)[-1].replace('-', '').replace('.', '')}"
                     f".Version)\n" for m in requires)
    return t.scratch_module(name, {
        "go.mod": f"module {name}\n\ngo 1.19\n\nrequire (\n{req})\n",
        "main.go": f"package main\n\nimport (\n\t\"fmt\"\n{imports})\n\nfunc main() {{\n{prints}}}\n",
    })
