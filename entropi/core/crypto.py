"""Optional encryption at rest with Fernet (AES-128-CBC + HMAC), key from the environment.

The key never lives in the config file: ``memory.encryption_key_env`` only names the
environment variable that holds it (generate one with ``entropi memory keygen``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from entropi.core.errors import ConfigError, MemoryFileError


@dataclass(frozen=True)
class Cipher:
    """Encrypts/decrypts one entry (or the whole profile) at a time."""

    env_name: str
    key: bytes

    def _fernet(self):  # imported lazily: plain-text journals never load cryptography
        from cryptography.fernet import Fernet

        return Fernet(self.key)

    def encrypt(self, data: bytes) -> bytes:
        return self._fernet().encrypt(data)

    def decrypt(self, token: bytes, where: str) -> bytes:
        from cryptography.fernet import InvalidToken

        try:
            return self._fernet().decrypt(token)
        except InvalidToken:
            raise MemoryFileError(
                f"{where}: cannot decrypt with the key in ${self.env_name}: wrong key or "
                f"damaged data; set ${self.env_name} to the key the file was written with"
            ) from None


def cipher_from_env(env_name: str | None, env: dict[str, str] | None = None) -> Cipher | None:
    """The configured cipher, or None when encryption is off."""
    if not env_name:
        return None
    env = os.environ if env is None else env
    key = env.get(env_name)
    if not key:
        raise ConfigError(
            f"memory.encryption_key_env: environment variable {env_name} is not set; export "
            f"the journal key (new key: entropi memory keygen) or set encryption_key_env: null"
        )
    from cryptography.fernet import Fernet

    try:
        Fernet(key.encode())
    except (ValueError, TypeError):
        raise ConfigError(
            f"memory.encryption_key_env: ${env_name} is not a Fernet key (32 url-safe base64 "
            f"bytes); generate one with entropi memory keygen"
        ) from None
    return Cipher(env_name, key.encode())


def new_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()
