"""The bundled server explains queries in exactly ttserver's words.

The client learns the table's indexes from the planner explanation that a
``hint`` search appends (:mod:`doqu_tyrant.tyrant.indexes`), so the text the
bundled server produces must be the text recorded from the real ttserver
1.1.41 on Tokyo Cabinet 1.4.48, byte for byte.
"""

from __future__ import annotations

import struct

import pytest

from doqu_tyrant.tyrant import protocol as p
from tests.conformance_data import transcripts
from tests.conftest import ServerFactory
from tests.server.wire import Wire

HINT = b"\0\0[[HINT]]\n"
GROUPS = ("table.search", "table.index")


def elements(reply: bytes) -> list[bytes]:
    (count,) = struct.unpack_from(">I", reply, 1)
    pos, items = 5, []
    for _ in range(count):
        (size,) = struct.unpack_from(">I", reply, pos)
        items.append(reply[pos + 4 : pos + 4 + size])
        pos += 4 + size
    return items


@pytest.mark.parametrize("group", GROUPS)
def test_hints_equal_the_recorded_ones(server_factory: ServerFactory, group: str) -> None:
    vectors = [v for v in transcripts() if v["group"] == group]
    server = server_factory("table")
    compared = 0
    with Wire(server.address) as wire:
        for vector in vectors:
            request = bytes.fromhex(vector["request_hex"])
            expected = bytes.fromhex(vector["response_hex"])
            decoder = p.RequestDecoder()
            decoder.feed(request)
            frames = []
            while (event := decoder.next_event()) is not None:
                assert isinstance(event, p.Request)
                frames.append(p.encode_request(event))
            replies = wire.pipeline(frames)
            if HINT not in expected:
                continue
            assert len(frames) == 1 and replies[0].ok, vector["name"]
            theirs = elements(expected)[-1]
            ours = replies[0].value[-1]  # type: ignore[index]
            assert ours == theirs, vector["name"]
            compared += 1
    assert compared == {"table.search": 95, "table.index": 13}[group]  # every recorded hint
