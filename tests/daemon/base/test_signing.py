"""Signed acknowledgement tokens and codes: bound to alert, role, hall and expiry; the key file."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import pytest
from hallwatch.daemon.base import signing

KEY = b"k" * 64
ALERT = "h1:queue_peak:1764470400"


def test_a_token_is_short_url_safe_and_verifies_for_what_it_was_signed() -> None:
    """30 URL-safe characters; valid for its alert, role and hall, and for no other."""
    tok = signing.sign(KEY, ALERT, "supervisor", "h1", 2_000_000_000)
    assert len(tok) == signing.TOKEN_CHARS and tok.replace("-", "").replace("_", "").isalnum()
    parsed = signing.parse(tok)
    assert parsed is not None and parsed.expiry == 2_000_000_000
    assert parsed.valid(KEY, ALERT, "supervisor", "h1")
    assert not parsed.valid(KEY, ALERT, "director", "h1")
    assert not parsed.valid(KEY, ALERT, "supervisor", "h2")
    assert not parsed.valid(KEY, "h1:queue_peak:1764470401", "supervisor", "h1")


def test_expiry_is_bound_and_checked() -> None:
    """Valid up to its expiry second, expired after; raising the expiry in the token breaks the
    MAC (a later expiry cannot be forged)."""
    tok = signing.sign(KEY, ALERT, "supervisor", "h1", 1000)
    parsed = signing.parse(tok)
    assert parsed is not None
    assert not parsed.expired(1000) and parsed.expired(1000.5)
    raw = bytearray(base64.urlsafe_b64decode(tok + "=="))
    raw[signing.REF_BYTES : signing.REF_BYTES + 4] = (10**9).to_bytes(4, "big")
    later = signing.parse(base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode())
    assert later is not None and later.expiry == 10**9
    assert not later.valid(KEY, ALERT, "supervisor", "h1")


def test_every_tampered_byte_and_a_wrong_key_are_refused() -> None:
    """Flipping any bit of any byte of the token, or checking with another key, fails."""
    tok = signing.sign(KEY, ALERT, "supervisor", "h1", 2_000_000_000)
    raw = base64.urlsafe_b64decode(tok + "==")
    for i in range(len(raw)):
        bad = bytearray(raw)
        bad[i] ^= 0x01
        p = signing.parse(base64.urlsafe_b64encode(bytes(bad)).rstrip(b"=").decode())
        ok = p is not None and p.valid(KEY, ALERT, "supervisor", "h1")
        ref_ok = p is not None and p.ref == signing.ref(ALERT, "supervisor")
        assert not (ok and ref_ok), f"byte {i} flipped still verifies"
    p = signing.parse(tok)
    assert p is not None and not p.valid(b"x" * 64, ALERT, "supervisor", "h1")


@pytest.mark.parametrize("text", ["", "short", "x" * 31, "é" * 30, "A" * 29 + "=", "!" * 30])
def test_malformed_tokens_do_not_parse(text: str) -> None:
    """Wrong length, non-ASCII or non-base64url text is no token."""
    assert signing.parse(text) is None


def test_codes_are_ten_characters_bound_and_forgiving_as_typed() -> None:
    """A code is 10 Crockford characters, differs per role and key, and reads back when typed
    in lower case, with a dash, O for 0 and I/L for 1."""
    c = signing.code(KEY, ALERT, "supervisor", "h1")
    assert len(c) == 10 and c != signing.code(KEY, ALERT, "director", "h1")
    assert c != signing.code(b"y" * 64, ALERT, "supervisor", "h1")
    typed = (c[:5] + "-" + c[5:]).lower().replace("0", "o").replace("1", "l")
    assert signing.normal_code(typed) == c
    assert signing.normal_code("ABCDEFGHJU") is None and signing.normal_code("ABC") is None


def test_the_key_file_is_created_once_private_and_reused(tmp_path: Path) -> None:
    """Created 0600 with 64 hex characters; the same key on the next start; a file others can
    read is narrowed to 0600."""
    path = tmp_path / "ack-link.key"
    k1 = signing.load_key(path)
    assert len(k1) == 64 and stat.S_IMODE(path.stat().st_mode) == 0o600
    path.chmod(0o644)
    assert signing.load_key(path) == k1
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.write_text("short")
    with pytest.raises(ValueError, match="too short"):
        signing.load_key(path)
