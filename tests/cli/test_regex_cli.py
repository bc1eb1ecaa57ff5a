"""``doqu-tyrant query --where`` with a bad regular expression ends with status 2
and one ``error:`` line naming the problem (issue 10 item 10): the query builder
raises a ValueError, which the command line reports as bad usage."""

from __future__ import annotations

import pytest

from tests.cli.conftest import Run


@pytest.mark.parametrize("where, reason", [
    ("name__regex=(", "invalid regular expression '(': unmatched ( at offset 0"),
    ("name__iregex=[[:word:]]", "unknown character class [:word:]"),
    ("name__regex=(a)\\1", "backreferences make glibc's matching exponential"),
    ("name__regex=(((a{1,60}){1,60}){1,60}){1,60}", "more than 20,000 nodes"),
])
def test_bad_regex_in_where_is_a_usage_error(run_cli: Run, tyrant_url: str, where: str,
                                             reason: str) -> None:
    done = run_cli("--url", tyrant_url, "query", "--where", where, timeout=60)
    err = done.stderr.decode()
    assert done.returncode == 2, err
    assert err.count("\n") == 1 and "error: bad query:" in err and reason in err, err
    assert done.stdout == b""
