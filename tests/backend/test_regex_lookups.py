"""doqu lookups that build STRRX conditions refuse bad expressions at ``where()``
(issue 9 item 14, issue 14 item 5): before, ``where(name__matches="(")`` was sent
and silently matched nothing, and a costly expression stalled the server."""

from __future__ import annotations

import re

import pytest

from doqu_tyrant import StorageAdapter
from doqu_tyrant.tyrant.regex import InvalidRegex, RefusedRegex, RegexError
from tests.backend.models import Item, Loose


def test_invalid_expression_raises_at_where(db: StorageAdapter) -> None:
    Item(text="(x").save(db)
    with pytest.raises(InvalidRegex) as info:
        db.find(Item).where(text__matches="(")
    message = str(info.value)
    assert message.startswith("condition text__matches: invalid regular expression '(': "
                              "unmatched ( at offset 0")
    assert isinstance(info.value, ValueError)
    with pytest.raises(InvalidRegex):
        db.find(Item).where_not(text__matches="[z-a]")
    with pytest.raises(InvalidRegex):
        db.find(Loose).where(anything__matches="a{3,1}")


def test_translated_expression_names_the_original(db: StorageAdapter) -> None:
    with pytest.raises(InvalidRegex, match=r"translated from '\\\\d\{2,1\}'"):
        db.find(Item).where(text__matches=r"\d{2,1}")


@pytest.mark.parametrize("pattern", [
    r"(a*)(a*)(a*)(a*)(a*)\5\4\3\2\1b",
    "(((a{1,60}){1,60}){1,60}){1,60}",
    re.compile(r"(\w)\1", re.IGNORECASE),
    ".*a.{20}c",
])
def test_costly_expression_is_refused(db: StorageAdapter, pattern: object) -> None:
    with pytest.raises(RefusedRegex, match="condition text__matches: regular expression"):
        db.find(Item).where(text__matches=pattern)


def test_good_expressions_still_match(db: StorageAdapter) -> None:
    pks = {text: Item(text=text).save(db) for text in ("alpha", "beta", "Gamma", "(x)")}
    assert {d.pk for d in db.find(Item).where(text__matches="^[ab]")} == {pks["alpha"],
                                                                          pks["beta"]}
    assert {d.pk for d in db.find(Item).where(text__matches="(?i)^g")} == {pks["Gamma"]}
    assert {d.pk for d in db.find(Item).where(text__matches=r"\(x\)")} == {pks["(x)"]}
    assert db.find(Item).where(text__in=["a b", "(x)"]).count() == 1  # an escaped alternation


def test_generated_alternations_are_checked_too() -> None:
    from doqu_tyrant.lookups import lookup_manager

    many = [f"item {i}" for i in range(1500)]  # items with spaces need an alternation
    with pytest.raises(RegexError, match="condition text__in: regular expression .* refused"):
        lookup_manager.resolve("text__in", many, doc_class=Item)
    assert lookup_manager.resolve("text__in", many[:200], doc_class=Item)
