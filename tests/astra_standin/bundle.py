"""Secure connect bundles as the driver's cloud module reads them, and broken ones."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from tests.astra_standin.certs import Pem

BUNDLE_FILES = ("config.json", "ca.crt", "cert", "key")


def bundle_config(host: str, port: int, keyspace: str, local_dc: str) -> dict[str, object]:
    """config.json: the driver reads host, port (of the metadata service), keyspace, localDC."""
    return {
        "host": host,
        "port": port,
        "keyspace": keyspace,
        "localDC": local_dc,
        "caCertLocation": "./ca.crt",
        "certLocation": "./cert",
        "keyLocation": "./key",
    }


def write_bundle(
    path: Path,
    config: dict[str, object],
    ca_cert: bytes,
    client: Pem,
    omit: tuple[str, ...] = (),
) -> Path:
    """Zip config.json, ca.crt, cert and key (minus `omit`) into `path`."""
    contents = {
        "config.json": json.dumps(config, indent=2).encode(),
        "ca.crt": ca_cert,
        "cert": client.cert,
        "key": client.key,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as bundle:
        for name in BUNDLE_FILES:
            if name not in omit:
                bundle.writestr(name, contents[name])
    return path
