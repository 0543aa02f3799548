"""Passwords and API tokens, pure: scrypt (memory-hard, from the standard library) for
passwords, SHA-256 for tokens (a token is 256 random bits: nothing to stretch)."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets

from dialer.errors import DialerError
from dialer.text import forbidden

#: scrypt's cost: 2**15 × 8 × 128 B = 32 MiB of memory per hash, about 0.1 s here
N, R, P = 2**15, 8, 1
MIN_LENGTH = 8
MAX_LENGTH = 1024
TOKEN_PREFIX = "dlr_"


class WeakPassword(DialerError):
    pass


def check_password(password: str) -> str:
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"a password needs at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"a password has at most {MAX_LENGTH} characters")
    bad = forbidden(password)
    if bad:
        raise WeakPassword(f"a password may not hold control characters ({bad})")
    return password


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=2 * 128 * n * r * p + 2**20,
                          dklen=32)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str) -> str:
    """'scrypt$N$r$p$salt$hash' (base64): the cost travels with the hash, so it can be raised."""
    salt = secrets.token_bytes(16)
    return f"scrypt${N}${R}${P}${_b64(salt)}${_b64(_scrypt(password, salt, N, R, P))}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        got = _scrypt(password, base64.b64decode(salt), int(n), int(r), int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, base64.b64decode(digest))


@functools.cache
def dummy_hash() -> str:
    """Verified against when a login names no user, so that an unknown name takes as long as a
    known one."""
    return hash_password(secrets.token_hex(8))


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


__all__ = ["hash_password", "verify_password", "check_password", "new_token", "token_digest", "WeakPassword",
           "dummy_hash", "TOKEN_PREFIX"]
