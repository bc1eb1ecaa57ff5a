"""Field validators for :class:`doqu.Document`.

A validator is any callable ``validator(document, value)`` that returns
quietly when the value is acceptable and raises :class:`ValidationError`
(record the message, keep checking) or :class:`StopValidation` (record the
message if it has one, stop this field's chain) otherwise.

Validators that can be expressed as query conditions also narrow the
document class's queries through ``filter_query(query, name)``: a document
class is a view of the database, so ``Person.objects(db)`` yields only the
records a valid ``Person`` could have been saved as. An :class:`Optional` in
a chain ends that narrowing, since the validators after it do not hold for
empty values.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Collection
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

from doqu.utils import is_empty

if TYPE_CHECKING:
    from doqu.backend_base import BaseQueryAdapter

    Q = TypeVar("Q", bound=BaseQueryAdapter[Any])

__all__ = [
    "AnyOf",
    "Email",
    "EqualTo",
    "Equals",
    "Exists",
    "IPAddress",
    "Length",
    "NoneOf",
    "NumberRange",
    "Optional",
    "Regexp",
    "Required",
    "StopValidation",
    "URL",
    "ValidationError",
    "Validator",
]


class ValidationError(ValueError):
    """A value (or a whole document) is invalid.

    Raised by a single validator with just a message; raised by
    :meth:`doqu.Document.validate` / ``save()`` with ``errors`` mapping every
    failing field name to its messages.
    """

    def __init__(self, message: str = "", errors: dict[str, list[str]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors: dict[str, list[str]] = dict(errors or {})

    @property
    def fields(self) -> list[str]:
        """Names of the failing fields (empty for a single validator's error)."""
        return list(self.errors)


class StopValidation(Exception):
    """Stop the field's validator chain; a non-empty message also records an error."""

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message


class Validator:
    """Base class: a ``message`` override and a no-op query contribution."""

    default_message = "Invalid value."

    def __init__(self, message: str | None = None) -> None:
        self.message = message

    def __call__(self, document: Any, value: Any) -> None:
        raise NotImplementedError

    def fail(self, default: str | None = None) -> ValidationError:
        """The error to raise: the user's ``message`` if given, else ``default``."""
        return ValidationError(self.message or default or self.default_message)

    def filter_query(self, query: Q, name: str) -> Q:
        """Narrow ``query`` to records that pass this validator on field ``name``."""
        return query

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if v is not None)
        return f"{type(self).__name__}({args})"


class Required(Validator):
    """The value must be set: not missing, not ``None``, not ``""``. Stops the chain if not."""

    default_message = "This field is required."

    def __call__(self, document: Any, value: Any) -> None:
        if is_empty(value):
            raise StopValidation(self.message or self.default_message)

    def filter_query(self, query: Q, name: str) -> Q:
        return query.where(**{f"{name}__exists": True})


class Exists(Validator):
    """The field must be present (not missing / ``None``); ``""`` is allowed. Stops if not."""

    default_message = "This field must exist."

    def __call__(self, document: Any, value: Any) -> None:
        if value is None:
            raise StopValidation(self.message or self.default_message)

    def filter_query(self, query: Q, name: str) -> Q:
        return query.where(**{f"{name}__exists": True})


class Optional(Validator):
    """Empty values (``None``, ``""``) are acceptable: stop the chain without an error."""

    def __call__(self, document: Any, value: Any) -> None:
        if is_empty(value):
            raise StopValidation()


class Length(Validator):
    """``len(value)`` must be within ``[min, max]``; ``None`` counts as length 0."""

    def __init__(
        self, min: int | None = None, max: int | None = None, message: str | None = None
    ) -> None:
        if min is None and max is None:
            raise TypeError("Length needs min, max or both")
        if min is not None and max is not None and min > max:
            raise ValueError(f"Length: min ({min}) is greater than max ({max})")
        super().__init__(message)
        self.min = min
        self.max = max

    def __call__(self, document: Any, value: Any) -> None:
        if value is None:
            length = 0
        else:
            try:
                length = len(value)
            except TypeError:
                raise self.fail(f"Expected text or a list, got {type(value).__name__}.") from None
        if (self.min is not None and length < self.min) or (
            self.max is not None and length > self.max
        ):
            raise self.fail(_range_message("Length", self.min, self.max))


class NumberRange(Validator):
    """The value must be a number within ``[min, max]`` (``None`` fails)."""

    def __init__(
        self, min: Any = None, max: Any = None, message: str | None = None
    ) -> None:
        if min is None and max is None:
            raise TypeError("NumberRange needs min, max or both")
        super().__init__(message)
        self.min = min
        self.max = max

    def __call__(self, document: Any, value: Any) -> None:
        is_number = isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)
        if (
            not is_number
            or (self.min is not None and value < self.min)
            or (self.max is not None and value > self.max)
        ):
            raise self.fail(_range_message("Number", self.min, self.max))

    def filter_query(self, query: Q, name: str) -> Q:
        conditions: dict[str, Any] = {}
        if self.min is not None:
            conditions[f"{name}__gte"] = self.min
        if self.max is not None:
            conditions[f"{name}__lte"] = self.max
        return query.where(**conditions)


class Regexp(Validator):
    """The value must be text in which ``pattern`` is found (``re.search``; anchor with ``^``).

    Search, not match, because that is what a query's ``matches`` condition
    does, and the two must agree. Only a pattern without flags narrows
    queries: regex flags do not translate portably to backends.
    """

    default_message = "Invalid input."

    def __init__(
        self, pattern: str | re.Pattern[str], flags: int = 0, message: str | None = None
    ) -> None:
        super().__init__(message)
        if isinstance(pattern, re.Pattern):
            self.regex = pattern if not flags else re.compile(pattern.pattern, flags)
        else:
            self.regex = re.compile(pattern, flags)

    def __call__(self, document: Any, value: Any) -> None:
        if not isinstance(value, str) or not self.regex.search(value):
            raise self.fail()

    def filter_query(self, query: Q, name: str) -> Q:
        if self.regex.flags & ~re.UNICODE:
            return query
        return query.where(**{f"{name}__matches": self.regex.pattern})

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.regex.pattern!r})"


class Email(Regexp):
    """The value must look like an e-mail address (``local@domain.tld``); no DNS checks."""

    default_message = "Invalid email address."

    def __init__(self, message: str | None = None) -> None:
        super().__init__(r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$", message=message)

    def filter_query(self, query: Q, name: str) -> Q:
        return query


_HOST_WITH_TLD = r"(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,63}\.?"
_HOST_ANY = r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*\.?"


class URL(Regexp):
    """The value must be an http(s)/ftp URL; ``require_tld`` refuses bare host names."""

    default_message = "Invalid URL."

    def __init__(self, require_tld: bool = True, message: str | None = None) -> None:
        named = _HOST_WITH_TLD if require_tld else _HOST_ANY
        host = rf"(?:{named}|\d{{1,3}}(?:\.\d{{1,3}}){{3}}|\[[0-9a-f:.]+\])"
        super().__init__(
            rf"^(?:https?|ftp)://(?:[^/\s:@]+(?::[^/\s@]*)?@)?{host}(?::\d+)?(?:[/?#]\S*)?$",
            re.IGNORECASE,
            message=message,
        )
        self.require_tld = require_tld

    def __repr__(self) -> str:
        return f"URL(require_tld={self.require_tld!r})"


class IPAddress(Validator):
    """The value must be an IP address: IPv4 by default, IPv6 with ``ipv6=True``."""

    def __init__(self, ipv4: bool = True, ipv6: bool = False, message: str | None = None) -> None:
        if not (ipv4 or ipv6):
            raise ValueError("IPAddress needs ipv4, ipv6 or both")
        super().__init__(message)
        self.ipv4 = ipv4
        self.ipv6 = ipv6

    def __call__(self, document: Any, value: Any) -> None:
        kinds = [n for n, on in (("IPv4", self.ipv4), ("IPv6", self.ipv6)) if on]
        error = self.fail(f"Invalid {' or '.join(kinds)} address.")
        if not isinstance(value, str):
            raise error
        try:
            address = ipaddress.ip_address(value)
        except ValueError:
            raise error from None
        if (address.version == 4 and not self.ipv4) or (address.version == 6 and not self.ipv6):
            raise error


class AnyOf(Validator):
    """The value must be one of ``choices``."""

    def __init__(self, choices: Collection[Any], message: str | None = None) -> None:
        super().__init__(message)
        self.choices = list(choices)

    def __call__(self, document: Any, value: Any) -> None:
        if value not in self.choices:
            raise self.fail(f"Must be one of: {_listing(self.choices)}.")

    def filter_query(self, query: Q, name: str) -> Q:
        return query.where(**{f"{name}__in": list(self.choices)})


class NoneOf(Validator):
    """The value must not be any of ``values``."""

    def __init__(self, choices: Collection[Any], message: str | None = None) -> None:
        super().__init__(message)
        self.choices = list(choices)

    def __call__(self, document: Any, value: Any) -> None:
        if value in self.choices:
            raise self.fail(f"Must not be any of: {_listing(self.choices)}.")

    def filter_query(self, query: Q, name: str) -> Q:
        return query.where_not(**{f"{name}__in": list(self.choices)})


class Equals(Validator):
    """The value must equal ``other``."""

    def __init__(self, other: Any, message: str | None = None) -> None:
        super().__init__(message)
        self.other = other

    def __call__(self, document: Any, value: Any) -> None:
        if value != self.other:
            raise self.fail(f"Must be equal to {self.other!r}.")

    def filter_query(self, query: Q, name: str) -> Q:
        return query.where(**{name: self.other})


class EqualTo(Validator):
    """The value must equal the document's field ``name`` (e.g. a password confirmation)."""

    def __init__(self, name: str, message: str | None = None) -> None:
        super().__init__(message)
        self.name = name

    def __call__(self, document: Any, value: Any) -> None:
        other = document.get(self.name)
        if value != other:
            labels = getattr(document, "labels", {}) or {}
            raise self.fail(f"Must be equal to {labels.get(self.name, self.name)}.")


def _listing(choices: list[Any]) -> str:
    return ", ".join(repr(choice) for choice in choices)


def _range_message(what: str, low: Any, high: Any) -> str:
    if low is not None and high is not None:
        return f"{what} must be between {low} and {high}."
    if low is not None:
        return f"{what} must be at least {low}."
    return f"{what} must be at most {high}."
