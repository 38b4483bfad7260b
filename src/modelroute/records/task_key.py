"""The task a request belongs to, for grouping traffic: its task label, or else a fingerprint
of its prompt's template.

Most traffic is a few templates filled with values: a fixed system prompt and a user message
with ticket numbers, dates, emails or quoted text slotted in. Masking those values leaves the
template, and requests with the same template are one task even when nobody labelled them.

The template of a prompt (as records keep it: one ``role: content`` line per message, see
``recording.py``) is

- every system (or developer) message, and
- the first paragraph of the first user message (up to its first blank line), at most
  ``USER_CHARS`` characters after masking,

each with its values masked: quoted values (``"..."``, ``'...'``, ``“...”``, ``«...»``,
backticks) become ``<q>``; then every whitespace-separated word (punctuation around it
aside) that is an email address becomes ``<email>``, a URL ``<url>``, and one holding a digit
``<n>``: numbers, amounts, ids (``INV-2024-00123``, ``#4821``), dates and times in figures
(``2024-05-17``, ``17/05/2024``, ``12:30``), UUIDs and hashes with a digit in them. Runs of
whitespace count as one space. Dates in words (``May 5``) keep their month. Text after the
user message's first blank line (a document, a transcript) is left out, so the payload of a
"summarise this:" template does not split it into one task per request; later turns of a
conversation are left out too. A prompt with no ``role:`` lines is one user message.

The key is ``tpl:`` and 16 hex digits of a BLAKE2b hash of the template. The task label wins
when the request carries one (``x-modelroute-task`` or ``metadata.task``): the key is then the
label itself. With ``--content off`` or ``hash`` the record keeps no prompt text, but holds it
in memory (``RequestRecord.template_source``, never stored or spooled) until the store has
computed the key; a record that waited in the spool through a store outage has lost it, and
gets no key unless it carries a label, as does a request with neither label nor prompt.
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache

KEY_PREFIX = "tpl:"
USER_CHARS = 200  # of the first user paragraph, after masking
_RAW_CHARS = 1000  # of the first user paragraph read at all: the masks' work stays bounded
_LABEL_CHARS = 200


# Quoted values may hold spaces, so they are masked first, by regular expressions that start
# with their quote character (the engine skips ahead to one). Every other value is found by
# one scan for what it must contain (a digit, "@", "://", "www.") and widened to its word
# with string methods: a regular expression per kind of value, or a Python test of every
# word, cost several times more (this runs for every record the writer stores).
_QUOTED = re.compile(r'"[^"\n]*"|“[^”\n]*”|«[^»\n]*»|`[^`\n]*`')
_SINGLE_QUOTED = re.compile(r"(\s)'[^'\n]*'(?!\w)")  # an apostrophe inside a word is not one
_DIGITS = re.compile(r"[0-9]+")
_PUNCTUATION = ".,:;!?()[]{}<>\"'#$€£%+*"
_OTHER_TURNS = tuple(f"\n{role}: " for role in ("user", "assistant", "tool", "function"))


def _kind(word: str) -> str:
    if "@" in word and "." in word:
        return "<email>"
    if "://" in word or word.startswith("www."):
        return "<url>"
    return "<n>" if _DIGITS.search(word) else ""


def _marks(text: str) -> list[int]:
    """Where a value may be: each run of digits, and each "@", "://" and "www."."""
    found = [m.start() for m in _DIGITS.finditer(text)]
    for needle in ("@", "://", "www."):
        at = text.find(needle)
        while at != -1:
            found.append(at)
            at = text.find(needle, at + 1)
    return sorted(found) if len(found) > 1 else found


def mask(text: str) -> str:
    """``text`` with its values masked (see the module's docstring)."""
    if '"' in text or "`" in text or "“" in text or "«" in text:
        text = _QUOTED.sub("<q>", text)
    if "'" in text:
        text = _SINGLE_QUOTED.sub(r"\1<q>", text)
    out: list[str] = []
    done = 0
    for mark in _marks(text):
        if mark < done:  # in a word already masked
            continue
        start = max(text.rfind(" ", 0, mark), text.rfind("\n", 0, mark)) + 1
        end = len(text)
        for space in (" ", "\n"):
            at = text.find(space, mark)
            if at != -1 and at < end:
                end = at
        word = text[start:end]
        core = word.strip(_PUNCTUATION)
        kind = _kind(core)
        if kind:
            at = start + word.find(core)
            out += (text[done:at], kind)
            done = at + len(core)
        else:
            out.append(text[done:end])
            done = end
    out.append(text[done:])
    return " ".join("".join(out).split())


@lru_cache(maxsize=256)
def _head(text: str) -> str:
    # The messages before the first user message (the system prompt) repeat verbatim across a
    # task's requests: mask each once.
    return mask(text)


def template(prompt: str) -> str | None:
    """The template of a recorded prompt, or None when it has no system or user text."""
    if prompt.startswith("user: "):
        head, at = "", 6
    else:
        found = prompt.find("\nuser: ")
        if found != -1:
            head, at = prompt[:found], found + 7
        elif prompt.startswith(("system: ", "developer: ")):  # no user message at all
            return _head(prompt) or None
        else:  # not in the recorded shape: one user message
            head, at = "", 0
    user = prompt[at : at + _RAW_CHARS]
    for end_mark in (*_OTHER_TURNS, "\n\n"):  # the first paragraph of the first user message
        end = user.find(end_mark)
        if end != -1:
            user = user[:end]
    shape = (
        f"{_head(head)}\nuser: {mask(user)[:USER_CHARS]}"
        if head
        else f"user: {mask(user)[:USER_CHARS]}"
    )
    return shape


def template_key(prompt: str | None) -> str | None:
    """``tpl:`` and the hash of the prompt's template; None without prompt text (no prompt,
    or only its hash was recorded)."""
    if not prompt or prompt.startswith("sha256:"):
        return None
    shape = template(prompt)
    if shape is None:
        return None
    return KEY_PREFIX + hashlib.blake2b(shape.encode(), digest_size=8).hexdigest()


def task_key(task: str | None, prompt: str | None) -> str | None:
    """The task label when there is one, else the template key of ``prompt``."""
    if task:
        return task[:_LABEL_CHARS]
    return template_key(prompt)
