"""The pretraining corpus: the shipped raw files of WikiText-2 and 39 Project Gutenberg books, read, cleaned,
split into sentences and documents, and split by document into train and held-out.

Everything is read from the files shipped in ``course_lib/assets/data`` (the raw files, gzip-compressed,
byte for byte as published; see ``assets/README.md``) and cleaned here, in code. A change to what this
module produces needs a new :data:`course_lib.data.cache.CORPUS_VERSION`.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable

from .cache import DATA_DIR, cached, corpus_key

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




def _write_documents(documents, f) -> None:
    f.write(json.dumps([[d.id, d.source, d.sentences] for d in documents], ensure_ascii=False).encode())


def _read_documents(f) -> list[Document]:
    return [Document(doc_id, source, sentences) for doc_id, source, sentences in json.loads(f.read())]


@lru_cache(maxsize=1)
def _all_documents() -> tuple[Document, ...]:
    return tuple(cached(f"corpus-{corpus_key()}.json", build_documents, _write_documents, _read_documents))


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

