"""Exceptions users see: each names what is wrong and how to fix it.

The CLI turns :class:`UserError` into a one-line message and exit status 2,
so a mistake in a config or a command line never shows a traceback.
"""


class UserError(Exception):
    """Bad input from the user (config, table, command line). Exit status 2."""

    exit_status = 2


class ConfigError(UserError):
    """A campaign configuration is invalid.

    ``path`` is the key path of the offending entry, e.g. ``parameters[2].low``.
    """

    def __init__(self, path: str, message: str):
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}" if path else message)


class EnvironmentProblem(Exception):
    """The machine lacks something hpcneuro needs (MPI, parallel HDF5, ...)."""

    exit_status = 3


#: exit status of a campaign stopped by SIGTERM/SIGUSR1 (EX_TEMPFAIL: rerun to resume)
EXIT_INTERRUPTED = 75
