"""Personal numbers, masked: one phone (`mask_phone`) and, in free text, Chinese mobile and
landline numbers and resident ID numbers (`mask_text`, `mask_json`).

`mask_text` hides them the way `mask_phone` shows a phone (138****8000: the first three
and last four digits), so a complaint summary or an error message that quotes a customer's number
does not leak it to a token without `pii:read`. The patterns want the number to stand alone
(no digit, Latin letter or decimal point glued to it), so timestamps, counts and coordinates
in the same text are left alone.
"""

from __future__ import annotations

import re
from typing import Any

_BEFORE = r"(?<![0-9A-Za-z.])"
_AFTER = r"(?![0-9A-Za-z]|\.[0-9])"
_DATE = r"(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])"
NUMBERS = re.compile(
    _BEFORE
    + "(?:"
    # resident ID: 18 characters (region, birth date, sequence, check digit) or the old 15
    + rf"(?P<id>[1-9][0-9]{{5}}(?:18|19|20)[0-9]{{2}}{_DATE}[0-9]{{3}}[0-9Xx]"
    + rf"|[1-9][0-9]{{7}}{_DATE}[0-9]{{3}})"
    # mobile, optionally +86, optionally grouped 3-4-4
    + r"|(?P<mobile>(?:\+?86[- ]?)?1[3-9][0-9](?:[- ]?[0-9]{4}){2})"
    # landline with its area code
    + r"|(?P<landline>0[0-9]{2,3}[- ][0-9]{7,8}|0[0-9]{10,11})"
    + ")"
    + _AFTER
)


def mask_phone(phone: str | None) -> str | None:
    """138****8000: the first three and last four digits; shorter numbers keep only two."""
    if not phone:
        return phone
    digits = re.sub(r"\D", "", phone)
    if len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]  # +86: the mobile number is what people recognise
    if len(digits) >= 11:
        return digits[:3] + "****" + digits[-4:]
    return "*" * max(0, len(digits) - 2) + digits[-2:]


def _hide(m: re.Match[str]) -> str:
    if m.group("id"):
        s = m.group("id")
        return s[:3] + "*" * (len(s) - 7) + s[-4:]
    return mask_phone(m.group(0)) or ""


def mask_text(text: str) -> str:
    """`text` with every phone and ID number masked."""
    return NUMBERS.sub(_hide, text)


def mask_json(value: Any) -> Any:
    """A JSON value with `mask_text` applied to every string in it, keys included."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, list):
        return [mask_json(v) for v in value]
    if isinstance(value, dict):
        return {mask_text(k): mask_json(v) for k, v in value.items()}
    return value
