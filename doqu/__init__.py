"""doqu: a document mapper with pluggable storage backends (Python 3).

``doqu.get_db(settings)`` finds a backend and connects;
:class:`Document` subclasses describe records; :mod:`doqu.validators`
checks them; :mod:`doqu.backend_base` is the contract backends implement.
"""

from doqu.backends import (
    BackendNotFound,
    ImproperlyConfigured,
    available_backends,
    get_db,
    load_backend,
)
from doqu.document import BrokenReference, Document, IncomingDataError, IncomingDataWarning
from doqu.validators import ValidationError

__all__ = [
    "BackendNotFound",
    "BrokenReference",
    "Document",
    "ImproperlyConfigured",
    "IncomingDataError",
    "IncomingDataWarning",
    "ValidationError",
    "available_backends",
    "get_db",
    "load_backend",
]
