"""deploy/haproxy.cfg made runnable on loopback: the certificate, the bind
addresses and the replicas' addresses put in, nothing else changed, so tests
and benchmarks run the very configuration the project ships."""

import os
import re

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class ShapeError(Exception):
    """deploy/haproxy.cfg no longer has the lines this substitutes."""


def config(cert_pem, https_port, http_port, backend_ports):
    """The text of deploy/haproxy.cfg with its TLS certificate at cert_pem,
    :443 and :80 on 127.0.0.1 at the given ports, and the three replicas
    gomirror1..3 replaced by 127.0.0.1:<port> for each of backend_ports."""
    with open(os.path.join(TOP, "deploy", "haproxy.cfg")) as f:
        cfg = f.read()
    cfg = cfg.replace("/usr/local/etc/haproxy/certs/gomirror.pem", cert_pem)
    cfg = cfg.replace("bind :443 ", f"bind 127.0.0.1:{https_port} ")
    cfg = cfg.replace("bind :80\n", f"bind 127.0.0.1:{http_port}\n")
    servers = "".join(f"    server gomirror{i + 1} 127.0.0.1:{p}\n"
                      for i, p in enumerate(backend_ports))
    cfg, n = re.subn(r"(    server gomirror\d gomirror\d:3000\n)+", servers, cfg)
    # Logs to stdout would flood a benchmark's output file.
    cfg = cfg.replace("log stdout format raw local0 info", "")
    if n != 1 or f"127.0.0.1:{https_port}" not in cfg or f"127.0.0.1:{http_port}" not in cfg:
        raise ShapeError("deploy/haproxy.cfg changed shape: update tests/tools/shipped_haproxy.py")
    return cfg
