#!/bin/sh
# Self-test of tests/tools/rgw.py: starts a real single-node Ceph RADOS Gateway
# (monitor + memstore OSD + radosgw on 127.0.0.1), checks it with Debian's
# aws cli and curl --aws-sigv4 (odd keys, continuation, If-None-Match: *,
# wrong secret, multipart, gateway restart, no daemon left behind), stops it.
# Needs: apt-get install -y --no-install-recommends ceph-mon ceph-osd radosgw
#        ceph-common awscli curl. A missing package is a failure, not a skip.
# Usage: tests/tools/test_rgw_selftest.sh [--keep]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
exec python3 "$here/rgw.py" selftest "$@"
