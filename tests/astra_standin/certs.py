"""The stand-in's PKI: one CA, a server certificate for the proxy and metadata service, a client one."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_DAY = datetime.timedelta(days=1)


@dataclass(frozen=True)
class Pem:
    """A certificate and its private key, PEM-encoded."""

    cert: bytes
    key: bytes


@dataclass(frozen=True)
class StandinPki:
    """Everything the stand-in signs: the CA, the server side, a valid and an expired client."""

    ca: Pem
    server: Pem
    client: Pem
    expired_client: Pem

    def write_server_files(self, directory: Path) -> tuple[Path, Path, Path]:
        """Write ca.crt, server.crt, server.key for the TLS servers; return their paths."""
        directory.mkdir(parents=True, exist_ok=True)
        paths = (directory / "ca.crt", directory / "server.crt", directory / "server.key")
        for path, data in zip(paths, (self.ca.cert, self.server.cert, self.server.key), strict=True):
            path.write_bytes(data)
        return paths


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "astrachaos stand-in"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _ca() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _key()
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("stand-in CA"))
        .issuer_name(_name("stand-in CA"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _DAY)
        .not_valid_after(now + 30 * _DAY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _leaf(
    ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
    common_name: str,
    usage: x509.ObjectIdentifier,
    names: list[x509.GeneralName],
    expired: bool = False,
) -> Pem:
    ca_cert, ca_key = ca
    key = _key()
    now = datetime.datetime.now(datetime.UTC)
    # An expired certificate: valid for a day, ten days ago (as a stale bundle would be).
    start, end = (now - 10 * _DAY, now - 9 * _DAY) if expired else (now - _DAY, now + 30 * _DAY)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    )
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    return Pem(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def make_pki(server_address: str, host_ids: list[str]) -> StandinPki:
    """A fresh CA and certificates; the server one names the loopback address and every host_id."""
    ca = _ca()
    server_names: list[x509.GeneralName] = [x509.IPAddress(ipaddress.IPv4Address(server_address))]
    server_names += [x509.DNSName(host_id) for host_id in host_ids]
    return StandinPki(
        ca=Pem(ca[0].public_bytes(serialization.Encoding.PEM), _key_pem(ca[1])),
        server=_leaf(ca, "stand-in proxy", ExtendedKeyUsageOID.SERVER_AUTH, server_names),
        client=_leaf(ca, "stand-in client", ExtendedKeyUsageOID.CLIENT_AUTH, []),
        expired_client=_leaf(
            ca, "stand-in client", ExtendedKeyUsageOID.CLIENT_AUTH, [], expired=True
        ),
    )
