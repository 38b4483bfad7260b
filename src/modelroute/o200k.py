"""The o200k_base tokenizer of ``bpe-openai``: its Rust tokenizer, without the Python wrapper.

``import bpe_openai`` decodes the ranks of three encodings (cl100k, o200k, voyage3) into Python
dicts at import time, and ``get_encoding`` copies o200k's into Python tables once more: about
0.55 s and 75 MiB per process that counting never reads. The compiled tokenizer is what
``Encoding.encode_ordinary`` calls after the same surrogate clean-up as ``encode`` here, so
the token ids are the same. It builds its tables (about 33 MiB, in 0.06 s) from data embedded
in the extension's read-only segment, which reading pulls into the process's resident set
(another 32 MiB); ``_release_read_pages`` hands those pages back once the tables are built.
"""

from __future__ import annotations

import ctypes
import importlib.machinery
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

_EXTENSION = "bpe_openai._bindings"


def _bindings() -> Any | None:
    """The compiled module, loaded from its file so that the package's ``__init__`` (which
    decodes the rank files) does not run; None when the package is laid out otherwise."""
    loaded = sys.modules.get(_EXTENSION)
    if loaded is not None:  # the package was imported already: one instance per process
        return loaded
    spec = importlib.util.find_spec("bpe_openai")  # finds the package without running it
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations)))
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = folder / f"_bindings{suffix}"
        if path.is_file():
            loader = importlib.machinery.ExtensionFileLoader(_EXTENSION, str(path))
            module_spec = importlib.util.spec_from_file_location(_EXTENSION, path, loader=loader)
            assert module_spec is not None
            module = importlib.util.module_from_spec(module_spec)
            loader.exec_module(module)
            sys.modules[_EXTENSION] = module  # a later ``import bpe_openai`` reuses it
            return module
    return None


def encoder() -> Callable[[str], list[int]]:
    """``text -> token ids`` in o200k_base (special tokens read as plain text)."""
    bindings = _bindings()
    if bindings is None:  # an unexpected layout: the package's own (slower to load) path
        import bpe_openai

        encoding = bpe_openai.get_encoding("o200k_base")
        return encoding.encode_ordinary  # type: ignore[no-any-return]
    tokenizer = bindings.tokenizer_for_encoding("o200k_base")
    _release_read_pages(str(Path(bindings.__file__).resolve()))  # as /proc names it

    def encode(text: str) -> list[int]:
        try:
            return tokenizer.encode(text)  # type: ignore[no-any-return]
        except UnicodeEncodeError:  # lone surrogates: replaced, as bpe_openai does
            clean = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
            return tokenizer.encode(clean)  # type: ignore[no-any-return]

    return encode


_MADV_DONTNEED = 4


def _release_read_pages(path: str) -> int:
    """Drop this process's resident pages of ``path``'s read-only mappings that hold nothing
    but the file's own bytes (no copy-on-write page, e.g. not the relocated RELRO segment):
    what the kernel may evict at any time anyway, re-read from the file if touched again.
    Best effort on Linux; returns the bytes released (0 elsewhere)."""
    try:
        smaps = Path("/proc/self/smaps").read_text()
        madvise = ctypes.CDLL(None, use_errno=True).madvise
    except (OSError, AttributeError):
        return 0
    madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    released = 0
    for start, end, rss_kb in _clean_read_only(smaps, path):
        if madvise(start, end - start, _MADV_DONTNEED) == 0:
            released += rss_kb * 1024
    return released


def _clean_read_only(smaps: str, path: str) -> list[tuple[int, int, int]]:
    """(start, end, resident KiB) of ``path``'s mappings that are read-only and private with
    no anonymous (copied-on-write) page, from ``/proc/self/smaps``."""
    found: list[tuple[int, int, int]] = []
    region: list[str] | None = None
    rss_kb = 0
    for line in smaps.splitlines():
        fields = line.split()
        if fields and "-" in fields[0] and len(fields) >= 5 and ":" not in fields[0]:
            ours = len(fields) >= 6 and fields[5] == path and "w" not in fields[1]
            region = fields if ours else None
        elif region is not None and fields[:1] == ["Rss:"]:
            rss_kb = int(fields[1])
        elif region is not None and fields[:1] == ["Anonymous:"]:
            if int(fields[1]) == 0 and rss_kb > 0:
                low, high = region[0].split("-")
                found.append((int(low, 16), int(high, 16), rss_kb))
            region = None
    return found
