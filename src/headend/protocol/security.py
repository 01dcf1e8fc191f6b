"""Security suite 0 (AES-GCM-128): ciphered APDUs, HLS-GMAC proofs, invocation counters.

The client's invocation counter must never be used twice with the same key, not even after a
crash in the middle of a session. Counters are therefore *reserved before use* from an
``InvocationCounterStore`` (the store persists the reservation; nothing here knows how), a
block at a time; a crash wastes at most the rest of a block, never reuses one.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Protocol

from dlms_cosem import security as dlms_security
from dlms_cosem.exceptions import DecryptionError

from headend.protocol import axdr
from headend.protocol.errors import (
    AuthenticationFailedError,
    ConfigurationError,
    DecodeError,
    InvocationCounterError,
)

GENERAL_GLO_CIPHERING = 0xDB
# service-specific global ciphering of responses: glo-get/set/event/action-response
GLO_RESPONSES = frozenset({0xCC, 0xCD, 0xCE, 0xCF})
MAX_COUNTER = 0xFFFFFFFF
TAG_LENGTH = 12


class InvocationCounterStore(Protocol):
    def reserve(self, meter_id: str, n: int) -> int:
        """Reserve ``n`` consecutive counters for ``meter_id``; return the first.

        The reservation must be durable before this returns."""
        ...


class MemoryCounterStore:
    """An in-process store, for the probe and the tests."""

    def __init__(self, first: int = 1) -> None:
        self._first = first
        self._next: dict[str, int] = {}
        self._lock = threading.Lock()

    def reserve(self, meter_id: str, n: int) -> int:
        if n < 1:
            raise ValueError("reserve at least one counter")
        with self._lock:
            start = self._next.get(meter_id, self._first)
            self._next[meter_id] = start + n
            return start

    def peek(self, meter_id: str) -> int:
        return self._next.get(meter_id, self._first)


class CounterLease:
    """Hands out reserved counters one at a time, reserving another block when needed."""

    def __init__(self, store: InvocationCounterStore, meter_id: str, block: int = 16) -> None:
        self._store = store
        self._meter_id = meter_id
        self._block = block
        self._next = 0
        self._end = 0
        self.used: list[int] = []

    def take(self) -> int:
        if self._next >= self._end:
            self._next = self._store.reserve(self._meter_id, self._block)
            self._end = self._next + self._block
        value = self._next
        self._next += 1
        if value > MAX_COUNTER:
            raise InvocationCounterError(
                "the invocation counter is exhausted for this key; new keys are needed"
            )
        self.used.append(value)
        return value


def _control(suite: int, encrypted: bool) -> dlms_security.SecurityControlField:
    return dlms_security.SecurityControlField(
        security_suite=suite, authenticated=True, encrypted=encrypted
    )


@dataclass
class Ciphering:
    """Global-key ciphering of one association (authenticated and encrypted)."""

    encryption_key: bytes
    authentication_key: bytes
    client_title: bytes
    server_title: bytes | None = None
    suite: int = 0
    last_server_counter: int = field(default=-1)

    def __post_init__(self) -> None:
        if self.suite != 0:
            raise ConfigurationError("only security suite 0 (AES-GCM-128) is supported")
        for name, key in (
            ("encryption", self.encryption_key),
            ("authentication", self.authentication_key),
        ):
            if len(key) != 16:
                raise ConfigurationError(f"the {name} key must be 16 bytes (32 hex digits)")
        if len(self.client_title) != 8:
            raise ConfigurationError("the client system title must be 8 bytes")

    @property
    def control_byte(self) -> int:
        return 0x30 | self.suite

    def encrypt(self, plain: bytes, counter: int) -> bytes:
        """``SC || IC || ciphertext || tag``: the ciphered content of a protected APDU."""
        sealed = dlms_security.encrypt(
            _control(self.suite, True),
            system_title=self.client_title,
            invocation_counter=counter,
            key=self.encryption_key,
            plain_text=plain,
            auth_key=self.authentication_key,
        )
        return bytes((self.control_byte,)) + counter.to_bytes(4, "big") + bytes(sealed)

    def decrypt(self, content: bytes, title: bytes | None) -> bytes:
        """Open ``SC || IC || ciphertext || tag`` sent by the meter."""
        if len(content) < 5 + TAG_LENGTH:
            raise DecodeError("ciphered content is too short")
        control = content[0]
        if control & 0x30 != 0x30:
            raise AuthenticationFailedError(
                f"the meter's answer is not authenticated and encrypted (SC 0x{control:02x})"
            )
        counter = int.from_bytes(content[1:5], "big")
        if counter <= self.last_server_counter:
            raise InvocationCounterError(
                f"the meter's invocation counter went from {self.last_server_counter} "
                f"to {counter}: a replay or a meter fault"
            )
        sender = title or self.server_title
        if sender is None or len(sender) != 8:
            raise DecodeError("the meter's system title is unknown")
        try:
            plain = dlms_security.decrypt(
                dlms_security.SecurityControlField.from_bytes(content[:1]),
                system_title=sender,
                invocation_counter=counter,
                key=self.encryption_key,
                cipher_text=content[5:],
                auth_key=self.authentication_key,
            )
        except DecryptionError as exc:
            raise AuthenticationFailedError(
                "the meter's answer does not authenticate with our keys"
            ) from exc
        self.last_server_counter = counter
        return bytes(plain)

    def protect(self, apdu: bytes, counter: int) -> bytes:
        """Wrap ``apdu`` in a general-glo-ciphering APDU."""
        content = self.encrypt(apdu, counter)
        return (
            bytes((GENERAL_GLO_CIPHERING,))
            + axdr.encode_length(len(self.client_title))
            + self.client_title
            + axdr.encode_length(len(content))
            + content
        )

    def unprotect(self, data: bytes) -> bytes:
        tag = data[0] if data else -1
        if tag == GENERAL_GLO_CIPHERING:
            title_len, pos = axdr.decode_length(data, 1)
            title = data[pos : pos + title_len] or None
            pos += title_len
            length, pos = axdr.decode_length(data, pos)
            content = data[pos : pos + length]
            if len(content) != length:
                raise DecodeError("general-glo-ciphering content is shorter than its length")
            if title is not None and self.server_title is not None and title != self.server_title:
                raise AuthenticationFailedError("the answer comes from another system title")
            return self.decrypt(content, title)
        if tag in GLO_RESPONSES:
            length, pos = axdr.decode_length(data, 1)
            return self.decrypt(data[pos : pos + length], None)
        raise AuthenticationFailedError(f"expected a ciphered answer, got APDU tag 0x{tag:02x}")

    def gmac(self, title: bytes, counter: int, challenge: bytes) -> bytes:
        """``SC || IC || GMAC(SC || AK || challenge)`` for the HLS-GMAC exchange."""
        tag = dlms_security.gmac(
            _control(self.suite, False),
            system_title=title,
            invocation_counter=counter,
            key=self.encryption_key,
            auth_key=self.authentication_key,
            challenge=challenge,
        )
        return bytes((0x10 | self.suite,)) + counter.to_bytes(4, "big") + bytes(tag)

    def check_gmac(self, proof: bytes, challenge: bytes) -> bool:
        if len(proof) != 5 + TAG_LENGTH or self.server_title is None:
            return False
        counter = int.from_bytes(proof[1:5], "big")
        return self.gmac(self.server_title, counter, challenge) == proof
