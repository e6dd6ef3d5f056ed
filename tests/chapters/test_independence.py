"""One mistake costs one exercise: for every exercise that builds on an earlier one, the earlier answer wrong (a
classic mistake, or not written at all) and this one correct -> this one keeps its full points, and its visible
check says first which earlier exercise is wrong ("... is wrong, fix it first; this exercise is graded with the
reference").

While a dependent exercise's graded cells run the learner's function, the earlier exercises' names are
course_lib's references (course_lib.checks.substitute), so each exercise is graded on its own.
"""
import pytest

from notebook_utils import stub_sources

pytestmark = pytest.mark.slow

# chapter, earlier answer cell, a classic mistake there, its test cell, the dependent test cells, the note's words
DEPENDENT = [
    ("ch02_attention", "attention_scores", "def attention_scores(Q, K):\n    return K @ Q.transpose(-2, -1)",
     "test_attention_scores", ["test_sdpa", "test_sdpa_mask", "test_self_attention"],
     "exercise 1's `attention_scores` is wrong"),
    ("ch02_attention", "softmax",
     "def softmax(x, dim=-1):\n    e = x.exp()\n    return e / e.sum(dim=dim, keepdim=True)",
     "test_softmax", ["test_sdpa", "test_sdpa_mask", "test_self_attention"], "exercise 2's `softmax` is wrong"),
    ("ch02_attention", "softmax",
     "def softmax(x, dim=-1):\n    e = (x - x.amax(0, keepdim=True)).exp()\n    return e / e.sum(0, keepdim=True)",
     "test_softmax", ["test_sdpa", "test_sdpa_mask", "test_self_attention"], "exercise 2's `softmax` is wrong"),
    ("ch02_attention", "scaled_dot_product_attention",
     "def scaled_dot_product_attention(Q, K, V, mask=None):\n    scores = Q @ K.transpose(-2, -1)\n"
     "    if mask is not None:\n        scores = scores.masked_fill(~mask, float('-inf'))\n"
     "    A = torch.softmax(scores, dim=-1)\n    return A @ V, A",
     "test_sdpa", ["test_self_attention"], "exercise 4's `scaled_dot_product_attention` is wrong"),
    ("ch03_transformer", "ex1_heads_answer",
     "def split_heads(x, num_heads):\n    B, n, hidden = x.shape\n"
     "    return x.reshape(B, num_heads, n, hidden // num_heads)\n\n\n"
     "def merge_heads(x):\n    B, h, n, d = x.shape\n    return x.transpose(1, 2).reshape(B, n, h * d)",
     "ex1_heads_tests", ["ex3_mhsa_tests"], "exercise 1's `split_heads` is wrong"),
    ("ch03_transformer", "ex1_heads_answer",
     "def split_heads(x, num_heads):\n    B, n, hidden = x.shape\n"
     "    return x.reshape(B, n, num_heads, hidden // num_heads).transpose(1, 2)\n\n\n"
     "def merge_heads(x):\n    B, h, n, d = x.shape\n    return x.reshape(B, n, h * d)",
     "ex1_heads_tests", ["ex3_mhsa_tests"], "exercise 1's `merge_heads` is wrong"),
    ("ch03_transformer", "ex2_mask_answer",
     "def padding_mask(attention_mask):\n    return attention_mask.bool()[:, None, :, None]",
     "ex2_mask_tests", ["ex3_mhsa_tests"], "exercise 2's `padding_mask` is wrong"),
    ("ch04_pretraining", "mlm_loss_answer",
     "def mlm_loss(logits, labels):\n    V = logits.shape[-1]\n"
     "    lp = torch.log_softmax(logits.reshape(-1, V).float(), dim=-1)\n    y = labels.reshape(-1)\n"
     "    keep = y != -100\n    picked = lp[keep].gather(1, y[keep].unsqueeze(1)).squeeze(1)\n"
     "    return -picked.sum() / y.numel()",
     "mlm_loss_tests", ["pretraining_loss_tests"], "exercise 2's `mlm_loss` is wrong"),
    # ch03's encoder layer, written with the learner's own attention module, layer_norm and gelu
    ("ch03_transformer", "ex3_mhsa_answer", ("self.output(merge_heads(z))", "merge_heads(z)"),
     "ex3_mhsa_tests", ["ex8_layer_tests"], "exercise 3's `MultiHeadSelfAttention` is wrong"),
    ("ch03_transformer", "ex6_layernorm_answer",
     "def layer_norm(x, weight, bias, eps=1e-12):\n    mean = x.mean(-1, keepdim=True)\n"
     "    return (x - mean) / torch.sqrt(x.var(-1, keepdim=True) + eps) * weight + bias",
     "ex6_layernorm_tests", ["ex8_layer_tests"], "exercise 6's `layer_norm` is wrong"),
    ("ch03_transformer", "ex7_gelu_answer",
     "def gelu(x):\n    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))",
     "ex7_gelu_tests", ["ex8_layer_tests"], "exercise 7's `gelu` is wrong"),
    # ch03's whole BERT, on a wrong encoder layer or wrong embeddings
    ("ch03_transformer", "ex8_layer_answer", ("x = self.attention_norm(x + self.dropout(attended))",
                                              "x = x + self.attention_norm(self.dropout(attended))"),
     "ex8_layer_tests", ["ex10_bert_tests"], "exercise 8's `EncoderLayer` is wrong"),
    ("ch03_transformer", "ex9_embeddings_answer", ("+ self.position_embeddings(positions)", ""),
     "ex9_embeddings_tests", ["ex10_bert_tests"], "exercise 9's `BertEmbeddings` is wrong"),
    # ch04's heads, on a wrong MLM head
    ("ch04_pretraining", "mlm_head_answer", ("F.gelu(", "torch.relu("),
     "mlm_head_tests", ["pretraining_heads_tests"], "exercise 5's `MaskedLMHead` is wrong"),
    # ch06's decoder layer masks its self-attention with exercise 1's causal_mask
    ("ch06_decoder", "ex1_causal_answer",
     "def causal_mask(n, device=None):\n    return torch.ones(n, n, dtype=torch.bool, device=device).tril(-1)",
     "ex1_causal_tests", ["ex6_layer_tests"], "exercise 1's `causal_mask` is wrong"),
    # ch07's generation loop, built from the sampler and the two filters
    ("ch07_generation", "sample_next",
     "def sample_next(logits, temperature=1.0, generator=None):\n    return logits.argmax(dim=-1)",
     "test_sample_next", ["test_generate"], "exercise 1's `sample_next` is wrong"),
    ("ch07_generation", "top_k_filter",
     "def top_k_filter(logits, k):\n    kth = logits.topk(min(k + 1, logits.shape[-1]), dim=-1).values[..., -1:]\n"
     "    return logits.masked_fill(logits < kth, float('-inf'))",
     "test_top_k_filter", ["test_generate"], "exercise 2's `top_k_filter` is wrong"),
    ("ch07_generation", "top_p_filter",
     "def top_p_filter(logits, p):\n    probs = torch.softmax(logits, -1)\n"
     "    return logits.masked_fill(probs.cumsum(-1) - probs >= p, float('-inf'))",
     "test_top_p_filter", ["test_generate"], "exercise 3's `top_p_filter` is wrong"),
]
# a correct later answer that uses the earlier exercises (where the model solution does not)
LATER = {"ex8_layer_tests": ("ex8_layer_answer", """
class EncoderLayer(nn.Module):
    def __init__(self, config):
        super().__init__()
        h = config.hidden_size
        self.attention = MultiHeadSelfAttention(h, config.num_heads)
        self.attention_norm = nn.LayerNorm(h, eps=config.layer_norm_eps)
        self.intermediate = nn.Linear(h, config.intermediate_size)
        self.output = nn.Linear(config.intermediate_size, h)
        self.output_norm = nn.LayerNorm(h, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.eps = config.layer_norm_eps

    def forward(self, x, attention_mask=None):
        a, _ = self.attention(x, attention_mask)
        x = layer_norm(x + self.dropout(a), self.attention_norm.weight, self.attention_norm.bias, self.eps)
        f = self.output(gelu(self.intermediate(x)))
        return layer_norm(x + self.dropout(f), self.output_norm.weight, self.output_norm.bias, self.eps)
""")}
CASES = [(*row, variant) for row in DEPENDENT for variant in ("wrong", "stub")]


@pytest.mark.parametrize("chapter, earlier, wrong, earlier_test, later_tests, note, variant", CASES,
                         ids=[f"{c[0]}-{c[1]}-{i // 2}-{c[-1]}" for i, c in enumerate(CASES)])
def test_a_wrong_earlier_exercise_costs_only_itself(sessions, chapter, earlier, wrong, earlier_test, later_tests,
                                                   note, variant):
    session = sessions(chapter)
    if isinstance(wrong, tuple):   # (old, new): a one-place change of the model solution
        solution = session.nb.cells[session.index(earlier)].source
        assert wrong[0] in solution
        wrong = solution.replace(wrong[0], wrong[1])
    source = wrong if variant == "wrong" else stub_sources(chapter)[earlier]
    own = session.try_answer(earlier, source, earlier_test)
    assert not own.ok, f"the {variant} {earlier} should fail its own test {earlier_test}"
    for test_gid in later_tests:
        later = dict([LATER[test_gid]]) if test_gid in LATER else {}
        if later:   # first: the later answer written with the earlier exercises passes when they are right
            assert session.try_answers(later, test_gid).ok, f"{test_gid}: the variant in LATER should pass"
        r = session.try_answers({earlier: source, **later}, test_gid)
        assert r.ok, (f"{test_gid} lost its points because {earlier} is {variant} (the exercise under test is "
                      f"correct): {r.error}")
        expected = note if variant == "wrong" else note.replace("is wrong", "is not written yet")
        assert expected in r.text, f"{test_gid}: its visible check should say {expected!r} first; it printed:\n{r.text}"
