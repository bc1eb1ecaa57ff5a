"""The consistent-hash ring: balance, what moves when shards change, and the
placement function pinned as the storage format it is (no servers needed)."""

from __future__ import annotations

from collections import Counter
from hashlib import blake2b

import pytest

from doqu_tyrant.tyrant.ring import DEFAULT_VNODES, HashRing, position

KEYS = [str(i).encode() for i in range(100_000)]
FOUR = [f"10.0.0.{i}:1978" for i in range(1, 5)]


def test_position_is_blake2b_64_big_endian() -> None:
    for data in (b"", b"a", "キー".encode(), bytes(range(256))):
        assert position(data) == int.from_bytes(blake2b(data, digest_size=8).digest(), "big")


def test_version_1_placement_is_pinned() -> None:
    """Records placed by an earlier release must be found by this one: these
    values may never change (a new placement function needs a new version)."""
    assert position(b"") == 0xE4A6A0577479B2B4
    assert position(b"key") == 0xCE7CCCADC3A94CF5
    assert position(b"127.0.0.1:1978-0") == 0x67054C3D9B9D2875
    ring = HashRing(["a:1978", "b:1978", "c:1978"])
    keys = [b"0", b"1", b"2", b"3", b"4", b"5", b"6", b"7", b"8", b"9", b"user:1",
            "キー".encode()]
    assert [ring.name(k) for k in keys] == [
        "c:1978", "c:1978", "a:1978", "a:1978", "a:1978", "b:1978", "a:1978", "c:1978",
        "a:1978", "c:1978", "a:1978", "c:1978"]
    assert DEFAULT_VNODES == 512


def test_100k_keys_over_four_shards_are_within_15_percent_of_even() -> None:
    ring = HashRing(FOUR)
    counts = Counter(ring.name(k) for k in KEYS)
    assert set(counts) == set(FOUR)
    for name, count in counts.items():
        assert abs(count / 25_000 - 1) <= 0.15, (name, count)


def test_a_fifth_shard_takes_about_a_fifth_and_nothing_else_moves() -> None:
    old, new = HashRing(FOUR), HashRing([*FOUR, "10.0.0.5:1978"])
    moved = [k for k in KEYS if old.name(k) != new.name(k)]
    assert 0.15 <= len(moved) / len(KEYS) <= 0.25
    assert {new.name(k) for k in moved} == {"10.0.0.5:1978"}


def test_removing_a_shard_moves_only_its_keys() -> None:
    old, new = HashRing(FOUR), HashRing(FOUR[:3])
    for k in KEYS[:20_000]:
        if old.name(k) != FOUR[3]:
            assert new.name(k) == old.name(k)


def test_the_order_of_the_shards_does_not_matter() -> None:
    a, b = HashRing(FOUR), HashRing(FOUR[::-1])
    assert all(a.name(k) == b.name(k) for k in KEYS[:5_000])


def test_weights_share_the_keys_proportionally() -> None:
    ring = HashRing(["small", "big"], [1, 3])
    counts = Counter(ring.name(k) for k in KEYS)
    assert abs(counts["big"] / len(KEYS) - 0.75) <= 0.75 * 0.15
    assert abs(counts["small"] / len(KEYS) - 0.25) <= 0.25 * 0.15


def test_split_groups_keys_by_shard_index_in_order() -> None:
    ring = HashRing(FOUR)
    keys = KEYS[:1000]
    groups = ring.split(keys)
    assert sorted(k for g in groups.values() for k in g) == sorted(keys)
    for index, group in groups.items():
        assert all(ring.node(k) == index for k in group)
        assert group == [k for k in keys if ring.node(k) == index]


@pytest.mark.parametrize(("kwargs", "error"), [
    ({"names": []}, "at least one"),
    ({"names": ["a", "a"]}, "unique"),
    ({"names": ["a", ""]}, "non-empty"),
    ({"names": ["a"], "weights": [0]}, "positive"),
    ({"names": ["a"], "weights": [-1]}, "positive"),
    ({"names": ["a"], "weights": [True]}, "positive"),
    ({"names": ["a"], "weights": [float("nan")]}, "positive"),
    ({"names": ["a"], "weights": [1, 2]}, "2 weights for 1"),
    ({"names": ["a"], "weights": [1e9]}, "points"),
    ({"names": ["a"], "vnodes": 0}, "vnodes"),
    ({"names": ["a"], "version": 2}, "unknown ring version"),
])
def test_bad_rings_are_refused(kwargs: dict, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        HashRing(**kwargs)
