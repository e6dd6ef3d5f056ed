"""Chapter 1 (background): the grade cells fail on the release stubs, reject typical wrong answers with a
plain-words message, refuse the shortcuts (the course's references, the tokenizers library's WordPiece, building a
model and counting), and accept other correct implementations.

One kernel for the whole module (tests/support/notebook_utils.NotebookSession): it runs the setup and solution cells once;
each test swaps in a variant of one exercise, runs its grade cell (visible AND hidden tests, from the instructor
source) and restores the solution. The corpus-heavy demo cells of the chapter are not run here.
"""
import textwrap

import pytest

from notebook_utils import assert_accepted, assert_rejected, chapter_path, prepared_session

pytestmark = pytest.mark.slow

NOTEBOOK = chapter_path("ch01_background")
EXERCISES = {  # answer cell -> grade cell
    "ex1_bigram_log_probs": "ex1_bigram_log_probs_tests",
    "ex2_perplexity": "ex2_perplexity_tests",
    "ex3_fit_bigram_logits": "ex3_fit_bigram_logits_tests",
    "ex4_wordpiece": "ex4_wordpiece_tests",
    "ex5_bert_param_count": "ex5_bert_param_count_tests",
    "ex6_adam_memory": "ex6_adam_memory_tests",
}


def src(code: str) -> str:
    return textwrap.dedent(code).strip("\n")


@pytest.fixture(scope="module")
def session():
    yield from prepared_session(NOTEBOOK, ["setup", *EXERCISES], nbgrader_execution=True)


def rejected(session, answer_id, source) -> str:
    """The grade cell's error ('Ename: message') with `source` in place of the solution; fails if it passes."""
    return assert_rejected(session, answer_id, source, EXERCISES[answer_id])


def accepted(session, answer_id, source) -> None:
    assert_accepted(session, answer_id, source, EXERCISES[answer_id])


# --------------------------------------------------------------------------------------------- Exercise 1
BIGRAM = """
def bigram_log_probs(token_ids, vocab_size, alpha=1.0):
    ids = torch.as_tensor(token_ids, dtype=torch.long)
    prev, nxt = {prev_next}
    counts = torch.zeros(vocab_size, vocab_size, dtype=torch.float64)
    counts.index_put_((prev, nxt), torch.ones(len(prev), dtype=torch.float64), accumulate=True)
    counts = counts + {alpha}
    return {result}
"""
GOOD = dict(prev_next="ids[:-1], ids[1:]", alpha="alpha", result="(counts / counts.sum(dim=1, keepdim=True)).log()")


def bigram(**changes):
    return src(BIGRAM.format(**{**GOOD, **changes}))


@pytest.mark.parametrize("changes, message", [
    (dict(prev_next="ids[1:], ids[:-1]"), "rows and columns are swapped"),
    (dict(result="(counts / counts.sum(dim=0, keepdim=True)).log()"), "Each COLUMN sums to 1"),
    (dict(result="(counts / counts.sum(dim=1)).log()"), "keepdim"),
    (dict(result="counts / counts.sum(dim=1, keepdim=True)"), "natural logarithm"),
    (dict(result="(counts / counts.sum(dim=1, keepdim=True)).log10()"), "log base 10"),
    (dict(alpha="1.0"), "use the `alpha` argument"),
    (dict(prev_next="ids, torch.roll(ids, -1)"), "extra transition from the last token back to the first"),
    (dict(alpha="0"), "add alpha to every count"),
    (dict(result="(counts / (counts.sum(dim=1, keepdim=True) - (vocab_size - 1) * alpha)).log()"), "must sum to 1"),
])
def test_bigram_wrong_answers(session, changes, message):
    assert message in rejected(session, "ex1_bigram_log_probs", bigram(**changes))


def test_bigram_shortcut_is_refused(session):
    error = rejected(session, "ex1_bigram_log_probs", src("""
        def bigram_log_probs(token_ids, vocab_size, alpha=1.0):
            return ngram.bigram_log_probs(token_ids, vocab_size, alpha)
    """))
    assert error.startswith("ForbiddenCallError")


@pytest.mark.parametrize("source", [
    bigram(),
    src("""
        def bigram_log_probs(token_ids, vocab_size, alpha=1.0):   # bincount, float32, log_softmax
            ids = torch.tensor(list(token_ids))
            counts = torch.bincount(ids[:-1] * vocab_size + ids[1:], minlength=vocab_size ** 2)
            return torch.log_softmax((counts.view(vocab_size, vocab_size).float() + alpha).log(), dim=1)
    """),
    src("""
        def bigram_log_probs(token_ids, vocab_size, alpha=1.0):   # plain Python counting
            ids = [int(i) for i in token_ids]
            counts = torch.full((vocab_size, vocab_size), float(alpha))
            for a, b in zip(ids, ids[1:]):
                counts[a, b] += 1
            return torch.log(counts) - torch.log(counts.sum(1, keepdim=True))
    """),
])
def test_bigram_correct_variants_pass(session, source):
    accepted(session, "ex1_bigram_log_probs", source)


# --------------------------------------------------------------------------------------------- Exercise 2
PPL = """
def perplexity(log_probs, token_ids):
    ids = torch.as_tensor(token_ids, dtype=torch.long)
    lp = {lp}
    return {result}
"""


def ppl(lp="log_probs[ids[:-1], ids[1:]].double()", result="math.exp(-lp.mean().item())"):
    return src(PPL.format(lp=lp, result=result))


@pytest.mark.parametrize("source, message", [
    (ppl(result="math.exp(-lp.sum().item() / len(ids))"), "there are only"),
    (ppl(result="math.exp(lp.mean().item())"), "the sign is flipped"),
    (ppl(result="-lp.mean().item()"), "is its exp()"),
    (ppl(result="math.exp(-lp.sum().item())"), "SUM of negative log-likelihoods"),
    (ppl(result="2 ** (-lp.mean().item())"), "not 2 **"),
    (ppl(lp="log_probs[ids[1:], ids[:-1]].double()"), "rows and columns are swapped"),
    (src("""
        def perplexity(log_probs, token_ids):
            return None
    """), "did you forget to `return`"),
])
def test_perplexity_wrong_answers(session, source, message):
    assert message in rejected(session, "ex2_perplexity", source)


@pytest.mark.parametrize("source", [
    ppl(),
    ppl(result="torch.exp(-lp.mean())"),  # a 0-d tensor is a number too
    src("""
        def perplexity(log_probs, token_ids):
            ids = [int(t) for t in token_ids]
            total = sum(float(log_probs[a, b]) for a, b in zip(ids, ids[1:]))
            return math.exp(-total / (len(ids) - 1))
    """),
])
def test_perplexity_correct_variants_pass(session, source):
    accepted(session, "ex2_perplexity", source)


# --------------------------------------------------------------------------------------------- Exercise 3
FIT = """
def fit_bigram_logits(token_ids, vocab_size, steps=100, lr=0.5):
    ids = torch.as_tensor(token_ids, dtype=torch.long)
    prev, nxt = {prev_next}
    logits = {init}
    optimizer = torch.optim.Adam([logits], lr=lr)
    losses = []
    for _ in range(steps):
        loss = torch.nn.functional.cross_entropy(logits[prev], nxt{reduction})
        {zero_grad}
        loss.backward()
        {step}
        losses.append(loss.item())
    return {result}, losses
"""
FIT_GOOD = dict(prev_next="ids[:-1], ids[1:]", init="torch.zeros(vocab_size, vocab_size, requires_grad=True)",
                reduction="", zero_grad="optimizer.zero_grad()", step="optimizer.step()",
                result="logits.detach().log_softmax(dim=1)")


def fit(**changes):
    return src(FIT.format(**{**FIT_GOOD, **changes}))


@pytest.mark.parametrize("changes, message", [
    (dict(zero_grad="pass"), "zero_grad"),                                        # gradients accumulate
    (dict(step="pass"), "never changed"),                                         # never updates: still uniform
    (dict(result="logits.detach()"), "not the raw logits"),
    (dict(result="logits.detach().log_softmax(dim=0)"), "dim=1"),
    (dict(prev_next="ids[1:], ids[:-1]"), "PREVIOUS"),                           # predicts backwards
    (dict(reduction=", reduction='sum'"), "SUM over the"),
    (dict(init="torch.randn(vocab_size, vocab_size).requires_grad_()"), "start from torch.zeros"),
    (dict(result="logits.log_softmax(dim=1)"), ".detach()"),
])
def test_fit_bigram_wrong_answers(session, changes, message):
    assert message in rejected(session, "ex3_fit_bigram_logits", fit(**changes))


def test_fit_bigram_from_the_counts_is_rejected(session):
    """The counts' answer without gradient descent: right table, but not learned (steps=0 and one step give it away)."""
    error = rejected(session, "ex3_fit_bigram_logits", src("""
        def fit_bigram_logits(token_ids, vocab_size, steps=100, lr=0.5):
            ids = torch.as_tensor(token_ids, dtype=torch.long)
            counts = torch.zeros(vocab_size, vocab_size)
            counts.index_put_((ids[:-1], ids[1:]), torch.ones(len(ids) - 1), accumulate=True)
            probs = torch.where(counts.sum(1, keepdim=True) > 0, counts / counts.sum(1, keepdim=True).clamp(min=1),
                                torch.full_like(counts, 1 / vocab_size))
            log_probs = probs.clamp(min=1e-9).log().log_softmax(dim=1)
            entropy = -(counts * log_probs).sum().item() / (len(ids) - 1)
            return log_probs, [math.log(vocab_size)] + [entropy] * (steps - 1)
    """))
    assert "steps=0" in error or "gradient" in error


def test_fit_bigram_reference_is_refused(session):
    error = rejected(session, "ex3_fit_bigram_logits", src("""
        def fit_bigram_logits(token_ids, vocab_size, steps=100, lr=0.5):
            return ngram.fit_bigram_logits(token_ids, vocab_size, steps=steps, lr=lr)
    """))
    assert "ForbiddenCallError" in error


@pytest.mark.parametrize("source", [
    fit(),
    fit(zero_grad="logits.grad = None"),                                           # clearing the gradient by hand
    src("""
        def fit_bigram_logits(token_ids, vocab_size, steps=100, lr=0.5):
            ids = torch.as_tensor(token_ids).long()
            W = torch.nn.Parameter(torch.zeros(vocab_size, vocab_size))
            opt = torch.optim.Adam([W], lr=lr)
            history = []
            for _ in range(steps):
                opt.zero_grad()
                loss = -torch.log_softmax(W, dim=-1)[ids[:-1], ids[1:]].mean()   # the cross-entropy written out
                loss.backward()
                opt.step()
                history.append(float(loss))
            return torch.log_softmax(W.detach(), dim=-1), history
    """),
])
def test_fit_bigram_correct_variants_pass(session, source):
    accepted(session, "ex3_fit_bigram_logits", source)


# --------------------------------------------------------------------------------------------- Exercise 4
WORDPIECE = """
def wordpiece_tokenize(word, vocab, unk_token="[UNK]", max_chars=100):
    if {too_long}:
        return [unk_token]
    pieces, start = [], 0
    while start < len(word):
        found = None
        for end in {ends}:
            piece = {piece}
            if piece in vocab:
                found = piece
                break
        if found is None:
            {on_fail}
        pieces.append({append})
        start = end
    return pieces
"""
WP_GOOD = dict(too_long="len(word) > max_chars", ends="range(len(word), start, -1)",
               piece='word[start:end] if start == 0 else "##" + word[start:end]', on_fail="return [unk_token]",
               append="found")


def wordpiece(**changes):
    return src(WORDPIECE.format(**{**WP_GOOD, **changes}))


@pytest.mark.parametrize("changes, message", [
    (dict(ends="range(start + 1, len(word) + 1)"), "LONGEST piece"),
    (dict(piece="word[start:end]"), "looked up WITH the '##' prefix"),
    (dict(piece='"##" + word[start:end]'), "valid split exists"),
    (dict(on_fail="return pieces + [unk_token]"), "WHOLE word becomes"),
    (dict(too_long="len(word) >= max_chars"), "exactly max_chars"),
    (dict(too_long="False"), "max_chars"),
    (dict(on_fail='return ["[UNK]"]', too_long="len(word) > max_chars"), "cannot be split"),
    (dict(append="found.removeprefix('##')"), "'##' prefix"),
])
def test_wordpiece_wrong_answers(session, changes, message):
    assert message in rejected(session, "ex4_wordpiece", wordpiece(**changes))


@pytest.mark.parametrize("source", [
    src("""
        def wordpiece_tokenize(word, vocab, unk_token="[UNK]", max_chars=100):
            from tokenizers.models import WordPiece
            return [t.value for t in WordPiece(vocab, unk_token=unk_token,
                                               max_input_chars_per_word=max_chars).tokenize(word)]
    """),
    src("""
        import tokenizers
        def wordpiece_tokenize(word, vocab, unk_token="[UNK]", max_chars=100):
            model = tokenizers.models.WordPiece(vocab, unk_token=unk_token, max_input_chars_per_word=max_chars)
            return [t.value for t in model.tokenize(word)]
    """),
    src("""
        def wordpiece_tokenize(word, vocab, unk_token="[UNK]", max_chars=100):
            return ngram.wordpiece_tokenize(word, vocab, unk_token, max_chars)
    """),
    src("""
        import transformers.models.bert.tokenization_bert as tb
        def wordpiece_tokenize(word, vocab, unk_token="[UNK]", max_chars=100):
            model = tb.WordPiece(vocab, unk_token=unk_token, max_input_chars_per_word=max_chars)
            return [t.value for t in model.tokenize(word)]
    """),
])
def test_wordpiece_shortcuts_are_refused(session, source):
    assert "ForbiddenCallError" in rejected(session, "ex4_wordpiece", source)


@pytest.mark.parametrize("source", [
    wordpiece(),
    src("""
        def wordpiece_tokenize(word, vocab, unk_token="[UNK]", max_chars=100):   # recursive
            if len(word) > max_chars:
                return [unk_token]
            def split(rest, prefix):
                if not rest:
                    return []
                for end in range(len(rest), 0, -1):
                    if prefix + rest[:end] in vocab:
                        tail = split(rest[end:], "##")
                        return None if tail is None else [prefix + rest[:end]] + tail
                return None
            pieces = split(word, "")
            return [unk_token] if pieces is None else pieces
    """),
])
def test_wordpiece_correct_variants_pass(session, source):
    accepted(session, "ex4_wordpiece", source)


# --------------------------------------------------------------------------------------------- Exercise 5
COUNT = """
def bert_param_count(vocab_size, hidden_size, num_layers, intermediate_size,
                     max_position_embeddings=512, type_vocab_size=2):
    V, h, L, i, P, T = vocab_size, hidden_size, num_layers, intermediate_size, max_position_embeddings, type_vocab_size
    embeddings = {embeddings}
    layer = {layer}
    pooler = {pooler}
    return {total}
"""
COUNT_GOOD = dict(embeddings="(V + P + T) * h + 2 * h", layer="4 * (h * h + h) + 2 * h * i + i + h + 4 * h",
                  pooler="h * h + h", total="embeddings + L * layer + pooler")


def count(**changes):
    return src(COUNT.format(**{**COUNT_GOOD, **changes}))


@pytest.mark.parametrize("changes, message", [
    (dict(pooler="0"), "the pooler"),
    (dict(embeddings="(V + P + T) * h", layer="4 * (h * h + h) + 2 * h * i + i + h"), "the LayerNorms"),
    (dict(layer="4 * (h * h + h) + 2 * h * i + i + h"), "two LayerNorms of each encoder layer"),
    (dict(layer="4 * h * h + 2 * h * i + 4 * h", pooler="h * h"), "the biases"),
    (dict(embeddings="(V + T) * h + 2 * h"), "position embeddings"),
    (dict(embeddings="(V + P) * h + 2 * h"), "segment (token type) embeddings"),
    (dict(layer="3 * (h * h + h) + 2 * h * i + i + h + 4 * h"), "output projection"),
    (dict(layer="4 * (h * h + h) + 8 * h * h + 4 * h + h + 4 * h"), "intermediate_size argument"),
    (dict(total="embeddings + L * layer + pooler + (h * h + 3 * h + V)"), "MLM head"),
    (dict(total="embeddings + (L - 1) * layer + pooler"), "one encoder layer"),
])
def test_bert_param_count_wrong_answers(session, changes, message):
    assert message in rejected(session, "ex5_bert_param_count", count(**changes))


@pytest.mark.parametrize("body", [
    "return count_parameters(BertModel(BertConfig(vocab_size=vocab_size, hidden_size=hidden_size, "
    "num_layers=num_layers, num_heads=1, intermediate_size=intermediate_size, "
    "max_position_embeddings=max_position_embeddings, type_vocab_size=type_vocab_size)))",
    "return scale.bert_param_count(vocab_size, hidden_size, num_layers, intermediate_size, "
    "max_position_embeddings, type_vocab_size)",
    "import transformers\n    return sum(p.numel() for p in transformers.BertModel(transformers.BertConfig("
    "vocab_size=vocab_size, hidden_size=hidden_size, num_hidden_layers=num_layers, num_attention_heads=1, "
    "intermediate_size=intermediate_size, max_position_embeddings=max_position_embeddings, "
    "type_vocab_size=type_vocab_size)).parameters())",
    "import course_lib.model as m\n    return sum(p.numel() for p in m.BertModel(m.BertConfig(vocab_size=vocab_size, "
    "hidden_size=hidden_size, num_layers=num_layers, num_heads=1, intermediate_size=intermediate_size, "
    "max_position_embeddings=max_position_embeddings, type_vocab_size=type_vocab_size)).parameters())",
])
def test_bert_param_count_shortcuts_are_refused(session, body):
    source = ("def bert_param_count(vocab_size, hidden_size, num_layers, intermediate_size,\n"
              "                     max_position_embeddings=512, type_vocab_size=2):\n    " + body)
    assert "ForbiddenCallError" in rejected(session, "ex5_bert_param_count", source)


def test_bert_param_count_float_result_passes(session):
    accepted(session, "ex5_bert_param_count", count(total="float(embeddings + L * layer + pooler)"))


# --------------------------------------------------------------------------------------------- Exercise 6
@pytest.mark.parametrize("body, message", [
    ("return 3 * num_params * bytes_per_value", "three values per parameter"),
    ("return 2 * num_params * bytes_per_value", "two values per parameter"),
    ("return 16 * num_params", "bytes_per_value was ignored"),
    ("return 4 * num_params", "counts values, not bytes"),
    ("return 4 * num_params * bytes_per_value / 2 ** 30", "not GiB"),
])
def test_adam_memory_wrong_answers(session, body, message):
    source = f"def adam_training_memory_bytes(num_params, bytes_per_value=4):\n    {body}"
    assert message in rejected(session, "ex6_adam_memory", source)


def test_adam_memory_float_result_passes(session):
    accepted(session, "ex6_adam_memory",
             "def adam_training_memory_bytes(num_params, bytes_per_value=4):\n    return 4.0 * num_params * bytes_per_value")
