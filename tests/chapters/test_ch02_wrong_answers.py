"""Chapter 2 (self-attention): the grade cells reject typical wrong answers with a plain-words message,
fail on the release stubs, and accept every correct variant (einsum vs matmul, -inf vs -1e9 vs finfo.min, ...).

One kernel for the whole module (tests/support/notebook_utils.NotebookSession): it runs the notebook's setup,
test-helper and solution cells once; each test then swaps in a variant of one exercise, runs that exercise's
grade cell(s) (visible AND hidden tests, from the instructor source) and restores the solution.
"""
import pytest

from notebook_utils import chapter_path, grade_points, prepared_session

pytestmark = pytest.mark.slow

NOTEBOOK = chapter_path("ch02_attention")
ANSWERS = ["attention_scores", "softmax", "score_variance", "scaled_dot_product_attention", "self_attention"]
GRADES = {
    "attention_scores": ["test_attention_scores"],
    "softmax": ["test_softmax"],
    "score_variance": ["test_score_variance"],
    "scaled_dot_product_attention": ["test_sdpa", "test_sdpa_mask"],
    "self_attention": ["test_self_attention"],
}


@pytest.fixture(scope="module")
def session():
    yield from prepared_session(NOTEBOOK, ["setup", "test_helpers", *ANSWERS])


def _errors(session, answer_id, source):
    """(ename, evalue) or None for each grade cell of `answer_id`, with `source` in place of the solution."""
    out = []
    for test_id in GRADES[answer_id]:
        r = session.try_answer(answer_id, source, test_id)
        out.append(None if r.ok else (r.ename, r.evalue))
    return out


def test_points_and_ids():
    points = grade_points(NOTEBOOK)
    assert sum(points.values()) == 20, points
    assert sum(1 for gid in points if gid.startswith("written_")) >= 2


# (test id, exercise, wrong implementation, words the failure message must contain)
WRONG = [
    # ---- exercise 1: attention_scores
    ("scores K Q^T", "attention_scores", "def attention_scores(Q, K):\n    return K @ Q.transpose(-2, -1)",
     "not K @ Qᵀ"),
    ("scores already scaled", "attention_scores",
     "def attention_scores(Q, K):\n    return Q @ K.transpose(-2, -1) / math.sqrt(Q.shape[-1])", "already divided by √d_k"),
    ("scores K.T on a batch", "attention_scores", "def attention_scores(Q, K):\n    return Q @ K.T",
     "K.T reverses ALL dimensions"),
    ("scores call the reference", "attention_scores", "def attention_scores(Q, K):\n    return ref.attention_scores(Q, K)",
     "switched off"),
    # ---- exercise 2: softmax
    ("softmax without max-subtraction", "softmax",
     "def softmax(x, dim=-1):\n    e = x.exp()\n    return e / e.sum(dim=dim, keepdim=True)", "Subtract the maximum"),
    ("softmax ignores dim", "softmax",
     "def softmax(x, dim=-1):\n    e = (x - x.amax(-1, keepdim=True)).exp()\n    return e / e.sum(-1, keepdim=True)",
     "instead of dim=0"),
    ("softmax always over dim 0", "softmax",
     "def softmax(x, dim=-1):\n    e = (x - x.amax(0, keepdim=True)).exp()\n    return e / e.sum(0, keepdim=True)",
     "instead of dim=-1"),
    ("softmax subtracts the global max", "softmax",
     "def softmax(x, dim=-1):\n    e = (x - x.max()).exp()\n    return e / e.sum(dim=dim, keepdim=True)", "OWN maximum"),
    ("softmax sum without keepdim", "softmax",
     "def softmax(x, dim=-1):\n    e = (x - x.amax(dim=dim, keepdim=True)).exp()\n    return e / e.sum(dim=dim)",
     "keepdim=True"),
    ("softmax divides by the whole sum", "softmax",
     "def softmax(x, dim=-1):\n    e = (x - x.max()).exp()\n    return e / e.sum()", "sum over the whole tensor"),
    ("softmax changes its input", "softmax",
     "def softmax(x, dim=-1):\n    x -= x.amax(dim=dim, keepdim=True)\n    e = x.exp()\n"
     "    return e / e.sum(dim=dim, keepdim=True)", "in place"),
    ("softmax calls torch.softmax", "softmax", "def softmax(x, dim=-1):\n    return torch.softmax(x, dim=dim)",
     "switched off"),
    ("softmax calls log_softmax", "softmax", "def softmax(x, dim=-1):\n    return x.log_softmax(dim).exp()",
     "switched off"),
    ("softmax calls nn.Softmax", "softmax", "def softmax(x, dim=-1):\n    return torch.nn.Softmax(dim)(x)",
     "switched off"),
    # ---- exercise 3: score_variance
    ("variance not scaled", "score_variance",
     "def score_variance(d_k, num_samples=10000, generator=None):\n"
     "    s = (torch.randn(num_samples, d_k, generator=generator) * torch.randn(num_samples, d_k, generator=generator)).sum(-1)\n"
     "    return s.var().item(), s.var().item()", "forget to divide"),
    ("variance scaled by d_k", "score_variance",
     "def score_variance(d_k, num_samples=10000, generator=None):\n"
     "    s = (torch.randn(num_samples, d_k, generator=generator) * torch.randn(num_samples, d_k, generator=generator)).sum(-1)\n"
     "    return s.var().item(), (s / d_k).var().item()", "divided q·k by d_k"),
    ("standard deviation instead of variance", "score_variance",
     "def score_variance(d_k, num_samples=10000, generator=None):\n"
     "    s = (torch.randn(num_samples, d_k, generator=generator) * torch.randn(num_samples, d_k, generator=generator)).sum(-1)\n"
     "    return s.std().item(), (s / math.sqrt(d_k)).std().item()", "standard deviation"),
    ("products not summed", "score_variance",
     "def score_variance(d_k, num_samples=10000, generator=None):\n"
     "    p = torch.randn(num_samples, d_k, generator=generator) * torch.randn(num_samples, d_k, generator=generator)\n"
     "    return p.var().item(), (p / math.sqrt(d_k)).var().item()", "SUM over the d_k products"),
    ("variance divided by sqrt(d_k)", "score_variance",
     "def score_variance(d_k, num_samples=10000, generator=None):\n"
     "    s = (torch.randn(num_samples, d_k, generator=generator) * torch.randn(num_samples, d_k, generator=generator)).sum(-1)\n"
     "    return s.var().item(), s.var().item() / math.sqrt(d_k)", "VARIANCE by d_k"),
    ("generator ignored", "score_variance",
     "def score_variance(d_k, num_samples=10000, generator=None):\n"
     "    s = (torch.randn(num_samples, d_k) * torch.randn(num_samples, d_k)).sum(-1)\n"
     "    return s.var().item(), (s / math.sqrt(d_k)).var().item()", "generator=generator"),
    ("fixed seed inside", "score_variance",
     "def score_variance(d_k, num_samples=10000, generator=None):\n"
     "    g = torch.Generator().manual_seed(0)\n"
     "    s = (torch.randn(num_samples, d_k, generator=g) * torch.randn(num_samples, d_k, generator=g)).sum(-1)\n"
     "    return s.var().item(), (s / math.sqrt(d_k)).var().item()", "instead of fixing a seed"),
]

SDPA = """def scaled_dot_product_attention(Q, K, V, mask=None):
    d_k = Q.shape[-1]
    scores = {scores}
    {masking}
    A = {weights}
    {after}
    return {result}
"""


def sdpa(scores="Q @ K.transpose(-2, -1) / math.sqrt(d_k)",
         masking="scores = scores if mask is None else scores.masked_fill(~mask, float('-inf'))",
         weights="ref_softmax(scores)", after="pass", result="A @ V, A"):
    # the learner's own softmax may not be used by every variant; a local stable softmax keeps variants independent
    helper = ("def ref_softmax(s, dim=-1):\n    e = (s - s.amax(dim=dim, keepdim=True)).exp()\n"
              "    return e / e.sum(dim=dim, keepdim=True)\n")
    return helper + SDPA.format(scores=scores, masking=masking, weights=weights, after=after, result=result)


WRONG += [
    # ---- exercise 4 without a mask
    ("sdpa not scaled", "scaled_dot_product_attention", sdpa(scores="Q @ K.transpose(-2, -1)"), "without the scaling"),
    ("sdpa scaled by d_k", "scaled_dot_product_attention", sdpa(scores="Q @ K.transpose(-2, -1) / d_k"),
     "divided the scores by d_k"),
    ("sdpa scaled by sqrt(d_v)", "scaled_dot_product_attention",
     sdpa(scores="Q @ K.transpose(-2, -1) / math.sqrt(V.shape[-1])"), "√d_v"),
    ("sdpa softmax over queries", "scaled_dot_product_attention", sdpa(weights="ref_softmax(scores, dim=-2)"),
     "ran over the queries"),
    ("sdpa returns (A, Z)", "scaled_dot_product_attention", sdpa(result="A, A @ V"), "order (Z, A)"),
    ("sdpa returns only Z", "scaled_dot_product_attention", sdpa(result="A @ V"), "should return a tuple (Z, A)"),
    ("sdpa returns Z transposed", "scaled_dot_product_attention",
     sdpa(result="V.transpose(-2, -1) @ A.transpose(-2, -1), A"), "Z should have shape"),
    ("sdpa calls F.sdpa", "scaled_dot_product_attention",
     sdpa(result="F.scaled_dot_product_attention(Q, K, V, attn_mask=mask), A"), "switched off"),
    ("sdpa calls torch.softmax", "scaled_dot_product_attention", sdpa(weights="torch.softmax(scores, -1)"),
     "switched off"),
    # ---- exercise 4 with masks
    ("mask after softmax", "scaled_dot_product_attention",
     sdpa(masking="pass", after="A = A if mask is None else A * mask"), "AFTER the softmax"),
    ("mask multiplies the scores", "scaled_dot_product_attention",
     sdpa(masking="scores = scores if mask is None else scores * mask"), "multiplied the scores by the mask"),
    ("mask filled with 0", "scaled_dot_product_attention",
     sdpa(masking="scores = scores if mask is None else scores.masked_fill(~mask, 0.0)"), "exp(0) = 1 is not 0"),
    ("mask filled with a weak -10", "scaled_dot_product_attention",
     sdpa(masking="scores = scores if mask is None else scores.masked_fill(~mask, -10.0)"), "exactly 0"),
    ("mask transposed", "scaled_dot_product_attention",
     sdpa(masking="scores = scores if mask is None else scores.masked_fill(~mask.transpose(-2, -1), float('-inf'))"),
     "Use it as it is"),
    ("mask unsqueezed", "scaled_dot_product_attention",
     sdpa(masking="scores = scores if mask is None else scores.masked_fill(~mask.unsqueeze(-1), float('-inf'))"),
     "without transposing or unsqueezing"),
    ("square mask transposed", "scaled_dot_product_attention",
     sdpa(masking="scores = scores if mask is None else scores.masked_fill("
                  "~(mask.transpose(-2, -1) if mask.dim() >= 2 and mask.shape[-1] == mask.shape[-2] > 1 else mask), "
                  "float('-inf'))"), "wrong axis"),
    ("mask inverted (-inf)", "scaled_dot_product_attention",
     sdpa(masking="scores = scores if mask is None else scores.masked_fill(mask, float('-inf'))"),
     "True means 'may attend'"),
    ("mask inverted (-1e9)", "scaled_dot_product_attention",
     sdpa(masking="scores = scores if mask is None else scores.masked_fill(mask, -1e9)"), "True means 'may attend'"),
    ("mask by boolean indexing", "scaled_dot_product_attention",
     sdpa(masking="if mask is not None:\n        scores[~mask] = float('-inf')"), "boolean indexing"),
    # ---- exercise 5: self_attention
    ("weights transposed X @ W.T", "self_attention",
     "def self_attention(X, W_q, W_k, W_v, mask=None):\n"
     "    return scaled_dot_product_attention(X @ W_q.T, X @ W_k.T, X @ W_v.T, mask=mask)", "Q = X @ W_q"),
    ("weights transposed W.T @ X", "self_attention",
     "def self_attention(X, W_q, W_k, W_v, mask=None):\n"
     "    return scaled_dot_product_attention(W_q.T @ X, W_k.T @ X, W_v.T @ X, mask=mask)", "Q = X @ W_q"),
    ("square weights transposed", "self_attention",
     "def self_attention(X, W_q, W_k, W_v, mask=None):\n"
     "    t = lambda W: W.T if W.shape[0] == W.shape[1] else W\n"
     "    return scaled_dot_product_attention(X @ t(W_q), X @ t(W_k), X @ t(W_v), mask=mask)", "weights are transposed"),
    ("V = X", "self_attention",
     "def self_attention(X, W_q, W_k, W_v, mask=None):\n"
     "    return scaled_dot_product_attention(X @ W_q, X @ W_k, X, mask=mask)", "V = X @ W_v"),
    ("mask dropped", "self_attention",
     "def self_attention(X, W_q, W_k, W_v, mask=None):\n"
     "    return scaled_dot_product_attention(X @ W_q, X @ W_k, X @ W_v)", "masked keys"),
    ("self_attention calls the reference", "self_attention",
     "def self_attention(X, W_q, W_k, W_v, mask=None):\n    return ref.self_attention(X, W_q, W_k, W_v, mask)",
     "switched off"),
]


@pytest.mark.parametrize("answer_id, source, words", [w[1:] for w in WRONG], ids=[w[0] for w in WRONG])
def test_wrong_answer_is_rejected_in_plain_words(session, answer_id, source, words):
    errors = _errors(session, answer_id, source)
    failures = [e for e in errors if e is not None]
    assert failures, "a wrong implementation passed every grade cell"
    assert all(e[0] in ("AssertionError", "ForbiddenCallError") for e in failures), failures
    assert any(words in e[1] for e in failures), f"no failure message mentions {words!r}: {failures}"


CORRECT = [
    ("scores einsum", "attention_scores",
     "def attention_scores(Q, K):\n    return torch.einsum('...nd,...md->...nm', Q, K)"),
    ("scores mT", "attention_scores", "def attention_scores(Q, K):\n    return torch.matmul(Q, K.mT)"),
    ("scores broadcast-multiply", "attention_scores",
     "def attention_scores(Q, K):\n    return (Q.unsqueeze(-2) * K.unsqueeze(-3)).sum(-1)"),
    ("softmax logsumexp", "softmax",
     "def softmax(x, dim=-1):\n    return torch.exp(x - torch.logsumexp(x, dim=dim, keepdim=True))"),
    ("softmax max().values", "softmax",
     "def softmax(x, dim=-1):\n    m = x.max(dim=dim, keepdim=True).values\n    e = torch.exp(x - m)\n"
     "    return e / torch.sum(e, dim=dim, keepdim=True)"),
    ("softmax detached max", "softmax",
     "def softmax(x, dim=-1):\n    e = (x - x.detach().amax(dim=dim, keepdim=True)).exp()\n    return e / e.sum(dim, True)"),
    ("variance float64, unbiased=False", "score_variance",
     "def score_variance(d_k, num_samples=10000, generator=None):\n"
     "    q = torch.randn(num_samples, d_k, generator=generator, dtype=torch.float64)\n"
     "    k = torch.randn(num_samples, d_k, generator=generator, dtype=torch.float64)\n"
     "    s = torch.einsum('nd,nd->n', q, k)\n"
     "    return float(s.var(unbiased=False)), float((s / d_k ** 0.5).var(unbiased=False))"),
    ("variance independent samples, torch.normal", "score_variance",
     "def score_variance(d_k, num_samples=10000, generator=None):\n"
     "    draw = lambda: torch.normal(0.0, 1.0, size=(num_samples, d_k), generator=generator)\n"
     "    raw = (draw() * draw()).sum(-1)\n    scaled = (draw() * draw()).sum(-1) / math.sqrt(d_k)\n"
     "    return raw.var().item(), scaled.var().item()"),
    ("sdpa einsum, -1e9", "scaled_dot_product_attention",
     sdpa(scores="torch.einsum('...nd,...md->...nm', Q, K) / d_k ** 0.5",
          masking="scores = scores if mask is None else scores.masked_fill(mask == False, -1e9)")),
    ("sdpa finfo.min, torch.where", "scaled_dot_product_attention",
     sdpa(masking="scores = scores if mask is None else torch.where(mask, scores, torch.finfo(scores.dtype).min)")),
    ("sdpa -1e4 (original BERT)", "scaled_dot_product_attention",
     sdpa(masking="scores = scores if mask is None else scores + (~mask) * -10000.0")),
    ("sdpa renormalised after the softmax", "scaled_dot_product_attention",
     sdpa(masking="pass", after="A = A if mask is None else A * mask / (A * mask).sum(-1, keepdim=True)")),
    ("sdpa logsumexp, sqrt tensor", "scaled_dot_product_attention",
     sdpa(scores="Q @ K.transpose(-2, -1) / torch.sqrt(torch.tensor(float(d_k)))",
          weights="torch.exp(scores - torch.logsumexp(scores, dim=-1, keepdim=True))")),
    ("sdpa uses the learner's own functions", "scaled_dot_product_attention",
     sdpa(scores="attention_scores(Q, K) * d_k ** -0.5", weights="softmax(scores)")),
    ("self_attention einsum / F.linear", "self_attention",
     "def self_attention(X, W_q, W_k, W_v, mask=None):\n"
     "    Q = torch.einsum('...nd,dk->...nk', X, W_q)\n    K = F.linear(X, W_k.T)\n    V = torch.matmul(X, W_v)\n"
     "    return scaled_dot_product_attention(Q, K, V, mask)"),
]


@pytest.mark.parametrize("answer_id, source", [c[1:] for c in CORRECT], ids=[c[0] for c in CORRECT])
def test_correct_variant_passes(session, answer_id, source):
    assert _errors(session, answer_id, source) == [None] * len(GRADES[answer_id])
