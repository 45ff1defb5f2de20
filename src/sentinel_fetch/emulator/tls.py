"""A local CA and a loopback server certificate, so the emulator speaks HTTPS like CDSE.

Clients must be tested over TLS because that is where real-world trouble lives (CA
bundles, ``REQUESTS_CA_BUNDLE``, proxies) and where throughput is bounded (spec §1: every
CDSE host is HTTPS). The CA and the leaf are generated with ``trustme`` once and kept under
``data_dir/tls`` so a developer can trust the CA once; they are regenerated when missing,
unreadable, expired or not covering ``127.0.0.1``, ``localhost`` and ``::1``.

Several emulators may start at once on one data folder (parallel test workers). Each
state is written with an atomic rename, and each process serves with the state it loaded,
whose CA is published under a name derived from its fingerprint: a process never hands
out a CA file that does not match its own server certificate.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import ssl
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

__all__ = ["LEAF_NAMES", "TlsFiles", "load_or_create", "server_context"]

#: Names the server certificate is valid for.
LEAF_NAMES = ("127.0.0.1", "localhost", "::1")
_LEAF_LIFETIME = timedelta(days=397)
# Regenerate a little before the end, so a long-running emulator never serves an expired leaf.
_RENEW_MARGIN = timedelta(days=7)
_STATE = "state.pem"
_lock = threading.Lock()


@dataclass(frozen=True)
class TlsFiles:
    """PEM files of one CA + server certificate pair.

    Attributes:
        ca_bundle: the CA certificate clients trust (``SENTINEL_FETCH_CA_BUNDLE``).
        server_chain: server key, certificate and CA (what ``load_cert_chain`` reads).
    """

    ca_bundle: Path
    server_chain: Path


def load_or_create(folder: Path) -> TlsFiles:
    """The CA and server certificate kept in ``folder``, generated when needed."""
    with _lock:
        folder.mkdir(parents=True, exist_ok=True)
        state_path = folder / _STATE
        try:
            state = state_path.read_bytes()
        except OSError:
            state = b""
        if not _valid(state):
            _write_atomically(state_path, _generate(), private=True)
            state = state_path.read_bytes()
        return _publish(folder, state)


def server_context(files: TlsFiles) -> ssl.SSLContext:
    """A server-side TLS context (TLS 1.2+, HTTP/1.1 only, like the CDSE hosts)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(files.server_chain))
    # Offer only http/1.1: a client that negotiates h2 would find no h2 server here.
    context.set_alpn_protocols(["http/1.1"])
    return context


def _generate() -> bytes:
    import trustme

    ca = trustme.CA(organization_name="sentinel-fetch emulator")
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    leaf = ca.issue_cert(
        *LEAF_NAMES,
        common_name="localhost",
        not_before=now - timedelta(days=1),
        not_after=now + _LEAF_LIFETIME,
    )
    leaf_key = leaf.private_key_pem.bytes()
    leaf_chain = b"".join(blob.bytes() for blob in leaf.cert_chain_pems)
    return ca.cert_pem.bytes() + ca.private_key_pem.bytes() + leaf_key + leaf_chain


def _blocks(state: bytes) -> list[bytes]:
    """The PEM blocks of the state file, in order."""
    blocks: list[bytes] = []
    for part in state.split(b"-----END ")[:-1]:
        begin = part.find(b"-----BEGIN ")
        if begin < 0:
            return []
        kind = part[begin + len(b"-----BEGIN ") :].split(b"-----", 1)[0]
        blocks.append(part[begin:] + b"-----END " + kind + b"-----\n")
    return blocks


def _split(state: bytes) -> tuple[bytes, bytes, bytes] | None:
    """``(ca_cert, leaf_key, leaf_chain)`` or ``None`` if the file is not ours."""
    blocks = _blocks(state)
    if len(blocks) < 4 or b"CERTIFICATE" not in blocks[0] or b"PRIVATE KEY" not in blocks[2]:
        return None
    return blocks[0], blocks[2], b"".join(blocks[3:])


def _valid(state: bytes) -> bool:
    parts = _split(state)
    if parts is None:
        return False
    from cryptography import x509

    try:
        leaf = x509.load_pem_x509_certificate(parts[2])
        ca = x509.load_pem_x509_certificate(parts[0])
        names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound):
        return False
    covered = {str(n) for n in names.get_values_for_type(x509.DNSName)}
    covered |= {str(ip) for ip in names.get_values_for_type(x509.IPAddress)}
    wanted = {str(ipaddress.ip_address(n)) if n[0].isdigit() or ":" in n else n for n in LEAF_NAMES}
    deadline = datetime.now(timezone.utc) + _RENEW_MARGIN
    return (
        wanted <= covered
        and leaf.not_valid_after_utc > deadline
        and ca.not_valid_after_utc > deadline
        and leaf.issuer == ca.subject
    )


def _publish(folder: Path, state: bytes) -> TlsFiles:
    parts = _split(state)
    if parts is None:
        raise ValueError(f"{folder / _STATE} is not a usable TLS state")
    ca_cert, leaf_key, leaf_chain = parts
    fingerprint = hashlib.sha256(ca_cert + leaf_chain).hexdigest()[:16]
    ca_bundle = folder / f"ca-{fingerprint}.pem"
    server_chain = folder / f"server-{fingerprint}.pem"
    if not ca_bundle.exists():
        _write_atomically(ca_bundle, ca_cert)
    if not server_chain.exists():
        _write_atomically(server_chain, leaf_key + leaf_chain, private=True)
    return TlsFiles(ca_bundle=ca_bundle, server_chain=server_chain)


def _write_atomically(path: Path, data: bytes, *, private: bool = False) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    mode = 0o600 if private else 0o644
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)
    os.replace(temporary, path)
