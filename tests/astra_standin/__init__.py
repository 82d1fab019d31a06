"""A local stand-in for DataStax Astra DB: what the driver's secure-connect-bundle path talks to.

No Docker and loopback only: a CA and certificates (`certs`), bundle zips (`bundle`), an HTTPS
`/metadata` service (`metadata`) and an SNI-routing TLS proxy (`sniproxy`) in front of a real
local Cassandra node with PasswordAuthenticator, assembled by `standin.AstraStandin`.
"""

from tests.astra_standin.standin import FRONT_ADDRESS, AstraStandin

__all__ = ["FRONT_ADDRESS", "AstraStandin"]
