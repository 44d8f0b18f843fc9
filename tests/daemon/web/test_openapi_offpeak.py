"""The API description of GET /api/offpeak/{hall} says where its figures come from, in the
words the endpoint itself uses (`source` and `source_text` of each fallback)."""

from __future__ import annotations

import json
from pathlib import Path

from hallwatch.daemon.estimate.offpeak import SOURCES
from hallwatch.daemon.web.openapi import OPERATIONS

REPO = Path(__file__).resolve().parents[3]


def test_offpeak_description_names_every_source_and_its_text() -> None:
    """Each `source` (own, centre, typical) and its `source_text` is in the description, in
    the code's table and in the committed docs/openapi.json."""
    text = OPERATIONS[("GET", "/api/offpeak/{hall}")].summary
    doc = json.loads((REPO / "docs" / "openapi.json").read_text(encoding="utf-8"))
    op = doc["paths"]["/api/offpeak/{hall}"]["get"]
    published = json.dumps(op, ensure_ascii=False)
    for source, words in SOURCES.items():
        assert source in text and words in text, (source, words)
        assert words in published, words
    assert "lunch" in text
