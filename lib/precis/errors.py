"""Errors a job reports as a one-line reason and a distinct exit code."""


class PrecisError(Exception):
    """Base class: the message is shown to the user as is, without a traceback."""

    exit_code = 1


class ConfigError(PrecisError):
    """Bad config file, key, type or command line; raised before Spark starts."""

    exit_code = 2


class MissingDatasetError(PrecisError):
    """A job needs a landing dataset or table that is not there."""

    exit_code = 3


class SchemaDriftError(PrecisError):
    """A DataFrame does not match the schema of the table it is written to."""

    exit_code = 4


class LockedError(PrecisError):
    """Another run of the same job holds the storage root's lease past the wait.

    75 is sysexits' EX_TEMPFAIL: try again later; schedulers may retry on it."""

    exit_code = 75
