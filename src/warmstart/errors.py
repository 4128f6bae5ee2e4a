"""The one error type users see: a single line naming the file or key and what to fix."""


class WarmstartError(ValueError):
    """Bad input from the user. The CLI prints `error: <message>` and exits with status 2."""

    def __init__(self, message: str):
        # User input echoed in a message (a key, a path) may hold line breaks; the message stays one line.
        super().__init__(message.replace("\r", "\\r").replace("\n", "\\n"))
