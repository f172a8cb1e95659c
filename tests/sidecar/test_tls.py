"""The sidecar serves HTTPS and WSS with sidecar.tls_certfile and tls_keyfile, and says at start when it serves
plain HTTP beyond this machine. Before, it had no certificate option and no warning: a phone's login sent its
password and got its tokens in clear (a security review, 2026-12-06, /tmp/h6-evidence/no_tls.out)."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from websockets.sync.client import connect

from sidecar_stack import Stack, cli, make_stack, recv_until
from support import start, wait_for

WARNING = "serving plain HTTP beyond this machine"


def _make_certificate(folder: Path) -> tuple[Path, Path, Path]:
    """A test CA and a server certificate it signed for 127.0.0.1: (ca.pem, cert.pem, key.pem)."""
    now = datetime.datetime.now(datetime.timezone.utc)

    def build(subject: str, issuer: str, key: ec.EllipticCurvePrivateKey, signer: ec.EllipticCurvePrivateKey, ca: bool) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), critical=False)
        )
        if ca:
            builder = builder.add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True  # cert and CRL signing
            )
        else:
            builder = builder.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            builder = builder.add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        return builder.sign(signer, hashes.SHA256())

    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = build("qt test CA", "qt test CA", ca_key, ca_key, ca=True)
    server = build("127.0.0.1", "qt test CA", server_key, ca_key, ca=False)
    paths = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(server_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    paths[2].chmod(0o600)
    return paths


def _start_sidecar(stack: Stack, url: str, verify: ssl.SSLContext | bool = True) -> Path:
    """The sidecar alone (its transport is what this is about); waits until ``url``'s health answers."""
    log = stack.tmp / "sidecar.log"
    stack.procs["sidecar"] = start(["sidecar"], stack.env, log)

    def answers() -> bool:
        proc = stack.procs["sidecar"]
        if proc.poll() is not None:
            raise AssertionError(f"sidecar exited {proc.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            httpx.get(f"{url}/api/health", verify=verify, timeout=2)
        except httpx.HTTPError:
            return False
        return True

    wait_for(answers, 30, "the sidecar to answer")
    return log


def test_https_and_wss_with_the_configured_certificate_and_no_plain_http(tmp_path: Path) -> None:
    ca, cert, key = _make_certificate(tmp_path)
    stack = make_stack(tmp_path, QT_SIDECAR__TLS_CERTFILE=str(cert), QT_SIDECAR__TLS_KEYFILE=str(key))
    try:
        trust = ssl.create_default_context(cafile=str(ca))
        https = f"https://127.0.0.1:{stack.port}"
        log = _start_sidecar(stack, https, trust)
        answer = httpx.get(f"{https}/api/signals", params={"min_confidence": 0}, headers=stack.headers(), verify=trust, timeout=10)
        assert answer.status_code == 200 and answer.json()["count"] >= len(stack.signals), answer.text
        login = httpx.post(f"{https}/api/auth/login", json={"username": "alice", "password": "alice-secret-pw"}, verify=trust, timeout=10)
        assert login.status_code == 200 and login.json()["success"] is True, login.text
        with connect(f"wss://127.0.0.1:{stack.port}/ws?token={stack.tokens['alice']}", ssl=trust, open_timeout=10) as ws:
            ws.send('{"type": "ping"}')
            recv_until(ws, lambda msg: msg.get("type") == "pong", 10, "a pong over WSS")
        with pytest.raises(httpx.TransportError):  # not answered in clear
            httpx.get(f"http://127.0.0.1:{stack.port}/api/health", timeout=5)
        with pytest.raises(httpx.ConnectError):  # a client that trusts only the usual CAs refuses it: verified, not just encrypted
            httpx.get(f"{https}/api/health", timeout=5)
        text = log.read_text(errors="replace")
        assert f'"url": "https://127.0.0.1:{stack.port}"' in text and WARNING not in text, text[-2000:]
    finally:
        stack.stop_all()


def test_plain_http_beyond_loopback_is_warned_once_at_start(tmp_path: Path) -> None:
    stack = make_stack(tmp_path, QT_SIDECAR__HOST="0.0.0.0")
    try:
        log = _start_sidecar(stack, stack.url)
        for _ in range(3):
            httpx.get(f"{stack.url}/api/health", timeout=5)
        lines = [line for line in log.read_text(errors="replace").splitlines() if WARNING in line]
        assert len(lines) == 1 and "sidecar.tls_certfile" in lines[0] and '"host": "0.0.0.0"' in lines[0], lines
    finally:
        stack.stop_all()
    # The forms of loopback are not warned; a name other than localhost may be any address, so it is
    from quantumtrader.config import is_loopback  # what the sidecar's warning and the endpoints' check both use

    assert all(is_loopback(host) for host in ("127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost", "LOCALHOST."))
    assert not any(is_loopback(host) for host in ("0.0.0.0", "::", "192.168.1.20", "phone-gateway"))


def test_tls_files_are_checked_when_the_config_loads(tmp_path: Path) -> None:
    """Exit 2 naming the key, at once, not a sidecar that fails at every start under `run`."""
    for folder in ("other", "stack"):
        (tmp_path / folder).mkdir()
    _, cert, key = _make_certificate(tmp_path)
    _, other_cert, _ = _make_certificate(tmp_path / "other")
    env = make_stack(tmp_path / "stack").env
    cases = [
        ("sidecar.tls_keyfile", {"QT_SIDECAR__TLS_CERTFILE": str(cert)}),  # one without the other
        ("sidecar.tls_certfile", {"QT_SIDECAR__TLS_CERTFILE": str(tmp_path / "missing.pem"), "QT_SIDECAR__TLS_KEYFILE": str(key)}),
        ("sidecar.tls_keyfile", {"QT_SIDECAR__TLS_CERTFILE": str(other_cert), "QT_SIDECAR__TLS_KEYFILE": str(key)}),  # another's key
    ]
    for named, extra in cases:
        for command in (["sidecar"], ["run", "--paper"]):
            done = cli(command, {**env, **extra})
            assert done.returncode == 2 and named in done.stderr, (command, extra, done.returncode, done.stderr[-800:])
