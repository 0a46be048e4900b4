"""The gateway's Ed25519 signing keys: made, stored as PEM, published as JWKs.

Why Ed25519 (``EdDSA``): the verifying half can be published (``/.well-known/jwks.json``)
and held by anyone without letting them mint, unlike the operator's HS256 secret. Why a
``kid``: during a rotation two keys are valid; the token says which one signed it.
"""

from __future__ import annotations

import base64
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from gateway.store.accounts import KeyRow

ALG = "EdDSA"
KID_PREFIX = "ld-"  # gateway key ids; shop ids may not start with it


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def new_key() -> KeyRow:
    """A fresh key with a random id."""
    priv = Ed25519PrivateKey.generate()
    pem = priv.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()
    x = priv.public_key().public_bytes(serialization.Encoding.Raw,
                                       serialization.PublicFormat.Raw)
    kid = f"{KID_PREFIX}{time.strftime('%Y%m%d', time.gmtime())}-{secrets.token_hex(4)}"
    return KeyRow(kid=kid, alg=ALG, private_key=pem, public_x=_b64(x), created_at=time.time(),
                  retired_at=None, expires_at=None)


@dataclass(frozen=True)
class SigningKey:
    """One loaded key: its private half (to sign) and public half (to verify)."""

    row: KeyRow
    private: Ed25519PrivateKey = field(repr=False)
    public: Ed25519PublicKey

    @classmethod
    def load(cls, row: KeyRow) -> SigningKey:
        priv = serialization.load_pem_private_key(row.private_key.encode(), password=None)
        if not isinstance(priv, Ed25519PrivateKey):
            raise ValueError(f"key {row.kid} is not an Ed25519 key")
        return cls(row, priv, Ed25519PublicKey.from_public_bytes(_unb64(row.public_x)))

    @property
    def kid(self) -> str:
        return self.row.kid

    def jwk(self) -> dict[str, Any]:
        return {"kty": "OKP", "crv": "Ed25519", "x": self.row.public_x, "kid": self.kid,
                "alg": ALG, "use": "sig"}
