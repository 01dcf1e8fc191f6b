from __future__ import annotations

import pytest

from headend.store.secrets import MeterSecrets, SecretBox, SecretDecryptionError

KEY = "0123456789abcdef0123456789abcdef-test"


def test_sealed_secrets_open_to_the_same_values() -> None:
    box = SecretBox(KEY)
    secrets = MeterSecrets(hls_encryption_key=bytes(range(16)), hls_authentication_key=b"\x01" * 16)
    blob = box.seal("meter:1", secrets)
    assert bytes(range(16)) not in blob
    assert box.open("meter:1", blob) == secrets


def test_a_secret_opened_under_another_name_is_refused() -> None:
    box = SecretBox(KEY)
    blob = box.seal("meter:1", MeterSecrets(lls_password="12345678"))
    with pytest.raises(SecretDecryptionError, match="meter:2"):
        box.open("meter:2", blob)


def test_an_altered_secret_is_refused() -> None:
    box = SecretBox(KEY)
    blob = bytearray(box.seal("meter:1", MeterSecrets(lls_password="12345678")))
    blob[-1] ^= 1
    with pytest.raises(SecretDecryptionError, match="altered"):
        box.open("meter:1", bytes(blob))


def test_secrets_never_show_their_values_in_repr_or_str() -> None:
    secrets = MeterSecrets(lls_password="hunter22", hls_encryption_key=b"k" * 16)
    for text in (repr(secrets), str(secrets), repr(SecretBox(KEY))):
        assert "hunter22" not in text and "6b6b" not in text and "kkkk" not in text
    assert "lls_password" in repr(secrets)
