"""A Tokyo Tyrant compatible server over Tokyo Cabinet.

It speaks ttserver 1.1.41's binary protocol, decoded and encoded by the one
codec :mod:`doqu_tyrant.tyrant.protocol`, and hands every database operation
to the Tokyo Cabinet library (:mod:`.cabinet`), so records, iteration order
and table queries are Tokyo Cabinet's own.

Run it with ``python -m doqu_tyrant.server [options] PATH`` or embed it::

    from doqu_tyrant.server import Server

    with Server("people.tct", port=0) as server:
        print(server.url)            # tyrant://127.0.0.1:PORT
"""

from .app import Server

__all__ = ["Server"]
