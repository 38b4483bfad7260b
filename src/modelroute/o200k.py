"""The o200k_base tokenizer of ``bpe-openai``: its Rust tokenizer, without the Python wrapper.

``import bpe_openai`` decodes the ranks of three encodings (cl100k, o200k, voyage3) into Python
dicts at import time, and ``get_encoding`` copies o200k's into Python tables once more: about
0.55 s and 75 MiB per process that counting never reads. The compiled tokenizer holds tables
of its own (about 65 MiB, built in 0.06 s) and is what ``Encoding.encode_ordinary`` calls
after the same surrogate clean-up as ``encode`` here, so the token ids are the same.
"""

from __future__ import annotations

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

    def encode(text: str) -> list[int]:
        try:
            return tokenizer.encode(text)  # type: ignore[no-any-return]
        except UnicodeEncodeError:  # lone surrogates: replaced, as bpe_openai does
            clean = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
            return tokenizer.encode(clean)  # type: ignore[no-any-return]

    return encode
