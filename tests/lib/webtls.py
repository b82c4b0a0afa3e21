"""Throwaway TLS material and bcrypt hashes for the exporter's web-config tests.
Standard library only, plus the openssl command (Debian: openssl) and libxcrypt (libcrypt.so.1,
always on Debian) through ctypes.

    pki = make_pki(directory)    # CA, server cert (127.0.0.1, ::1, localhost), client certs
    pki.ca, pki.server_crt, pki.server_key, pki.client_crt, pki.client_key
    pki.rogue_crt, pki.rogue_key # a client certificate from another CA
    bcrypt_hash("secret")        # "$2y$..." as htpasswd -B makes them
    write_web_config(path, pki, users={"prometheus": "secret"}, client_auth=...)
    ssl_context(pki, client=True) # a Python client context that trusts the CA
"""

import ctypes
import os
import ssl
import subprocess
from dataclasses import dataclass

__all__ = ["make_pki", "bcrypt_hash", "write_web_config", "ssl_context", "Pki"]


@dataclass
class Pki:
    dir: str
    ca: str
    server_crt: str
    server_key: str
    client_crt: str
    client_key: str
    rogue_crt: str
    rogue_key: str


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _ca(d, name):
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", f"{name}.key", "-out", f"{name}.crt", "-days", "2", "-subj",
             f"/CN=fusescope test {name}", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)


def _leaf(d, name, ca, ext):
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=d)
    with open(os.path.join(d, f"{name}.ext"), "w") as f:
        f.write(ext)
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
             "-CAcreateserial", "-out", f"{name}.crt", "-days", "2", "-extfile", f"{name}.ext",
             cwd=d)


def make_pki(d):
    """A CA, a server certificate for 127.0.0.1, ::1 and localhost, a client certificate from
    that CA and one from another CA, all in directory d."""
    _ca(d, "ca")
    _ca(d, "rogue-ca")
    _leaf(d, "server", "ca", "subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\n"
          "extendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n")
    client_ext = "extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n"
    _leaf(d, "client", "ca", client_ext)
    _leaf(d, "rogue", "rogue-ca", client_ext)
    p = lambda n: os.path.join(d, n)
    return Pki(d, p("ca.crt"), p("server.crt"), p("server.key"), p("client.crt"),
               p("client.key"), p("rogue.crt"), p("rogue.key"))


def bcrypt_hash(password, cost=5):
    """bcrypt with the $2y$ prefix htpasswd writes (cost 5: fast tests; real ones use 10+)."""
    lib = ctypes.CDLL("libcrypt.so.1")
    lib.crypt_gensalt.restype = ctypes.c_char_p
    lib.crypt_gensalt.argtypes = [ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p, ctypes.c_int]
    lib.crypt.restype = ctypes.c_char_p
    lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    salt = lib.crypt_gensalt(b"$2y$", cost, None, 0)
    out = lib.crypt(password.encode(), salt).decode()
    assert out.startswith("$2y$"), out
    return out


def write_web_config(path, pki=None, users=None, client_auth=None, extra=""):
    """An exporter-toolkit web config: TLS with pki's server certificate (relative paths, as
    a config next to its certificates has them), client certificates checked against pki's
    CA with client_auth, basic auth for users {name: password}."""
    lines = []
    if pki:
        rel = lambda f: os.path.relpath(f, os.path.dirname(path))
        lines += ["tls_server_config:", f"  cert_file: {rel(pki.server_crt)}",
                  f"  key_file: {rel(pki.server_key)}"]
        if client_auth:
            lines += [f"  client_ca_file: {rel(pki.ca)}", f"  client_auth_type: {client_auth}"]
    if users:
        lines.append("basic_auth_users:")
        lines += [f"  {u}: {bcrypt_hash(p)}" for u, p in users.items()]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n" + extra)
    return path


def ssl_context(pki, client=True):
    """A client context trusting pki's CA, presenting pki's client certificate if client."""
    ctx = ssl.create_default_context(cafile=pki.ca)
    if client:
        ctx.load_cert_chain(pki.client_crt, pki.client_key)
    return ctx
