#!/usr/bin/env python3
"""A small in-memory S3-compatible server that can misbehave on purpose.

    s3standin.py --port P [--bucket NAME] [--log FILE]

It answers what gomirror's S3 backend (storage/s3.c) sends, path-style
(/BUCKET/KEY): HEAD and GET of an object (GET with a single Range:
"bytes=a-b", "a-" or "-n"), PUT (with If-None-Match: * answered 412 when the
key exists), multipart uploads (POST ?uploads, PUT ?partNumber&uploadId,
POST ?uploadId, DELETE ?uploadId), DeleteObject, and ListObjectsV2
(GET /BUCKET?list-type=2 with prefix, max-keys and continuation-token).
Only the bucket NAME (default "gomirror") exists. Objects live in memory and
vanish with the process.

It does NOT check signatures (any Authorization header is accepted), does
not know delimiters, versions or ACLs: it is a stand-in for fault tests,
not a faithful S3. The faithful one is Ceph RGW (tests/tools/rgw.py).

Faults are set and read over HTTP on the same port, under /_standin/ (no
bucket can have that name):

    PUT /_standin/faults     body: a JSON list of rules (replaces them all,
                             and their counters)
    GET /_standin/log        JSON list of "METHOD key[?query]" lines, oldest
                             first (one per request to the bucket)
    DELETE /_standin/log     empties it

A rule: {"method": "GET", "match": ".zip", "action": ..., "after": K,
"times": T, ...}. It applies to requests of that method (any if absent)
whose key contains match (any if absent), skipping the first K of them
(default 0) and then applying to T of them (default: all that follow). So
"fail the 2nd PUT and every PUT after it" is {"method": "PUT", "after": 1,
"action": "status"}. Actions:

    "ignore_range"  answer a GET 200 with the whole object, whatever Range
                    says (a store, or a proxy in front of one, that does
                    not do ranges)
    "short"         send the normal status and headers (Content-Length
                    included), then only "bytes" bytes of the body (default
                    half of it), then close the connection
    "status"        answer "status" (default 500) with an S3 error document
                    (code "code", default "InternalError"); the request's
                    body is read and dropped
    "hang"          read the request, then answer nothing for "seconds"
                    (default 600) and close the connection

Standard library only.
"""

import argparse
import hashlib
import json
import sys
import threading
import time
import urllib.parse
import uuid
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.etree import ElementTree
from xml.sax.saxutils import escape

CONTROL = "/_standin/"


class Store:
    """Objects, multipart uploads, fault rules and the request log, behind
    one lock."""

    def __init__(self, bucket, log_path=None):
        self.bucket = bucket
        self.lock = threading.Lock()
        self.objects = {}   # key -> (bytes, etag, mtime)
        self.uploads = {}   # upload id -> (key, {part number: bytes})
        self.rules = []     # [(rule dict, matched count)]
        self.log = []
        self.log_path = log_path

    def record(self, line):
        with self.lock:
            self.log.append(line)
        if self.log_path:
            with open(self.log_path, "a", encoding="utf-8") as f:
                f.write(line + "\n")

    def set_rules(self, rules):
        if not isinstance(rules, list) or not all(isinstance(r, dict) for r in rules):
            raise ValueError("faults must be a JSON list of objects")
        with self.lock:
            self.rules = [[r, 0] for r in rules]

    def fault_for(self, method, key):
        """The first rule that applies to this request, counting it."""
        with self.lock:
            for entry in self.rules:
                rule = entry[0]
                if rule.get("method", method) != method:
                    continue
                if rule.get("match", "") not in key:
                    continue
                entry[1] += 1
                n = entry[1]
                after = int(rule.get("after", 0))
                times = rule.get("times")
                if n <= after or (times is not None and n > after + int(times)):
                    continue
                return rule
        return None

    def put(self, key, data):
        etag = '"' + hashlib.md5(data).hexdigest() + '"'
        with self.lock:
            self.objects[key] = (data, etag, time.time())
        return etag


def parse_range(header, size):
    """(start, end) inclusive for a single-range header, None to ignore it,
    or "bad" when unsatisfiable."""
    if not header or not header.startswith("bytes=") or "," in header:
        return None
    a, _, b = header[6:].strip().partition("-")
    try:
        if a == "":
            n = int(b)
            if n <= 0 or size == 0:
                return "bad"
            return (max(0, size - n), size - 1)
        start = int(a)
        end = int(b) if b else size - 1
    except ValueError:
        return None
    if start >= size or end < start:
        return "bad"
    return (start, min(end, size - 1))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"   # keep-alive, as S3 does
    server_version = "s3standin"

    def log_message(self, fmt, *args):  # quiet: the request log says it all
        pass

    # -- plumbing -----------------------------------------------------

    @property
    def store(self):
        return self.server.store

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while True:
                line = self.rfile.readline()
                n = int(line.split(b";")[0].strip() or b"0", 16)
                if n == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += self.rfile.read(n)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def send(self, status, body=b"", headers=None, ctype="application/xml"):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def error(self, status, code, message=""):
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
                f"<Message>{escape(message)}</Message></Error>").encode()
        self.send(status, body)

    def target(self):
        """(bucket, key, query dict) of the request path."""
        u = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(u.path)
        query = urllib.parse.parse_qs(u.query, keep_blank_values=True)
        bucket, _, key = path.lstrip("/").partition("/")
        return bucket, key, {k: v[0] for k, v in query.items()}

    # -- dispatch -----------------------------------------------------

    def handle_any(self):
        if self.path.startswith(CONTROL):
            return self.control()
        bucket, key, q = self.target()
        query = urllib.parse.urlsplit(self.path).query
        self.store.record(f"{self.command} {key}" + (f"?{query}" if query else ""))
        fault = self.store.fault_for(self.command, key)
        if fault and fault.get("action") == "hang":
            if self.command in ("PUT", "POST"):
                self.read_body()
            time.sleep(float(fault.get("seconds", 600)))
            self.close_connection = True
            return None
        if fault and fault.get("action") == "status":
            if self.command in ("PUT", "POST"):
                self.read_body()
            return self.error(int(fault.get("status", 500)), fault.get("code", "InternalError"),
                              "injected by s3standin")
        if bucket != self.store.bucket:
            if self.command in ("PUT", "POST"):
                self.read_body()
            return self.error(404, "NoSuchBucket", bucket)
        if not key:
            if self.command == "GET":
                return self.list_objects(q)
            return self.error(405, "MethodNotAllowed", self.command)
        if self.command in ("GET", "HEAD"):
            return self.get_object(key, fault)
        if self.command == "PUT":
            return self.put_object(key, q)
        if self.command == "POST":
            return self.post_object(key, q)
        if self.command == "DELETE":
            return self.delete_object(key, q)
        return self.error(405, "MethodNotAllowed", self.command)

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = handle_any

    def control(self):
        what = self.path[len(CONTROL):]
        if what == "faults" and self.command == "PUT":
            try:
                self.store.set_rules(json.loads(self.read_body() or b"[]"))
            except ValueError as e:
                return self.send(400, str(e).encode(), ctype="text/plain")
            return self.send(204)
        if what == "log" and self.command == "GET":
            with self.store.lock:
                body = json.dumps(self.store.log).encode()
            return self.send(200, body, ctype="application/json")
        if what == "log" and self.command == "DELETE":
            with self.store.lock:
                self.store.log = []
            return self.send(204)
        self.read_body()
        return self.send(404, b"no such control\n", ctype="text/plain")

    # -- objects ------------------------------------------------------

    def get_object(self, key, fault):
        with self.store.lock:
            obj = self.store.objects.get(key)
        if obj is None:
            return self.error(404, "NoSuchKey", key)
        data, etag, mtime = obj
        headers = {"ETag": etag, "Last-Modified": formatdate(mtime, usegmt=True),
                   "Accept-Ranges": "bytes"}
        status, body = 200, data
        action = fault.get("action") if fault else None
        rng = None if action == "ignore_range" else parse_range(self.headers.get("Range"),
                                                                len(data))
        if rng == "bad":
            headers["Content-Range"] = f"bytes */{len(data)}"
            return self.send(416, b"", headers)
        if rng is not None:
            status, body = 206, data[rng[0]:rng[1] + 1]
            headers["Content-Range"] = f"bytes {rng[0]}-{rng[1]}/{len(data)}"
        if action == "short" and self.command == "GET":
            cut = int(fault.get("bytes", len(body) // 2))
            self.send_response(status)
            self.send_header("Content-Type", "application/octet-stream")
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[:cut])
            self.wfile.flush()
            self.close_connection = True
            return None
        return self.send(status, body, headers, ctype="application/octet-stream")

    def put_object(self, key, q):
        data = self.read_body()
        if "uploadId" in q:
            with self.store.lock:
                up = self.store.uploads.get(q["uploadId"])
                if up is not None:
                    up[1][int(q.get("partNumber", "0"))] = data
            if up is None:
                return self.error(404, "NoSuchUpload", q["uploadId"])
            return self.send(200, b"", {"ETag": '"' + hashlib.md5(data).hexdigest() + '"'})
        if self.headers.get("If-None-Match", "").strip() == "*":
            with self.store.lock:
                exists = key in self.store.objects
            if exists:
                return self.error(412, "PreconditionFailed", key)
        etag = self.store.put(key, data)
        return self.send(200, b"", {"ETag": etag})

    def post_object(self, key, q):
        body = self.read_body()
        if "uploads" in q:
            uid = uuid.uuid4().hex
            with self.store.lock:
                self.store.uploads[uid] = (key, {})
            xml = (f'<?xml version="1.0" encoding="UTF-8"?>\n<InitiateMultipartUploadResult>'
                   f"<Bucket>{escape(self.store.bucket)}</Bucket><Key>{escape(key)}</Key>"
                   f"<UploadId>{uid}</UploadId></InitiateMultipartUploadResult>")
            return self.send(200, xml.encode())
        if "uploadId" in q:
            with self.store.lock:
                up = self.store.uploads.pop(q["uploadId"], None)
            if up is None:
                return self.error(404, "NoSuchUpload", q["uploadId"])
            try:
                root = ElementTree.fromstring(body)
                numbers = [int(e.text) for e in root.iter()
                           if e.tag.rsplit("}", 1)[-1] == "PartNumber"]
                data = b"".join(up[1][n] for n in numbers)
            except (ElementTree.ParseError, KeyError, ValueError) as e:
                return self.error(400, "InvalidPart", str(e))
            etag = self.store.put(key, data)
            xml = (f'<?xml version="1.0" encoding="UTF-8"?>\n<CompleteMultipartUploadResult>'
                   f"<Key>{escape(key)}</Key><ETag>{escape(etag)}</ETag>"
                   f"</CompleteMultipartUploadResult>")
            return self.send(200, xml.encode())
        return self.error(400, "InvalidRequest", "POST without uploads or uploadId")

    def delete_object(self, key, q):
        with self.store.lock:
            if "uploadId" in q:
                self.store.uploads.pop(q["uploadId"], None)
            else:
                self.store.objects.pop(key, None)
        return self.send(204)

    def list_objects(self, q):
        if q.get("list-type") != "2":
            return self.error(400, "InvalidArgument", "only ListObjectsV2 (list-type=2)")
        prefix = q.get("prefix", "")
        max_keys = max(1, min(1000, int(q.get("max-keys", "1000"))))
        after = q.get("continuation-token", "")
        with self.store.lock:
            keys = sorted((k, len(v[0]), v[1], v[2]) for k, v in self.store.objects.items()
                          if k.startswith(prefix) and k > after)
        page, more = keys[:max_keys], len(keys) > max_keys
        parts = ['<?xml version="1.0" encoding="UTF-8"?>\n'
                 '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">',
                 f"<Name>{escape(self.store.bucket)}</Name><Prefix>{escape(prefix)}</Prefix>",
                 f"<KeyCount>{len(page)}</KeyCount><MaxKeys>{max_keys}</MaxKeys>",
                 f"<IsTruncated>{'true' if more else 'false'}</IsTruncated>"]
        for k, size, etag, mtime in page:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(mtime))
            parts.append(f"<Contents><Key>{escape(k)}</Key><LastModified>{stamp}</LastModified>"
                         f"<ETag>{escape(etag)}</ETag><Size>{size}</Size>"
                         f"<StorageClass>STANDARD</StorageClass></Contents>")
        if more:
            parts.append(f"<NextContinuationToken>{escape(page[-1][0])}</NextContinuationToken>")
        parts.append("</ListBucketResult>")
        return self.send(200, "".join(parts).encode())


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--bucket", default="gomirror")
    ap.add_argument("--log", help="also append the request log to this file")
    args = ap.parse_args()
    httpd = Server(("127.0.0.1", args.port), Handler)
    httpd.store = Store(args.bucket, args.log)
    print(f"s3standin: http://127.0.0.1:{args.port} bucket {args.bucket}", flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
