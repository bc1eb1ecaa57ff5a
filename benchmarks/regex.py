"""What the regular-expression checker costs, and the glibc figures behind its budgets.

    python benchmarks/regex.py            # checker cost, then glibc measurements
    python benchmarks/regex.py --quick    # checker cost only

Part 1 times :func:`doqu_tyrant.tyrant.regex.check_strrx` per expression,
uncached (first sight) and cached (a repeated query). Part 2 runs glibc's
``regcomp`` + ``regexec`` (through ctypes, as Tokyo Cabinet calls them) on
expressions at and beyond each budget, each in a child process limited to
``--memory`` MB and ``--timeout`` seconds, and prints time and peak memory.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from doqu_tyrant.tyrant import regex  # noqa: E402

ORDINARY = [
    "^a", "e$", "[0-9]{4}", "^.{3}$", "^(alice|bob)$", "[[:upper:]]{4}", "foo.*bar",
    "*^a", "^[0-9]{4}-[0-9]{2}-[0-9]{2}$", "^[a-z0-9._%+-]+@[a-z0-9.-]+\\.[a-z]{2,}$",
    "^([0-9]{1,3}\\.){3}[0-9]{1,3}$", "(^|, )(red|dark green)(, |$)", "^.{0,255}$",
]

# (label, pattern, subject as a Python expression, budget it probes)
GLIBC_CASES = [
    ("issue: 5 backreferences, 30 bytes", r"(a*)(a*)(a*)(a*)(a*)\5\4\3\2\1b", "b'a' * 30",
     "backreferences"),
    ("1 backreference, 1,000 bytes", r"(.*)\1x", "b'a' * 1000", "backreferences"),
    ("a{1000}", "a{1000}", "b'a' * 2000", "nodes"),
    ("a{20000}", "a{20000}", "b'a' * 2000", "nodes"),
    ("((a{1,20}){1,20}){1,20}", "((a{1,20}){1,20}){1,20}", "b'a' * 9000", "nodes"),
    ("(((a{1,60}){1,60}){1,60}){1,8}", "(((a{1,60}){1,60}){1,60}){1,8}", "b'a' * 100",
     "nodes"),
    ("a{1,700} (closures 0.49 M)", "a{1,700}b", "b'a' * 20000", "closures"),
    ("a{1,2000} (closures 4 M)", "a{1,2000}b", "b'a' * 20000", "closures"),
    ("a{1,10000} (closures 100 M)", "a{1,10000}b", "b'a' * 100", "closures"),
    ("(a?){4000}", "(a?){4000}", "b'a' * 100", "closures"),
    ("800 alternatives", "(" + "|".join(f"w{i}" for i in range(800)) + ")x", "b'w1' * 5000",
     "closures"),
    ("3,000 alternatives", "(" + "|".join(f"w{i}" for i in range(3000)) + ")x",
     "b'w1' * 5000", "closures"),
    (".*a.{11}c (4,096 states)", ".*a.{11}c", "NOISE", "states"),
    (".*a.{13}c (16,384 states)", ".*a.{13}c", "NOISE", "states"),
    (".*a.{16}c (131,072 states)", ".*a.{16}c", "NOISE", "states"),
]

CHILD = r"""
import json, random, resource, sys, time
sys.path.insert(0, sys.argv[1])
limit = int(sys.argv[2]) << 20
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
from tests.glibc_regex import Compiled
pattern = sys.argv[3].encode()
random.seed(1)
NOISE = [bytes(random.choice(b"ab") for _ in range(200)) for _ in range(2000)]
subject = eval(sys.argv[4])
subjects = subject if isinstance(subject, list) else [subject]
def peak():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) // 1024 for l in f if l.startswith("VmHWM"))
base = peak()
t0 = time.perf_counter()
compiled = Compiled(pattern)
t1 = time.perf_counter()
if compiled.ok:
    for s in subjects:
        compiled.search(s)
t2 = time.perf_counter()
print(json.dumps({"rc": compiled.code, "compile": t1 - t0, "exec": t2 - t1,
                  "mb": peak() - base}))
"""


def checker_cost(repeat: int) -> None:
    print("checker cost per expression (check_strrx), microseconds")
    print(f"  {'expression':48} {'first':>8} {'cached':>8}")
    firsts, cached = [], []
    for pattern in ORDINARY:
        data = pattern.encode()
        t0 = time.perf_counter()
        for _ in range(repeat):
            regex._cached.cache_clear()
            regex.check_strrx(data)
        first = (time.perf_counter() - t0) / repeat * 1e6
        t0 = time.perf_counter()
        for _ in range(repeat):
            regex.check_strrx(data)
        again = (time.perf_counter() - t0) / repeat * 1e6
        firsts.append(first)
        cached.append(again)
        print(f"  {pattern[:48]:48} {first:8.1f} {again:8.2f}")
    firsts.sort()
    print(f"  median first sight {firsts[len(firsts) // 2]:.1f} us, "
          f"cached {sorted(cached)[len(cached) // 2]:.2f} us")
    print("server hook (check_misc per MISC call), microseconds")
    calls = {
        "search, no STRRX (3 args)": [b"hint", b"addcond\0age\x0010\x0030",
                                      b"setlimit\x0010\x000"],
        "search, one STRRX (cached)": [b"hint", b"addcond\0name\x007\0^a", b"get"],
        "table get (not a regex function)": [b"u1"],
    }
    for label, args in calls.items():
        name = b"get" if label.startswith("table") else b"search"
        t0 = time.perf_counter()
        for _ in range(repeat * 10):
            regex.check_misc(name, args)
        print(f"  {label:48} {(time.perf_counter() - t0) / (repeat * 10) * 1e6:8.2f}")


def verdict(pattern: str) -> str:
    try:
        regex.check_strrx(pattern)
    except regex.RefusedRegex as exc:
        return "refused (" + str(exc).split(" refused: ", 1)[1][:38] + ")"
    except regex.InvalidRegex:
        return "invalid"
    return "accepted"


def glibc_figures(memory: int, timeout: float) -> None:
    print(f"\nglibc regcomp + regexec (child limited to {memory} MB, {timeout:.0f} s)")
    print(f"  {'case':34} {'compile s':>9} {'exec s':>8} {'peak MB':>8}  checker")
    for label, pattern, subject, _budget in GLIBC_CASES:
        try:
            done = subprocess.run(
                [sys.executable, "-c", CHILD, str(ROOT), str(memory), pattern, subject],
                capture_output=True, timeout=timeout, text=True)
            out = json.loads(done.stdout) if done.returncode == 0 else None
        except subprocess.TimeoutExpired:
            out = "timeout"
        if out == "timeout":
            figures = f"{'> ' + str(int(timeout)) + ' s':>28}"
        elif out is None:
            figures = f"{'died (memory limit)':>28}"
        elif out["rc"]:
            figures = f"{out['compile']:9.3f} {'ESPACE' if out['rc'] == 12 else out['rc']:>8} "\
                      f"{out['mb']:8d}"
        else:
            figures = f"{out['compile']:9.3f} {out['exec']:8.3f} {out['mb']:8d}"
        print(f"  {label[:34]:34} {figures}  {verdict(pattern)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="checker cost only")
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--memory", type=int, default=2048, help="MB per glibc child")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per glibc child")
    args = parser.parse_args()
    checker_cost(args.repeat)
    if not args.quick:
        glibc_figures(args.memory, args.timeout)


if __name__ == "__main__":
    main()
