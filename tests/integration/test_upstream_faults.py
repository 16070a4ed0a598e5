"""Upstream faults: every bad answer from an upstream gives the client the
right status and a one-line reason, and nothing reaches storage. Also the
GOPROXY-list semantics of ',' and '|' with two real upstreams."""

import os
import zipfile

import harness
from harness import check, eq

MOD = "example.com/hello"


def stored_files(gm):
    return gm.stored_keys()


def one_line_reason(r, want_status, want_text=None):
    eq(r.status, want_status, "status")
    ctype = r.headers.get("Content-Type", "")
    eq(ctype, "text/plain; charset=utf-8", "error content type")
    body = r.text
    check(body.endswith("\n") and body.count("\n") == 1 and len(body) > 2,
          f"error body is not one line: {body!r}")
    if want_text:
        check(want_text in body, f"reason {body!r} does not mention {want_text!r}")
    return body


def versions(t):
    return t.fx["modules"][MOD]["versions"]


def fault_case(t, path_suffix, fault, want_status, want_text, request=None, **gm_keys):
    """Start a fresh upstream with one fault and a fresh gomirror; request
    MOD@v1.0.0 (or `request`); check status, reason and empty storage."""
    v = versions(t)[0]
    base = f"/{MOD}/@v/{v}"
    up = t.start_upstream(faults={base + path_suffix: fault})
    gm = t.start_gomirror(upstream=up, negative_ttl=0, **gm_keys)
    r = gm.get(request or base + ".zip", timeout=60)
    body = one_line_reason(r, want_status, want_text)
    eq(stored_files(gm), [], f"storage after {fault} on {path_suffix} ({body.strip()})")
    return gm, up, body


def test_upstream_404_is_404(t):
    fault_case(t, ".info", {"status": 404, "body": "not found: no such version\n"}, 404,
               "no such version")


def test_upstream_410_is_410(t):
    fault_case(t, ".info", {"status": 410, "body": "gone: retracted upstream\n"}, 410,
               "retracted upstream")


def test_upstream_500_is_502(t):
    fault_case(t, ".info", {"status": 500, "body": "boom"}, 502, "500")


def test_upstream_503_is_502(t):
    fault_case(t, ".zip", {"status": 503, "body": "overloaded"}, 502, "503")


def test_garbage_info_is_502(t):
    fault_case(t, ".info", {"status": 200, "body": "this is not json{",
                            "content_type": "application/json"}, 502, ".info")


def test_info_with_other_version_is_502(t):
    other = versions(t)[1]
    fault_case(t, ".info", {"status": 200, "body": '{"Version":"%s"}' % other,
                            "content_type": "application/json"}, 502, other)


def test_oversized_mod_is_502(t):
    big = t.path("big.mod")
    with open(big, "wb") as f:
        f.write(b"module example.com/hello\n")
        f.write(b"// " + b"x" * (17 << 20) + b"\n")
    fault_case(t, ".mod", {"body_file": big}, 502, "larger")


def test_zip_with_wrong_prefix_is_502(t):
    v = versions(t)[0]
    bad = t.path("bad.zip")
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr(f"example.com/other@{v}/go.mod", "module example.com/other\n")
    fault_case(t, ".zip", {"body_file": bad}, 502, "example.com/other")


def test_hanging_upstream_is_504(t):
    import time
    t0 = time.time()
    fault_case(t, ".zip", {"hang": True, "hang_seconds": 60}, 504, "timed out",
               fetch_timeout=2)
    check(time.time() - t0 < 30, "the hang was not cut short by fetch_timeout")


def test_mod_request_does_not_fetch_zip(t):
    v = versions(t)[0]
    up = t.start_upstream()
    gm = t.start_gomirror(upstream=up)
    eq(gm.get(f"/{MOD}/@v/{v}.mod").status, 200, ".mod status")
    check(not any(p.endswith(".zip") for p in up.paths()), f"zip fetched: {up.paths()}")
    esc = t.fx["modules"][MOD]["escaped"]
    eq(stored_files(gm), [f"{esc}/@v/{v}.info", f"{esc}/@v/{v}.mod"], "stored files")


def test_comma_falls_through_only_on_404(t):
    v = versions(t)[0]
    zip_path = f"/{MOD}/@v/{v}.zip"
    good = t.start_upstream()
    # 404 from the first: the second answers.
    a404 = t.start_upstream(faults={f"/{MOD}/@v/{v}.info": {"status": 404, "body": "no"}})
    gm = t.start_gomirror(upstream=f"{a404.url},{good.url}")
    eq(gm.get(zip_path).status, 200, "',' after a 404")
    check(f"/{MOD}/@v/{v}.info" in good.paths(), "second upstream was not asked after 404")
    # 500 from the first: ',' stops there and the second is never asked.
    good2 = t.start_upstream()
    a500 = t.start_upstream(faults={f"/{MOD}/@v/{v}.info": {"status": 500, "body": "boom"}})
    gm2 = t.start_gomirror(upstream=f"{a500.url},{good2.url}")
    one_line_reason(gm2.get(zip_path), 502, "500")
    eq(good2.paths(), [], "second upstream after a 500 with ','")
    eq(stored_files(gm2), [], "storage")


def test_pipe_falls_through_on_any_error(t):
    v = versions(t)[0]
    zip_path = f"/{MOD}/@v/{v}.zip"
    good = t.start_upstream()
    a500 = t.start_upstream(faults={f"/{MOD}/@v/{v}.info": {"status": 500, "body": "boom"}})
    gm = t.start_gomirror(upstream=f"{a500.url}|{good.url}")
    r = gm.get(zip_path)
    eq(r.status, 200, "'|' after a 500")
    with open(os.path.join(t.fx["upstream"], t.fx["modules"][MOD]["escaped"], "@v",
                           v + ".zip"), "rb") as f:
        eq(r.body, f.read(), "zip bytes from the second upstream")
    # A dead first upstream (connection refused) also falls through with '|'.
    dead = f"http://127.0.0.1:{harness.free_port()}"
    gm2 = t.start_gomirror(upstream=f"{dead}|{good.url}")
    eq(gm2.get(f"/{MOD}/@v/list").status, 200, "'|' after connection refused")
    gm3 = t.start_gomirror(upstream=f"{dead},{good.url}")
    one_line_reason(gm3.get(f"/{MOD}/@v/list"), 502, "unreachable")


def test_redirects_are_followed(t):
    """An upstream that redirects to a path on its own host (its blob store,
    a pre-signed URL) is followed; redirects elsewhere are refused
    (test_hostile_upstream.py)."""
    v = versions(t)[0]
    real_zip = os.path.join(t.fx["upstream"], MOD, "@v", v + ".zip")
    up = t.start_upstream(faults={
        f"/{MOD}/@v/{v}.zip": {"location": f"/blobs/hello-{v}.zip?sig=x"},
        f"/blobs/hello-{v}.zip": {"location": "/blobs/final.zip"},
        "/blobs/final.zip": {"body_file": real_zip, "content_type": "application/zip"}})
    gm = t.start_gomirror(upstream=up)
    r = gm.get(f"/{MOD}/@v/{v}.zip")
    eq(r.status, 200, f"status ({r.text[:100]!r})")
    with open(real_zip, "rb") as f:
        eq(r.body, f.read(), "zip bytes through the redirects")
    check("/blobs/final.zip" in up.paths(), f"redirect target not asked: {up.paths()}")


def test_mod_without_module_line_is_502(t):
    """A .mod the go command would refuse (no module line, or one naming a
    module of another major version) is a 502 and never stored."""
    for body, want in (
            ("<html><body>Please log in to the hotel Wi-Fi</body></html>\n",
             "no module line"),
            ('{"Version":"v1.0.0"}\n', "no module line"),
            ("module example.com/hello/v3\n", 'declares module "example.com/hello/v3"'),
            ("module example.com/hello /* c */\n", "not a go.mod file")):
        fault_case(t, ".mod", {"body": body, "content_type": "text/plain; charset=utf-8"},
                   502, want)


def test_off(t):
    gm = t.start_gomirror(upstream="off")
    one_line_reason(gm.get(f"/{MOD}/@v/list"), 404, "off")


def test_negative_cache(t):
    up = t.start_upstream()
    gm = t.start_gomirror(upstream=up, negative_ttl=60)
    for _ in range(3):
        eq(gm.get("/example.com/nosuchmodule/@v/list").status, 404, "status")
    n = sum(1 for p in up.paths() if p == "/example.com/nosuchmodule/@v/list")
    eq(n, 1, "upstream requests for a cached 404")


def test_comma_falls_through_on_410(t):
    """410 means "does not exist" just as 404 does: after ',' the next
    upstream answers (PROTOCOL.md A.3)."""
    v = versions(t)[0]
    info = f"/{MOD}/@v/{v}.info"
    good = t.start_upstream()
    gone = t.start_upstream(faults={info: {"status": 410, "body": "gone\n"}})
    gm = t.start_gomirror(upstream=f"{gone.url},{good.url}", negative_ttl=0)
    r = gm.get(f"/{MOD}/@v/{v}.zip")
    eq(r.status, 200, f"',' after a 410 ({r.text[:120]!r})")
    check(info in gone.paths(), "first upstream was not asked")
    check(info in good.paths(), "second upstream was not asked after a 410")


def test_negative_cache_keeps_410(t):
    """A cached 410 is answered as 410 (the client may move on), from the
    cache, with the upstream's reason."""
    v = versions(t)[0]
    info = f"/{MOD}/@v/{v}.info"
    up = t.start_upstream(faults={info: {"status": 410, "body": "gone: retracted\n"}})
    gm = t.start_gomirror(upstream=up, negative_ttl=60)
    for _ in range(3):
        one_line_reason(gm.get(info), 410, "retracted")
    eq(up.paths().count(info), 1, "upstream requests for a cached 410")
    eq(stored_files(gm), [], "storage")


def test_negative_cache_ttl_bounds(t):
    """negative_ttl=4: a 404 is still cached 2 s later (lower bound) and
    asked again once 4 s have passed (upper bound)."""
    import time
    path = "/example.com/nosuchmodule/@v/list"
    up = t.start_upstream()
    gm = t.start_gomirror(upstream=up, negative_ttl=4)
    t0 = time.time()
    eq(gm.get(path).status, 404, "first status")
    time.sleep(max(0.0, t0 + 2.0 - time.time()))
    eq(gm.get(path).status, 404, "status at 2 s")
    eq(up.paths().count(path), 1, "upstream requests within the TTL (at 2 s)")
    time.sleep(max(0.0, t0 + 5.2 - time.time()))
    eq(gm.get(path).status, 404, "status after the TTL")
    eq(up.paths().count(path), 2, "upstream requests after the TTL (at 5.2 s)")


if __name__ == "__main__":
    harness.main()
