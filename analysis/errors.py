"""The analysis package's user-facing error, in a module of its own so the CLI can catch it without importing
DuckDB, pyarrow or pandas."""


class AnalysisError(Exception):
    """A user-facing error with a one-line message (the CLI prints ``error: <msg>``, no traceback)."""
