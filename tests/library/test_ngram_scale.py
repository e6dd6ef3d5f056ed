"""Chapter 1's references: course_lib.ngram (bigram model, perplexity, sampling, WordPiece) and course_lib.scale
(parameter / memory / compute arithmetic, published model sizes)."""
import math
import random

import pytest
import torch

from course_lib import BertConfig, BertModel, count_parameters, ngram, scale


# --------------------------------------------------------------------------------------------- ngram
def test_words_splits_punctuation_and_keeps_inner_apostrophes():
    assert ngram.words("It's 60 cm (24 in) long. Café") == ["it's", "60", "cm", "(", "24", "in", ")", "long", ".",
                                                           "café"]


def test_vocab_and_encoding():
    sentences = ["the cat sat .", "the dog sat on the mat ."]
    vocab = ngram.build_word_vocab(sentences, 5)
    assert vocab == ["<s>", "<unk>", "the", "sat", "."]
    assert vocab == ngram.build_word_vocab(ngram.word_counts(sentences), 5)
    ids = ngram.encode_words(sentences, vocab).tolist()
    assert ids == [0, 2, 1, 3, 4, 0, 2, 1, 3, 1, 2, 1, 4, 0]
    with pytest.raises(ValueError):
        ngram.build_word_vocab(sentences, 2)


def test_bigram_log_probs_hand_worked():
    lp = ngram.bigram_log_probs([0, 1, 0, 1, 1, 2], 3, alpha=1.0)
    expected = torch.tensor([[1 / 5, 3 / 5, 1 / 5], [1 / 3, 1 / 3, 1 / 3], [1 / 3, 1 / 3, 1 / 3]]).log()
    torch.testing.assert_close(lp, expected)
    assert lp.dtype == torch.float32


def test_bigram_log_probs_rows_are_distributions_and_match_python_counting():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 9, (500,), generator=g)
    lp = ngram.bigram_log_probs(ids, 9, alpha=0.3).double()
    torch.testing.assert_close(lp.exp().sum(1), torch.ones(9, dtype=torch.float64))
    counts = torch.full((9, 9), 0.3, dtype=torch.float64)
    for a, b in zip(ids.tolist(), ids.tolist()[1:]):
        counts[a, b] += 1
    torch.testing.assert_close(lp, (counts / counts.sum(1, keepdim=True)).log(), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError):
        ngram.bigram_counts([0, 9], 9)


def test_perplexity_invariants():
    uniform = torch.full((7, 7), math.log(1 / 7))
    assert ngram.perplexity(uniform, [1, 2, 3, 6, 0]) == pytest.approx(7)
    lp = torch.tensor([[0.5, 0.5], [0.9, 0.1]]).log()
    assert ngram.perplexity(lp, torch.tensor([0, 1, 0])) == pytest.approx(1 / math.sqrt(0.45))
    with pytest.raises(ValueError):
        ngram.perplexity(lp, [0])


def test_sampling_follows_the_table_and_is_seeded():
    lp = torch.full((3, 3), -1e9)
    lp[0, 1] = lp[1, 2] = lp[2, 0] = 0.0  # a deterministic cycle 0 -> 1 -> 2 -> 0
    assert ngram.sample(lp, 5, start=0) == [1, 2, 0, 1, 2]
    vocab = ["<s>", "<unk>", "a", "b"]
    g = torch.Generator().manual_seed(1)
    lp = torch.log_softmax(torch.randn(4, 4, generator=g), -1)
    assert ngram.generate(lp, vocab, seed=3) == ngram.generate(lp, vocab, seed=3)
    with pytest.raises(ValueError):
        ngram.sample(lp, 1, temperature=0)


def test_sampling_frequencies_match_probabilities():
    probs = torch.tensor([[0.2, 0.3, 0.5]] * 3)
    draws = ngram.sample(probs.log(), 6000, generator=torch.Generator().manual_seed(0))
    freq = torch.bincount(torch.tensor(draws), minlength=3).double() / len(draws)
    assert torch.allclose(freq, probs[0].double(), atol=0.03)


def test_wordpiece_toy_cases():
    vocab = {"un": 0, "##aff": 1, "##able": 2, "play": 3, "p": 4, "##lay": 5, "##ing": 6, "a": 7, "##a": 8}
    assert ngram.wordpiece_tokenize("unaffable", vocab) == ["un", "##aff", "##able"]
    assert ngram.wordpiece_tokenize("playing", vocab) == ["play", "##ing"]
    assert ngram.wordpiece_tokenize("playx", vocab) == ["[UNK]"]
    assert ngram.wordpiece_tokenize("aaaaa", vocab, max_chars=5) == ["a", "##a", "##a", "##a", "##a"]
    assert ngram.wordpiece_tokenize("aaaaaa", vocab, unk_token="?", max_chars=5) == ["?"]


def test_wordpiece_matches_the_tokenizers_library_on_the_shipped_vocabulary():
    from tokenizers.models import WordPiece

    from course_lib import load_tokenizer
    from course_lib.data import load_corpus

    vocab = load_tokenizer().get_vocab()
    model = WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=100)
    words = sorted({w for doc in load_corpus("heldout") for s in doc for w in ngram.words(s)})
    words += ["a" * 100, "a" * 101, "é", "naïve", "x" * 7]
    assert len(words) > 5000
    bad = [w for w in words if ngram.wordpiece_tokenize(w, vocab) != [t.value for t in model.tokenize(w)]]
    assert not bad, bad[:10]


# --------------------------------------------------------------------------------------------- scale
def test_bert_param_count_published_sizes():
    assert scale.bert_param_count(30522, 768, 12, 3072) == 109_482_240
    assert scale.bert_param_count(30522, 1024, 24, 4096) == 335_141_888


@pytest.mark.parametrize("seed", range(4))
def test_bert_param_count_matches_course_lib_and_transformers(seed):
    import transformers

    rng = random.Random(seed)
    V, h, L, i, P, T = (rng.randint(10, 400), rng.choice([8, 16, 24]), rng.randint(1, 3), rng.randint(5, 70),
                        rng.randint(4, 200), rng.randint(1, 3))
    ours = count_parameters(BertModel(BertConfig(vocab_size=V, hidden_size=h, num_layers=L, num_heads=4,
                                                 intermediate_size=i, max_position_embeddings=P, type_vocab_size=T)))
    theirs = sum(p.numel() for p in transformers.BertModel(transformers.BertConfig(
        vocab_size=V, hidden_size=h, num_hidden_layers=L, num_attention_heads=4, intermediate_size=i,
        max_position_embeddings=P, type_vocab_size=T)).parameters())
    assert scale.bert_param_count(V, h, L, i, P, T) == ours == theirs


def test_memory_and_flops():
    assert scale.adam_training_memory_bytes(1000) == 16_000
    assert scale.adam_training_memory_bytes(1000, 2) == 8_000
    assert isinstance(scale.adam_training_memory_bytes(10), int)
    # GPT-3: the paper reports 3.14e23 FLOPs for 175B parameters and 300B tokens
    assert scale.training_flops(175e9, 300e9) == pytest.approx(3.14e23, rel=0.01)


def test_landmark_models_are_sourced_and_ordered():
    models = scale.LANDMARK_MODELS
    assert [m.date for m in models] == sorted(m.date for m in models)
    assert len({m.name for m in models}) == len(models)
    for m in models:
        assert m.source and m.params > 1e7 and m.kind.split("+")[0] in {"encoder", "decoder", "encoder-decoder"}
        assert m.tokens is None or m.tokens > m.params / 100
        assert 2017 <= scale.decimal_year(m.date) < 2026
    by_name = {m.name: m for m in models}
    assert by_name["BERT-base"].params == 110e6 and by_name["BERT-large"].params == 340e6
    assert by_name["GPT-2"].params == pytest.approx(1.5e9, rel=0.05)
    assert by_name["GPT-3"].params == 175e9 and by_name["PaLM"].params == 540e9
