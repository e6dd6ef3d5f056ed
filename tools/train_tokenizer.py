"""Retrain the shipped WordPiece tokenizer on the sentences of the corpus's training split and save it into
course_lib/assets/tokenizer/ (deterministic: the same bytes in every run; about 20 s on 2 cores).

    python tools/train_tokenizer.py [--vocab-size 8192] [--min-frequency 2] [--output-dir DIR]
"""

from __future__ import annotations

import argparse

from _repo import ASSETS, source_course_lib


def train_shipped_tokenizer(output_dir=ASSETS / "tokenizer", **options):
    """Train on every sentence of ``load_corpus("train")`` (never the held-out documents) and save."""
    source_course_lib()
    from course_lib.data import load_corpus
    from course_lib.tokenizer import train_tokenizer

    sentences = [s for doc in load_corpus("train") for s in doc]
    return train_tokenizer(sentences, output_dir=output_dir, **options)


def main(argv=None) -> None:
    from course_lib.tokenizer import VOCAB_SIZE

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vocab-size", type=int, default=VOCAB_SIZE)
    parser.add_argument("--min-frequency", type=int, default=2)
    parser.add_argument("--output-dir", default=str(ASSETS / "tokenizer"))
    args = parser.parse_args(argv)
    tok = train_shipped_tokenizer(args.output_dir, vocab_size=args.vocab_size, min_frequency=args.min_frequency)
    print(f"saved a {len(tok)}-token WordPiece vocabulary to {args.output_dir}")


if __name__ == "__main__":
    source_course_lib()
    main()
