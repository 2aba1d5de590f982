"""Errors a user causes and can fix: the ``imn`` command prints them as one line.

``imn: error: MESSAGE`` on stderr and exit status 2, without a traceback; the message names
the path, method, field or record and what is wrong with it.
"""

from __future__ import annotations


class UserError(ValueError):
    """Bad input from the user (a path, a name, a setting): fixable without reading code."""


class ConfigError(UserError):
    """A config file, a ``--set`` override or a run's ``config.json`` that cannot be used."""


class RunFolderError(UserError):
    """A run folder that is missing, from an unknown format, or meets different data."""
