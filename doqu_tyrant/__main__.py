"""``python -m doqu_tyrant``: the ``doqu-tyrant`` command line."""

import sys

from doqu_tyrant.cli import main

if __name__ == "__main__":
    sys.exit(main())
