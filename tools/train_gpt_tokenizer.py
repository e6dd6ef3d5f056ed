"""Train the GPT's byte-level BPE tokenizer on the training split of the course corpus (maintainer tooling).

    python tools/train_gpt_tokenizer.py                       # -> course_lib/assets/gpt/tokenizer.json (~40 s)

Byte-level BPE (GPT-2's scheme): text is first mapped to its UTF-8 bytes, so every string has an encoding and
`decode(encode(text)) == text` for any text, with no unknown token. 8,192 entries: the size of the course's
WordPiece vocabulary, so the `mini` GPT's tied embedding matrix (8,192 x 256, 8 MB in float32) leaves the
model under its 25 MB budget; a larger vocabulary would also leave most merges seen too rarely in a ~10 MB
corpus to be learned well. The only special token is `<|endoftext|>` (id 0): it separates documents, ends
generation and pads batches (on the left, for batched generation). Only training documents are read, never
the held-out ones the perplexity is measured on.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from _repo import ASSETS, source_course_lib


def train(output_dir: Path, vocab_size: int, min_frequency: int = 2) -> None:
    """Train on the training documents, as the GPT reads them (`document_texts`), and save tokenizer.json."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    from course_lib.data import document_texts
    from course_lib.tokenizer import GPT_EOS_TOKEN

    backend = Tokenizer(models.BPE())
    # add_prefix_space=False: the first word of a text is encoded as written (GPT-2's default); the decoder
    # maps the byte symbols back to UTF-8.
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=[GPT_EOS_TOKEN],
        # all 256 byte symbols, even those the corpus lacks, so that any text (emoji, CJK, ...) encodes
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    texts = document_texts("train")
    backend.train_from_iterator(texts, trainer=trainer, length=len(texts))
    output_dir.mkdir(parents=True, exist_ok=True)
    backend.save(str(output_dir / "tokenizer.json"), pretty=True)


def main(argv=None) -> None:
    from course_lib.tokenizer import GPT_VOCAB_SIZE, load_gpt_tokenizer

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output-dir", type=Path, default=ASSETS / "gpt")
    parser.add_argument("--vocab-size", type=int, default=GPT_VOCAB_SIZE)
    args = parser.parse_args(argv)
    train(args.output_dir, args.vocab_size)
    tokenizer = load_gpt_tokenizer(args.output_dir)
    print(f"saved a {len(tokenizer)}-token byte-level BPE to {args.output_dir}")


if __name__ == "__main__":
    source_course_lib()
    main()
