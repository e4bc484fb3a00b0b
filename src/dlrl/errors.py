"""User-facing errors: the CLI prints them as one line and exits with code 2."""


class DlrlError(Exception):
    """A problem with the user's input (file, option, config, data). The message names it."""


class ConfigError(DlrlError):
    """A config file or override is invalid."""


class DataError(DlrlError):
    """A data file is missing, corrupt or inconsistent."""


class CheckpointError(DlrlError):
    """A checkpoint cannot be loaded safely or does not match the model."""
