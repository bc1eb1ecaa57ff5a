"""An embedded server runs Tokyo Cabinet in the C locale without changing the
locale of the application around it."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.servers import ROOT

SCRIPT = textwrap.dedent(r"""
    import locale, sys, tempfile, os
    from doqu_tyrant.server import Server
    from doqu_tyrant.tyrant import Tyrant

    before = locale.setlocale(locale.LC_CTYPE)
    with tempfile.TemporaryDirectory() as d, Server(os.path.join(d, "t.tct"), port=0) as s:
        with Tyrant(s.host, s.port, timeout=10) as t:
            t.table_put("k", {"name": "\u00e9t\u00e9"})  # 2 bytes per \u00e9 in UTF-8
            # In the C locale "." is one byte: ^.{5}$ matches the 5-byte value.
            hits = t.misc("search", [b"addcond\0name\x007\0^.{5}$"])
    print(before, locale.setlocale(locale.LC_CTYPE), locale.getpreferredencoding(False),
          hits == [b"k"])
""")


def test_embedded_server_keeps_the_application_locale() -> None:
    env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8", "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                         env=env, timeout=60, check=True).stdout.split()
    before, after, encoding, bytewise = out
    assert before == after == "C.UTF-8"
    assert encoding.lower().replace("-", "") == "utf8"
    assert bytewise == "True"
