"""The project's error type for bad input.

Every reader (sequence files, tables, expression matrices, series, longitudinal tables,
tokenizers, splits, configs, checkpoints) raises :class:`InputError`, or a subclass naming
its kind, with a message that names the file (or argument), where in it (record, line,
column, key) and what was expected. It is a ValueError, so ``except ValueError`` still works.
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad input: the message names the file or argument, the place in it, and what was expected."""
