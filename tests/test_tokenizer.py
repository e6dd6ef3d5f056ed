"""The shipped WordPiece tokenizer: special ids, round trips, pairs, truncation/padding, equality with a
fresh `tokenizers` WordPiece built from vocab.txt, unknown characters, deterministic training."""
from __future__ import annotations

import json
import os

import pytest
import torch

from course_lib.tokenizer import (MASK_ID, PAD_ID, SPECIAL_TOKENS, TOKENIZER_DIR, VOCAB_SIZE, load_tokenizer,
                                  train_tokenizer)

SAMPLES = [
    "The cat sat on the mat.",
    "Sherlock Holmes examined the photograph with unaccustomed interest!",
    "It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in want of a wife.",
    "Homarus gammarus, known as the European lobster, may grow to a length of 60 cm (24 in).",
    "\u201cI don\u2019t know,\u201d said Alice -- and she was right; 3.5 % of 1,000 is 35.",
    "Café naïve ŒUVRE résumé",
]


@pytest.fixture(scope="module")
def tok():
    return load_tokenizer()


def test_special_tokens_at_documented_ids(tok):
    for i, t in enumerate(SPECIAL_TOKENS):
        assert tok.convert_tokens_to_ids(t) == i
    assert (tok.pad_token_id, tok.unk_token_id, tok.cls_token_id, tok.sep_token_id, tok.mask_token_id) == (0, 1, 2, 3, 4)
    assert len(tok) == VOCAB_SIZE == 8192
    assert tok.pad_token_id == PAD_ID and tok.mask_token_id == MASK_ID


def test_shipped_files_consistent():
    vocab_lines = (TOKENIZER_DIR / "vocab.txt").read_text(encoding="utf-8").split("\n")[:-1]
    assert len(vocab_lines) == VOCAB_SIZE and len(set(vocab_lines)) == VOCAB_SIZE
    assert vocab_lines[:5] == SPECIAL_TOKENS
    model_vocab = json.loads((TOKENIZER_DIR / "tokenizer.json").read_text(encoding="utf-8"))["model"]["vocab"]
    assert model_vocab == {t: i for i, t in enumerate(vocab_lines)}


def test_lowercase_and_round_trip(tok):
    for text in SAMPLES:
        ids = tok(text)["input_ids"]
        assert ids[0] == tok.cls_token_id and ids[-1] == tok.sep_token_id
        assert tok.unk_token_id not in ids, text
        decoded = tok.decode(ids, skip_special_tokens=True)
        assert decoded == decoded.lower()
        assert tok(decoded)["input_ids"] == ids, f"encode(decode(x)) != x for {text!r}"
    assert tok("HELLO World")["input_ids"] == tok("hello world")["input_ids"]
    assert tok.tokenize("Café") == tok.tokenize("cafe")  # accents stripped


def test_pair_encoding_token_types(tok):
    enc = tok("the cat sat", "on the mat", return_tensors="pt")
    assert set(enc) >= {"input_ids", "token_type_ids", "attention_mask"}
    ids, tt = enc["input_ids"][0].tolist(), enc["token_type_ids"][0].tolist()
    a, b = tok.tokenize("the cat sat"), tok.tokenize("on the mat")
    assert tok.convert_ids_to_tokens(ids) == ["[CLS]", *a, "[SEP]", *b, "[SEP]"]
    assert tt == [0] * (len(a) + 2) + [1] * (len(b) + 1)
    assert enc["attention_mask"].eq(1).all()


def test_truncation_and_padding(tok):
    long = " ".join(["word"] * 1000)
    enc = tok(long, truncation=True, max_length=32)
    assert len(enc["input_ids"]) == 32 and enc["input_ids"][-1] == tok.sep_token_id
    batch = tok(["short one", long], padding="max_length", truncation=True, max_length=16, return_tensors="pt")
    assert batch["input_ids"].shape == (2, 16)
    n0 = len(tok("short one")["input_ids"])
    assert batch["attention_mask"][0].tolist() == [1] * n0 + [0] * (16 - n0)
    assert batch["input_ids"][0, n0:].eq(tok.pad_token_id).all()
    batch = tok(["a", "a b c d e f"], padding=True, return_tensors="pt")
    assert batch["input_ids"].shape[1] == len(tok("a b c d e f")["input_ids"])
    pair = tok(long, long, truncation=True, max_length=20)
    assert len(pair["input_ids"]) == 20 and pair["input_ids"].count(tok.sep_token_id) == 2


def test_matches_fresh_wordpiece_from_vocab(tok):
    from tokenizers import BertWordPieceTokenizer

    fresh = BertWordPieceTokenizer(str(TOKENIZER_DIR / "vocab.txt"), lowercase=True)
    for text in SAMPLES + ["", "x" * 150, "東京 emoji \U0001F600 tab\there"]:
        ours = tok(text)
        ref = fresh.encode(text)
        assert ours["input_ids"] == ref.ids, text
        assert ours["token_type_ids"] == ref.type_ids
    for a, b in zip(SAMPLES, SAMPLES[1:]):
        ref = fresh.encode(a, b)
        ours = tok(a, b)
        assert ours["input_ids"] == ref.ids and ours["token_type_ids"] == ref.type_ids


def test_bad_input_documented_behaviour(tok):
    assert tok("")["input_ids"] == [tok.cls_token_id, tok.sep_token_id]  # empty text: just the specials
    # unknown characters and over-long words become [UNK] (never an exception)
    assert tok.tokenize("\U0001F600") == ["[UNK]"]
    assert tok.tokenize("a" * 150) == ["[UNK]"]
    # control characters are removed by the normaliser
    assert tok("a\x00b\x07")["input_ids"] == tok("ab")["input_ids"]


def test_load_tokenizer_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="tokenizer.json"):
        load_tokenizer(tmp_path)


def test_training_is_deterministic_and_specials_first(tmp_path):
    texts = [f"the {w} of the {v} was {u}ing." for w in ("king", "queen", "cat", "dog", "whale", "ship")
             for v in ("sea", "land", "city", "house") for u in ("sail", "walk", "sing", "talk", "read")] * 3
    t1 = train_tokenizer(texts, vocab_size=120, output_dir=tmp_path / "a")
    t2 = train_tokenizer(texts, vocab_size=120, output_dir=tmp_path / "b")
    assert (tmp_path / "a" / "tokenizer.json").read_bytes() == (tmp_path / "b" / "tokenizer.json").read_bytes()
    assert (tmp_path / "a" / "vocab.txt").read_bytes() == (tmp_path / "b" / "vocab.txt").read_bytes()
    assert [t1.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS] == [0, 1, 2, 3, 4]
    assert t1.tokenize("the whale was sailing") == t2.tokenize("the whale was sailing")
    assert len(t1) <= 120
    with pytest.raises(ValueError, match="no training text"):
        train_tokenizer([], output_dir=None)


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("COURSE_LIB_SLOW_TESTS"), reason="set COURSE_LIB_SLOW_TESTS=1 (retrains, ~30 s)")
def test_retraining_reproduces_shipped_tokenizer(tmp_path):
    from course_lib.data import load_corpus

    train_tokenizer([s for doc in load_corpus("train") for s in doc], output_dir=tmp_path)
    assert (tmp_path / "vocab.txt").read_bytes() == (TOKENIZER_DIR / "vocab.txt").read_bytes()
    assert (tmp_path / "tokenizer.json").read_bytes() == (TOKENIZER_DIR / "tokenizer.json").read_bytes()


def test_package_level_loader():
    import course_lib

    tok = course_lib.load_tokenizer()
    out = tok(["a b", "c"], padding=True, return_tensors="pt")
    assert isinstance(out["input_ids"], torch.Tensor) and out["input_ids"].dtype == torch.long
