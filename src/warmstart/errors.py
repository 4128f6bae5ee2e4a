"""The one error type users see: a single line naming the file or key and what to fix."""


class WarmstartError(ValueError):
    """Bad input from the user. The CLI prints `error: <message>` and exits with status 2."""
