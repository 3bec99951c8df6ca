"""Builds "the internet" on this machine for the egress tests and benchmark; no real network.

A network namespace joined to the host by a veth pair on a /24 of 198.18.0.0/15 (the
benchmarking range, never routed on the internet), running egress_internet.py: HTTP, HTTPS
with its own CA, and a DNS server answering the names in `records()`. The host end of the veth
gets .1 (an address of the host: the proxy must refuse it), the namespace .2. Everything is
removed on exit.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

HERE = Path(__file__).resolve().parent
NAMES = ("allowed.test", "denied.test", "other.test", "secret.test", "pypi.test", "sub.wild.test", "rebind.test")
WHEEL = "egresstestpkg-1.0-py3-none-any.whl"


@dataclass
class Internet:
    dir: Path
    ip: str          # the internet's web and DNS server
    host_ip: str     # the host's end of the veth
    subnet: str
    ca_file: Path    # the CA the internet's HTTPS certificate comes from

    def requests(self) -> list[dict[str, object]]:
        log = self.dir / "requests.jsonl"
        if not log.exists():
            return []
        return [json.loads(line) for line in log.read_text().splitlines()]

    def egress_config(self, path: Path, **extra: object) -> Path:
        lines = [
            "[egress]",
            f'dns = "{self.ip}:53"',
            f'allow_private = ["{self.subnet}"]',
            f'upstream_ca_file = "{self.ca_file}"',
        ]
        lines += [f"{key} = {json.dumps(value)}" for key, value in extra.items()]
        path.write_text("\n".join(lines) + "\n")
        return path


def records(ip: str, host_ip: str) -> dict[str, list[str]]:
    found = {name: [ip] for name in NAMES}
    found.update({
        "private.test": ["10.255.0.1"],
        "loopback.test": ["127.0.0.1"],
        "metadata.test": ["169.254.169.254"],
        "hostaddr.test": [host_ip],
        "rebind.test": [ip, "127.0.0.1"],
    })
    return found


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


def _certificates(directory: Path) -> Path:
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "egress test internet CA")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names = [*NAMES, "private.test", "hostaddr.test", "metadata.test", "loopback.test"]
    cert = (
        x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "allowed.test")]))
        .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    (directory / "server.pem").write_bytes(cert.public_bytes(pem))
    (directory / "server.key").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    (directory / "ca.pem").write_bytes(ca.public_bytes(pem))
    return directory / "ca.pem"


def _wheel(directory: Path) -> None:
    """A minimal pure-Python wheel for `pip install` against the internet's index."""
    files = {
        "egresstestpkg/__init__.py": b"VALUE = 'installed through the egress proxy'\n",
        "egresstestpkg-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: egresstestpkg\nVersion: 1.0\n",
        "egresstestpkg-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append("egresstestpkg-1.0.dist-info/RECORD,,")
    with zipfile.ZipFile(directory / WHEEL, "w") as whl:
        for name, data in files.items():
            whl.writestr(name, data)
        whl.writestr("egresstestpkg-1.0.dist-info/RECORD", "\n".join(record) + "\n")


@contextmanager
def internet() -> Iterator[Internet]:
    tag = f"{os.getpid() % 10000:04d}{random.randrange(100):02d}"
    ns, host_if, inet_if = f"nsinet{tag}", f"nsegh{tag}", f"nsegi{tag}"
    octet = random.randrange(1, 255)
    subnet, host_ip, ip = f"198.18.{octet}.0/24", f"198.18.{octet}.1", f"198.18.{octet}.2"
    directory = Path(tempfile.mkdtemp(prefix="nsinternet-"))
    process = None
    try:
        ca_file = _certificates(directory)
        _wheel(directory)
        _ip("netns", "add", ns)
        _ip("link", "add", host_if, "type", "veth", "peer", "name", inet_if)
        _ip("link", "set", inet_if, "netns", ns)
        _ip("addr", "add", f"{host_ip}/24", "dev", host_if)
        _ip("link", "set", host_if, "up")
        _ip("-n", ns, "addr", "add", f"{ip}/24", "dev", inet_if)
        _ip("-n", ns, "link", "set", inet_if, "up")
        _ip("-n", ns, "link", "set", "lo", "up")
        process = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, str(HERE / "egress_internet.py"), str(directory), ip,
             json.dumps(records(ip, host_ip))],
            stdout=open(directory / "internet.log", "wb"), stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 20
        while not (directory / "ready").exists():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the test internet did not start: " + (directory / "internet.log").read_text())
            time.sleep(0.05)
        yield Internet(directory, ip, host_ip, subnet, ca_file)
    finally:
        if process is not None:
            process.kill()
            process.wait()
        subprocess.run(["ip", "link", "del", host_if], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        shutil.rmtree(directory, ignore_errors=True)
