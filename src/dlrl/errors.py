"""User-facing errors: the CLI prints them as one line and exits with the error's ``exit_code`` (2 for bad
input); from Python (a notebook) catch ``DlrlError`` for all of them, or the subclass of one kind."""


class DlrlError(Exception):
    """A problem with the user's input (file, option, config, data). The message names it."""

    exit_code = 2


class ConfigError(DlrlError):
    """A config file, option or override is invalid (unknown key, wrong type, impossible value)."""


class DataError(DlrlError):
    """A data file is missing, corrupt or inconsistent."""


class CheckpointError(DlrlError):
    """A checkpoint cannot be loaded safely or does not match the model."""


class RunDirError(DlrlError):
    """A run directory cannot be used: --out not empty, nothing to --resume, a config that differs, in use
    by another dlrl process."""


class OutputError(DlrlError):
    """A file of the run cannot be written: the disk is full, no permission, a read-only file system.

    Not bad input (exit code 1): what was written before stays intact (every write is a temporary file and a
    rename), so the run continues with --resume once the cause is fixed."""

    exit_code = 1


def shown(text: object, limit: int = 60) -> str:
    """User input as an error message quotes it: on one line (control characters escaped, as in a Python
    string literal) and at most ``limit`` characters."""
    line = "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))
    return line if len(line) <= limit else line[: limit - 3] + "..."
