"""The one exception family Kelly raises on purpose.

Every error a user can cause (bad text, bad numbers, unreadable files) is a
``KellyError`` with a message that says what was wrong and what to do. The command
line turns it into one line on standard error and exit code 2.
"""


class KellyError(Exception):
    """Base class: a problem the user can act on."""


class InputError(KellyError):
    """Bad user input: empty text, out-of-range numbers, unknown names."""


class FileFormatError(KellyError):
    """A file exists but cannot be understood (corrupt MIDI, JSON, model file)."""


class OutputError(KellyError):
    """A result cannot be written where the user asked."""


class ModelError(KellyError):
    """A neural-network model file is missing, corrupt or does not match its spec."""
