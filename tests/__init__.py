"""hallwatch's tests; REPO is the checkout they test."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
