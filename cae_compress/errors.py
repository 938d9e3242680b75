"""The one exception type the CLI turns into a clean error line and exit code."""

BAD_INPUT = 2
FAILURE = 1


class CaeError(ValueError):
    """A problem the user can act on: shown as one line on stderr, no traceback.

    ``exit_code`` is 2 for bad input (a file, a flag, a data set) and 1 for a
    run that failed on good input (a NaN loss, say).  A ``ValueError``, so
    that Python callers of ``compress``/``decompress`` catch bad values the
    usual way.
    """

    def __init__(self, message: str, exit_code: int = BAD_INPUT):
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code

    def __reduce__(self):  # raised in a worker process, re-raised here with its exit code
        return (CaeError, (self.message, self.exit_code))


class CaeWarning(UserWarning):
    """Something done to an input the user should know of (16 bits reduced to 8, frames after the first left out, metadata not written): one line, starting with the file's name; the CLI prints it as ``cae: warning: ...``."""
