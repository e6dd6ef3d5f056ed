"""The GPT's byte-level BPE: lossless round trips of any text, `<|endoftext|>` at id 0 as eos and (left) pad,
no tokens added behind the caller's back, an offline load, and text that decodes as plain text."""
from __future__ import annotations

import json
import random
import socket

import pytest

from course_lib.tokenizer import (GPT_EOS_ID, GPT_EOS_TOKEN, GPT_TOKENIZER_DIR, GPT_VOCAB_SIZE, _load,
                                  load_gpt_tokenizer)

TEXTS = [
    "",
    "The cat sat on the mat.",
    "  leading and trailing spaces, double  spaces\tand a tab  ",
    "Two lines\nand a blank one\n\n\r\nwith Windows line ends.",
    "\u201cI don\u2019t know,\u201d said Alice -- 3.5 % of 1,000 is 35; e-mail: a@b.c",
    "Café naïve ŒUVRE résumé, e\u0301 (a combining accent), ﬁ ligature",
    "日本語のテキスト, 中文, 한국어, العربية, עברית, हिन्दी",
    "emoji 🙂👍🏽 and a family 👨\u200d👩\u200d👧, flags 🇫🇷",
    "control characters \x00\x07\x1b[0m and \ufeff a BOM, \U0010ffff the last code point",
    "<|endoftext|> between two texts <|endoftext|>",
]


@pytest.fixture(scope="module")
def tok():
    return load_gpt_tokenizer()


@pytest.mark.parametrize("text", TEXTS)
def test_round_trip_is_lossless(tok, text):
    ids = tok.encode(text)
    assert all(0 <= i < GPT_VOCAB_SIZE for i in ids)
    assert tok.decode(ids) == text, "decode(encode(text)) must give the text back exactly (byte-level BPE)"


def test_round_trip_of_random_unicode(tok):
    rng = random.Random(0)
    # any code point but the surrogates (which are not text), in random runs of one to four kinds of script
    points = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    for _ in range(50):
        text = "".join(chr(rng.choice(points)) if rng.random() < 0.3 else rng.choice("abc XYZ.,\n")
                       for _ in range(rng.randint(1, 60)))
        assert tok.decode(tok.encode(text)) == text, repr(text)


def test_end_of_text_is_id_0_and_the_eos_and_pad_token(tok):
    assert tok.convert_tokens_to_ids(GPT_EOS_TOKEN) == GPT_EOS_ID == 0
    assert (tok.eos_token, tok.pad_token) == (GPT_EOS_TOKEN, GPT_EOS_TOKEN)
    assert (tok.eos_token_id, tok.pad_token_id) == (0, 0)
    # written in a text it is the one special token, not the characters '<', '|', ...
    assert tok.encode("a<|endoftext|>b") == tok.encode("a") + [0] + tok.encode("b")
    assert len(tok) == GPT_VOCAB_SIZE == 8192


def test_encoding_adds_no_special_tokens(tok):
    ids = tok.encode("Hello world")
    assert 0 not in ids and tok.decode(ids) == "Hello world"
    assert tok("Hello world")["input_ids"] == ids


def test_batches_are_padded_on_the_left_with_end_of_text(tok):
    batch = tok(["Hi", "a longer prompt than the first"], padding=True, return_tensors="pt")
    short, long_ = batch["input_ids"]
    n = len(tok.encode("Hi"))
    assert short[-n:].tolist() == tok.encode("Hi"), "the prompt must end at the last column (left padding)"
    assert short[:-n].tolist() == [0] * (len(long_) - n)
    assert batch["attention_mask"][0].tolist() == [0] * (len(long_) - n) + [1] * n
    assert batch["attention_mask"][1].all()


def test_words_are_whole_tokens_with_their_space(tok):
    # byte-level BPE keeps the space in front of a word (GPT-2's 'Ġ'): frequent words are single tokens
    for word in (" the", " and", " of", " said"):
        assert len(tok.encode(word)) == 1, word


def test_shipped_file_is_a_byte_level_bpe():
    spec = json.loads((GPT_TOKENIZER_DIR / "tokenizer.json").read_text(encoding="utf-8"))
    assert spec["model"]["type"] == "BPE" and spec["pre_tokenizer"]["type"] == "ByteLevel"
    assert spec["decoder"]["type"] == "ByteLevel"
    assert len(spec["model"]["vocab"]) == GPT_VOCAB_SIZE
    assert [t["content"] for t in spec["added_tokens"]] == [GPT_EOS_TOKEN]


def test_loads_without_the_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("the network was used")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    _load.cache_clear()  # read the files again, with the network cut
    tok = load_gpt_tokenizer()
    assert tok.decode(tok.encode("offline")) == "offline"


def test_missing_folder_says_how_to_remake_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="train_gpt_tokenizer"):
        load_gpt_tokenizer(tmp_path)
