"""Hostile zips from an upstream (issue 10): a zip bomb whose headers lie
about its size, a Stored entry longer than declared, a CRC-32 mismatch, a
zip of 200,000 empty entries and a checksum mismatch are each refused with
one 502 line, nothing is stored, and the refusal is remembered for
negative_ttl: a second request does not reach the upstream again. Transient
failures (an upstream 503) are not remembered. The zips are built here, in
static GOPROXY layouts served by tests/tools/upstream.py."""

import json
import os
import struct
import time
import zipfile

import harness
import synthetic
from harness import check, eq

VERSION = "v1.0.0"


# ------------------------------------------------------------ building zips

def write_version(root, path, zip_fn):
    """path@VERSION in the layout at root: .info, .mod, list, and the zip
    zip_fn(zip_path, prefix) writes."""
    d = os.path.join(root, path, "@v")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, VERSION + ".info"), "w") as f:
        json.dump({"Version": VERSION, "Time": "2024-01-02T03:04:05Z"}, f)
    with open(os.path.join(d, VERSION + ".mod"), "w") as f:
        f.write(f"module {path}\n")
    with open(os.path.join(d, "list"), "w") as f:
        f.write(VERSION + "\n")
    zip_fn(os.path.join(d, VERSION + ".zip"), f"{path}@{VERSION}/")


def patch_headers(zip_path, name, usize=None, crc=None):
    """Sets the declared uncompressed size and/or CRC-32 of entry name in
    both its local and its central header; returns how many were patched."""
    with open(zip_path, "rb") as f:
        b = bytearray(f.read())
    want, i, patched = name.encode(), 0, 0
    while (i := b.find(b"PK", i)) >= 0:
        sig = bytes(b[i:i + 4])
        if sig in (b"PK\x03\x04", b"PK\x01\x02"):
            local = sig == b"PK\x03\x04"
            nlen = struct.unpack_from("<H", b, i + (26 if local else 28))[0]
            start = i + (30 if local else 46)
            if bytes(b[start:start + nlen]) == want:
                if usize is not None:
                    struct.pack_into("<I", b, i + (22 if local else 24), usize)
                if crc is not None:
                    struct.pack_into("<I", b, i + (14 if local else 16), crc)
                patched += 1
        i += 4
    with open(zip_path, "wb") as f:
        f.write(b)
    return patched


def bomb_zip(path, prefix):
    """200 MiB of zeros deflated into 0.9 MB, both headers declaring 100."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        z.writestr(prefix + "go.mod", "module x\n")
        with z.open(prefix + "zeros", "w") as w:
            mib = bytes(1 << 20)
            for _ in range(200):
                w.write(mib)
    eq(patch_headers(path, prefix + "zeros", usize=100), 2, "bomb headers patched")


def stored_longer_zip(path, prefix):
    """A Stored entry of 1000 bytes declaring 100."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr(prefix + "go.mod", "module x\n")
        z.writestr(prefix + "data.txt", b"x" * 1000)
    eq(patch_headers(path, prefix + "data.txt", usize=100), 2, "headers patched")


def crc_zip(path, prefix):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(prefix + "go.mod", "module x\n")
        z.writestr(prefix + "a.go", "package a\n")
    eq(patch_headers(path, prefix + "a.go", crc=0x12345678), 2, "headers patched")


def many_entries_zip(n):
    """n empty Stored entries with zip64 end records, written directly:
    zipfile takes seconds for 200,000 entries, this a fraction of one."""
    def write(path, prefix):
        central, off = [], 0
        with open(path, "wb") as f:
            for i in range(n):
                name = f"{prefix}d{i % 1000:03d}/f{i:06d}".encode()
                head = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 0, 0, 0x21,
                                   0, 0, 0, len(name), 0)
                f.write(head + name)
                central.append(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0,
                                           0, 0, 0x21, 0, 0, 0, len(name), 0, 0, 0, 0,
                                           0, off) + name)
                off += len(head) + len(name)
            cd = b"".join(central)
            f.write(cd)
            eocd64 = off + len(cd)
            f.write(struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, n, n,
                                len(cd), off))
            f.write(struct.pack("<IIQI", 0x07064B50, 0, eocd64, 1))
            f.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, min(n, 0xFFFF),
                                min(n, 0xFFFF), len(cd), off, 0))
    return write


# ------------------------------------------------------------ checks

def one_line(r, status, text):
    eq(r.status, status, f"status ({r.text[:200]!r})")
    body = r.text
    check(body.endswith("\n") and body.count("\n") == 1, f"not one line: {body!r}")
    check(text in body, f"reason {body!r} lacks {text!r}")
    return body


def count(up, path):
    return sum(1 for p in up.paths() if p == path)


def vm(pid, field):
    """VmRSS or VmHWM of pid, in bytes."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise harness.Failure(f"no {field} in /proc/{pid}/status")


def refused_and_remembered(t, module, zip_fn, text, **gm_keys):
    """Serves module with zip_fn's zip; asserts one 502 line mentioning text,
    empty storage, and a second request answered the same from the negative
    cache without the upstream. Returns (gomirror, upstream, body)."""
    layout = t.mkdtemp("layout")
    write_version(layout, module, zip_fn)
    up = t.start_upstream(root=layout)
    keys = {"sumdb_verify": "false", "negative_ttl": 60}
    keys.update(gm_keys)
    gm = t.start_gomirror(upstream=up, **keys)
    zpath = f"/{module}/@v/{VERSION}.zip"
    t0 = time.time()
    first = one_line(gm.get(zpath, timeout=60), 502, text)
    took = time.time() - t0
    check(took < 5, f"refusal took {took:.1f}s")
    eq(gm.stored_keys(), [], "storage after the refusal")
    eq(count(up, zpath), 1, "upstream zip requests after one refusal")
    second = one_line(gm.get(zpath, timeout=60), 502, text)
    eq(second, first, "the remembered answer")
    eq(count(up, zpath), 1, "upstream zip requests after a remembered refusal")
    eq(gm.stored_keys(), [], "storage after the second request")
    return gm, up, first


# ------------------------------------------------------------ tests

def test_zip_bomb(t):
    gm, up, _ = refused_and_remembered(t, "example.com/bomb", bomb_zip,
                                       "zip entry \"zeros\" inflates past its declared "
                                       "size of 100 bytes")
    # A bad zip does not deny the version's good .info and .mod.
    eq(gm.get(f"/example.com/bomb/@v/{VERSION}.info").status, 200, ".info status")
    eq(gm.get(f"/example.com/bomb/@v/{VERSION}.mod").status, 200, ".mod status")
    one_line(gm.get(f"/example.com/bomb/@v/{VERSION}.zip"), 502, "inflates past")
    eq(count(up, f"/example.com/bomb/@v/{VERSION}.zip"), 1, "upstream zip requests")


def test_stored_entry_longer_than_declared(t):
    refused_and_remembered(t, "example.com/stored", stored_longer_zip,
                           "zip entry \"data.txt\" inflates past its declared size "
                           "of 100 bytes")


def test_crc_mismatch(t):
    refused_and_remembered(t, "example.com/crc", crc_zip,
                           "zip entry \"a.go\": CRC-32 mismatch")


def test_many_entries_refused_with_bounded_memory(t):
    layout = t.mkdtemp("layout")
    write_version(layout, "example.com/many", many_entries_zip(200_000))
    write_version(layout, "example.com/small", crc_zip)
    up = t.start_upstream(root=layout)
    gm = t.start_gomirror(upstream=up, sumdb_verify="false", negative_ttl=60)
    pid = gm.popen.pid
    # Warm up: a worker thread, its curl handle, a spool file, libzip.
    one_line(gm.get(f"/example.com/small/@v/{VERSION}.zip"), 502, "CRC-32")
    hwm0, rss0 = vm(pid, "VmHWM"), vm(pid, "VmRSS")
    zpath = f"/example.com/many/@v/{VERSION}.zip"
    first = one_line(gm.get(zpath, timeout=60), 502,
                     "upstream zip has 200000 entries (limit 100000)")
    hwm1, rss1 = vm(pid, "VmHWM"), vm(pid, "VmRSS")
    mib = 1 << 20
    print(f"  gomirror VmHWM {hwm0 / mib:.1f} -> {hwm1 / mib:.1f} MiB, "
          f"VmRSS {rss0 / mib:.1f} -> {rss1 / mib:.1f} MiB", flush=True)
    check(hwm1 - hwm0 < 16 * mib,
          f"peak RSS grew by {(hwm1 - hwm0) / mib:.1f} MiB refusing 200,000 entries")
    eq(one_line(gm.get(zpath), 502, "entries"), first, "the remembered answer")
    eq(count(up, zpath), 1, "upstream zip requests")
    eq(gm.stored_keys(), [], "storage")


def test_checksum_mismatch(t):
    good, bad = t.mkdtemp("good"), t.mkdtemp("bad")
    synthetic.module(good, "example.com/sums", VERSION, 4096)
    synthetic.module(bad, "example.com/sums", VERSION, 4096)  # other random bytes
    sdb = t.start_sumdb(root=good, name="sumdb.test")
    up = t.start_upstream(root=bad)
    gm = t.start_gomirror(upstream=up, sumdb=sdb, negative_ttl=60)
    zpath = f"/example.com/sums/@v/{VERSION}.zip"
    first = one_line(gm.get(zpath), 502, "checksum mismatch")
    lookups = len(sdb.requests())
    second = one_line(gm.get(zpath), 502, "checksum mismatch")
    eq(second, first, "the remembered answer")
    eq(count(up, zpath), 1, "upstream zip requests")
    eq(len(sdb.requests()), lookups, "checksum database requests")
    eq([k for k in gm.stored_keys() if k.endswith(".zip")], [], "stored zips")


def test_refusal_shared_through_redis(t):
    """With Redis as the metadata store, a refusal met by one replica is
    answered by another without a fetch of its own."""
    redis = t.start_redis()
    layout = t.mkdtemp("layout")
    write_version(layout, "example.com/crc", crc_zip)
    up = t.start_upstream(root=layout)
    reps = [t.start_gomirror(upstream=up, meta=redis.url, sumdb_verify="false",
                             negative_ttl=60) for _ in range(2)]
    zpath = f"/example.com/crc/@v/{VERSION}.zip"
    first = one_line(reps[0].get(zpath), 502, "CRC-32 mismatch")
    eq(one_line(reps[1].get(zpath), 502, "CRC-32 mismatch"), first, "the other replica")
    eq(count(up, zpath), 1, "upstream zip requests")


def test_refusal_expires(t):
    layout = t.mkdtemp("layout")
    write_version(layout, "example.com/crc", crc_zip)
    up = t.start_upstream(root=layout)
    gm = t.start_gomirror(upstream=up, sumdb_verify="false", negative_ttl=1)
    zpath = f"/example.com/crc/@v/{VERSION}.zip"
    one_line(gm.get(zpath), 502, "CRC-32")
    time.sleep(2.1)
    one_line(gm.get(zpath), 502, "CRC-32")
    eq(count(up, zpath), 2, "upstream zip requests once negative_ttl passed")


def test_transient_failure_not_remembered(t):
    mod = "example.com/hello"
    v = t.fx["modules"][mod]["versions"][0]
    zpath = f"/{mod}/@v/{v}.zip"
    up = t.start_upstream(faults={zpath: {"status": 503, "body": "overloaded", "count": 1}})
    gm = t.start_gomirror(upstream=up, sumdb_verify="false", negative_ttl=60)
    one_line(gm.get(zpath), 502, "503")
    eq(gm.get(zpath).status, 200, "status once the upstream recovered")
    eq(count(up, zpath), 2, "upstream zip requests")


if __name__ == "__main__":
    harness.main()
