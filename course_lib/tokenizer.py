"""The course's WordPiece tokenizer (Hugging Face ``tokenizers``; never hand-written).

A lowercase WordPiece vocabulary of 8,192 entries trained on the sentences of the *training* split of the
course corpus (:func:`course_lib.data.load_corpus`), shipped in ``course_lib/assets/tokenizer/`` (``vocab.txt``,
``tokenizer.json``, ``tokenizer_config.json``, ``special_tokens_map.json``).

Special tokens and ids: ``[PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3 [MASK]=4``. Pairs are encoded BERT-style
``[CLS] A [SEP] B [SEP]`` with ``token_type_ids`` 0 for ``[CLS] A [SEP]`` and 1 for ``B [SEP]``.

This module knows nothing of the corpus (``course_lib.data`` imports it, never the other way round):
:func:`train_tokenizer` takes its texts as an argument. The maintainers remake the shipped files with
``python tools/train_tokenizer.py`` (deterministic: byte-identical files in every run; see tools/README.md).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Iterable

TOKENIZER_DIR = Path(__file__).resolve().parent / "assets" / "tokenizer"
SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
PAD_ID, UNK_ID, CLS_ID, SEP_ID, MASK_ID = range(5)
VOCAB_SIZE = 8192
MAX_LENGTH = 512


def build_backend(vocab: dict[str, int] | None = None):
    """A ``tokenizers.Tokenizer`` with BERT's pipeline (lowercase + strip accents normaliser, BERT
    pre-tokeniser, WordPiece model with ``##`` continuation, ``[CLS] A [SEP] B [SEP]`` post-processor,
    WordPiece decoder). With ``vocab=None`` the model is empty (ready to train)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    model = models.WordPiece(vocab=vocab, unk_token="[UNK]", max_input_chars_per_word=100) if vocab \
        else models.WordPiece(unk_token="[UNK]", max_input_chars_per_word=100)
    tok = Tokenizer(model)
    tok.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=True, lowercase=True
    )
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", CLS_ID), ("[SEP]", SEP_ID)],
    )
    tok.decoder = decoders.WordPiece(prefix="##")
    return tok


def train_tokenizer(
    texts: Iterable[str],
    vocab_size: int = VOCAB_SIZE,
    min_frequency: int = 2,
    output_dir: str | Path | None = None,
    limit_alphabet: int = 200,
):
    """Train the lowercase WordPiece vocabulary and (unless ``output_dir`` is None) save it.

    ``texts``: the training text (for the shipped tokenizer: every sentence of ``load_corpus("train")``,
    never the held-out documents). ``output_dir``: where to save the files (None: nowhere).
    Returns the ``transformers`` tokenizer (see :func:`load_tokenizer`).
    The result is the same in every run for the same input (see the comment in the code on how the
    trainer's tie-breaking is made deterministic)."""
    from tokenizers import trainers

    texts = list(texts)
    if not texts:
        raise ValueError("train_tokenizer: no training text")
    backend = build_backend()
    # Deterministic training. The `tokenizers` trainer breaks ties between equally frequent pairs by
    # token id, and gives the "##x" continuation characters ids in hash-map order (different in every
    # process), and it drops the rarest characters beyond `limit_alphabet` with ties broken the same way.
    # So we choose the alphabet ourselves (the `limit_alphabet` most frequent characters after
    # normalisation, ties by code point) and pre-register every "##x" in a fixed order as a special
    # token (for characters that can occur inside words): every id, hence every tie-break, is then
    # the same in every run.
    alphabet, continuing = _alphabet(texts, backend, limit_alphabet)
    fixed = SPECIAL_TOKENS + ["##" + c for c in continuing]
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=fixed,
        initial_alphabet=alphabet,
        limit_alphabet=len(alphabet),
        continuing_subword_prefix="##",
        show_progress=False,
    )
    backend.train_from_iterator(texts, trainer=trainer, length=len(texts))
    for i, t in enumerate(SPECIAL_TOKENS):
        assert backend.token_to_id(t) == i, f"special token {t} is not at id {i}"
    trained = backend.get_vocab()
    # canonical order: specials, characters, "##" characters (both by code point), then the merges
    # in the order they were learned
    head = SPECIAL_TOKENS + alphabet + ["##" + c for c in continuing]
    head_set = set(head)
    rest = [t for t, _ in sorted(trained.items(), key=lambda kv: kv[1]) if t not in head_set]
    vocab = {t: i for i, t in enumerate(head + rest)}
    # rebuild from the vocabulary so that the saved tokenizer.json equals a fresh WordPiece from vocab.txt
    backend = build_backend(vocab)
    if output_dir is None:
        return _wrap(backend)
    save_tokenizer_files(backend, output_dir)
    load_tokenizer.cache_clear()
    return load_tokenizer(output_dir)


def _is_split_alone(c: str) -> bool:
    """Characters that BERT's pre-tokeniser always cuts out as a word of their own (punctuation,
    CJK ideographs): they never need a ``##`` continuation entry."""
    import unicodedata

    cp = ord(c)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    if unicodedata.category(c).startswith("P"):
        return True
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF or 0x2A700 <= cp <= 0x2B73F
            or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF or 0xF900 <= cp <= 0xFAFF
            or 0x2F800 <= cp <= 0x2FA1F)


def _alphabet(texts: list[str], backend, limit: int) -> tuple[list[str], list[str]]:
    """``(alphabet, continuing)``: the ``limit`` most frequent characters of the normalised ``texts``
    (ties broken by code point), and those of them that can occur inside a word (everything but
    punctuation and CJK ideographs), which get a ``##x`` entry. Both sorted by code point."""
    import numpy as np

    counts: dict[str, int] = {}
    step = 20000
    for i in range(0, len(texts), step):
        text = backend.normalizer.normalize_str("\n".join(texts[i: i + step]))
        cps, n = np.unique(np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32), return_counts=True)
        for cp, k in zip(cps.tolist(), n.tolist()):
            counts[chr(cp)] = counts.get(chr(cp), 0) + k
    ranked = sorted(((c, n) for c, n in counts.items() if not c.isspace()), key=lambda kv: (-kv[1], ord(kv[0])))
    alphabet = sorted(c for c, _ in ranked[:limit])
    return alphabet, [c for c in alphabet if not _is_split_alone(c)]


def save_tokenizer_files(backend, output_dir: str | Path) -> None:
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    vocab = backend.get_vocab()
    tokens = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
    assert [vocab[t] for t in tokens] == list(range(len(tokens))), "vocabulary ids are not contiguous"
    (out / "vocab.txt").write_text("\n".join(tokens) + "\n", encoding="utf-8")
    backend.save(str(out / "tokenizer.json"), pretty=True)
    config = {
        "tokenizer_class": "BertTokenizerFast",
        "do_lower_case": True,
        "strip_accents": None,
        "tokenize_chinese_chars": True,
        "model_max_length": MAX_LENGTH,
        "unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]",
        "mask_token": "[MASK]",
        "clean_up_tokenization_spaces": True,
    }
    (out / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    specials = {"unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]",
                "mask_token": "[MASK]"}
    (out / "special_tokens_map.json").write_text(json.dumps(specials, indent=2) + "\n", encoding="utf-8")


def _wrap(backend):
    from transformers import PreTrainedTokenizerFast

    try:
        from transformers import BertTokenizerFast

        tok = BertTokenizerFast(tokenizer_object=backend, do_lower_case=True, model_max_length=MAX_LENGTH)
    except Exception:  # pragma: no cover - older/newer transformers without tokenizer_object support
        tok = PreTrainedTokenizerFast(tokenizer_object=backend, model_max_length=MAX_LENGTH)
    tok.add_special_tokens({"unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]",
                            "cls_token": "[CLS]", "mask_token": "[MASK]"})
    return tok


@lru_cache(maxsize=4)
def _load(path: str):
    from tokenizers import Tokenizer

    p = Path(path)
    if not (p / "tokenizer.json").exists():
        raise FileNotFoundError(
            f"no tokenizer.json in {p}; remake the shipped tokenizer with `python tools/train_tokenizer.py` (tools/README.md)"
        )
    return Tokenizer.from_file(str(p / "tokenizer.json"))


def load_tokenizer(path: str | Path | None = None):
    """The shipped tokenizer as a ``transformers`` fast BERT tokenizer (offline; nothing downloads).

    ``tok("the cat sat", "on the mat", return_tensors="pt")`` gives ``input_ids``, ``token_type_ids``
    and ``attention_mask``; ``padding``/``truncation``/``max_length`` work as in ``transformers``.
    ``path``: a folder holding ``tokenizer.json`` (default: the one shipped in the package).
    Each call returns a new tokenizer object (the parsed files are cached)."""
    backend = _load(str(Path(path) if path is not None else TOKENIZER_DIR))
    from tokenizers import Tokenizer

    tok = _wrap(Tokenizer.from_str(backend.to_str()))
    for i, t in enumerate(SPECIAL_TOKENS):
        if tok.convert_tokens_to_ids(t) != i:
            raise ValueError(f"tokenizer at {path}: {t} should have id {i}")
    return tok


load_tokenizer.cache_clear = _load.cache_clear  # type: ignore[attr-defined]


# ----------------------------------------------------------------------------------------------
# The GPT's byte-level BPE (trained by tools/train_gpt_tokenizer.py, shipped in assets/gpt/)
# ----------------------------------------------------------------------------------------------
GPT_TOKENIZER_DIR = Path(__file__).resolve().parent / "assets" / "gpt"
GPT_EOS_TOKEN = "<|endoftext|>"
GPT_EOS_ID = 0
GPT_VOCAB_SIZE = 8192


def load_gpt_tokenizer(path: str | Path | None = None):
    """The GPT's byte-level BPE as a ``transformers.PreTrainedTokenizerFast`` (offline; nothing downloads).

    Lossless: ``tok.decode(tok.encode(text)) == text`` for any text. ``<|endoftext|>`` (id 0) is the eos, bos,
    unk and pad token; padding is on the left, so a batch of prompts ends at the same position and generation
    appends to all of them at once. No special tokens are added when encoding. ``path``: a folder holding
    ``tokenizer.json`` (default: the one shipped in the package)."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    folder = Path(path) if path is not None else GPT_TOKENIZER_DIR
    if not (folder / "tokenizer.json").exists():
        raise FileNotFoundError(f"no tokenizer.json in {folder}; remake the GPT tokenizer with "
                                f"`python tools/train_gpt_tokenizer.py`")
    backend = _load(str(folder))
    tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(backend.to_str()),
                                  eos_token=GPT_EOS_TOKEN, bos_token=GPT_EOS_TOKEN, unk_token=GPT_EOS_TOKEN,
                                  pad_token=GPT_EOS_TOKEN, padding_side="left", model_max_length=MAX_LENGTH,
                                  clean_up_tokenization_spaces=False)
    if tok.convert_tokens_to_ids(GPT_EOS_TOKEN) != GPT_EOS_ID:
        raise ValueError(f"GPT tokenizer at {path}: {GPT_EOS_TOKEN} should have id {GPT_EOS_ID}")
    return tok
