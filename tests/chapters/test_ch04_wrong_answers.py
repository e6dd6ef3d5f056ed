"""Chapter 4 (pretraining): the grade cells accept every correct answer, fail on the release stubs, and reject the
classic wrong answers with a message that says what is wrong in plain words.

One kernel for the whole module (tests/support/notebook_utils.NotebookSession): it runs the notebook's setup cell, the
solution cells and the read-only test helpers once; each test then swaps one answer for a variant, runs that
exercise's grade cell(s) — visible AND hidden tests, from the instructor source — and restores the solution.
The masking tests look only at statistics over many seeded draws, so several different correct sampling schemes
are tried here and must all pass.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from notebook_utils import chapter_path, prepared_session

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

NOTEBOOK = chapter_path("ch04_pretraining")
GRADES = {
    "mask_tokens_answer": ["mask_tokens_rules", "mask_tokens_statistics"],
    "mlm_loss_answer": ["mlm_loss_tests"],
    "make_nsp_pairs_answer": ["make_nsp_pairs_tests"],
    "pretraining_loss_answer": ["pretraining_loss_tests"],
    "mlm_head_answer": ["mlm_head_tests"],
    "pretraining_heads_answer": ["pretraining_heads_tests"],
}
# cells run once, in notebook order: setup, answers, read-only helpers (demos and the live run are skipped)
PREPARE = ["setup", "mask_tokens_answer", "mask_tokens_helpers", "mlm_loss_answer", "make_nsp_pairs_answer",
           "pretraining_loss_answer", "mlm_head_answer", "mlm_head_tests", "pretraining_heads_answer"]


@pytest.fixture(scope="module")
def session():
    cache = os.environ.get("COURSE_LIB_CACHE") or str(Path.home() / ".cache" / "course_lib")
    yield from prepared_session(NOTEBOOK, PREPARE, nbgrader_execution=True, env={"COURSE_LIB_CACHE": cache})


def _try(session, answer_gid, source, only=None):
    """Run every grade cell of `answer_gid` with `source` in place of the solution; returns their results."""
    return [session.try_answer(answer_gid, source, g) for g in (only or GRADES[answer_gid])]


def _source(session, gid):
    return session.nb.cells[session.index(gid)].source


# ----------------------------------------------------------------------------------------------------------
# Exercise 1: mask_tokens
# ----------------------------------------------------------------------------------------------------------
MASK_HEADER = "def mask_tokens(input_ids, special_tokens_mask, mask_token_id, vocab_size, mlm_probability=0.15, generator=None):\n"

CORRECT_MASK_TOKENS = {
    # transformers' DataCollatorForLanguageModeling: three Bernoulli draws one after the other
    "bernoulli, one decision after the other": MASK_HEADER + """
    labels = input_ids.clone()
    probability_matrix = torch.full(labels.shape, mlm_probability)
    probability_matrix.masked_fill_(special_tokens_mask.bool(), value=0.0)
    masked_indices = torch.bernoulli(probability_matrix, generator=generator).bool()
    labels[~masked_indices] = -100
    inputs = input_ids.clone()
    replaced = torch.bernoulli(torch.full(labels.shape, 0.8), generator=generator).bool() & masked_indices
    inputs[replaced] = mask_token_id
    randomised = torch.bernoulli(torch.full(labels.shape, 0.5), generator=generator).bool() & masked_indices & ~replaced
    random_words = torch.randint(vocab_size, labels.shape, dtype=torch.long, generator=generator)
    inputs[randomised] = random_words[randomised]
    return inputs, labels
""",
    # an exact number of positions per call, drawn with randperm, and an exact 80/10/10 split among them
    "exact counts with randperm": MASK_HEADER + """
    flat = input_ids.reshape(-1)
    inputs, labels = flat.clone(), torch.full_like(flat, -100)
    candidates = (~special_tokens_mask.reshape(-1).bool()).nonzero().flatten()
    k = int(round(mlm_probability * len(candidates)))
    chosen = candidates[torch.randperm(len(candidates), generator=generator)[:k]]
    labels[chosen] = flat[chosen]
    n_mask, n_random = int(round(0.8 * k)), int(round(0.1 * k))
    inputs[chosen[:n_mask]] = mask_token_id
    random_positions = chosen[n_mask:n_mask + n_random]
    inputs[random_positions] = torch.randint(0, vocab_size, (len(random_positions),), generator=generator)
    return inputs.reshape(input_ids.shape), labels.reshape(input_ids.shape)
""",
    # one multinomial draw per position over {not chosen, [MASK], random, keep}
    "one categorical draw per position": MASK_HEADER + """
    p = mlm_probability
    weights = torch.tensor([1 - p, 0.8 * p, 0.1 * p, 0.1 * p])
    outcome = torch.multinomial(weights, input_ids.numel(), replacement=True, generator=generator).reshape(input_ids.shape)
    outcome = outcome.masked_fill(special_tokens_mask.bool(), 0)
    inputs = input_ids.clone()
    labels = torch.where(outcome > 0, input_ids, torch.tensor(-100))
    inputs[outcome == 1] = mask_token_id
    n_random = int((outcome == 2).sum())
    inputs[outcome == 2] = torch.randint(vocab_size, (n_random,), generator=generator)
    return inputs, labels
""",
    # a plain Python loop over the positions (slow, but correct)
    "python loop over positions": MASK_HEADER + """
    inputs = input_ids.clone().reshape(-1)
    labels = torch.full_like(inputs, -100)
    special = special_tokens_mask.reshape(-1).tolist()
    u = torch.rand(inputs.numel(), 2, generator=generator).tolist()
    ids = input_ids.reshape(-1).tolist()
    for i in range(len(ids)):
        if special[i] or u[i][0] >= mlm_probability:
            continue
        labels[i] = ids[i]
        if u[i][1] < 0.8:
            inputs[i] = mask_token_id
        elif u[i][1] < 0.9:
            inputs[i] = int(torch.randint(vocab_size, (1,), generator=generator))
    return inputs.reshape(input_ids.shape), labels.reshape(input_ids.shape)
""",
}


@pytest.mark.parametrize("name", list(CORRECT_MASK_TOKENS))
def test_any_correct_masking_scheme_passes(session, name):
    for r in _try(session, "mask_tokens_answer", CORRECT_MASK_TOKENS[name]):
        assert r.ok, f"correct variant '{name}' rejected: {r.error}"


def _solution_with(session, old, new, count=1):
    src = _source(session, "mask_tokens_answer")
    assert src.count(old) == count, (old, src)
    return src.replace(old, new)


WRONG_MASK_TOKENS = {
    # (old, new) edits of the solution, and a phrase the error message must contain
    "masks special tokens": (
        ("    chosen &= ~special\n", ""),
        "special"),
    "labels on every position": (
        ("labels = torch.where(chosen, input_ids, torch.full_like(input_ids, -100))", "labels = input_ids.clone()"),
        "-100 everywhere except"),
    "labels only where [MASK] was put": (
        ("    return inputs, labels",
         "    labels = torch.where(to_mask, input_ids, torch.full_like(input_ids, -100))\n    return inputs, labels"),
        "label is -100"),
    "100 % [MASK]": (
        ("inputs[to_mask] = mask_token_id\n    inputs[to_random] = random_ids[to_random]", "inputs[chosen] = mask_token_id"),
        "Every chosen token became [MASK]"),
    "no unchanged share (80 % [MASK], 20 % random)": (
        ("torch.full(shape, 0.5, device=device)", "torch.full(shape, 1.0, device=device)"),
        "80 % / 10 % / 10 %"),
    "modifies the input in place": (
        ("inputs = input_ids.clone()", "inputs = input_ids"),
        "in place"),
    "ignores the generator": (
        ("to_mask = torch.bernoulli(torch.full(shape, 0.8, device=device), generator=generator)",
         "to_mask = torch.bernoulli(torch.full(shape, 0.8, device=device))"),
        "generator"),
    "labels hold the replacement": (
        ("    return inputs, labels", "    labels = torch.where(chosen, inputs, labels)\n    return inputs, labels"),
        "ORIGINAL"),
    "ignores mlm_probability": (
        ("float(mlm_probability)", "0.15"),
        "mlm_probability"),
    "a random id for 2 % of the chosen, not 10 %": (
        ("torch.full(shape, 0.5, device=device)", "torch.full(shape, 0.1, device=device)"),
        "80 % / 10 % / 10 %"),
    "random ids from a fixed vocabulary": (
        ("random_ids = torch.randint(vocab_size,", "random_ids = torch.randint(8192,"),
        "vocab_size"),
    "random ids copied from the batch": (
        ("random_ids = torch.randint(vocab_size, shape, generator=generator, device=device, dtype=input_ids.dtype)",
         "random_ids = input_ids.reshape(-1)[torch.randint(input_ids.numel(), shape, generator=generator)]"),
        "uniformly"),
}


@pytest.mark.parametrize("name", list(WRONG_MASK_TOKENS))
def test_wrong_masking_is_rejected(session, name):
    (old, new), phrase = WRONG_MASK_TOKENS[name]
    results = _try(session, "mask_tokens_answer", _solution_with(session, old, new))
    failures = [r for r in results if not r.ok]
    assert failures, f"wrong answer '{name}' passed every grade cell"
    assert all(r.ename == "AssertionError" for r in failures), [r.error for r in failures]
    assert any(phrase in r.evalue for r in failures), [r.error for r in failures]


def test_masking_15_percent_of_all_tokens_is_rejected(session):
    """Choosing round(0.15 * every position) among the text tokens: too many text tokens get chosen."""
    source = CORRECT_MASK_TOKENS["exact counts with randperm"].replace(
        "k = int(round(mlm_probability * len(candidates)))", "k = min(len(candidates), int(round(mlm_probability * flat.numel())))")
    r = session.try_answer("mask_tokens_answer", source, "mask_tokens_statistics")
    assert not r.ok and "ALL positions" in r.evalue, r.error


def test_masking_with_pythons_random_module_is_rejected(session):
    source = CORRECT_MASK_TOKENS["python loop over positions"].replace(
        "u = torch.rand(inputs.numel(), 2, generator=generator).tolist()",
        "import random as _r\n    u = [[_r.random(), _r.random()] for _ in range(inputs.numel())]")
    r = session.try_answer("mask_tokens_answer", source, "mask_tokens_rules")
    assert not r.ok and "generator" in r.evalue, r.error


def test_calling_the_reference_mask_tokens_is_blocked(session):
    source = MASK_HEADER + "    return course_lib.data.mask_tokens(input_ids, special_tokens_mask, mask_token_id, vocab_size, mlm_probability, generator)\n"
    for r in _try(session, "mask_tokens_answer", source):
        assert not r.ok and r.ename == "ForbiddenCallError", r.error


# ----------------------------------------------------------------------------------------------------------
# Exercise 2: mlm_loss
# ----------------------------------------------------------------------------------------------------------
LOSS_HEADER = "def mlm_loss(logits, labels):\n"
CORRECT_MLM_LOSS = {
    "logsumexp and a mask": LOSS_HEADER + """
    lse = torch.logsumexp(logits, dim=-1)
    picked = logits.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    mask = labels != -100
    return ((lse - picked) * mask).sum() / mask.sum()
""",
    "hand-written stable log-softmax, float64": LOSS_HEADER + """
    x = logits.reshape(-1, logits.shape[-1]).double()
    y = labels.reshape(-1)
    x, y = x[y != -100], y[y != -100]
    shifted = x - x.max(dim=1, keepdim=True).values
    log_probs = shifted - shifted.exp().sum(dim=1, keepdim=True).log()
    return -log_probs[torch.arange(len(y)), y].mean()
""",
    "F.log_softmax and boolean indexing": LOSS_HEADER + """
    keep = labels != -100
    return -F.log_softmax(logits[keep], dim=-1).gather(1, labels[keep][:, None]).mean()
""",
}


@pytest.mark.parametrize("name", list(CORRECT_MLM_LOSS))
def test_any_correct_mlm_loss_passes(session, name):
    for r in _try(session, "mlm_loss_answer", CORRECT_MLM_LOSS[name]):
        assert r.ok, f"correct variant '{name}' rejected: {r.error}"


WRONG_MLM_LOSS = {
    "averaged over all positions": (LOSS_HEADER + """
    log_probs = torch.log_softmax(logits, dim=-1)
    picked = log_probs.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return -(picked * (labels != -100)).mean()
""", "ALL"),
    "ignored positions scored as token 0": (LOSS_HEADER + """
    log_probs = torch.log_softmax(logits, dim=-1)
    return -log_probs.gather(-1, labels.clamp(min=0).unsqueeze(-1)).mean()
""", "ignored positions"),
    "summed instead of averaged": (LOSS_HEADER + """
    keep = labels != -100
    return -torch.log_softmax(logits[keep], dim=-1).gather(1, labels[keep][:, None]).sum()
""", "mean"),
    "label 0 taken for 'ignore'": (LOSS_HEADER + """
    keep = labels > 0
    return -torch.log_softmax(logits[keep], dim=-1).gather(1, labels[keep][:, None]).mean()
""", "label is 0"),
    "log of softmax underflows": (LOSS_HEADER + """
    keep = labels != -100
    return -torch.log(torch.softmax(logits[keep], dim=-1)).gather(1, labels[keep][:, None]).mean()
""", "log-probabilities"),
    "exp without subtracting the maximum": (LOSS_HEADER + """
    keep = labels != -100
    x = logits[keep]
    log_probs = x - x.exp().sum(dim=-1, keepdim=True).log()
    return -log_probs.gather(1, labels[keep][:, None]).mean()
""", "log-probabilities"),
    "gathers with -100": (LOSS_HEADER + """
    log_probs = torch.log_softmax(logits, dim=-1)
    picked = log_probs.gather(-1, labels.unsqueeze(-1)).squeeze(-1)
    return -picked[labels != -100].mean()
""", "not a valid index"),
    "a Python number wrapped in a tensor": (LOSS_HEADER + """
    keep = labels != -100
    value = -torch.log_softmax(logits[keep], dim=-1).gather(1, labels[keep][:, None]).mean().item()
    return torch.tensor(value)
""", "gradient"),
    "no reduction": (LOSS_HEADER + """
    keep = labels != -100
    return -torch.log_softmax(logits[keep], dim=-1).gather(1, labels[keep][:, None]).squeeze(1)
""", "0-dim"),
}


@pytest.mark.parametrize("name", list(WRONG_MLM_LOSS))
def test_wrong_mlm_loss_is_rejected(session, name):
    source, phrase = WRONG_MLM_LOSS[name]
    (r,) = _try(session, "mlm_loss_answer", source)
    assert not r.ok and r.ename == "AssertionError", f"'{name}': {r.error}"
    assert phrase in r.evalue, f"'{name}': {r.error}"


@pytest.mark.parametrize("shortcut", [
    "F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)",
    "F.nll_loss(F.log_softmax(logits, -1).reshape(-1, logits.shape[-1]), labels.reshape(-1))",
    "torch.nn.CrossEntropyLoss()(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1))",
    "course_lib.losses.mlm_loss(logits, labels)",
])
def test_mlm_loss_shortcuts_are_blocked(session, shortcut):
    (r,) = _try(session, "mlm_loss_answer", LOSS_HEADER + f"    return {shortcut}\n")
    assert not r.ok and r.ename == "ForbiddenCallError", r.error


# ----------------------------------------------------------------------------------------------------------
# Exercise 3: make_nsp_pairs
# ----------------------------------------------------------------------------------------------------------
NSP_HEADER = "def make_nsp_pairs(documents, rng):\n"
CORRECT_NSP = {
    "rejection sampling from a flat pool": NSP_HEADER + """
    pool = [(d, s) for d, doc in enumerate(documents) for s in doc]
    pairs = []
    for d, doc in enumerate(documents):
        for a, b in zip(doc, doc[1:]):
            if rng.random() < 0.5:
                pairs.append((a, b, 0))
                continue
            other, sentence = rng.choice(pool)
            while other == d:
                other, sentence = rng.choice(pool)
            pairs.append((a, sentence, 1))
    return pairs
""",
    "choice among the other documents, labels drawn first": NSP_HEADER + """
    pairs = []
    for d, doc in enumerate(documents):
        others = [o for j, o in enumerate(documents) if j != d and o]
        for i in range(len(doc) - 1):
            label = rng.randrange(2)
            b = doc[i + 1] if label == 0 else rng.choice(rng.choice(others))
            pairs.append((doc[i], b, label))
    rng.shuffle(pairs)
    return pairs
""",
}


@pytest.mark.parametrize("name", list(CORRECT_NSP))
def test_any_correct_nsp_pairs_pass(session, name):
    (r,) = _try(session, "make_nsp_pairs_answer", CORRECT_NSP[name])
    assert r.ok, f"correct variant '{name}' rejected: {r.error}"


def _nsp_solution_with(session, old, new):
    src = _source(session, "make_nsp_pairs_answer")
    assert src.count(old) == 1, (old, src)
    return src.replace(old, new)


WRONG_NSP = {
    "negatives from the same document": (
        ("pairs.append((doc[i], other[rng.randrange(len(other))], 1))",
         "pairs.append((doc[i], doc[rng.randrange(len(doc))], 1))"),
        "DIFFERENT document"),
    "negatives from any document, A's own included": (
        ("others = [o for o in with_sentences if o != d]", "others = with_sentences"),
        "DIFFERENT document"),
    "swapped labels": (
        ("pairs.append((doc[i], doc[i + 1], 0))", "pairs.append((doc[i], doc[i + 1], 1))"),
        "swap"),
    "always positive": (
        ("if rng.random() < 0.5:", "if True:"),
        "50 %"),
    "positives with probability 0.3": (
        ("if rng.random() < 0.5:", "if rng.random() < 0.3:"),
        "50 %"),
    "python's global random module": (
        ("if rng.random() < 0.5:", "if random.random() < 0.5:"),
        "rng"),
    "the last sentence wraps around": (
        ("for i in range(len(doc) - 1):", "for i in range(len(doc) if len(doc) > 1 else 0):"),
        "no next sentence"),
}


@pytest.mark.parametrize("name", list(WRONG_NSP))
def test_wrong_nsp_pairs_are_rejected(session, name):
    (old, new), phrase = WRONG_NSP[name]
    source = _nsp_solution_with(session, old, new)
    if name == "swapped labels":
        source = source.replace("other[rng.randrange(len(other))], 1))", "other[rng.randrange(len(other))], 0))")
    if name == "the last sentence wraps around":
        source = source.replace("doc[i + 1]", "doc[(i + 1) % len(doc)]")
    (r,) = _try(session, "make_nsp_pairs_answer", source)
    assert not r.ok and r.ename == "AssertionError", f"'{name}': {r.error}"
    assert phrase in r.evalue, f"'{name}': {r.error}"


# ----------------------------------------------------------------------------------------------------------
# Exercise 4: pretraining_loss
# ----------------------------------------------------------------------------------------------------------
PT_HEADER = "def pretraining_loss(mlm_logits, nsp_logits, mlm_labels, nsp_labels):\n"


def test_an_explicit_nsp_term_passes(session):
    source = PT_HEADER + """
    nsp = -torch.log_softmax(nsp_logits, dim=-1)[torch.arange(len(nsp_labels)), nsp_labels].mean()
    return mlm_loss(mlm_logits, mlm_labels) + nsp
"""
    (r,) = _try(session, "pretraining_loss_answer", source)
    assert r.ok, r.error


@pytest.mark.parametrize("source, phrase", [
    ("    return (mlm_loss(mlm_logits, mlm_labels) + mlm_loss(nsp_logits, nsp_labels)) / 2\n", "averaged"),
    ("    return mlm_loss(mlm_logits, mlm_labels)\n", "NSP loss is missing"),
])
def test_wrong_pretraining_loss_is_rejected(session, source, phrase):
    (r,) = _try(session, "pretraining_loss_answer", PT_HEADER + source)
    assert not r.ok and r.ename == "AssertionError" and phrase in r.evalue, r.error


def test_pretraining_loss_shortcut_is_blocked(session):
    source = PT_HEADER + "    return mlm_loss(mlm_logits, mlm_labels) + F.cross_entropy(nsp_logits, nsp_labels)\n"
    (r,) = _try(session, "pretraining_loss_answer", source)
    assert not r.ok and r.ename == "ForbiddenCallError", r.error


# ----------------------------------------------------------------------------------------------------------
# Exercise 5: MaskedLMHead
# ----------------------------------------------------------------------------------------------------------
def mlm_head(forward="self.decoder(self.layer_norm(F.gelu(self.transform(h)))) + self.bias",
             tie="self.decoder.weight = word_embeddings.weight", extra=""):
    return f"""
class MaskedLMHead(nn.Module):
    def __init__(self, config, word_embeddings):
        super().__init__()
        self.transform = nn.Linear(config.hidden_size, config.hidden_size)
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        {tie}
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))
        {extra}

    def forward(self, h):
        return {forward}
"""


CORRECT_MLM_HEAD = {
    "tied through F.linear and a registered embedding": """
class MaskedLMHead(nn.Module):
    def __init__(self, config, word_embeddings):
        super().__init__()
        self.transform = nn.Linear(config.hidden_size, config.hidden_size)
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.word_embeddings = word_embeddings
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, h):
        return F.linear(self.layer_norm(F.gelu(self.transform(h))), self.word_embeddings.weight, self.bias)
""",
    "decoder with the bias tied as in transformers": mlm_head(
        forward="self.decoder(self.layer_norm(F.gelu(self.transform(h))))",
        extra="self.decoder.bias = self.bias").replace("bias=False", "bias=True"),
    "exact GELU by erf, matmul with .T": mlm_head(
        forward="(lambda z: self.layer_norm(0.5 * z * (1 + torch.erf(z / math.sqrt(2)))))(self.transform(h)) "
                "@ self.decoder.weight.T + self.bias"),
}

WRONG_MLM_HEAD = {
    "ReLU instead of GELU": (mlm_head(forward="self.decoder(self.layer_norm(torch.relu(self.transform(h)))) + self.bias"),
                             "ReLU"),
    "tanh GELU": (mlm_head(forward="self.decoder(self.layer_norm(F.gelu(self.transform(h), approximate='tanh'))) "
                                   "+ self.bias"), "tanh approximation"),
    "missing output bias": (mlm_head(forward="self.decoder(self.layer_norm(F.gelu(self.transform(h))))"),
                            "output bias is missing"),
    "LayerNorm before GELU": (mlm_head(forward="self.decoder(F.gelu(self.layer_norm(self.transform(h)))) + self.bias"),
                              "swapped"),
    "no LayerNorm": (mlm_head(forward="self.decoder(F.gelu(self.transform(h))) + self.bias"), "LayerNorm after the GELU"),
    "no transform": (mlm_head(forward="self.decoder(h) + self.bias"), "transform"),
    "untied decoder": (mlm_head(tie="pass"), "not tied"),
    "decoder with a copy of the embeddings": (mlm_head(tie="self.decoder.weight = nn.Parameter(word_embeddings.weight.clone())"),
                                              "not tied"),
    "decoder sharing storage, not the parameter": (
        mlm_head(tie="self.decoder.weight = nn.Parameter(word_embeddings.weight.data)"), "not tied"),
    "holds course_lib's head": (mlm_head(extra="self.inner = course_lib.model.MaskedLMHead(config, word_embeddings)",
                                         forward="self.inner(h)"), "switched off"),
}


@pytest.mark.parametrize("name", list(CORRECT_MLM_HEAD))
def test_any_correct_mlm_head_passes(session, name):
    for r in _try(session, "mlm_head_answer", CORRECT_MLM_HEAD[name]):
        assert r.ok, f"'{name}': {r.error}"


@pytest.mark.parametrize("name", list(WRONG_MLM_HEAD))
def test_wrong_mlm_head_is_rejected(session, name):
    source, phrase = WRONG_MLM_HEAD[name]
    (r,) = _try(session, "mlm_head_answer", source)
    assert not r.ok and r.ename in ("AssertionError", "ForbiddenCallError"), f"'{name}': {r.error}"
    assert phrase in r.evalue, f"'{name}': {r.error}"


# ----------------------------------------------------------------------------------------------------------
# Exercise 6: PreTrainingHeads
# ----------------------------------------------------------------------------------------------------------
def heads(nsp_input="pooled_output", mlm_input="sequence_output"):
    return f"""
class PreTrainingHeads(nn.Module):
    def __init__(self, config, word_embeddings):
        super().__init__()
        self.mlm = MaskedLMHead(config, word_embeddings)
        self.nsp = nn.Linear(config.hidden_size, 2)

    def forward(self, sequence_output, pooled_output):
        return self.mlm({mlm_input}), self.nsp({nsp_input})
"""


@pytest.mark.parametrize("nsp_input, phrase", [
    ("sequence_output.mean(1)", "mean of all token vectors"),
    ("sequence_output[:, 0]", "raw [CLS] hidden state"),
    ("pooled_output.flip(0)", "nsp_logits vs transformers'"),
])
def test_wrong_nsp_head_is_rejected(session, nsp_input, phrase):
    (r,) = _try(session, "pretraining_heads_answer", heads(nsp_input=nsp_input))
    assert not r.ok and r.ename == "AssertionError" and phrase in r.evalue, r.error


def test_mlm_head_on_the_pooled_vector_is_rejected(session):
    (r,) = _try(session, "pretraining_heads_answer", heads(mlm_input="pooled_output"))
    assert not r.ok and r.ename == "AssertionError" and "mlm_logits" in r.evalue, r.error


def test_heads_with_an_explicit_nsp_weight_pass(session):
    source = heads().replace("self.nsp(pooled_output)", "pooled_output @ self.nsp.weight.T + self.nsp.bias")
    (r,) = _try(session, "pretraining_heads_answer", source)
    assert r.ok, r.error


def test_heads_holding_transformers_heads_are_blocked(session):
    source = heads().replace("self.nsp = nn.Linear(config.hidden_size, 2)",
                             "self.nsp = nn.Linear(config.hidden_size, 2)\n        self.inner = hf_bert.BertPreTrainingHeads("
                             "course_lib.hf.config_to_transformers(config))")
    (r,) = _try(session, "pretraining_heads_answer", source)
    # the guard reads the class before it runs and names what it holds
    assert not r.ok and "holds `transformers.models.bert.modeling_bert.BertPreTrainingHeads`" in r.evalue, r.error


def test_solution_still_passes_at_the_end(session):
    for grades in GRADES.values():
        for g in grades:
            r = session.run_cell(g)
            assert r.ok, f"{g}: {r.error}"
