"""Validation of connection settings: hosts, ports, timeouts, sizes, URLs.

One place checks what every entry point accepts — :class:`~.client.Tyrant`,
:class:`~.aio.AsyncTyrant`, the doqu backend's settings, the command line
and the bundled server's options — so that a bad value is refused when the
object is built (not at the first request) with a message naming the
argument, and never silently reaches another server than the one meant
(``port=1978 + 65536`` or ``"127.0.0.1:5000"`` read as the default address).

The ``check_*`` functions return the value to use or raise ``TypeError``
(wrong type) / ``ValueError`` (out of range). The ``*_arg`` functions are
the same checks as argparse ``type=`` callables.

URL form::

    tyrant://HOST[:PORT][?option=value&...]

``HOST`` is a name or an address (IPv6 in brackets); ``PORT`` defaults to
1978. The options are :data:`URL_OPTIONS`. Anything else in a URL (user
info, a path, a fragment, an unknown or repeated option) is an error.
"""

from __future__ import annotations

import argparse
import math
import operator
import os
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar
from urllib.parse import parse_qsl, urlsplit

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "URL_FORM",
    "URL_OPTIONS",
    "check_bool",
    "check_count",
    "check_host",
    "check_port",
    "check_seconds",
    "check_timeout",
    "client_options",
    "parse_url",
    "ArgumentParser",
    "argtype",
    "port_arg",
    "server_port_arg",
    "timeout_arg",
    "positive_int_arg",
    "non_negative_int_arg",
    "seconds_arg",
    "size_arg",
    "parse_size",
    "seconds_or_zero_arg",
    "directory_arg",
    "output_file_arg",
    "check_output_file",
]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 1978
URL_FORM = "tyrant://HOST[:PORT][?timeout=SECONDS&pool_size=N...]"
SCHEMES = ("tyrant", "tt")

T = TypeVar("T")


def _got(value: object) -> str:
    return f"{type(value).__name__} {value!r}"[:80]


def check_host(value: object, name: str = "host") -> str:
    """A host name or address: non-empty text without spaces or NUL."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {_got(value)}")
    if not value or value != value.strip() or "\0" in value or " " in value:
        raise ValueError(f"{name} must be a host name or address, got {value!r}")
    return value


def check_port(value: object, name: str = "port", *, allow_zero: bool = False) -> int:
    """A TCP port: an int from 1 to 65535 (0 too with ``allow_zero``: any free port)."""
    if isinstance(value, bool) or isinstance(value, (str, bytes, float)):
        raise TypeError(f"{name} must be an int from {int(not allow_zero)} to 65535, "
                        f"got {_got(value)}")
    try:
        port = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"{name} must be an int, got {_got(value)}") from None
    low = 0 if allow_zero else 1
    if not low <= port <= 65535:
        raise ValueError(f"{name} must be from {low} to 65535, got {port}")
    return port


def check_seconds(value: object, name: str, *, allow_none: bool = True,
                  allow_zero: bool = False) -> float | None:
    """A finite number of seconds: above 0 (``allow_zero``: 0 too), or None
    when ``allow_none`` (no limit)."""
    if value is None:
        if allow_none:
            return None
        raise TypeError(f"{name} must be a number of seconds, got None")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        hint = " (None: no limit)" if allow_none else ""
        raise TypeError(f"{name} must be a number of seconds{hint}, got {_got(value)}")
    seconds = float(value)
    if math.isnan(seconds) or math.isinf(seconds):
        hint = "; use None for no limit" if allow_none else ""
        raise ValueError(f"{name} must be a finite number of seconds, got {value!r}{hint}")
    if seconds < 0 or (seconds == 0 and not allow_zero):
        need = "0 or more" if allow_zero else "above 0"
        hint = " (None: no limit)" if allow_none else ""
        raise ValueError(f"{name} must be {need} seconds{hint}, got {value!r}")
    return seconds


def check_timeout(value: object, name: str = "timeout") -> float | None:
    """A reply or connect timeout: seconds above 0, or None (wait forever)."""
    return check_seconds(value, name)


def check_count(value: object, name: str, minimum: int = 1) -> int:
    """A whole number of at least ``minimum``."""
    if isinstance(value, bool) or isinstance(value, (str, bytes, float)):
        raise TypeError(f"{name} must be an int of at least {minimum}, got {_got(value)}")
    try:
        number = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"{name} must be an int, got {_got(value)}") from None
    if number < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {number}")
    return number


def check_bool(value: object, name: str) -> bool:
    """A real bool (not 0/1, not a text)."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {_got(value)}")
    return value


_CHECKS: dict[str, Callable[[object, str], Any]] = {
    "timeout": check_timeout,
    "connect_timeout": check_timeout,
    "pool_timeout": lambda v, n: check_seconds(v, n, allow_zero=True),
    "health_check_interval": lambda v, n: check_seconds(v, n, allow_none=False,
                                                        allow_zero=True),
    "pool_size": check_count,
    "retry_reads": check_bool,
}

#: The query options a URL may carry, which are also client keyword arguments.
URL_OPTIONS = tuple(_CHECKS)


def client_options(**options: Any) -> dict[str, Any]:
    """``options`` checked by name (see :data:`URL_OPTIONS`); unknown names refused."""
    out: dict[str, Any] = {}
    for name, value in options.items():
        check = _CHECKS.get(name)
        if check is None:
            raise TypeError(f"unknown option {name!r} (known: {', '.join(URL_OPTIONS)})")
        out[name] = check(value, name)
    return out


def _url_value(name: str, text: str) -> Any:
    """An option's text in a URL as the client's keyword value."""
    if name == "retry_reads":
        lowered = text.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"retry_reads must be true or false, got {text!r}")
    if name == "pool_size":
        if not text.isdigit():
            raise ValueError(f"pool_size must be a whole number, got {text!r}")
        return int(text)
    if text.lower() == "none" and name != "health_check_interval":
        return None
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{name} must be a number of seconds, got {text!r}") from None


def parse_address(text: str) -> tuple[str, int]:
    """``HOST[:PORT]`` (an IPv6 address as ``[ADDRESS]:PORT``; port 1978 when
    absent) → ``(host, port)``, the host in lower case; ``ValueError`` names
    the problem."""
    if text.startswith("["):
        end = text.find("]")
        host, rest = (text[1:end], text[end + 1 :]) if end > 0 else ("", "")
        if end < 0 or (rest and not rest.startswith(":")):
            raise ValueError(f"{text!r} is not [ADDRESS]:PORT")
        if not host:
            raise ValueError("no host")
    elif text.count(":") > 1:
        raise ValueError(f"{text!r}: write an IPv6 address as [ADDRESS]:PORT")
    else:
        host, colon, rest = text.partition(":")
        rest = colon + rest
    if not host:
        raise ValueError("no host")
    if any(ch in host for ch in "/?#@ ") or any(ord(ch) < 33 for ch in host):
        raise ValueError(f"{host!r} is not a host name or address")
    if not rest:
        return host.lower(), DEFAULT_PORT
    digits = rest[1:]
    if not digits:
        raise ValueError("the port is empty")
    if not digits.isdigit() or not 1 <= int(digits) <= 65535:
        raise ValueError(f"the port must be a number from 1 to 65535, not {digits!r}")
    return host.lower(), int(digits)


def parse_url(url: str) -> tuple[str, int, dict[str, Any]]:
    """``tyrant://host:port?timeout=5&pool_size=4`` → ``(host, port, options)``.

    Every part is checked: a malformed URL raises ``ValueError`` that starts
    with ``bad URL``, names the problem and shows the expected form
    (:data:`URL_FORM`). ``options`` holds checked client keyword arguments.
    """
    if not isinstance(url, str):
        raise TypeError(f"the URL must be a str, got {_got(url)}")

    def bad(problem: str) -> ValueError:
        return ValueError(f"bad URL {url!r}: {problem}; expected {URL_FORM}")

    if not url:
        raise bad("it is empty")
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        raise bad("it contains a space or a control character")
    if "://" not in url:
        if url.lower().startswith(tuple(s + ":" for s in SCHEMES)):
            raise bad("the scheme must be followed by //HOST")
        guess = f"; did you mean 'tyrant://{url}'?" if "/" not in url and "?" not in url else ""
        raise ValueError(f"bad URL {url!r}: no tyrant:// scheme{guess} (expected {URL_FORM})")
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise bad(str(exc)) from None
    if parts.scheme.lower() not in SCHEMES:
        raise bad(f"the scheme must be tyrant://, not {parts.scheme}://")
    if "@" in parts.netloc:
        raise bad("user info (user@) is not supported: Tyrant has no authentication")
    if parts.path not in ("", "/"):
        raise bad(f"a Tyrant server has no paths ({parts.path!r})")
    if parts.fragment or url.endswith("#"):
        raise bad("a fragment (#...) has no meaning here")
    if "," in parts.netloc:
        raise bad("one host:port is expected here")
    try:
        host, port = parse_address(parts.netloc)
    except ValueError as exc:
        raise bad(str(exc)) from None
    options: dict[str, Any] = {}
    if parts.query or url.endswith("?"):
        try:
            pairs = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=True)
        except ValueError:
            raise bad(f"the query {parts.query!r} is not name=value&...") from None
        for name, text in pairs:
            if name not in _CHECKS:
                raise bad(f"unknown option {name!r} (known: {', '.join(URL_OPTIONS)})")
            if name in options:
                raise bad(f"option {name!r} is given twice")
            try:
                options[name] = _CHECKS[name](_url_value(name, text), name)
            except (TypeError, ValueError) as exc:
                raise bad(str(exc)) from None
    return host, port, options


# ---------------------------------------------------------------------------
# argparse


class ArgumentParser(argparse.ArgumentParser):
    """An argparse parser whose usage errors are one line, ``NAME: error: ...``
    with a pointer to ``--help``, and exit status 2. ``NAME`` is
    :attr:`error_name` (set it on a subclass or an instance), else the prog."""

    error_name: str | None = None

    def error(self, message: str) -> NoReturn:
        name = self.error_name or self.prog
        self.exit(2, f"{name}: error: {message} (see {self.prog} --help)\n")


# ---------------------------------------------------------------------------
# argparse type= callables


def argtype(convert: Callable[[str], T], metavar: str) -> Callable[[str], T]:
    """``convert`` as an argparse ``type=``: its ValueError/TypeError message
    becomes argparse's ``invalid value`` error (status 2)."""

    def parse(text: str) -> T:
        try:
            return convert(text)
        except (TypeError, ValueError) as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = metavar  # argparse names the type in some messages
    return parse


def _int(text: str, what: str) -> int:
    try:
        return int(text.strip(), 10)
    except ValueError:
        raise ValueError(f"{what} must be a whole number, got {text!r}") from None


def _float(text: str, what: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{what} must be a number of seconds, got {text!r}") from None


#: ``--port`` of a client: 1-65535.
port_arg = argtype(lambda t: check_port(_int(t, "the port"), "the port"), "port")
#: ``--port`` of a server: 0-65535 (0: any free port).
server_port_arg = argtype(
    lambda t: check_port(_int(t, "the port"), "the port", allow_zero=True), "port")
#: A client ``--timeout``: seconds above 0.
timeout_arg = argtype(
    lambda t: check_seconds(_float(t, "the timeout"), "the timeout", allow_none=False),
    "seconds")
#: A count of at least 1 (threads, sizes, limits).
positive_int_arg = argtype(lambda t: check_count(_int(t, "the value"), "the value"), "count")
#: A count of at least 0.
non_negative_int_arg = argtype(
    lambda t: check_count(_int(t, "the value"), "the value", 0), "count")
_SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(text: str, what: str = "the size") -> int:
    """Bytes: a whole number with an optional K, M, G or T (powers of 1024;
    ``64M``, ``64MB`` and ``64MiB`` are the same), at least 1."""
    raw = text.strip().lower()
    raw = raw.removesuffix("ib") if raw.endswith("ib") else raw.removesuffix("b")
    unit = raw[-1:] if raw[-1:] in _SIZE_UNITS and raw[-1:] else ""
    digits = raw[: len(raw) - len(unit)]
    if not digits.isdigit():
        raise ValueError(f"{what} must be a number of bytes (e.g. 1048576, 512K, 64M, 2G), "
                         f"got {text!r}")
    return check_count(int(digits) * _SIZE_UNITS[unit], what)


#: Bytes, with an optional K/M/G/T suffix (``--max-length 64M``).
size_arg = argtype(lambda t: parse_size(t, "the size"), "bytes")
#: Seconds above 0.
seconds_arg = argtype(
    lambda t: check_seconds(_float(t, "the value"), "the value", allow_none=False), "seconds")
#: Seconds, 0 allowed (typically "0 = never").
seconds_or_zero_arg = argtype(
    lambda t: check_seconds(_float(t, "the value"), "the value", allow_none=False,
                            allow_zero=True), "seconds")


def _directory(text: str) -> str:
    if not text:
        raise ValueError("the directory name is empty")
    if not os.path.exists(text):
        raise ValueError(f"{text!r} does not exist")
    if not os.path.isdir(text):
        raise ValueError(f"{text!r} is not a directory")
    return text


#: An existing directory.
directory_arg = argtype(_directory, "directory")


def check_output_file(path: str) -> str:
    """A file that can be created or replaced: its directory exists, and it is
    not itself a directory (checked before any work is done)."""
    if not path:
        raise ValueError("the file name is empty")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        missing = "does not exist" if not os.path.exists(directory) else "is not a directory"
        raise ValueError(f"cannot write {path!r}: the directory {directory!r} {missing}")
    if os.path.isdir(path):
        raise ValueError(f"cannot write {path!r}: it is a directory; name a file in it")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise ValueError(f"cannot write {path!r}: permission denied in {directory!r}")
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise ValueError(f"cannot write {path!r}: permission denied")
    return path


#: A file to write (its directory must exist).
output_file_arg = argtype(check_output_file, "file")
