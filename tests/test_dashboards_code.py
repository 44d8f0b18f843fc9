"""The committed dashboards are byte for byte what grafana/dashboards_src/ generates."""

from __future__ import annotations

from pathlib import Path

from grafana.generate import OUT, differing, main
from tests import REPO


def test_committed_dashboards_equal_the_generated_ones(tmp_path: Path) -> None:
    """Regenerated into a temp folder, every file equals the committed one, and no committed
    dashboard lacks code (so a hand edit, or code changed without regenerating, fails)."""
    assert OUT == REPO / "grafana/dashboards"
    assert main(["--out", str(tmp_path)]) == 0
    generated = {p.name: p.read_bytes() for p in tmp_path.glob("*.json")}
    committed = {p.name: p.read_bytes() for p in OUT.glob("*.json")}
    assert sorted(generated) == sorted(committed)
    stale = [name for name, text in generated.items() if committed[name] != text]
    assert not stale, f"{stale} differ from the code: run python -m grafana.generate"


def test_check_names_a_hand_edited_file(tmp_path: Path) -> None:
    """--check exits 1 and names the file when one differs, 0 when none does."""
    assert main(["--out", str(tmp_path)]) == 0
    assert main(["--check", "--out", str(tmp_path)]) == 0
    wall = tmp_path / "hall-wall.json"
    wall.write_text(wall.read_text(encoding="utf-8").replace('"10s"', '"5s"', 1), "utf-8")
    assert differing(tmp_path) == ["hall-wall.json"]
    assert main(["--check", "--out", str(tmp_path)]) == 1
