"""The on-disk cache of derived data (the cleaned corpus, token ids) and its key.

A cache file's name holds :func:`corpus_key`: :data:`CORPUS_VERSION` (bumped by hand whenever the reading,
cleaning or document splitting in :mod:`course_lib.data.corpus` changes) and the shipped raw data's
manifest (``assets/data/MANIFEST.sha256``, the sha256 of every raw file). A changed key means a new
file; files under an old key are deleted when the next one is written.
"""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from pathlib import Path

ASSETS_DIR = Path(__file__).resolve().parent.parent / "assets"
DATA_DIR = ASSETS_DIR / "data"
MANIFEST = DATA_DIR / "MANIFEST.sha256"

#: Bump when the cleaning or document splitting changes (invalidates the on-disk caches).
CORPUS_VERSION = 2


def cache_dir() -> Path | None:
    """Where derived data (cleaned corpus, token ids) is cached: ``$COURSE_LIB_CACHE`` or
    ``~/.cache/course_lib``; ``None`` (no disk cache) if it cannot be created."""
    d = Path(os.environ.get("COURSE_LIB_CACHE") or Path.home() / ".cache" / "course_lib")
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return d


@lru_cache(maxsize=1)
def corpus_key() -> str:
    """The version of the derived data: :data:`CORPUS_VERSION` and the raw data manifest."""
    h = hashlib.sha256(f"v{CORPUS_VERSION}\n".encode())
    h.update(MANIFEST.read_bytes())
    return h.hexdigest()[:16]


def plain_backend(tokenizer):
    """A copy of the tokenizer's backend without padding or truncation. A `BertTokenizerFast` keeps the padding
    of its last call (e.g. a learner's `tok(texts, padding=True)`) on its shared backend; encoding the corpus
    with it would silently pad every sentence."""
    from tokenizers import Tokenizer
    backend = Tokenizer.from_str(getattr(tokenizer, "backend_tokenizer", tokenizer).to_str())
    backend.no_padding()
    backend.no_truncation()
    return backend


def tokenizer_key(tokenizer) -> str:
    """A short hash of the tokenizer's vocabulary and pipeline (part of the token-id cache's file names)."""
    return hashlib.sha256(plain_backend(tokenizer).to_str().encode()).hexdigest()[:16]


def cached(name: str, builder, write, read):
    """``builder()``'s value, kept in the cache folder as ``name``: ``write(value, file)`` stores it and
    ``read(file)`` loads it back. A missing or unreadable file is rebuilt. The formats are JSON and .npz, never
    pickle: loading a pickle runs whatever code it holds, so a planted cache file could run code."""
    d = cache_dir()
    path = d / name if d is not None else None
    if path is not None and path.exists():
        try:
            with open(path, "rb") as f:
                return read(f)
        except Exception:  # corrupt / partial cache: rebuild
            pass
    value = builder()
    if path is not None:
        tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
        try:
            with open(tmp, "wb") as f:
                write(value, f)
            os.replace(tmp, path)
        except OSError:
            tmp.unlink(missing_ok=True)
        prune_cache(d)
    return value


def prune_cache(d: Path) -> None:
    """Delete cache files made from another version of the corpus (they are never read again), and the
    pickles that earlier versions of the course wrote."""
    key = corpus_key()
    stale = [p for p in d.glob("corpus-*") if key not in p.name] + [p for p in d.glob("tokens-*") if key not in p.name]
    for old in stale + list(d.glob("*.pkl")):
        try:
            old.unlink()
        except OSError:
            pass
