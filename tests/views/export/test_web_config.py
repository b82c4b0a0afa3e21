"""`fusescope export --web.config.file` with a bad file: one line on stderr that names the
file and the field, exit 2, before any socket is bound or BPF program loaded (so no root is
needed to see it, and an address in use does not hide it). A good file with a TLS key that is
not the certificate's, or certificates that are not PEM, is refused the same way.
`fusescope --version` prints the version and revision."""

import os
import shutil
import socket
import subprocess
import tempfile
import unittest

from exporthelp import FUSESCOPE, free_port
from webtls import bcrypt_hash, make_pki, write_web_config


def run_export(*args):
    return subprocess.run([FUSESCOPE, "export", *args], capture_output=True, text=True, timeout=30)


class WebConfigTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="fusescope-webcfg-")
        cls.pki = make_pki(cls.tmp)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def config(self, text, name="web.yml"):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def refused(self, path, field, *extra):
        p = run_export("--web.config.file", path, "--web.listen-address", f"127.0.0.1:{free_port()}",
                       "--mount", "/nonexistent-fusescope-mount", *extra)
        lines = p.stderr.splitlines()
        self.assertEqual(len(lines), 1, p.stderr)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn(f"--web.config.file {path}: ", lines[0])
        self.assertIn(field, lines[0])
        self.assertEqual(p.stdout, "")
        return lines[0]

    def tls(self, **fields):
        f = {"cert_file": "server.crt", "key_file": "server.key", **fields}
        return "tls_server_config:\n" + "".join(f"  {k}: {v}\n" for k, v in f.items())

    def test_bad_files_name_the_field(self):
        cases = [
            ("not yaml", "tls_server_config: {cert_file: a\n", "line "),
            ("unknown top-level", "tls_config:\n  cert_file: a\n", "tls_config: not a setting"),
            ("unknown tls field", self.tls(cipher_suites="[TLS_AES_128_GCM_SHA256]"),
             "tls_server_config.cipher_suites"),
            ("no key", "tls_server_config:\n  cert_file: server.crt\n", "tls_server_config.key_file: missing"),
            ("bad version", self.tls(min_version="TLS9"), "tls_server_config.min_version"),
            ("bad auth type", self.tls(client_auth_type="Maybe"), "tls_server_config.client_auth_type"),
            ("verify without CA", self.tls(client_auth_type="RequireAndVerifyClientCert"),
             "tls_server_config.client_ca_file: needed"),
            ("missing cert", self.tls(cert_file="nope.crt"), "tls_server_config.cert_file: "),
            ("cert not PEM", self.tls(cert_file="web-garbage.txt"), "holds no PEM certificate"),
            ("key not the cert's", self.tls(key_file="client.key"), "tls_server_config.key_file: "),
            ("key not PEM", self.tls(key_file="web-garbage.txt"), "holds no unencrypted PEM private key"),
            ("CA not PEM", self.tls(client_ca_file="web-garbage.txt", client_auth_type="RequestClientCert"),
             "tls_server_config.client_ca_file: "),
            ("plain password", "basic_auth_users:\n  alice: secret\n", "basic_auth_users.alice: not a bcrypt hash"),
        ]
        self.config("this is not PEM\n", "web-garbage.txt")
        for name, text, field in cases:
            with self.subTest(case=name):
                self.refused(self.config(text), field)
        self.assertIn("does not go with cert_file",
                      self.refused(self.config(self.tls(key_file="client.key")), "key_file"))

    def test_missing_file(self):
        path = os.path.join(self.tmp, "absent.yml")
        self.assertIn("cannot read it", self.refused(path, "absent.yml"))

    def test_checked_before_the_address_is_bound(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen(1)
            port = s.getsockname()[1]
            path = self.config("basic_auth_users:\n  alice: secret\n")
            p = run_export("--web.config.file", path, "--web.listen-address", f"127.0.0.1:{port}")
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("basic_auth_users.alice", p.stderr)

    def test_good_file_gets_past_the_checks(self):
        # TLS, a client CA and users: accepted; the run then stops at the missing mount (3)
        path = write_web_config(os.path.join(self.tmp, "good.yml"), self.pki, {"prometheus": "pw"},
                                "VerifyClientCertIfGiven")
        p = run_export("--web.config.file", path, "--web.listen-address", f"127.0.0.1:{free_port()}",
                       "--mount", "/nonexistent-fusescope-mount")
        self.assertNotEqual(p.returncode, 2, p.stderr)
        self.assertNotIn("web.config.file", p.stderr)
        self.assertTrue(bcrypt_hash("x").startswith("$2y$05$"))

    def test_version(self):
        p = subprocess.run([FUSESCOPE, "--version"], capture_output=True, text=True, timeout=10)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout, r"^fusescope, version \d+\.\d+\.\d+ \(revision: [^)]+\)\n$")


if __name__ == "__main__":
    unittest.main(verbosity=2)
