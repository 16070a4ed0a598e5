"""A synthetic module version in a static GOPROXY layout: a go.mod and a
payload of incompressible bytes, for tests and benchmarks that need a zip of
a chosen size. Its hashes are whatever they are: serve it with a checksum
database over the same layout (tests/tools/sumdb) or with sumdb_verify off."""

import json
import os
import zipfile


def module(root, path, version, payload_bytes):
    """Writes path@version (.info, .mod, .zip, list) under root; returns the
    layout path without extension."""
    d = os.path.join(root, path, "@v")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, version + ".info"), "w") as f:
        json.dump({"Version": version, "Time": "2024-01-02T03:04:05Z"}, f)
    with open(os.path.join(d, version + ".mod"), "w") as f:
        f.write(f"module {path}\n")
    with zipfile.ZipFile(os.path.join(d, version + ".zip"), "w", zipfile.ZIP_STORED) as z:
        z.writestr(f"{path}@{version}/go.mod", f"module {path}\n")
        z.writestr(f"{path}@{version}/data.bin", os.urandom(payload_bytes))
    with open(os.path.join(d, "list"), "w") as f:
        f.write(version + "\n")
    return os.path.join(d, version)
