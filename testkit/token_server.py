"""A registry's token service (the bearer-token authentication of the distribution
spec, as docker_auth or a cloud registry's realm runs it): it takes basic credentials
and hands out a JWT, signed with a key whose certificate the registry trusts
(`rootcertbundle`), granting the scope asked for. Debian's docker-registry checks it."""

import base64
import hashlib
import json
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

ISSUER = "agile-test-token-issuer"
SERVICE = "agile-test-registry"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def libtrust_key_id(key: ec.EllipticCurvePublicKey) -> str:
    """The key id the registry looks a token's `kid` up by (libtrust's: the first 240
    bits of the SubjectPublicKeyInfo's sha256, base32, in groups of four)."""
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    text = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
    return ":".join(text[i : i + 4] for i in range(0, len(text), 4))


class TokenServer:
    def __init__(self, key: ec.EllipticCurvePrivateKey, users: dict[str, str]) -> None:
        self.issued = 0
        kid = libtrust_key_id(key.public_key())
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # http.server's name
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                given = self.headers.get("Authorization", "")
                try:
                    user, _, word = (
                        base64.b64decode(given.removeprefix("Basic ")).decode().partition(":")
                    )
                except ValueError:
                    user, word = "", ""
                if not given.startswith("Basic ") or users.get(user) != word:
                    self.send_response(401)
                    self.end_headers()
                    return
                access = []
                for scope in query.get("scope", []):
                    kind, _, rest = scope.partition(":")
                    name, _, actions = rest.rpartition(":")
                    access.append({"type": kind, "name": name, "actions": actions.split(",")})
                now = int(time.time())
                claims = {
                    "iss": ISSUER,
                    "sub": user,
                    "aud": query.get("service", [SERVICE])[0],
                    "exp": now + 300,
                    "nbf": now - 10,
                    "iat": now,
                    "jti": uuid.uuid4().hex,
                    "access": access,
                }
                header = {"typ": "JWT", "alg": "ES256", "kid": kid}
                signing = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
                r, s = decode_dss_signature(key.sign(signing.encode(), ec.ECDSA(hashes.SHA256())))
                token = f"{signing}.{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"
                body = json.dumps({"token": token, "access_token": token}).encode()
                server.issued += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.realm = f"http://127.0.0.1:{self.server.server_address[1]}/token"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def registry_config(self, bundle: Path) -> str:
        """The registry's `auth:` section that sends clients here."""
        return (
            f"auth:\n  token:\n    realm: {self.realm}\n    service: {SERVICE}\n"
            f"    issuer: {ISSUER}\n    rootcertbundle: {bundle}\n"
        )

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
