"""Checks of the command line's output paths, made before any work starts.

A simulation, a discovery or a demo can run for minutes; finding out only at the end that the
output folder is missing or read-only throws that work away. Every command checks the paths it
will write first and refuses with one line (`CliError`, exit code 2).

>>> import tempfile, os
>>> folder = tempfile.mkdtemp()
>>> check_output_file(os.path.join(folder, "out.csv"), "--csv")
>>> check_output_file(os.path.join(folder, "missing", "out.csv"), "--csv")
Traceback (most recent call last):
    ...
symml.cli._paths.CliError: --csv: the folder ... does not exist; create it first or write elsewhere.
"""

from __future__ import annotations

import argparse
import math
import os

__all__ = ["CliError", "check_output_file", "check_output_dir", "finite_float"]


class CliError(Exception):
    """A user-facing command-line error: printed as one line, exit code 2."""


def check_output_file(path: str, flag: str) -> None:
    """Raise `CliError` unless ``path`` can be written as a file (its folder exists, is writable)."""
    if os.path.isdir(path):
        raise CliError(f"{flag}: {path} is a folder; give a file name.")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise CliError(f"{flag}: the folder {folder} does not exist; create it first or write elsewhere.")
    if not os.access(folder, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise CliError(f"{flag}: cannot write {path} (permission denied); choose another place.")


def check_output_dir(path: str, flag: str) -> None:
    """Create the output folder ``path`` now (or raise `CliError` when that is impossible)."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise CliError(f"{flag}: {path} exists and is not a folder; give a folder name.")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as err:
        raise CliError(f"{flag}: cannot create the folder {path} ({err.strerror or err}).") from None
    if not os.access(path, os.W_OK):
        raise CliError(f"{flag}: cannot write into {path} (permission denied); choose another folder.")


def finite_float(text: str) -> float:
    """An argparse type: a finite number (``nan`` and ``inf`` would give a meaningless result)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value
