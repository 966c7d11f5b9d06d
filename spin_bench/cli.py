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
# Always matched whole (re.fullmatch: '$' would accept a trailing newline).
PATH_COMPONENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
MAX_NAME_BYTES = 255  # one path component (NAME_MAX on Linux and macOS)
MAX_PATH_BYTES = 4095  # a whole path (PATH_MAX - 1)
MAX_SEED = 2**31 - 1  # seeds: numpy, torch, the environments and Python's RNG all take these


def check_path_component(name: str, value) -> str:
    """`value` if it is a safe single path component, else ValueError naming `name`."""
    if not isinstance(value, str) or not PATH_COMPONENT.fullmatch(value) or ".." in value:
        raise ValueError(f"{name} must be a simple name (letters, digits, '_', '.', '-'; no path "
                         f"separators or '..'), got {value!r}")
    return value


def check_seed(name: str, value) -> int:
    """`value` if it is an integer seed in [0, MAX_SEED], else ValueError naming `name`."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEED:
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
        raise ValueError(f"{name} must be >= 0 and at most {MAX_SEED} (an integer seed), got {shown}")
    return value


def path_problem(path, what: str) -> Optional[str]:
    """Why `path` cannot name a file here, or None: not valid UTF-8 (a name the suite could
    not record in its JSON and logs), a component over MAX_NAME_BYTES bytes, a NUL byte, or a
    path over MAX_PATH_BYTES."""
    text = os.fspath(path)
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            return f"{what} {text!r} is not valid UTF-8"
    if "\0" in text:
        return f"{what} {text!r} contains a NUL byte"
    try:
        raw = text.encode("utf-8")
    except UnicodeEncodeError:
        return f"{what} {ascii(text)} is not valid UTF-8"
    if len(raw) > MAX_PATH_BYTES:
        return f"{what} is {len(raw)} bytes long (at most {MAX_PATH_BYTES})"
    for part in text.split(os.sep):
        n = len(part.encode("utf-8"))
        if n > MAX_NAME_BYTES:
            return (f"{what} {text[:40]}...: the path component {part[:24]}... is {n} bytes long "
                    f"(at most {MAX_NAME_BYTES})")
    return None


def directory_problem(path, what: str) -> Optional[str]:
    """Why `path` cannot be used (or created) as a directory, or None: a name that is not
    UTF-8 or too long (:func:`path_problem`), an existing file, or a file or unwritable
    directory where it would be created."""
    problem = path_problem(path, what)
    if problem:
        return problem
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
