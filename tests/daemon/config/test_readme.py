"""The README's configuration examples are real: they load, and say what the defaults are."""

from __future__ import annotations

import re
from pathlib import Path

from hallwatch.daemon.config import settings as config

from tests import REPO

README = REPO / "README.md"


def toml_blocks() -> list[str]:
    return re.findall(r"```toml\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def test_every_toml_example_in_the_readme_loads(tmp_path: Path) -> None:
    """Each ```toml block of the README is a valid hallwatch config file."""
    blocks = toml_blocks()
    assert len(blocks) >= 3
    for i, block in enumerate(blocks):
        path = tmp_path / f"example{i}.toml"
        path.write_text(block, encoding="utf-8")
        config.load(path, {})


def test_reference_block_shows_the_defaults(tmp_path: Path) -> None:
    """The configuration reference block gives exactly the built-in defaults."""
    path = tmp_path / "reference.toml"
    path.write_text(toml_blocks()[0], encoding="utf-8")
    loaded = config.load(path, {})
    assert loaded.mqtt == config.load(None, {}).mqtt
    assert loaded.store == config.Settings().store
    assert loaded.hall == config.Settings().hall
    assert loaded.limits == config.Settings().limits
