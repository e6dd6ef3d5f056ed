"""Data for the course: the pretraining corpus, MLM masking, NSP pairs, pretraining batches and the
MR / SUBJ classification tasks.

Everything is read from the files shipped in ``course_lib/assets/data`` (the raw files, gzip-compressed,
byte for byte as published; see ``assets/README.md``) and cleaned here, in code.

Main entry points
-----------------
``load_corpus(split)``                 documents (lists of sentences) of WikiText-2 + 39 Gutenberg books
``mask_tokens(...)``                   BERT's 15 % / 80-10-10 masking (the chapter-4 reference)
``make_nsp_pairs(documents, rng)``     sentence-level next-sentence pairs (the chapter-4 reference)
``pretraining_loader(...)``            a DataLoader of ready ``BertForPreTraining(**batch)`` batches
``build_eval_set(...)``                a fixed, seeded held-out MLM/NSP evaluation set
``load_task(name)`` / ``task_loader(...)``   the MR and SUBJ sentence classification tasks
``unlabelled_task_sentences()``        MR/SUBJ training sentences safe for task-adaptive pretraining

Run ``python -m course_lib.data --help`` for the command line (``build-assets``, ``stats``).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import os
import random
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch

ASSETS_DIR = Path(__file__).resolve().parent / "assets"
DATA_DIR = ASSETS_DIR / "data"

#: Bump when the cleaning or document splitting changes (invalidates the on-disk caches).
CORPUS_VERSION = 1
#: Fraction of documents held out for evaluation, and the seed of that (hash-based) choice.
HELDOUT_FRACTION = 0.04
HELDOUT_SEED = "course-lib-heldout-v1"
#: Documents longer than this many words are cut into parts at paragraph boundaries.
MAX_DOCUMENT_WORDS = 3000
#: Documents with fewer sentences than this are dropped (title pages, tables of contents, ...).
MIN_DOCUMENT_SENTENCES = 3

#: Gutenberg blocks of 3+ lines averaging fewer characters than this are dropped (contents, verse).
SHORT_LINE_CHARS = 45

SPLITS = ("train", "heldout")


# ----------------------------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------------------------
def read_text(path: str | os.PathLike) -> str:
    """Read a (possibly gzip-compressed) UTF-8 file; drop a byte-order mark; CRLF/CR -> LF."""
    path = Path(path)
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    text = raw.decode("utf-8-sig")
    text = text.replace("\ufeff", "")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def gutenberg_files() -> list[Path]:
    return sorted((DATA_DIR / "gutenberg").glob("*.txt.gz"))


def wikitext_files() -> list[Path]:
    return [DATA_DIR / "wikitext-2-raw" / "wiki.valid.raw.gz", DATA_DIR / "wikitext-2-raw" / "wiki.test.raw.gz"]


# ----------------------------------------------------------------------------------------------
# Sentence splitting
# ----------------------------------------------------------------------------------------------
_ABBREVIATIONS = {
    "mr", "mrs", "ms", "messrs", "mme", "mlle", "dr", "st", "prof", "rev", "gen", "col", "capt", "lt",
    "sgt", "maj", "jr", "sr", "esq", "hon", "gov", "sen", "rep", "co", "inc", "ltd", "vs", "etc", "no",
    "nos", "vol", "vols", "ch", "chap", "fig", "figs", "mt", "ft", "ibid", "viz", "cf", "al", "approx",
    "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "e.g", "i.e",
    "a.d", "b.c", "p", "pp", "ca", "c", "u.s", "u.k", "lib", "cap", "op",
}
# End of a sentence: . ! ? (possibly repeated), optional closing quotes/brackets, whitespace, and then
# something that can start a sentence (an opening quote/bracket, an upper-case letter or a digit).
_SENT_BOUNDARY = re.compile(r"([.!?]+)([\"'\u201d\u2019)\]]*)\s+(?=[\"'\u201c\u2018(\[]*[A-Z0-9])")
_WORD_BEFORE = re.compile(r"([A-Za-z][A-Za-z.]*)$")


def split_sentences(text: str) -> list[str]:
    """Split a paragraph into sentences, keeping their order.

    A simple, robust rule-based splitter: a sentence ends at ``.``, ``!`` or ``?`` (plus closing
    quotes or brackets) followed by white space and an upper-case letter, a digit or an opening
    quote. A full stop after a known abbreviation (Mr., Dr., St., e.g., ...) or a single letter
    (an initial: "J. Smith") does not end a sentence. Empty or blank text gives ``[]``.
    """
    if not isinstance(text, str):
        raise TypeError(f"split_sentences expects a string, got {type(text).__name__}")
    text = " ".join(text.split())
    if not text:
        return []
    sentences, start = [], 0
    for m in _SENT_BOUNDARY.finditer(text):
        if m.group(1) == ".":
            w = _WORD_BEFORE.search(text, 0, m.start())
            if w is not None:
                word = w.group(1).lower().rstrip(".")
                if word in _ABBREVIATIONS or len(word) == 1:
                    continue
        end = m.end(2)
        sentences.append(text[start:end].strip())
        start = m.end()
    tail = text[start:].strip()
    if tail:
        sentences.append(tail)
    return [s for s in sentences if s]


# ----------------------------------------------------------------------------------------------
# WikiText-2
# ----------------------------------------------------------------------------------------------
_WIKI_TITLE = re.compile(r"^ = ([^=].*?) = $")
_WIKI_SUBTITLE = re.compile(r"^ (= )+.*?( =)+ $")
_WIKI_AT = re.compile(r" @([-,.])@ ")


def detokenize_wikitext(line: str) -> str:
    """Undo WikiText's tokenisation: ``1 @,@ 000`` -> ``1,000``, ``state @-@ of`` -> ``state-of``,
    ``word , word`` -> ``word, word``, ``( x )`` -> ``(x)``, ``do n't`` -> ``don't``."""
    line = _WIKI_AT.sub(r"\1", line)
    line = re.sub(r" ([.,;:!?%)\]}])", r"\1", line)
    line = re.sub(r"([(\[{$]) ", r"\1", line)
    line = re.sub(r" (n't|'s|'re|'ve|'ll|'m|'d)\b", r"\1", line)
    return " ".join(line.split())


def parse_wikitext(text: str) -> list[tuple[str, list[str]]]:
    """Split a WikiText-2 raw file into articles on `` = Title = `` lines (between blank lines).

    Returns ``[(title, paragraphs)]``; sub-headings (`` = = Section = = ``) are dropped, paragraph
    lines are detokenised (:func:`detokenize_wikitext`)."""
    articles: list[tuple[str, list[str]]] = []
    title, paragraphs = None, []
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        # headings stand between blank lines (one formula line of the test split looks like a title)
        standalone = (i == 0 or not lines[i - 1].strip()) and (i + 1 == len(lines) or not lines[i + 1].strip())
        m = _WIKI_TITLE.match(line) if standalone else None
        if m:
            if title is not None:
                articles.append((title, paragraphs))
            title, paragraphs = m.group(1).strip(), []
            continue
        if standalone and _WIKI_SUBTITLE.match(line):
            continue
        if title is None:  # text before the first title (never in the official files)
            title = ""
        paragraphs.append(detokenize_wikitext(line))
    if title is not None:
        articles.append((title, paragraphs))
    return articles


# ----------------------------------------------------------------------------------------------
# Project Gutenberg
# ----------------------------------------------------------------------------------------------
_START = re.compile(r"^\*\*\* ?START OF", re.M)
_END = re.compile(r"^\*\*\* ?END OF", re.M)
_NUMBER_WORDS = (
    r"one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|"
    r"seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|first|second|third|fourth|fifth|sixth|"
    r"seventh|eighth|ninth|tenth|last|the"
)
_HEADING = re.compile(
    r"^(?:chapter|book|part|stave|letter|volume|vol\.|section|canto|adventure|scene|act)\s+"
    r"(?:[ivxlcdm]+\b|\d+\b|(?:" + _NUMBER_WORDS + r")\b)",
    re.I,
)
_ROMAN = re.compile(r"^[IVXLC]+\.?(?:\s|$)")
_BOILERPLATE = re.compile(
    r"^(?:produced by|transcribed from|e-?text prepared by|end of (?:the |this )?project gutenberg|"
    r"\[illustration|\[footnote|updated editions will|this e-?book|contents$|table of contents|"
    r"(?:original )?transcriber[\u2019']?s note|the internet wiretap|about the online edition|list of illustrations)",
    re.I,
)
_EDITION_NOTE = re.compile(r"\be-?texts?\b|project gutenberg|typographical errors", re.I)
_ITALICS = re.compile(r"_([^_\n]+)_")
_INLINE_NOTE = re.compile(r"\[(?:illustration|footnote|sidenote)[^\]]*\]|\[\d+\]", re.I)


def strip_gutenberg(text: str) -> str:
    """Keep only the book between the ``*** START OF`` and ``*** END OF`` markers.

    The marker lines are matched on their prefix; when the title continues on the line after the
    start marker (it ends with ``***``), that line goes too. BOM and CRLF are handled by
    :func:`read_text`. Raises ``ValueError`` when a marker is missing."""
    start, end = _START.search(text), _END.search(text)
    if start is None or end is None or end.start() < start.start():
        raise ValueError("not a Project Gutenberg text: no '*** START OF' ... '*** END OF' markers")
    body = text[start.start(): end.start()]
    lines = body.split("\n")
    # drop the marker line, and its continuation when the title wraps onto the next line
    first = lines.pop(0)
    if not first.rstrip().endswith("***"):
        while lines and not lines[0].strip():
            lines.pop(0)
        if lines and lines[0].rstrip().endswith("***"):
            lines.pop(0)
    return "\n".join(lines)


def _is_heading(p: str) -> bool:
    """A chapter/part heading, a title line or other short non-prose line (a document boundary)."""
    if len(p) <= 250 and (_HEADING.match(p) or _ROMAN.match(p)):
        return True
    letters = [c for c in p if c.isalpha()]
    if letters and not any(c.islower() for c in letters):  # ALL CAPS TITLE (or list of titles)
        return True
    if len(p) > 120:
        return False
    words = p.split()
    # short line that does not end like prose: "Economy", "The Bean-Field", "by Mark Twain"
    return len(words) <= 8 and not re.search(r"[.!?,;:\"'\u201d\u2019)\-]$", p)


def gutenberg_paragraphs(text: str) -> list[str | None]:
    """Clean a Gutenberg book: strip header/footer, join hard-wrapped lines into paragraphs, remove
    ``_italics_`` underscores and inline [Illustration]/[Footnote] notes. Returns the paragraphs in
    order, with ``None`` where a heading (chapter, part, title) stood; headings themselves are dropped."""
    body = strip_gutenberg(text)
    out: list[str | None] = []
    for block in re.split(r"\n\s*\n", body):
        p = " ".join(block.split())
        if not p:
            continue
        lines = [ln for ln in block.split("\n") if ln.strip()]
        if len(lines) >= 3 and sum(len(ln.strip()) for ln in lines) / len(lines) < SHORT_LINE_CHARS:
            # a block of short lines: a table of contents, a list or verse -> not prose, a boundary
            if out and out[-1] is not None:
                out.append(None)
            continue
        if _BOILERPLATE.match(p) or p.startswith("*** ") or _EDITION_NOTE.search(p):
            continue
        p = _INLINE_NOTE.sub("", _ITALICS.sub(r"\1", p)).replace("_", "")
        p = " ".join(p.split())
        if not p:
            continue
        if _is_heading(p):
            if out and out[-1] is not None:
                out.append(None)
            continue
        out.append(p)
    return out


def _chunk_paragraphs(paragraphs: list[str], max_words: int) -> list[list[str]]:
    """Cut a long run of paragraphs into near-equal parts of at most ``max_words`` words (at paragraph
    boundaries)."""
    n_words = sum(len(p.split()) for p in paragraphs)
    parts = max(1, math.ceil(n_words / max_words))
    target = n_words / parts
    chunks, cur, cur_words = [], [], 0
    for p in paragraphs:
        cur.append(p)
        cur_words += len(p.split())
        if cur_words >= target and len(chunks) < parts - 1:
            chunks.append(cur)
            cur, cur_words = [], 0
    if cur:
        chunks.append(cur)
    return chunks


def gutenberg_documents(text: str, max_words: int = MAX_DOCUMENT_WORDS) -> list[list[str]]:
    """A Gutenberg book -> documents (lists of paragraphs): split at headings (chapters), then long
    chapters (or books without headings) cut into parts of at most ``max_words`` words."""
    docs, cur = [], []
    for p in gutenberg_paragraphs(text) + [None]:
        if p is None:
            if cur:
                docs.extend(_chunk_paragraphs(cur, max_words))
            cur = []
        else:
            cur.append(p)
    return docs


# ----------------------------------------------------------------------------------------------
# The corpus
# ----------------------------------------------------------------------------------------------
@dataclass
class Document:
    """One document of the corpus: ``id`` is stable (``wiki:<title>`` or ``<book>:<n>``)."""

    id: str
    source: str  # "wikitext" or "gutenberg"
    sentences: list[str]


def _is_heldout(doc_id: str) -> bool:
    h = hashlib.sha256(f"{HELDOUT_SEED}|{doc_id}".encode()).digest()
    return int.from_bytes(h[:8], "big") / 2**64 < HELDOUT_FRACTION


def _paragraphs_to_sentences(paragraphs: Iterable[str]) -> list[str]:
    return [s for p in paragraphs for s in split_sentences(p)]


def build_documents() -> list[Document]:
    """Read and clean every shipped corpus file (slow: a few seconds; :func:`load_corpus` caches it)."""
    docs: list[Document] = []
    seen: dict[str, int] = {}
    for path in wikitext_files():
        for title, paragraphs in parse_wikitext(read_text(path)):
            n = seen.get(title, 0)
            seen[title] = n + 1
            doc_id = f"wiki:{title}" + (f"#{n}" if n else "")
            sents = _paragraphs_to_sentences(paragraphs)
            if len(sents) >= MIN_DOCUMENT_SENTENCES:
                docs.append(Document(doc_id, "wikitext", sents))
    for path in gutenberg_files():
        book = path.name[: -len(".txt.gz")]
        for i, paragraphs in enumerate(gutenberg_documents(read_text(path))):
            sents = _paragraphs_to_sentences(paragraphs)
            if len(sents) >= MIN_DOCUMENT_SENTENCES:
                docs.append(Document(f"{book}:{i}", "gutenberg", sents))
    return docs


# ---- end of the code that defines the corpus (its text is hashed into the cache key) ----


def cache_dir() -> Path | None:
    """Where derived data (cleaned corpus, token ids) is cached: ``$COURSE_LIB_CACHE`` or
    ``~/.cache/course_lib``; ``None`` (no disk cache) if it cannot be created."""
    d = Path(os.environ.get("COURSE_LIB_CACHE") or Path.home() / ".cache" / "course_lib")
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return d


def _corpus_key() -> str:
    h = hashlib.sha256(f"v{CORPUS_VERSION}".encode())
    # the code that reads, cleans and splits the corpus (everything above the end marker) decides it
    source = Path(__file__).read_text(encoding="utf-8")
    h.update(source.split("# ---- end of the code" + " that defines the corpus", 1)[0].encode())
    for p in wikitext_files() + gutenberg_files():
        h.update(f"{p.name}:{p.stat().st_size}".encode())
    return h.hexdigest()[:16]


def _cached(name: str, builder, write, read):
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
        _prune_cache(d)
    return value


def _write_documents(documents, f) -> None:
    f.write(json.dumps([[d.id, d.source, d.sentences] for d in documents], ensure_ascii=False).encode())


def _read_documents(f) -> list[Document]:
    return [Document(doc_id, source, sentences) for doc_id, source, sentences in json.loads(f.read())]


def _prune_cache(d: Path) -> None:
    """Delete cache files made from another version of the corpus (they are never read again), and the
    pickles that earlier versions of the course wrote."""
    key = _corpus_key()
    stale = [p for p in d.glob("corpus-*") if key not in p.name] + [p for p in d.glob("tokens-*") if key not in p.name]
    for old in stale + list(d.glob("*.pkl")):
        try:
            old.unlink()
        except OSError:
            pass


@lru_cache(maxsize=1)
def _all_documents() -> tuple[Document, ...]:
    return tuple(_cached(f"corpus-{_corpus_key()}.json", build_documents, _write_documents, _read_documents))


def corpus_documents(split: str = "train", source: str | None = None) -> list[Document]:
    """Like :func:`load_corpus` but returns :class:`Document` objects (with ids and sources)."""
    if split not in SPLITS + ("all",):
        raise ValueError(f"unknown corpus split {split!r}: use 'train', 'heldout' or 'all'")
    if source not in (None, "wikitext", "gutenberg"):
        raise ValueError(f"unknown source {source!r}: use None, 'wikitext' or 'gutenberg'")
    docs = _all_documents()
    return [
        d for d in docs
        if (split == "all" or _is_heldout(d.id) == (split == "heldout")) and (source is None or d.source == source)
    ]


def load_corpus(split: str = "train", source: str | None = None) -> list[list[str]]:
    """The pretraining corpus as a list of documents, each a list of sentence strings (in order).

    ``split``: ``"train"`` (about 96 % of the documents), ``"heldout"`` (about 4 %: evaluation only;
    the tokenizer never saw it) or ``"all"``. The split is by document, chosen by a seeded hash of
    each document's id, so it is stable across runs and machines.
    ``source``: ``None`` (both), ``"wikitext"`` (122 Wikipedia articles) or ``"gutenberg"`` (39 books,
    cut into chapters and parts of at most 3,000 words).

    The first call cleans the shipped raw files (a few seconds) and caches the result on disk
    (``~/.cache/course_lib`` or ``$COURSE_LIB_CACHE``) and in memory; later calls are fast.
    Returns fresh lists each call (safe to modify)."""
    return [list(d.sentences) for d in corpus_documents(split, source)]


# ----------------------------------------------------------------------------------------------
# MLM masking and NSP pairs (the chapter-4 references)
# ----------------------------------------------------------------------------------------------
def mask_tokens(
    input_ids: torch.Tensor,
    special_tokens_mask: torch.Tensor,
    mask_token_id: int,
    vocab_size: int,
    mlm_probability: float = 0.15,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's masked-language-model corruption (dynamic: call it at batch time).

    ``input_ids``: LongTensor of any shape. ``special_tokens_mask``: bool tensor of the same shape,
    True where a position must never be masked (``[CLS]``, ``[SEP]`` *and padding*).
    Each other position is selected with probability ``mlm_probability``; of the selected, 80 % become
    ``mask_token_id``, 10 % a uniformly random id in ``[0, vocab_size)``, 10 % keep their token.
    Returns ``(inputs, labels)``: ``inputs`` a corrupted copy (``input_ids`` is not modified), ``labels``
    the original id at selected positions and -100 elsewhere (ignored by the loss).
    ``generator``: an optional ``torch.Generator`` for reproducible draws (on the inputs' device)."""
    if not isinstance(input_ids, torch.Tensor) or input_ids.dtype not in (torch.int64, torch.int32):
        raise TypeError("mask_tokens: input_ids must be an integer (Long) tensor")
    special_tokens_mask = torch.as_tensor(special_tokens_mask, device=input_ids.device)
    if special_tokens_mask.shape != input_ids.shape:
        raise ValueError(
            f"mask_tokens: special_tokens_mask has shape {tuple(special_tokens_mask.shape)}, "
            f"input_ids {tuple(input_ids.shape)}: they must match"
        )
    if not 0.0 <= mlm_probability <= 1.0:
        raise ValueError(f"mask_tokens: mlm_probability must be in [0, 1], got {mlm_probability}")
    special = special_tokens_mask.bool()
    probs = torch.full(input_ids.shape, float(mlm_probability), device=input_ids.device)
    selected = torch.bernoulli(probs, generator=generator).bool() & ~special
    labels = torch.where(selected, input_ids, torch.full_like(input_ids, -100))
    inputs = input_ids.clone()
    to_mask = torch.bernoulli(torch.full(input_ids.shape, 0.8, device=input_ids.device), generator=generator).bool()
    to_mask &= selected
    to_random = torch.bernoulli(torch.full(input_ids.shape, 0.5, device=input_ids.device), generator=generator).bool()
    to_random &= selected & ~to_mask
    random_ids = torch.randint(vocab_size, input_ids.shape, generator=generator, device=input_ids.device,
                               dtype=input_ids.dtype)
    inputs[to_mask] = mask_token_id
    inputs[to_random] = random_ids[to_random]
    return inputs, labels


def make_nsp_pairs(documents: Sequence[Sequence[str]], rng: random.Random) -> list[tuple[str, str, int]]:
    """Sentence-level next-sentence-prediction pairs (label 0 = "B follows A", as in transformers).

    For every sentence that has a successor in its document, one pair: with probability 1/2
    ``(sentence, next sentence, 0)``, otherwise ``(sentence, a random sentence from a different
    document, 1)``. Documents with fewer than two sentences yield no pair (but can supply negatives).
    ``rng``: a ``random.Random``. Raises ``ValueError`` if a negative is needed and no other document
    has a sentence."""
    nonempty = [i for i, d in enumerate(documents) if len(d) > 0]
    pairs: list[tuple[str, str, int]] = []
    for i, doc in enumerate(documents):
        for j in range(len(doc) - 1):
            if rng.random() < 0.5:
                pairs.append((doc[j], doc[j + 1], 0))
                continue
            others = len(nonempty) - (1 if len(doc) > 0 else 0)
            if others <= 0:
                raise ValueError("make_nsp_pairs: negatives need at least two documents with sentences")
            k = rng.randrange(others)
            other = _nth_other(nonempty, i, k)
            other_doc = documents[other]
            pairs.append((doc[j], other_doc[rng.randrange(len(other_doc))], 1))
    return pairs


def _nth_other(nonempty: list[int], exclude: int, k: int) -> int:
    """The k-th entry of the sorted list ``nonempty`` once ``exclude`` is removed."""
    import bisect

    pos = bisect.bisect_left(nonempty, exclude)
    excluded_present = pos < len(nonempty) and nonempty[pos] == exclude
    if excluded_present and k >= pos:
        k += 1
    return nonempty[k]


# ----------------------------------------------------------------------------------------------
# Pretraining data: token ids of the corpus, BERT-style segment pairs, collator, loader
# ----------------------------------------------------------------------------------------------
@dataclass
class TokenizedCorpus:
    """The corpus as token ids (no special tokens), flat and compact.

    Sentence ``s`` is ``ids[sent_offsets[s]:sent_offsets[s+1]]``; document ``d`` holds sentences
    ``doc_offsets[d]`` to ``doc_offsets[d+1] - 1``."""

    ids: np.ndarray  # uint16 or int32, (num_tokens,)
    sent_offsets: np.ndarray  # int64, (num_sentences + 1,)
    doc_offsets: np.ndarray  # int64, (num_documents + 1,)

    @property
    def num_tokens(self) -> int:
        return int(self.ids.shape[0])

    @property
    def num_sentences(self) -> int:
        return int(self.sent_offsets.shape[0] - 1)

    @property
    def num_documents(self) -> int:
        return int(self.doc_offsets.shape[0] - 1)

    def sentence(self, s: int) -> np.ndarray:
        return self.ids[self.sent_offsets[s]: self.sent_offsets[s + 1]]


def _plain_backend(tokenizer):
    """A copy of the tokenizer's backend without padding or truncation. A `BertTokenizerFast` keeps the padding
    of its last call (e.g. a learner's `tok(texts, padding=True)`) on its shared backend; encoding the corpus
    with it would silently pad every sentence."""
    from tokenizers import Tokenizer
    backend = Tokenizer.from_str(getattr(tokenizer, "backend_tokenizer", tokenizer).to_str())
    backend.no_padding()
    backend.no_truncation()
    return backend


def _tokenizer_key(tokenizer) -> str:
    return hashlib.sha256(_plain_backend(tokenizer).to_str().encode()).hexdigest()[:16]


def tokenize_documents(documents: Sequence[Sequence[str]], tokenizer) -> TokenizedCorpus:
    """Token ids (without ``[CLS]``/``[SEP]``) of every sentence of ``documents`` (batched, fast).
    Sentences that tokenize to nothing are dropped; so are documents left empty."""
    backend = _plain_backend(tokenizer)
    flat = [s for doc in documents for s in doc]
    encodings = backend.encode_batch(flat, add_special_tokens=False) if flat else []
    vocab_size = backend.get_vocab_size()
    dtype = np.uint16 if vocab_size <= 65535 else np.int32
    lengths, doc_counts, chunks = [], [], []
    k = 0
    for doc in documents:
        n = 0
        for _ in doc:
            ids = encodings[k].ids
            k += 1
            if ids:
                chunks.append(np.asarray(ids, dtype=dtype))
                lengths.append(len(ids))
                n += 1
        if n:
            doc_counts.append(n)
    ids = np.concatenate(chunks) if chunks else np.zeros(0, dtype=dtype)
    sent_offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=sent_offsets[1:])
    doc_offsets = np.zeros(len(doc_counts) + 1, dtype=np.int64)
    np.cumsum(doc_counts, out=doc_offsets[1:])
    return TokenizedCorpus(ids, sent_offsets, doc_offsets)


_TOKENIZED: dict[tuple[str, str], TokenizedCorpus] = {}


def tokenized_corpus(split: str = "train", tokenizer=None) -> TokenizedCorpus:
    """:func:`load_corpus` ``(split)`` tokenized once, cached in memory and on disk."""
    if tokenizer is None:
        from .tokenizer import load_tokenizer

        tokenizer = load_tokenizer()
    key = (split, _tokenizer_key(tokenizer))
    if key not in _TOKENIZED:
        name = f"tokens-{split}-{_corpus_key()}-{key[1]}.npz"
        _TOKENIZED[key] = _cached(name, lambda: tokenize_documents(load_corpus(split), tokenizer),
                                  lambda corpus, f: np.savez(f, **vars(corpus)),
                                  lambda f: TokenizedCorpus(**np.load(f, allow_pickle=False)))
    return _TOKENIZED[key]


def _truncate_pair(a: np.ndarray, b: np.ndarray, max_tokens: int, rng: random.Random):
    """Trim the longer segment until ``len(a) + len(b) <= max_tokens``, each removed token taken from
    the front or the back at random (as in BERT's ``truncate_seq_pair``)."""
    la, lb = len(a), len(b)
    excess = la + lb - max_tokens
    if excess <= 0:
        return a, b
    # final lengths of repeatedly trimming the longer one
    if la - lb >= excess:
        ra, rb = excess, 0
    elif lb - la >= excess:
        ra, rb = 0, excess
    else:
        total = max_tokens
        fa = total // 2 if la < lb else total - total // 2
        ra, rb = la - fa, lb - (total - fa)
    out = []
    for seg, r in ((a, ra), (b, rb)):
        if r > 0:
            front = bin(rng.getrandbits(r)).count("1")
            seg = seg[front: len(seg) - (r - front)]
        out.append(seg)
    return out[0], out[1]


def create_pretraining_examples(
    corpus: TokenizedCorpus,
    max_length: int = 128,
    rng: random.Random | None = None,
    short_seq_prob: float = 0.1,
    nsp_probability: float = 0.5,
) -> list[tuple[np.ndarray, np.ndarray, int]]:
    """BERT's segment-pair construction (``create_instances_from_document``), for one epoch.

    Each document is read as a stream of sentences packed into chunks of up to ``max_length - 3``
    tokens (with probability ``short_seq_prob`` a shorter random target, so the model also sees short
    inputs). A chunk is cut at a random sentence boundary into A and B; with probability
    ``nsp_probability`` B is replaced by text from a random *other* document (label 1) and the unused
    sentences go back to the stream; otherwise B is the actual continuation (label 0). A chunk of a
    single long sentence is cut inside that sentence. Pairs are then trimmed to fit. Returns
    ``[(a_ids, b_ids, label)]`` in document order (shuffle them yourself)."""
    if max_length < 8:
        raise ValueError(f"max_length must be at least 8 (got {max_length})")
    if corpus.num_documents < 2:
        raise ValueError("pretraining pairs need at least two documents (negatives come from another document)")
    rng = rng or random.Random(0)
    max_tokens = max_length - 3
    ids, so, do = corpus.ids, corpus.sent_offsets, corpus.doc_offsets
    lens = np.diff(so).tolist()
    so_list = so.tolist()
    do_list = do.tolist()
    n_docs = corpus.num_documents
    examples: list[tuple[np.ndarray, np.ndarray, int]] = []
    for d in range(n_docs):
        first, last = do_list[d], do_list[d + 1]
        target = max_tokens
        if rng.random() < short_seq_prob:
            target = rng.randint(2, max_tokens)
        chunk: list[int] = []
        length = 0
        s = first
        while s < last:
            chunk.append(s)
            length += lens[s]
            if s == last - 1 or length >= target:
                is_random = rng.random() < nsp_probability
                if len(chunk) >= 2:
                    a_end = rng.randint(1, len(chunk) - 1)
                    a = ids[so_list[chunk[0]]: so_list[chunk[a_end - 1] + 1]]
                else:
                    a_end = 1
                    a = ids[so_list[chunk[0]]: so_list[chunk[0] + 1]]
                if not is_random and len(chunk) == 1 and len(a) < 2:
                    is_random = True  # a one-token chunk cannot be cut into A and B
                if is_random:
                    target_b = max(1, target - len(a))
                    other = rng.randrange(n_docs - 1)
                    other += other >= d
                    o_first, o_last = do_list[other], do_list[other + 1]
                    start = rng.randrange(o_first, o_last)
                    end, got = start, 0
                    while end < o_last and got < target_b:
                        got += lens[end]
                        end += 1
                    b = ids[so_list[start]: so_list[end]]
                    s -= len(chunk) - a_end  # put the unused sentences back
                    label = 1
                elif len(chunk) >= 2:
                    b = ids[so_list[chunk[a_end]]: so_list[chunk[-1] + 1]]
                    label = 0
                else:  # one long sentence: cut it inside
                    cut = rng.randint(1, len(a) - 1)
                    a, b = a[:cut], a[cut:]
                    label = 0
                a, b = _truncate_pair(a, b, max_tokens, rng)
                if len(a) and len(b):
                    examples.append((a, b, label))
                chunk, length = [], 0
                target = max_tokens
                if rng.random() < short_seq_prob:
                    target = rng.randint(2, max_tokens)
            s += 1
    return examples


class PretrainingDataset(torch.utils.data.Dataset):
    """Segment pairs for MLM + NSP, re-drawn for every epoch from ``(seed, epoch)``.

    ``dataset.set_epoch(e)`` rebuilds (and shuffles) the pairs of epoch ``e`` (about a second for the
    full corpus); items are ``(index, a_ids, b_ids, nsp_label)``; :class:`PretrainingCollator` turns a
    list of them into a batch."""

    def __init__(self, corpus: TokenizedCorpus, max_length: int = 128, seed: int = 0,
                 short_seq_prob: float = 0.1, nsp_probability: float = 0.5, epoch: int = 0):
        self.corpus = corpus
        self.max_length = int(max_length)
        self.seed = int(seed)
        self.short_seq_prob = short_seq_prob
        self.nsp_probability = nsp_probability
        self.epoch = None
        self.examples: list = []
        self.set_epoch(epoch)

    def set_epoch(self, epoch: int) -> None:
        if epoch == self.epoch:
            return
        rng = random.Random(self.seed * 1_000_003 + int(epoch))
        ex = create_pretraining_examples(self.corpus, self.max_length, rng, self.short_seq_prob,
                                         self.nsp_probability)
        rng.shuffle(ex)
        self.examples, self.epoch = ex, int(epoch)

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int):
        a, b, label = self.examples[i]
        return i, a, b, label


class PretrainingCollator:
    """Pads ``(index, a_ids, b_ids, label)`` items into a ``BertForPreTraining(**batch)`` batch:
    ``input_ids`` (``[CLS] A [SEP] B [SEP]`` + ``[PAD]``), ``token_type_ids``, ``attention_mask``,
    ``labels`` (MLM: original id at masked positions, -100 elsewhere) and ``next_sentence_label``.

    Masking is dynamic (:func:`mask_tokens`), drawn from a generator seeded with
    ``(seed, epoch, first item index)``, so a batch is a pure function of the seed, the epoch and its
    position: runs are reproducible and resumable. ``pad_to`` pads every batch to that fixed length
    (else to the longest pair in the batch, rounded up to ``pad_to_multiple_of``)."""

    def __init__(self, vocab_size: int = 8192, pad_id: int = 0, cls_id: int = 2, sep_id: int = 3,
                 mask_id: int = 4, mlm_probability: float = 0.15, seed: int = 0,
                 pad_to: int | None = None, pad_to_multiple_of: int | None = None):
        self.vocab_size, self.pad_id, self.cls_id, self.sep_id, self.mask_id = vocab_size, pad_id, cls_id, sep_id, mask_id
        self.mlm_probability = mlm_probability
        self.seed = int(seed)
        self.epoch = 0
        self.pad_to = pad_to
        self.pad_to_multiple_of = pad_to_multiple_of

    @classmethod
    def from_tokenizer(cls, tokenizer, **kwargs) -> "PretrainingCollator":
        return cls(vocab_size=len(tokenizer), pad_id=tokenizer.pad_token_id, cls_id=tokenizer.cls_token_id,
                   sep_id=tokenizer.sep_token_id, mask_id=tokenizer.mask_token_id, **kwargs)

    def pad(self, items) -> dict[str, torch.Tensor]:
        """Everything but the masking: ``input_ids`` (uncorrupted), ``token_type_ids``,
        ``attention_mask``, ``special_tokens_mask`` (bool) and ``next_sentence_label``."""
        if not items:
            raise ValueError("PretrainingCollator: empty batch")
        lengths = [len(a) + len(b) + 3 for _, a, b, _ in items]
        L = max(lengths)
        if self.pad_to is not None:
            if L > self.pad_to:
                raise ValueError(f"a pair has {L} tokens, more than pad_to={self.pad_to}")
            L = self.pad_to
        elif self.pad_to_multiple_of:
            L = -(-L // self.pad_to_multiple_of) * self.pad_to_multiple_of
        B = len(items)
        input_ids = np.full((B, L), self.pad_id, dtype=np.int64)
        token_type = np.zeros((B, L), dtype=np.int64)
        attention = np.zeros((B, L), dtype=np.int64)
        special = np.ones((B, L), dtype=bool)
        for r, (_, a, b, _) in enumerate(items):
            la, lb = len(a), len(b)
            input_ids[r, 0] = self.cls_id
            input_ids[r, 1:1 + la] = a
            input_ids[r, 1 + la] = self.sep_id
            input_ids[r, 2 + la: 2 + la + lb] = b
            input_ids[r, 2 + la + lb] = self.sep_id
            token_type[r, 2 + la: 3 + la + lb] = 1
            attention[r, : 3 + la + lb] = 1
            special[r, 1:1 + la] = False
            special[r, 2 + la: 2 + la + lb] = False
        return {
            "input_ids": torch.from_numpy(input_ids),
            "token_type_ids": torch.from_numpy(token_type),
            "attention_mask": torch.from_numpy(attention),
            "special_tokens_mask": torch.from_numpy(special),
            "next_sentence_label": torch.tensor([int(it[3]) for it in items], dtype=torch.long),
        }

    def __call__(self, items) -> dict[str, torch.Tensor]:
        batch = self.pad(items)
        g = torch.Generator().manual_seed((self.seed * 1_000_003 + self.epoch) * 10_000_019 + int(items[0][0]))
        inputs, labels = mask_tokens(batch["input_ids"], batch.pop("special_tokens_mask"), self.mask_id,
                                     self.vocab_size, self.mlm_probability, generator=g)
        batch["input_ids"], batch["labels"] = inputs, labels
        keys = ("input_ids", "token_type_ids", "attention_mask", "labels", "next_sentence_label")
        return {k: batch[k] for k in keys if k in batch}


class _EpochBatchSampler(torch.utils.data.Sampler):
    def __init__(self, dataset: PretrainingDataset, batch_size: int, drop_last: bool):
        self.dataset, self.batch_size, self.drop_last = dataset, batch_size, drop_last
        self.start_batch = 0

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self):
        bs, n = self.batch_size, len(self.dataset)
        for b in range(self.start_batch, len(self)):
            yield list(range(b * bs, min(n, (b + 1) * bs)))


class PretrainingLoader(torch.utils.data.DataLoader):
    """A DataLoader over :class:`PretrainingDataset` that re-draws the pairs every epoch.

    Each ``for batch in loader`` is one epoch: pairs of epoch ``loader.epoch`` (re-drawn from the
    seed), fresh masks; at its end ``loader.epoch`` goes up by one. ``len(loader)`` is the number of
    batches of the coming epoch. ``state_dict()`` / ``load_state_dict()`` save and restore the
    position (epoch, batches done) so a resumed run continues with exactly the batches it would have
    seen."""

    def __init__(self, dataset: PretrainingDataset, collator: PretrainingCollator, batch_size: int = 32,
                 drop_last: bool = True, num_workers: int = 0, pin_memory: bool = False):
        sampler = _EpochBatchSampler(dataset, batch_size, drop_last)
        super().__init__(dataset, batch_sampler=sampler, collate_fn=collator, num_workers=num_workers,
                         pin_memory=pin_memory)
        self.collator = collator
        self.epoch = dataset.epoch
        self.batches_done = 0

    def _prepare(self) -> None:
        self.dataset.set_epoch(self.epoch)
        self.collator.epoch = self.epoch
        self.batch_sampler.start_batch = self.batches_done

    def __len__(self) -> int:
        self._prepare()
        return len(self.batch_sampler)

    def __iter__(self):
        self._prepare()
        for batch in super().__iter__():
            self.batches_done += 1
            yield batch
        self.epoch += 1
        self.batches_done = 0

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "batches_done": self.batches_done}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.batches_done = int(state["epoch"]), int(state["batches_done"])


def pretraining_loader(
    split: str = "train",
    tokenizer=None,
    batch_size: int = 32,
    max_length: int = 128,
    seed: int = 0,
    mlm_probability: float = 0.15,
    short_seq_prob: float = 0.1,
    nsp_probability: float = 0.5,
    documents: Sequence[Sequence[str]] | None = None,
    pad_to_multiple_of: int | None = None,
    drop_last: bool = True,
    num_workers: int = 0,
    pin_memory: bool = False,
) -> PretrainingLoader:
    """One call to MLM + NSP pretraining batches: ``for batch in loader: out = model(**batch)``.

    ``split``: ``"train"`` or ``"heldout"`` of :func:`load_corpus` (ignored when ``documents`` — your
    own list of documents, each a list of sentences — is given). ``tokenizer``: default
    :func:`course_lib.tokenizer.load_tokenizer`. Each batch: ``input_ids``, ``token_type_ids``,
    ``attention_mask``, ``labels`` (MLM, -100 = not masked) and ``next_sentence_label`` (0 = B follows
    A), padded to the longest pair in the batch (at most ``max_length``). Every epoch re-draws the
    pairs and the masks from ``seed``; see :class:`PretrainingLoader` for resuming."""
    if tokenizer is None:
        from .tokenizer import load_tokenizer

        tokenizer = load_tokenizer()
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    corpus = tokenize_documents(documents, tokenizer) if documents is not None else tokenized_corpus(split, tokenizer)
    dataset = PretrainingDataset(corpus, max_length, seed, short_seq_prob, nsp_probability)
    collator = PretrainingCollator.from_tokenizer(tokenizer, mlm_probability=mlm_probability, seed=seed,
                                                  pad_to_multiple_of=pad_to_multiple_of)
    return PretrainingLoader(dataset, collator, batch_size, drop_last, num_workers, pin_memory)


def build_eval_set(
    tokenizer=None,
    split: str = "heldout",
    max_length: int = 128,
    num_examples: int | None = 2048,
    seed: int = 1234,
    mlm_probability: float = 0.15,
) -> dict[str, torch.Tensor]:
    """A fixed evaluation set: pairs, NSP labels and masks all drawn once from ``seed``, so metrics
    computed on it are reproducible. Returns a dict of tensors padded to the longest pair
    (``input_ids``, ``token_type_ids``, ``attention_mask``, ``labels``, ``next_sentence_label``) with
    ``num_examples`` rows (``None``: every pair of the split; the held-out split has 2,317 pairs
    of 128). Iterate with :func:`eval_batches`."""
    if tokenizer is None:
        from .tokenizer import load_tokenizer

        tokenizer = load_tokenizer()
    corpus = tokenized_corpus(split, tokenizer)
    dataset = PretrainingDataset(corpus, max_length, seed, short_seq_prob=0.0)
    n = len(dataset) if num_examples is None else min(num_examples, len(dataset))
    collator = PretrainingCollator.from_tokenizer(tokenizer, mlm_probability=mlm_probability, seed=seed)
    items = [dataset[i] for i in range(n)]
    return collator(items)


def eval_batches(eval_set: dict[str, torch.Tensor], batch_size: int = 64, device=None):
    """Yield batches (dicts of tensors, trimmed to their longest row, moved to ``device``) of an
    evaluation set from :func:`build_eval_set`."""
    n = eval_set["input_ids"].shape[0]
    for i in range(0, n, batch_size):
        rows = {k: v[i: i + batch_size] for k, v in eval_set.items()}
        width = int(rows["attention_mask"].sum(1).max())
        batch = {k: (v[:, :width] if v.dim() == 2 else v) for k, v in rows.items()}
        if device is not None:
            batch = {k: v.to(device) for k, v in batch.items()}
        yield batch


# ----------------------------------------------------------------------------------------------
# Classification tasks: MR (sentence polarity) and SUBJ (subjectivity)
# ----------------------------------------------------------------------------------------------
TASKS = {
    "mr": {
        "description": "movie-review sentence polarity (Pang & Lee, 2005)",
        "files": {1: "sentence_polarity/rt-polarity.pos.gz", 0: "sentence_polarity/rt-polarity.neg.gz"},
        "label_names": ("negative", "positive"),
    },
    "subj": {
        "description": "subjectivity: review snippets vs plot sentences (Pang & Lee, 2004)",
        "files": {1: "subjectivity/quote.tok.gt9.5000.gz", 0: "subjectivity/plot.tok.gt9.5000.gz"},
        "label_names": ("objective", "subjective"),
    },
}
TASK_SPLITS = ("train", "dev", "test")
#: The seed of the stratified 80/10/10 splits (fixed once; ``assets/data/splits.json`` records
#: their sizes and sha256 so any change is caught by the tests).
TASK_SPLIT_SEED = 20240
_C1_MAP = {"\x91": "'", "\x92": "'", "\x93": '"', "\x94": '"', "\x96": "-", "\x97": "--", "\x85": " "}
_C1 = re.compile(r"[\x80-\x9f]")


def clean_task_text(text: str) -> str:
    """Clean one MR/SUBJ snippet: the stray C1 control characters of the raw files are mapped
    (U+0091/0092 -> ``'``, U+0093/0094 -> ``"``, U+0096 -> ``-``, U+0097 -> ``--``) or dropped (any
    other U+0080-U+009F), other control characters dropped, white space collapsed."""
    text = _C1.sub(lambda m: _C1_MAP.get(m.group(0), ""), text)
    text = "".join(c for c in text if c in "\t\n" or unicodedata.category(c) != "Cc")
    return " ".join(text.split())


def dedup_key(text: str) -> str:
    """The key under which two snippets count as duplicates: lower case, letters and digits only
    (``"stock up on silver bullets for director neil marshall's"`` and ``"... marshall ' s"`` match)."""
    key = re.sub(r"[\W_]+", " ", text.lower()).strip()
    return key or text


def _task_name(name: str) -> str:
    key = str(name).lower()
    if key not in TASKS:
        raise ValueError(f"unknown task {name!r}: the course has {sorted(TASKS)} "
                         "(mr = movie-review polarity, subj = subjectivity)")
    return key


def task_examples(name: str) -> tuple[list[str], list[int], dict]:
    """All examples of a task, cleaned and de-duplicated: ``(texts, labels, stats)``.

    Duplicates (the same :func:`dedup_key`: equal up to case, punctuation and spacing) are kept once,
    at their first occurrence; a text that appears with both labels is dropped entirely. ``stats``
    counts what was removed (MR: 2 duplicates, SUBJ: 2; no conflicts)."""
    info = TASKS[_task_name(name)]
    texts, labels = [], []
    for label in sorted(info["files"]):
        for line in read_text(DATA_DIR / info["files"][label]).split("\n"):
            t = clean_task_text(line)
            if t:
                texts.append(t)
                labels.append(label)
    keys = [dedup_key(t) for t in texts]
    by_key: dict[str, set[int]] = {}
    for k, y in zip(keys, labels):
        by_key.setdefault(k, set()).add(y)
    conflicting = {k for k, ys in by_key.items() if len(ys) > 1}
    out_t, out_y, seen = [], [], set()
    for t, k, y in zip(texts, keys, labels):
        if k in seen or k in conflicting:
            continue
        seen.add(k)
        out_t.append(t)
        out_y.append(y)
    n_conflicting = sum(1 for k in keys if k in conflicting)
    stats = {"raw": len(texts), "duplicates_removed": len(texts) - len(out_t) - n_conflicting,
             "conflicting_removed": n_conflicting, "kept": len(out_t)}
    return out_t, out_y, stats


def _stratified_split(labels: Sequence[int], seed: int, fractions=(0.8, 0.1, 0.1)) -> dict[str, list[int]]:
    rng = random.Random(seed)
    out: dict[str, list[int]] = {s: [] for s in TASK_SPLITS}
    for label in sorted(set(labels)):
        idx = [i for i, y in enumerate(labels) if y == label]
        rng.shuffle(idx)
        n_dev, n_test = round(fractions[1] * len(idx)), round(fractions[2] * len(idx))
        out["test"] += idx[:n_test]
        out["dev"] += idx[n_test: n_test + n_dev]
        out["train"] += idx[n_test + n_dev:]
    return {s: sorted(v) for s, v in out.items()}


@lru_cache(maxsize=None)
def _load_task(name: str) -> dict[str, tuple[tuple[str, ...], tuple[int, ...]]]:
    texts, labels, _ = task_examples(name)
    parts = _stratified_split(labels, TASK_SPLIT_SEED)
    return {s: (tuple(texts[i] for i in idx), tuple(labels[i] for i in idx)) for s, idx in parts.items()}


def load_task(name: str) -> dict[str, tuple[list[str], list[int]]]:
    """A classification task as ``{"train": (texts, labels), "dev": ..., "test": ...}``.

    ``name``: ``"mr"`` (movie-review sentence polarity; label 1 = positive, 0 = negative) or
    ``"subj"`` (subjectivity; 1 = subjective review snippet, 0 = objective plot sentence).
    Texts are cleaned (:func:`clean_task_text`) and de-duplicated *before* splitting; the split is a
    seeded, stratified 80/10/10 one (fixed: see ``assets/data/splits.json``), so no text is in two
    splits of the same task. Raises ``ValueError`` for an unknown name."""
    data = _load_task(_task_name(name))
    return {s: (list(t), list(y)) for s, (t, y) in data.items()}


def task_split_digest(name: str) -> dict[str, dict]:
    """Size, label counts and sha256 of each split (what ``assets/data/splits.json`` records)."""
    out = {}
    for split, (texts, labels) in load_task(name).items():
        h = hashlib.sha256("\n".join(f"{y}\t{t}" for t, y in zip(texts, labels)).encode()).hexdigest()
        out[split] = {"size": len(texts), "labels": {str(k): labels.count(k) for k in sorted(set(labels))},
                      "sha256": h}
    return out


def stratified_subset(labels: Sequence[int], fraction: float, seed: int = 0) -> list[int]:
    """Indices (sorted) of a seeded, stratified subset holding ``fraction`` of each label (at least
    one example per label)."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    if fraction == 1.0:
        return list(range(len(labels)))
    rng = random.Random(seed)
    keep: list[int] = []
    for label in sorted(set(labels)):
        idx = [i for i, y in enumerate(labels) if y == label]
        rng.shuffle(idx)
        keep += idx[: max(1, round(fraction * len(idx)))]
    return sorted(keep)


class TaskCollator:
    """Pads tokenized examples ``(input_ids, label)`` into ``input_ids``, ``token_type_ids`` (zeros),
    ``attention_mask`` and ``labels`` tensors."""

    def __init__(self, pad_id: int = 0):
        self.pad_id = pad_id

    def __call__(self, items) -> dict[str, torch.Tensor]:
        L = max(len(ids) for ids, _ in items)
        input_ids = torch.full((len(items), L), self.pad_id, dtype=torch.long)
        attention = torch.zeros((len(items), L), dtype=torch.long)
        for r, (ids, _) in enumerate(items):
            input_ids[r, : len(ids)] = torch.as_tensor(ids, dtype=torch.long)
            attention[r, : len(ids)] = 1
        return {"input_ids": input_ids, "token_type_ids": torch.zeros_like(input_ids), "attention_mask": attention,
                "labels": torch.tensor([y for _, y in items], dtype=torch.long)}


_TASK_ENCODINGS: dict[tuple, list[list[int]]] = {}


def _encode_task(name: str, split: str, tokenizer, max_length: int) -> list[list[int]]:
    key = (_task_name(name), split, _tokenizer_key(tokenizer), max_length)
    if key not in _TASK_ENCODINGS:
        texts = load_task(name)[split][0]
        _TASK_ENCODINGS[key] = tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]
    return _TASK_ENCODINGS[key]


def task_loader(
    name: str,
    split: str,
    tokenizer=None,
    batch_size: int = 32,
    max_length: int = 64,
    shuffle: bool = False,
    seed: int = 0,
    fraction: float = 1.0,
    drop_last: bool = False,
) -> torch.utils.data.DataLoader:
    """Ready batches of a task split: dicts with ``input_ids``, ``token_type_ids``, ``attention_mask``
    (padded to the longest text of the batch) and ``labels``; ``model(**batch)`` works for
    ``BertForSequenceClassification``.

    Texts are encoded ``[CLS] text [SEP]`` and truncated to ``max_length`` tokens (a longer text
    keeps its beginning). ``shuffle`` reshuffles every epoch from ``seed``. ``fraction`` < 1 keeps a
    seeded, stratified subset of the split (e.g. 10 % of the training labels); the same
    ``(fraction, seed)`` always gives the same subset."""
    if split not in TASK_SPLITS:
        raise ValueError(f"unknown split {split!r}: use one of {TASK_SPLITS}")
    if tokenizer is None:
        from .tokenizer import load_tokenizer

        tokenizer = load_tokenizer()
    texts, labels = load_task(name)[split]
    keep = stratified_subset(labels, fraction, seed)
    labels = [labels[i] for i in keep]
    enc = _encode_task(name, split, tokenizer, max_length)
    items = [(enc[i], labels[j]) for j, i in enumerate(keep)]
    g = torch.Generator().manual_seed(seed)
    return torch.utils.data.DataLoader(items, batch_size=batch_size, shuffle=shuffle, generator=g if shuffle else None,
                                       collate_fn=TaskCollator(tokenizer.pad_token_id), drop_last=drop_last)


def unlabelled_task_sentences(tasks: Sequence[str] = ("mr", "subj"), split: str = "train") -> list[str]:
    """Unlabelled in-domain text for task-adaptive MLM pretraining: the ``split`` (default training)
    sentences of ``tasks``, de-duplicated, with **every sentence that appears in a dev or test split of
    any task** (MR or SUBJ; compared by :func:`dedup_key`) removed — 721 SUBJ training sentences are MR dev/test sentences, so using
    them would leak evaluation text into pretraining. Order: task by task, split order."""
    if isinstance(tasks, str):
        tasks = (tasks,)
    if split not in TASK_SPLITS:
        raise ValueError(f"unknown split {split!r}: use one of {TASK_SPLITS}")
    held = {dedup_key(t) for name in TASKS for s in ("dev", "test") for t in load_task(name)[s][0]}
    out, seen = [], set()
    for name in tasks:
        for t in load_task(_task_name(name))[split][0]:
            k = dedup_key(t)
            if k in seen or (k in held and split == "train"):
                continue
            seen.add(k)
            out.append(t)
    return out


# ----------------------------------------------------------------------------------------------
# MLM-only batches of single texts (task-adaptive pretraining)
# ----------------------------------------------------------------------------------------------
class _PackedTextDataset(torch.utils.data.Dataset):
    """Sentences packed into sequences of up to ``max_length - 2`` tokens, re-packed every epoch in a
    seeded random order."""

    def __init__(self, corpus: TokenizedCorpus, max_length: int, seed: int):
        self.corpus, self.max_length, self.seed = corpus, max_length, seed
        self.epoch, self.examples = None, []
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        if epoch == self.epoch:
            return
        rng = random.Random(self.seed * 1_000_003 + int(epoch))
        order = list(range(self.corpus.num_sentences))
        rng.shuffle(order)
        budget = self.max_length - 2
        examples, cur = [], []
        for s in order:
            ids = self.corpus.sentence(s)[:budget]
            if cur and sum(len(x) for x in cur) + len(ids) > budget:
                examples.append(np.concatenate(cur))
                cur = []
            cur.append(ids)
        if cur:
            examples.append(np.concatenate(cur))
        self.examples, self.epoch = examples, int(epoch)

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int):
        return i, self.examples[i], self.examples[i][:0], -1


class MLMCollator(PretrainingCollator):
    """Like :class:`PretrainingCollator` for single segments ``[CLS] text [SEP]``: no
    ``next_sentence_label`` in the batch (MLM only)."""

    def pad(self, items):
        if not items:
            raise ValueError("MLMCollator: empty batch")
        L = max(len(a) for _, a, _, _ in items) + 2
        if self.pad_to_multiple_of:
            L = -(-L // self.pad_to_multiple_of) * self.pad_to_multiple_of
        input_ids = np.full((len(items), L), self.pad_id, dtype=np.int64)
        attention = np.zeros((len(items), L), dtype=np.int64)
        special = np.ones((len(items), L), dtype=bool)
        for r, (_, a, _, _) in enumerate(items):
            la = len(a)
            input_ids[r, 0], input_ids[r, 1:1 + la], input_ids[r, 1 + la] = self.cls_id, a, self.sep_id
            attention[r, : la + 2] = 1
            special[r, 1:1 + la] = False
        ids = torch.from_numpy(input_ids)
        return {"input_ids": ids, "token_type_ids": torch.zeros_like(ids), "attention_mask": torch.from_numpy(attention),
                "special_tokens_mask": torch.from_numpy(special)}



def mlm_loader(
    texts: Sequence[str],
    tokenizer=None,
    batch_size: int = 32,
    max_length: int = 128,
    seed: int = 0,
    mlm_probability: float = 0.15,
    drop_last: bool = True,
) -> PretrainingLoader:
    """MLM-only batches from independent texts (e.g. :func:`unlabelled_task_sentences`): the texts,
    in a seeded random order re-drawn every epoch, are packed into ``[CLS] t1 t2 ... [SEP]`` sequences
    of at most ``max_length`` tokens and masked dynamically. Batches hold ``input_ids``,
    ``token_type_ids``, ``attention_mask`` and ``labels`` (no ``next_sentence_label``)."""
    if tokenizer is None:
        from .tokenizer import load_tokenizer

        tokenizer = load_tokenizer()
    texts = [t for t in texts if t and t.strip()]
    if not texts:
        raise ValueError("mlm_loader: no (non-empty) texts")
    corpus = tokenize_documents([texts], tokenizer)
    dataset = _PackedTextDataset(corpus, max_length, seed)
    collator = MLMCollator.from_tokenizer(tokenizer, mlm_probability=mlm_probability, seed=seed)
    return PretrainingLoader(dataset, collator, batch_size, drop_last)


class InterleavedLoader:
    """Batches of ``main`` with batches of ``extra`` mixed in, a fixed ``extra_fraction`` of them, in a fixed
    pattern (e.g. 0.5: every other batch). For task-adaptive pretraining: MLM + NSP batches of the corpus
    with MLM-only batches of in-domain text. One ``for`` loop is one epoch of ``main``; ``extra`` keeps its
    own epochs. ``state_dict()`` / ``load_state_dict()`` resume both where they were."""

    def __init__(self, main: PretrainingLoader, extra: PretrainingLoader, extra_fraction: float):
        if not 0.0 < extra_fraction < 1.0:
            raise ValueError(f"extra_fraction must be between 0 and 1 (exclusive), got {extra_fraction}")
        if len(extra) == 0:
            raise ValueError("the extra loader has no batches: give it more text or a smaller batch size")
        self.main, self.extra, self.extra_fraction = main, extra, extra_fraction
        self.batches = 0  # over the whole run: where the pattern is

    def _is_extra(self, n: int) -> bool:
        return math.floor((n + 1) * self.extra_fraction) > math.floor(n * self.extra_fraction)

    def __len__(self) -> int:
        return math.ceil(len(self.main) / (1.0 - self.extra_fraction))

    def __iter__(self):
        main, extra = iter(self.main), iter(self.extra)
        while True:
            if self._is_extra(self.batches):
                try:
                    batch = next(extra)
                except StopIteration:  # the in-domain text is smaller: start its next epoch
                    extra = iter(self.extra)
                    batch = next(extra)
            else:
                batch = next(main, None)
                if batch is None:
                    return
            self.batches += 1
            yield batch

    def state_dict(self) -> dict:
        return {"main": self.main.state_dict(), "extra": self.extra.state_dict(), "batches": self.batches}

    def load_state_dict(self, state: dict) -> None:
        self.main.load_state_dict(state["main"])
        self.extra.load_state_dict(state["extra"])
        self.batches = int(state["batches"])


# ----------------------------------------------------------------------------------------------
# Rebuilding the shipped files, statistics (python -m course_lib.data ...)
# ----------------------------------------------------------------------------------------------
#: The raw files the package ships (relative to the shared data folder), gzip-compressed.
RAW_FILES = (
    ["wikitext-2-raw/wiki.valid.raw", "wikitext-2-raw/wiki.test.raw"]
    + [f"sentence_polarity/rt-polarity.{s}" for s in ("pos", "neg")]
    + [f"subjectivity/{s}.tok.gt9.5000" for s in ("plot", "quote")]
)
#: Small license / readme files copied as they are.
LICENSE_FILES = ["gutenberg/GITenberg_LICENSE.txt", "sentence_polarity/README.txt", "subjectivity/README.txt"]


def build_assets(source: str | os.PathLike, retrain_tokenizer: bool = True) -> None:
    """Remake every shipped data file from the raw data folder ``source`` (the course's
    ``shared/data``): the gzip copies of the raw files (deterministic: ``mtime=0``, level 9), the
    ``MANIFEST.sha256`` of their uncompressed content, the tokenizer (trained on
    ``load_corpus("train")``) and ``splits.json``."""
    import json

    src = Path(source)
    if not src.is_dir():
        raise FileNotFoundError(f"raw data folder {src} not found")
    files = RAW_FILES + sorted(
        f"gutenberg/{p.name}" for p in (src / "gutenberg").glob("*.txt") if not p.name.startswith("GITenberg")
    )
    manifest = []
    for rel in files:
        raw = (src / rel).read_bytes()
        out = DATA_DIR / (rel + ".gz")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(gzip.compress(raw, compresslevel=9, mtime=0))
        manifest.append(f"{hashlib.sha256(raw).hexdigest()}  {rel}")
    for rel in LICENSE_FILES:
        (DATA_DIR / rel).write_bytes((src / rel).read_bytes())
    (DATA_DIR / "MANIFEST.sha256").write_text("\n".join(manifest) + "\n")
    _all_documents.cache_clear()
    _load_task.cache_clear()
    _TOKENIZED.clear()
    if retrain_tokenizer:
        from .tokenizer import train_tokenizer

        train_tokenizer()
    digest = {name: task_split_digest(name) for name in TASKS}
    digest["seed"] = TASK_SPLIT_SEED
    (DATA_DIR / "splits.json").write_text(json.dumps(digest, indent=2) + "\n")


def corpus_stats(tokenizer=None) -> dict:
    """Documents, sentences, words and tokens of each corpus split (and of the tasks)."""
    out = {}
    for split in SPLITS:
        docs = corpus_documents(split)
        tc = tokenized_corpus(split, tokenizer)
        out[split] = {
            "documents": len(docs),
            "wikitext_documents": sum(d.source == "wikitext" for d in docs),
            "gutenberg_documents": sum(d.source == "gutenberg" for d in docs),
            "sentences": sum(len(d.sentences) for d in docs),
            "words": sum(len(s.split()) for d in docs for s in d.sentences),
            "tokens": tc.num_tokens,
        }
    for name in TASKS:
        out[name] = {s: len(t) for s, (t, _) in load_task(name).items()}
    return out


def main(argv=None) -> None:
    import argparse
    import json

    parser = argparse.ArgumentParser(prog="python -m course_lib.data", description="course data tools")
    sub = parser.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build-assets", help="remake the shipped data files, tokenizer and splits.json from raw data")
    b.add_argument("--source", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"),
                   help="the raw data folder (default: ../shared/data next to the repository)")
    b.add_argument("--no-tokenizer", action="store_true", help="keep the shipped tokenizer")
    sub.add_parser("stats", help="print corpus and task sizes")
    args = parser.parse_args(argv)
    if args.cmd == "build-assets":
        build_assets(args.source, retrain_tokenizer=not args.no_tokenizer)
        print(f"rebuilt {DATA_DIR} and the tokenizer")
    elif args.cmd == "stats":
        print(json.dumps(corpus_stats(), indent=2))


if __name__ == "__main__":
    main()
