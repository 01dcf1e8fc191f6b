"""Encryption of meter secrets at rest (AES-256-GCM, key derived from the settings' secret).

A ``MeterSecrets`` value never shows its contents in ``repr`` or ``str``, so it cannot leak into
a log line by accident.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_VERSION = b"\x01"
_NONCE_LEN = 12


class SecretDecryptionError(Exception):
    """A stored secret cannot be decrypted: the secret key changed or the row was altered."""


@dataclass(frozen=True)
class MeterSecrets:
    lls_password: str | None = field(default=None, repr=False)
    hls_encryption_key: bytes | None = field(default=None, repr=False)
    hls_authentication_key: bytes | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        held = [
            name
            for name, value in (
                ("lls_password", self.lls_password),
                ("hls_encryption_key", self.hls_encryption_key),
                ("hls_authentication_key", self.hls_authentication_key),
            )
            if value is not None
        ]
        return f"MeterSecrets(<{', '.join(held) or 'empty'}>)"

    __str__ = __repr__

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "lls_password": self.lls_password,
                "hls_encryption_key": self.hls_encryption_key.hex()
                if self.hls_encryption_key
                else None,
                "hls_authentication_key": self.hls_authentication_key.hex()
                if self.hls_authentication_key
                else None,
            },
            sort_keys=True,
        ).encode()

    @classmethod
    def from_json(cls, data: bytes) -> MeterSecrets:
        raw = json.loads(data)
        ekey, akey = raw.get("hls_encryption_key"), raw.get("hls_authentication_key")
        return cls(
            lls_password=raw.get("lls_password"),
            hls_encryption_key=bytes.fromhex(ekey) if ekey else None,
            hls_authentication_key=bytes.fromhex(akey) if akey else None,
        )


class SecretBox:
    """Seals and opens ``MeterSecrets``; the secret's name is bound in as associated data."""

    def __init__(self, secret_key: str) -> None:
        key = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=b"headend-meter-secrets", info=b"v1"
        ).derive(secret_key.encode())
        self._aead = AESGCM(key)

    def __repr__(self) -> str:
        return "SecretBox(<key>)"

    def seal(self, name: str, secrets: MeterSecrets) -> bytes:
        nonce = os.urandom(_NONCE_LEN)
        return _VERSION + nonce + self._aead.encrypt(nonce, secrets.to_json(), name.encode())

    def open(self, name: str, blob: bytes) -> MeterSecrets:
        if blob[:1] != _VERSION or len(blob) <= 1 + _NONCE_LEN:
            raise SecretDecryptionError(f"secret {name!r} is not in a known format")
        nonce = blob[1 : 1 + _NONCE_LEN]
        try:
            plain = self._aead.decrypt(nonce, blob[1 + _NONCE_LEN :], name.encode())
        except InvalidTag as exc:
            raise SecretDecryptionError(
                f"secret {name!r} cannot be decrypted: HEADEND_SECRET_KEY differs from the key "
                "it was stored with, or the row was altered"
            ) from exc
        return MeterSecrets.from_json(plain)
