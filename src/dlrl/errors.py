"""User-facing errors: the CLI prints them as one line and exits with code 2; from Python (a notebook) catch
``DlrlError`` for all of them, or the subclass of one kind."""


class DlrlError(Exception):
    """A problem with the user's input (file, option, config, data). The message names it."""


class ConfigError(DlrlError):
    """A config file, option or override is invalid (unknown key, wrong type, impossible value)."""


class DataError(DlrlError):
    """A data file is missing, corrupt or inconsistent."""


class CheckpointError(DlrlError):
    """A checkpoint cannot be loaded safely or does not match the model."""


class RunDirError(DlrlError):
    """A run directory cannot be used: --out not empty, nothing to --resume, a config that differs."""
