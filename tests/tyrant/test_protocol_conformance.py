"""The codec against every recorded request and reply byte for byte.

Requests are decoded (server side) and encoded again (client side); replies
are decoded (client side) and encoded again (server side). Both directions
must give back the recorded bytes exactly.
"""

from __future__ import annotations

import pytest

from doqu_tyrant.tyrant import protocol as p
from tests.conformance_data import transcripts

VECTORS = transcripts()


def _events(data: bytes) -> list:
    decoder = p.RequestDecoder()
    decoder.feed(data)
    events = []
    while (event := decoder.next_event()) is not None:
        events.append(event)
    return events


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_request_round_trip(vector: dict) -> None:
    data = bytes.fromhex(vector["request_hex"])
    events = _events(data)
    if vector["group"] == "errors":
        return  # malformed on purpose: see test_known_rejections
    assert events and all(isinstance(e, p.Request) for e in events)
    assert b"".join(p.encode_request(e) for e in events) == data


REPLIES = [v for v in VECTORS if not v["name"].startswith("ulog.repl")]  # a stream: see below


@pytest.mark.parametrize("vector", REPLIES, ids=[v["name"] for v in REPLIES])
def test_reply_round_trip(vector: dict) -> None:
    data = bytes.fromhex(vector["request_hex"])
    response = bytes.fromhex(vector["response_hex"])
    events = _events(data)
    if any(isinstance(e, p.TextLine) for e in events):
        return  # a memcached text answer, not a binary reply
    requests = [e for e in events if isinstance(e, p.Request)]
    decoder = p.ReplyDecoder()
    for request in requests:
        decoder.expect(request.command)
    # Feed one byte at a time: incremental decoding must not depend on chunks.
    replies = []
    for i in range(len(response)):
        decoder.feed(response[i : i + 1])
        while decoder.pending and (reply := decoder.next_reply()) is not None:
            replies.append(reply)
    while decoder.pending and (reply := decoder.next_reply()) is not None:
        replies.append(reply)
    assert decoder.buffered == 0
    if response:
        assert not decoder.pending
    rebuilt = b"".join(p.encode_reply(r.command, rep) for r, rep in zip(requests, replies))
    assert rebuilt == response


def test_repl_stream_start() -> None:
    (vector,) = [v for v in VECTORS if v["name"].startswith("ulog.repl")]
    request = _events(bytes.fromhex(vector["request_hex"]))[0]
    assert request == p.Request(p.REPL, (0x63, 1)) or request.command == p.REPL
    response = bytes.fromhex(vector["response_hex"])
    assert response[:4] == p.repl_header(1)
    assert response[4:5] == p.REPL_KEEPALIVE
    # the first update-log entry: VANISH, result byte 00
    assert response[5:].startswith(p.repl_entry(int.from_bytes(response[6:14], "big"), 1,
                                                 b"\xc8\x72\x00"))


def test_known_rejections() -> None:
    by_name = {v["name"]: v for v in VECTORS}

    def kinds(name: str) -> list[str]:
        return [type(e).__name__ for e in _events(bytes.fromhex(by_name[name]["request_hex"]))]

    assert kinds("errors.03-unknown-command") == ["Rejected"]
    assert kinds("errors.04-unknown-command-then-rnum") == ["Rejected", "Request"]
    assert kinds("errors.05-get-negative-length") == ["Rejected"]
    assert kinds("errors.07-get-length-over-limit-then-rnum") == ["Rejected", "Request"]
    assert kinds("errors.09-truncated-put-waits") == []
    assert kinds("errors.10-mget-count-over-limit") == ["Rejected"]
    assert kinds("errors.13-non-magic-text-line") == ["TextLine"]
    assert kinds("errors.17-repl-ts0-invalid") == ["Rejected"]
    assert kinds("errors.18-lone-magic-byte") == []
    # the rejected header is consumed; the 'kv' bytes wait as a text line
    assert kinds("errors.21-putshl-negative-width") == ["Rejected"]
