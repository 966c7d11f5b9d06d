"""Shared command-line plumbing."""
from __future__ import annotations

import argparse
import os
import re
import sys
from typing import Optional


class OneLineArgumentParser(argparse.ArgumentParser):
    """argparse whose usage errors are one line on stderr (`<name>: error: ...`), exit status 2."""

    def __init__(self, *args, error_name: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.error_name = error_name

    def error(self, message):  # type: ignore[override]
        sys.stderr.write(f"{self.error_name}: error: {message} (see --help)\n")
        raise SystemExit(2)


# Identifiers that become path components (task, level, method, algo, scale, sweep and variant
# names): letters, digits, '_', '.', '-', starting with a letter or digit; never '..', '/', '\'.
PATH_COMPONENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


def check_path_component(name: str, value) -> str:
    """`value` if it is a safe single path component, else ValueError naming `name`."""
    if not isinstance(value, str) or not PATH_COMPONENT.match(value) or ".." in value:
        raise ValueError(f"{name} must be a simple name (letters, digits, '_', '.', '-'; no path "
                         f"separators or '..'), got {value!r}")
    return value


def directory_problem(path, what: str) -> Optional[str]:
    """Why `path` cannot be used (or created) as a directory, or None: an existing file, or a
    file or unwritable directory where it would be created."""
    p = os.path.abspath(os.path.expanduser(os.fspath(path)))
    if os.path.exists(p):
        if not os.path.isdir(p):
            return f"{what} {path} is a file, not a directory"
        if not os.access(p, os.W_OK | os.X_OK):
            return f"{what} {path} is not writable"
        return None
    parent = os.path.dirname(p)
    while parent and not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if parent and not os.path.isdir(parent):
        return f"{what} {path} cannot be created: {parent} is a file"
    if parent and not os.access(parent, os.W_OK | os.X_OK):
        return f"{what} {path} cannot be created: {parent} is not writable"
    return None
