"""doqu_tyrant: the Tokyo Tyrant backend for doqu."""
