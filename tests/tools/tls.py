#!/usr/bin/env python3
"""A throw-away certificate authority for tests, made with the openssl
command: a CA and one server certificate for 127.0.0.1 and localhost.

    ca = tls.make_ca(DIR)
    ca["ca"]        CA certificate (PEM): give it to clients (SSL_CERT_FILE,
                    auth_ldap_ca_file, curl --cacert)
    ca["cert"], ca["key"]   the server's certificate and key (PEM)
    ca["pem"]       certificate and key in one file (HAProxy's `crt`)

Nothing here is cached between runs: a test makes its own in a second."""

import os
import subprocess
import sys


def _run(args, cwd):
    p = subprocess.run(args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {p.stdout.decode(errors='replace')[-800:]}")


def make_ca(d, names=("localhost",), ips=("127.0.0.1",), key="rsa"):
    """key: "rsa" (2048 bits) or "ec" (P-256: handshakes cost a fraction of
    RSA's, for benchmarks with thousands of connections)."""
    newkey = (["-newkey", "rsa:2048"] if key == "rsa" else
              ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"])
    os.makedirs(d, exist_ok=True)
    ext = os.path.join(d, "server.ext")
    alt = ",".join([f"DNS:{n}" for n in names] + [f"IP:{i}" for i in ips])
    with open(ext, "w") as f:
        f.write(f"subjectAltName={alt}\nbasicConstraints=CA:FALSE\n"
                "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n")
    _run(["openssl", "req", "-x509", *newkey, "-nodes", "-days", "2",
          "-subj", "/CN=gomirror test CA", "-keyout", "ca.key", "-out", "ca.pem",
          "-addext", "basicConstraints=critical,CA:TRUE",
          "-addext", "keyUsage=critical,keyCertSign,cRLSign"], d)
    _run(["openssl", "req", *newkey, "-nodes", "-subj", f"/CN={names[0]}",
          "-keyout", "server.key", "-out", "server.csr"], d)
    _run(["openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
          "-CAcreateserial", "-days", "2", "-extfile", "server.ext", "-out", "server.pem"], d)
    combined = os.path.join(d, "server-combined.pem")
    with open(combined, "w") as out:
        for part in ("server.pem", "server.key"):
            with open(os.path.join(d, part)) as f:
                out.write(f.read())
    os.chmod(os.path.join(d, "server.key"), 0o600)
    return {"dir": d, "ca": os.path.join(d, "ca.pem"), "cert": os.path.join(d, "server.pem"),
            "key": os.path.join(d, "server.key"), "pem": combined}


if __name__ == "__main__":
    print(make_ca(sys.argv[1]))
