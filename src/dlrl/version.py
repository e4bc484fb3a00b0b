"""The version of dlrl (its own module, so the lowest layers can name it without importing the API)."""

__version__ = "0.1.0"
