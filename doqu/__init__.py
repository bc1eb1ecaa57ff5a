"""doqu: a document mapper with pluggable storage backends (Python 3)."""
