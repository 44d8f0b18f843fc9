"""The README's settings reference is what the model generates, and says true things."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hallwatch.daemon.base.errors import ConfigError
from hallwatch.daemon.config import reference
from hallwatch.daemon.config import settings as config
from hallwatch.daemon.config.table import fields_of, is_table, mapping_of, node

from tests import REPO


def test_readme_reference_equals_the_generated_one() -> None:
    """README.md's block is byte for byte what the model generates (run the module to fix)."""
    assert reference.README == REPO / "README.md"
    assert reference.main(["--check"]) == 0


def test_check_fails_on_a_hand_edited_reference(tmp_path: Path) -> None:
    """--check exits 1 when a default in the README is edited, and rewriting restores it."""
    readme = tmp_path / "README.md"
    text = reference.README.read_text(encoding="utf-8")
    edited = text.replace('| `"mqtt://127.0.0.1:1883"` |', '| `"mqtt://127.0.0.1:1884"` |', 1)
    assert edited != text
    readme.write_text(edited, encoding="utf-8")
    assert reference.main(["--check", "--readme", str(readme)]) == 1
    assert reference.main(["--readme", str(readme)]) == 0
    assert readme.read_text(encoding="utf-8") == text
    assert reference.main(["--check", "--readme", str(readme)]) == 0


def leaf_keys(cls: type, key: str) -> list[str]:
    out: list[str] = []
    for name, (tp, _) in fields_of(cls).items():
        bare = node(tp).bare
        pair = mapping_of(bare)
        if is_table(bare):
            out += leaf_keys(bare, f"{key}.{name}")
        elif pair is not None and is_table(node(pair[1]).bare):
            out.append(f"{key}.{name}.<NAME>")
        else:
            out.append(f"{key}.{name}")
    return out


def test_every_key_has_a_row_with_a_meaning() -> None:
    """Each key of every section (maps as `<NAME>`) is a row of the reference, none without a
    one-line meaning."""
    block = reference.generate()
    rows = dict(re.findall(r"^\| `([^`]+)` \|.*\| ([^|]*) \|$", block, re.M))
    for section, (tp, _) in fields_of(config.SettingsFile).items():
        for key in leaf_keys(node(tp).bare, section):
            assert key in rows, key
    assert all(meaning.strip() for meaning in rows.values()), [
        k for k, m in rows.items() if not m.strip()
    ]


def test_every_variable_in_the_reference_is_read_for_its_key(tmp_path: Path) -> None:
    """Each environment variable the reference lists (outside `<NAME>` tables) is the one
    load() reads for that row's key: naming an absent file through its `_FILE` fails on that
    key, not as an unknown variable."""
    block = reference.generate()
    pairs = re.findall(r"^\| `([^`<]+)` \|[^|]*\|[^|]*\| `(HALLWATCH_\w+)`", block, re.M)
    assert len(pairs) > 40 and ("alerts.sms.token", "HALLWATCH_ALERTS_SMS_TOKEN") in pairs
    for key, var in pairs:
        with pytest.raises(ConfigError) as err:
            config.load(None, {var + "_FILE": str(tmp_path / "absent")})
        assert err.value.key == key, (var, str(err.value))
