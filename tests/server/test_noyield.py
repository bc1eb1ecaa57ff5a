"""Tokyo Cabinet's yield after every write is removed (server/noyield.py)."""

from __future__ import annotations

import ctypes
import os
import platform
import subprocess
import sys

import pytest

from doqu_tyrant.server import cabinet, noyield

HANDLED = sys.platform == "linux" and platform.machine() in ("x86_64", "aarch64")


@pytest.mark.skipif(not HANDLED, reason="the PLT slot is only redirected on Linux x86-64/AArch64")
def test_the_library_calls_a_no_op_instead_of_sched_yield() -> None:
    assert noyield.disabled()
    slot = noyield._state["slot"]
    libc = ctypes.CDLL(None)
    assert ctypes.c_uint64.from_address(slot).value == noyield._address(libc.getpagesize)
    assert noyield.disable(cabinet._lib)  # once: a second call changes nothing


def test_the_process_sched_yield_is_untouched() -> None:
    libc = ctypes.CDLL(None)
    assert libc.sched_yield() == 0
    assert noyield._address(libc.sched_yield) != noyield._state["target"]


def _disabled_in_a_new_process(**environ: str) -> str:
    code = "from doqu_tyrant.server import noyield, cabinet; print(noyield.disabled())"
    env = dict(os.environ, **environ)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, check=True, timeout=60).stdout.strip()


@pytest.mark.skipif(not HANDLED, reason="the PLT slot is only redirected on Linux x86-64/AArch64")
def test_the_environment_can_keep_the_yields() -> None:
    assert _disabled_in_a_new_process(DOQU_TYRANT_KEEP_TC_YIELD="1") == "False"
    assert _disabled_in_a_new_process(DOQU_TYRANT_KEEP_TC_YIELD="0") == "True"


def test_writes_and_reads_from_threads_after_the_change(tmp_path: object) -> None:
    import threading

    db = cabinet.Cabinet(os.path.join(str(tmp_path), "t.tch"))
    try:
        def work(n: int) -> None:
            for i in range(2000):
                assert db.put(b"%d-%d" % (n, i), b"v%d" % i)
                assert db.get(b"%d-%d" % (n, i)) == b"v%d" % i

        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert db.rnum() == 8000
    finally:
        db.close()


def test_an_image_that_is_not_elf_is_left_alone() -> None:
    assert noyield._slot_and_anchor(b"MZ\x90\x00" + bytes(60), "tcadbnew") is None
    assert noyield._slot_and_anchor(b"\x7fELF\x01\x01" + bytes(58), "tcadbnew") is None
