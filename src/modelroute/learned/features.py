"""Prompt text -> a sparse TF-IDF vector over hashed word n-grams (numpy only, no vocabulary).

Words are lower-cased ``\\w+`` runs; each word and each pair of adjacent words is hashed with
CRC-32 into ``dim`` buckets (a power of two). Weights are ``log(1 + count) * idf`` and the
vector is L2-normalised, so a dot product is a cosine similarity. The same function featurises
prompts at training and at serving time; its parameters are stored in the router file.
"""

from __future__ import annotations

import re
import zlib
from collections import Counter
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

_WORD = re.compile(r"\w+")
# Long prompts are cut: the first words say what kind of question it is, and the cut bounds
# the time per request.
MAX_WORDS = 512


@dataclass(frozen=True, slots=True)
class HashedNgrams:
    dim: int  # a power of two
    ngrams: int = 2  # words and runs of up to this many words

    def counts(self, text: str) -> Counter[int]:
        words = _WORD.findall(text.lower())[:MAX_WORDS]
        mask = self.dim - 1
        crc = zlib.crc32
        grams = [crc(w.encode()) & mask for w in words]
        for n in range(2, self.ngrams + 1):
            grams += [
                crc(" ".join(words[i : i + n]).encode()) & mask for i in range(len(words) - n + 1)
            ]
        return Counter(grams)

    def vector(
        self, text: str, idf: npt.NDArray[np.float32]
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """Sorted bucket indices and their L2-normalised TF-IDF weights."""
        counts = self.counts(text)
        if not counts:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        index = np.fromiter(sorted(counts), np.int64, len(counts))
        tf = np.log1p(np.fromiter((counts[i] for i in index), np.float32, len(index)))
        values = tf * idf[index]
        norm = float(np.sqrt(values @ values))
        return index, (values / norm if norm > 0 else values).astype(np.float32)
