"""The regular-expression checker against the real glibc ``regcomp``.

Property: the checker never accepts what glibc rejects, and what it calls
invalid glibc rejects; what it refuses as costly is valid but expensive.
glibc is called through ctypes (tests/glibc_regex.py) only on expressions
the checker accepts or calls invalid, which are cheap for it by design.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from doqu_tyrant.tyrant._regex_states import Automaton
from doqu_tyrant.tyrant._regex_syntax import Parser
from doqu_tyrant.tyrant.regex import (
    CLOSURE_BUDGET,
    NODE_BUDGET,
    STATE_BUDGET,
    InvalidRegex,
    RefusedRegex,
    RegexError,
    check_regex,
    check_strrx,
    regex_cost,
)
from tests.glibc_regex import Compiled, compiles
from tests.servers import ROOT


def verdict(pattern: bytes, icase: bool = False) -> str:
    try:
        check_regex(pattern, icase=icase)
    except InvalidRegex:
        return "invalid"
    except RefusedRegex:
        return "refused"
    return "ok"


def assert_agrees(pattern: bytes, icase: bool) -> str:
    mine = verdict(pattern, icase)
    if mine != "refused":
        glibc = compiles(pattern, icase)
        assert (mine == "ok") == glibc, (pattern, icase, mine, glibc)
    return mine


# Valid in glibc's ERE, odd as some look.
VALID = [
    b"", b"a", b"a)", b")", b"}", b"a}", b"a{,}", b"a{,3}", b"a{2,}", b"a{0}", b"a{0,0}b",
    b"a{1\\,2}", b"a**", b"a+*?", b"a{1}{2}", b"()", b"(|)", b"a|", b"|a", b"a||b", b"(|a)+",
    b"(^)*", b"^", b"$", b"^$", b"a^b", b"a$b", b"[]a]", b"[^]a]", b"[]]", b"[a-]",
    b"[-a]", b"[^-a]", b"[--/]", b"[!--]", b"[]-a]", b"[[]", b"[[:alpha:]]", b"[[:alpha:]-]",
    b"[[.a.]-z]", b"[a-[.z.]]", b"[[=a=]]", b"[[.].]]", b"[[.-.]]", b"[\\]", b"[a\\-z]",
    b"[\x80-\xff]", b"[a-\xff]", b"\\w+\\W\\s\\S", b"\\bfoo\\B", b"\\<a\\>", b"\\`a\\'",
    b"\\(", b"\\{", b"\\n", b"\\.", b"x{999}", b"[0-9]{4}-[0-9]{2}",
    b"^([0-9]{1,3}\\.){3}[0-9]{1,3}$", b"(a|b)*c+d?", b"(a)(b)", b"\xe3\x82\xad\xe3\x83\xbc",
]
# Rejected by glibc, each for one reason.
INVALID = [
    b"(", b"a(", b"((a)", b"(a|", b"*", b"*a", b"a|*b", b"(*a)", b"+a", b"?", b"{", b"{1}",
    b"a{", b"a{1", b"a{1,", b"a{}", b"a{x}", b"a{ 1}", b"a{1,2,3}", b"a{2,1}", b"a{32768}",
    b"a{99999999999}", b"^*", b"a$*", b"\\b*", b"\\<+", b"a\\", b"\\1", b"(a\\1)", b"(a)|\\1",
    b"[", b"[a", b"[^", b"[]", b"[^]", b"[a-", b"[z-a]", b"[a-Z]", b"[a-c-e]", b"[[:alpha:]-z]",
    b"[a-[:alpha:]]", b"[[:foo:]]", b"[[:ALPHA:]]", b"[[:alpha:]", b"[[:alpha", b"[[.ab.]]",
    b"[[..]]", b"[[..]-a]", b"[[=ab=]]", b"[[.space.]]", b"[[=a=]-z]", b"[[:" + b"a" * 40 + b":]]",
]


@pytest.mark.parametrize("pattern", VALID)
def test_accepts_what_glibc_accepts(pattern: bytes) -> None:
    assert compiles(pattern)
    assert verdict(pattern) == "ok"


@pytest.mark.parametrize("pattern", INVALID)
def test_rejects_what_glibc_rejects(pattern: bytes) -> None:
    assert not compiles(pattern)
    assert verdict(pattern) == "invalid"


@pytest.mark.parametrize("pattern, valid_plain, valid_icase", [
    (b"[a-Z]", False, True),  # glibc upper-cases range ends when ignoring case
    (b"[_-a]", True, False),
    (b"[[:lower:]]", True, True),
    (b"[[.a.]-Z]", False, True),
])
def test_ignore_case_changes_ranges_as_in_glibc(pattern: bytes, valid_plain: bool,
                                                valid_icase: bool) -> None:
    assert compiles(pattern) is valid_plain and compiles(pattern, True) is valid_icase
    assert (verdict(pattern) == "ok") is valid_plain
    assert (verdict(pattern, True) == "ok") is valid_icase
    check = (lambda: check_strrx(b"*" + pattern)) if valid_icase else None
    if check is not None:
        check()
    else:
        with pytest.raises(InvalidRegex):
            check_strrx(b"*" + pattern)


TOKENS = [
    b"a", b"b", b"A", b"z", b"Z", b"_", b"-", b"]", b"[", b"^", b"$", b"(", b")", b"|", b"*",
    b"+", b"?", b"{", b"}", b",", b"0", b"1", b"2", b"\\", b".", b":", b"=", b" ", b"\x80",
    b"\xff", b"[:alpha:]", b"[:upper:]", b"[:space:]", b"[:ALPHA:]", b"[.a.]", b"[=b=]",
    b"[..]", b"[.-.]", b"[:", b":]", b"[=", b"=]", b".]", b"[^", b"[]", b"-]", b"[a-",
    b"[[:lower:]-z]", b"[%--]", b"\\1", b"\\2", b"\\w", b"\\b", b"\\B", b"\\<", b"\\'", b"\\`",
    b"\\,", b"{1}", b"{1,2}", b"{,3}", b"{2,}", b"{3,1}", b"{0}", b"{32767}", b"{1a}",
]
patterns = st.lists(st.sampled_from(TOKENS), max_size=12).map(b"".join)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(patterns, st.booleans())
@example(b"[[..]-^{2,}]", False)  # found by this test: an empty collating element
def test_agrees_with_glibc_on_generated_expressions(pattern: bytes, icase: bool) -> None:
    assert_agrees(pattern, icase)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=10), st.booleans())
def test_agrees_with_glibc_on_arbitrary_bytes(data: bytes, icase: bool) -> None:
    assert_agrees(data.replace(b"\0", b""), icase)


# -- what is refused, and why ---------------------------------------------------------------

REFUSED = {
    # a backtracking matcher: (.*)\1x took 20 s on 2,000 bytes, the one 21.6 s
    b"(a*)(a*)(a*)(a*)(a*)\\5\\4\\3\\2\\1b": "backreferences",
    b"(a)\\1": "backreferences",
    b"(.*)\\1x": "backreferences",
    # expansion: the 30 s and 8.4 GB
    b"(((a{1,60}){1,60}){1,60}){1,60}": "nodes",
    b"(x{32767}){2}": "nodes",
    b"((a{100}){100}){100}": "nodes",
    # epsilon closures quadratic in the optional copies (glibc: a{1,10000} 781 MB)
    b"a{1,2000}": "closures",
    b"(a?){2000}": "closures",
    b"(){2000}": "closures",
    b"(" + b"|".join(b"w%d" % i for i in range(1500)) + b")": "closures",
    # an automaton with a state per subset of live positions (2.8 s per 10 KB value)
    b".*a.{20}c": "automaton",
    b".*a" + b"." * 20 + b"c": "automaton",
    b"[ab]*a[ab]{16}c": "automaton",
    b"x" * 70_000: "longer than",
    # glibc's parser recurses per group and crashes the process at about 20,000 levels
    b"(" * 101 + b")" * 101: "nested deeper than 100",
    b"(" * 30000: "nested deeper than 100",  # invalid too, but glibc dies before it knows
}


@pytest.mark.parametrize("pattern", list(REFUSED))
def test_refuses_costly_expressions(pattern: bytes) -> None:
    with pytest.raises(RefusedRegex) as info:
        check_regex(pattern)
    assert REFUSED[pattern] in str(info.value)
    assert isinstance(info.value, ValueError)


def test_messages_say_what_and_where() -> None:
    with pytest.raises(InvalidRegex, match=r"invalid regular expression 'ab\(cd': unmatched "
                       r"\( at offset 2"):
        check_regex("ab(cd")
    with pytest.raises(RefusedRegex, match=r"backreferences make glibc's matching exponential "
                       r"\(one at offset 3\)"):
        check_regex("(a)\\1")
    with pytest.raises(InvalidRegex, match=r"\* has nothing to repeat at offset 1"):
        check_strrx("**a")  # after the ignore-case flag
    with pytest.raises(InvalidRegex, match="NUL"):
        check_regex(b"a\0b")
    with pytest.raises(InvalidRegex, match="no UTF-8 form"):
        check_regex("a\udc80")
    with pytest.raises(TypeError):
        check_regex(5)  # type: ignore[arg-type]
    err = pytest.raises(RegexError, check_regex, "x[").value
    assert err.offset == 1 and err.pattern == b"x["


def test_ordinary_expressions_are_accepted_with_their_costs() -> None:
    for pattern in (b"^[0-9]{4}-[0-9]{2}-[0-9]{2}$", b"foo.*bar", b"^(alice|bob)$",
                    b"[[:upper:]]{4}", b"^.{0,255}$", b"(^|, )(a b|c)(, |$)", b".*a.{8}c"):
        cost = regex_cost(pattern)
        assert cost.nodes <= NODE_BUDGET and cost.closure <= CLOSURE_BUDGET
        assert cost.states <= STATE_BUDGET
    assert regex_cost(b".*a.{8}c$").states == 512  # every subset of the 9 live positions
    assert regex_cost(b".*a.{8}c").states < 512  # glibc stops at the first match


def test_accepted_worst_cases_stay_cheap_in_glibc() -> None:
    """Just inside each budget, glibc compiles and runs the expression on an
    adversarial subject within 512 MB and a generous time bound."""
    script = textwrap.dedent("""
        import random, resource, sys
        resource.setrlimit(resource.RLIMIT_AS, (512 << 20, 512 << 20))
        sys.path.insert(0, sys.argv[1])
        from tests.glibc_regex import Compiled
        from doqu_tyrant.tyrant.regex import check_regex
        random.seed(7)
        noise = bytes(random.choice(b"ab") for _ in range(3000))
        cases = [(b".*a.{12}c", noise), (b"a{1,700}b", b"a" * 5000),
                 (b"(a|b|c){1000}", b"abc" * 3000), (b"((a{1,20}){1,20}){1,20}", b"a" * 9000),
                 (b"(" + b"|".join(b"w%d" % i for i in range(700)) + b")x", b"w1" * 5000)]
        for pattern, subject in cases:
            check_regex(pattern)
            compiled = Compiled(pattern)
            assert compiled.ok, pattern
            compiled.search(subject)
            compiled.close()
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", script, str(ROOT)], capture_output=True,
                          timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == b"ok", done.stderr.decode()


# -- the automaton the state budget counts matches what glibc matches ------------------------

def automaton_matches(pattern: bytes, icase: bool, text: bytes, whole: bool) -> bool:
    """Match ``text`` with the checker's own position automaton (no anchors):
    anywhere in it, or ``whole`` of it."""
    parser = Parser(pattern, icase, 0)
    _, ast = parser.parse()
    automaton = Automaton()
    first, last, nullable = automaton.build(ast)
    final = set(last)
    for start in range(1 if whole else len(text) + 1):
        ends = {start} if nullable else set()
        live = set(first)
        for i, byte in enumerate(text[start:], start + 1):
            moved = {p for p in live if automaton.masks[p] >> byte & 1}
            if moved & final:
                ends.add(i)
            live = set().union(*(automaton.follow[p] for p in moved))
        if (len(text) in ends) if whole else ends:
            return True
    return False


ATOMS = [b"a", b"b", b"A", b".", b"[ab]", b"[^a]", b"[[:upper:]]", b"\\w", b"\\S", b"[a-c]",
         b"(a|bb)", b"(ab|)", b"()", b"(a*b)", b"[]a]"]
QUANTIFIERS = [b"", b"", b"*", b"+", b"?", b"{2}", b"{0,2}", b"{1,3}", b"{2,}", b"{0}"]
simple = st.lists(st.tuples(st.sampled_from(ATOMS), st.sampled_from(QUANTIFIERS)),
                  min_size=1, max_size=5).map(lambda parts: b"".join(a + q for a, q in parts))


@settings(max_examples=400, deadline=None)
@given(st.lists(simple, min_size=1, max_size=3).map(b"|".join), st.booleans(),
       st.binary(max_size=8).map(lambda b: bytes(b"abAB c"[x % 6] for x in b)))
def test_automaton_matches_like_glibc(pattern: bytes, icase: bool, text: bytes) -> None:
    for whole in (False, True):
        compiled = Compiled(b"^(" + pattern + b")$" if whole else pattern, icase)
        assert compiled.ok, pattern
        try:
            found = automaton_matches(pattern, icase, text, whole)
            assert found == compiled.search(text), (pattern, text, whole)
        finally:
            compiled.close()
