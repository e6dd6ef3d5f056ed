"""Remake the shipped data files of course_lib/assets/data from the raw data folder, or print corpus statistics.

    python tools/build_assets.py build --source RAW_DATA_FOLDER [--no-tokenizer]
    python tools/build_assets.py stats

``build`` writes the gzip copies of the raw files (level 9, mtime 0: the same bytes in every run), their
``MANIFEST.sha256`` (the sha256 of the uncompressed files, which is also the corpus cache's key), the license
files, the retrained tokenizer (tools/train_tokenizer.py) and ``splits.json`` (sizes and hashes of the task
splits, which the tests compare against).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
from pathlib import Path

from _repo import ASSETS, source_course_lib

DATA_DIR = ASSETS / "data"
#: The raw files the package ships (relative to the raw data folder), gzip-compressed.
RAW_FILES = (
    ["wikitext-2-raw/wiki.valid.raw", "wikitext-2-raw/wiki.test.raw"]
    + [f"sentence_polarity/rt-polarity.{s}" for s in ("pos", "neg")]
    + [f"subjectivity/{s}.tok.gt9.5000" for s in ("plot", "quote")]
)
#: Small license / readme files copied as they are.
LICENSE_FILES = ["gutenberg/GITenberg_LICENSE.txt", "sentence_polarity/README.txt", "subjectivity/README.txt"]


def build_assets(source: str | Path, retrain_tokenizer: bool = True) -> None:
    """Remake every shipped data file from the raw data folder ``source``."""
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
    # the corpus and the tasks are read (and cached under the new manifest's key) from here on
    if retrain_tokenizer:
        from train_tokenizer import train_shipped_tokenizer

        train_shipped_tokenizer()
    from course_lib.data import TASK_SPLIT_SEED, TASKS, task_split_digest

    digest = {name: task_split_digest(name) for name in TASKS}
    digest["seed"] = TASK_SPLIT_SEED
    (DATA_DIR / "splits.json").write_text(json.dumps(digest, indent=2) + "\n")


def corpus_stats() -> dict:
    """Documents, sentences, words and tokens of each corpus split (and the sizes of the task splits)."""
    from course_lib.data import SPLITS, TASKS, corpus_documents, load_task, tokenized_corpus

    out = {}
    for split in SPLITS:
        docs = corpus_documents(split)
        out[split] = {
            "documents": len(docs),
            "wikitext_documents": sum(d.source == "wikitext" for d in docs),
            "gutenberg_documents": sum(d.source == "gutenberg" for d in docs),
            "sentences": sum(len(d.sentences) for d in docs),
            "words": sum(len(s.split()) for d in docs for s in d.sentences),
            "tokens": tokenized_corpus(split).num_tokens,
        }
    for name in TASKS:
        out[name] = {s: len(t) for s, (t, _) in load_task(name).items()}
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="remake the shipped data files, tokenizer and splits.json from raw data")
    b.add_argument("--source", required=True, help="the raw data folder (wikitext-2-raw/, gutenberg/, ...)")
    b.add_argument("--no-tokenizer", action="store_true", help="keep the shipped tokenizer")
    sub.add_parser("stats", help="print corpus and task sizes (JSON)")
    args = parser.parse_args(argv)
    if args.cmd == "build":
        build_assets(args.source, retrain_tokenizer=not args.no_tokenizer)
        print(f"rebuilt {DATA_DIR} and the tokenizer")
    else:
        print(json.dumps(corpus_stats(), indent=2))


if __name__ == "__main__":
    source_course_lib()
    main()
