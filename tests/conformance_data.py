"""Access to the recorded conformance data kept in tests/conformance/.

The files are a copy of the project's shared conformance set: answers
recorded from ttserver 1.1.41 on Tokyo Cabinet 1.4.48.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

HERE = Path(__file__).parent / "conformance"


@cache
def transcripts() -> list[dict]:
    with open(HERE / "transcripts.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


@cache
def table_queries() -> dict:
    with open(HERE / "table-queries.json", encoding="utf-8") as f:
        return json.load(f)


def encode_query_args(args: list[list[str]]) -> list[bytes]:
    """The misc ``search`` arguments of one table-queries entry."""
    return ["\0".join(parts).encode() for parts in args]
