"""Signed, expiring acknowledgement tokens and codes (HMAC-SHA256, standard library only).

A link token binds (alert id, role, hall, expiry): 22 bytes, 30 URL-safe characters,

    ref (6 bytes: which alert and role, a hash that names neither)
    expiry (4 bytes: epoch seconds, big-endian)
    mac (12 bytes: HMAC-SHA256 over the alert id, role, hall and expiry, truncated to 96 bits)

The server finds the (alert, role) whose `ref` matches among the alerts it knows and checks the
MAC over the full values with `hmac.compare_digest`; a token is never trusted for more than it
was signed for. A code is shorter (10 characters, 50 bits, Crockford base32, for an SMS): an
HMAC over (alert id, role, hall) alone, whose validity the server bounds itself.

`load_key` reads the key file, or creates it once (32 random bytes, hex, mode 0600).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

REF_BYTES, EXPIRY_BYTES, MAC_BYTES = 6, 4, 12
TOKEN_BYTES = REF_BYTES + EXPIRY_BYTES + MAC_BYTES
TOKEN_CHARS = 30  # base64url of 22 bytes, unpadded
CODE_CHARS = 10
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_LINK, _CODE = b"hallwatch-ack-link\x00", b"hallwatch-ack-code\x00"


def _fields(*values: str) -> bytes:
    # Length-prefixed, so no two different tuples encode alike (a ":" in an id cannot shift).
    return b"".join(len(v.encode()).to_bytes(4, "big") + v.encode() for v in values)


def ref(alert_id: str, role: str) -> bytes:
    """Which (alert, role) a token is for, without naming it."""
    return hashlib.sha256(_fields(alert_id, role)).digest()[:REF_BYTES]


def _mac(key: bytes, alert_id: str, role: str, hall: str, expiry: int) -> bytes:
    msg = _LINK + _fields(alert_id, role, hall, str(expiry))
    return hmac.new(key, msg, hashlib.sha256).digest()[:MAC_BYTES]


def sign(key: bytes, alert_id: str, role: str, hall: str, expiry: float) -> str:
    """The URL-safe token of (alert id, role, hall), valid until `expiry` (epoch seconds)."""
    exp = max(0, min(int(expiry), 2**32 - 1))
    raw = ref(alert_id, role) + exp.to_bytes(EXPIRY_BYTES, "big")
    raw += _mac(key, alert_id, role, hall, exp)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass(frozen=True, slots=True)
class Token:
    """A token's parts, as sent: nothing in it is trusted until `valid` says so."""

    ref: bytes
    expiry: int
    mac: bytes

    def valid(self, key: bytes, alert_id: str, role: str, hall: str) -> bool:
        """Whether the MAC is that of these values (constant-time); the expiry is the caller's."""
        return hmac.compare_digest(self.mac, _mac(key, alert_id, role, hall, self.expiry))

    def expired(self, now: float) -> bool:
        return now > self.expiry


def parse(text: str) -> Token | None:
    """The parts of a token of the right shape; None for anything else."""
    if len(text) != TOKEN_CHARS or not text.isascii():
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "==")
    except (binascii.Error, ValueError):
        return None
    if len(raw) != TOKEN_BYTES or base64.urlsafe_b64encode(raw).rstrip(b"=").decode() != text:
        return None  # only the one canonical spelling of the bytes
    exp = int.from_bytes(raw[REF_BYTES : REF_BYTES + EXPIRY_BYTES], "big")
    return Token(raw[:REF_BYTES], exp, raw[REF_BYTES + EXPIRY_BYTES :])


def code(key: bytes, alert_id: str, role: str, hall: str) -> str:
    """A 10-character code for (alert id, role, hall): 50 bits of HMAC in Crockford base32."""
    digest = hmac.new(key, _CODE + _fields(alert_id, role, hall), hashlib.sha256).digest()
    n = int.from_bytes(digest[:8], "big") >> (64 - 5 * CODE_CHARS)
    return "".join(_CROCKFORD[(n >> (5 * i)) & 31] for i in reversed(range(CODE_CHARS)))


def normal_code(text: str) -> str | None:
    """A code as typed (any case, spaces or dashes, O for 0, I or L for 1) in its canonical
    form; None if it is not one."""
    t = text.upper().replace("-", "").replace(" ", "")
    t = t.replace("O", "0").replace("I", "1").replace("L", "1")
    if len(t) != CODE_CHARS or any(c not in _CROCKFORD for c in t):
        return None
    return t


def same_code(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def load_key(path: Path) -> bytes:
    """The key in `path`, created once (32 random bytes as hex, mode 0600) if missing; an
    existing file readable by others is narrowed to 0600."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return _existing(path)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, (secrets.token_hex(32) + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    return path.read_text("ascii").strip().encode()


def _existing(path: Path) -> bytes:
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        os.chmod(path, 0o600)
    text = path.read_text("ascii").strip()
    if len(text) < 32:
        raise ValueError(f"{path}: the key file is too short; delete it to make a new one")
    return text.encode()
