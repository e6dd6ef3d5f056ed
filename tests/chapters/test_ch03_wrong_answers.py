"""Chapter 3 (the Transformer encoder): the grade cells reject typical wrong answers with a plain-words message,
fail on the release stubs, and accept other correct implementations.

One kernel for the whole module (tests/support/notebook_utils.NotebookSession): it runs the notebook's setup cell and
solution cells once; each test then swaps in a variant of one exercise, runs that exercise's grade cell (visible AND
hidden tests, from the instructor source) and restores the solution.
"""
import pytest

from notebook_utils import chapter_path, grade_points, prepared_session

pytestmark = pytest.mark.slow

NOTEBOOK = chapter_path("ch03_transformer")
GRADES = {  # answer cell -> its grade cell
    "ex1_heads_answer": "ex1_heads_tests",
    "ex2_mask_answer": "ex2_mask_tests",
    "ex3_mhsa_answer": "ex3_mhsa_tests",
    "ex4_gap_answer": "ex4_gap_tests",
    "ex5_sinusoid_answer": "ex5_sinusoid_tests",
    "ex6_layernorm_answer": "ex6_layernorm_tests",
    "ex7_gelu_answer": "ex7_gelu_tests",
    "ex8_layer_answer": "ex8_layer_tests",
    "ex9_embeddings_answer": "ex9_embeddings_tests",
    "ex10_bert_answer": "ex10_bert_tests",
}


@pytest.fixture(scope="module")
def session():
    # each answer, then its grade cell: later grade cells use the helpers of earlier ones (as in a grading run)
    yield from prepared_session(NOTEBOOK, ["setup", *(gid for pair in GRADES.items() for gid in pair)])


def _error(session, answer_id, source):
    r = session.try_answer(answer_id, source, GRADES[answer_id])
    return None if r.ok else (r.ename, r.evalue)


def test_points_and_ids():
    points = grade_points(NOTEBOOK)
    assert sum(points.values()) == 25, points
    assert sum(p for gid, p in points.items() if gid.startswith("written_")) == 5


# ------------------------------------------------------------------------------------------------ sources
SPLIT = "def split_heads(x, num_heads):\n    B, n, hd = x.shape\n    return {}\n"
MERGE = "def merge_heads(x):\n    B, h, n, d = x.shape\n    return {}\n"
SPLIT_OK = SPLIT.format("x.view(B, n, num_heads, hd // num_heads).transpose(1, 2)")
MERGE_OK = MERGE.format("x.transpose(1, 2).reshape(B, n, h * d)")


def mhsa(split="q.view(B, n, self.h, -1).transpose(1, 2)", scale="math.sqrt(hidden // self.h)",
         mask="scores = scores.masked_fill(~attention_mask.bool()[:, None, None, :], float('-inf'))",
         softmax_dim="-1", out="self.output(z)", init_extra="", names=("query", "key", "value", "output")):
    q, k, v, o = names
    return f"""
class MultiHeadSelfAttention(nn.Module):
    def __init__(self, hidden_size, num_heads):
        super().__init__()
        self.h = num_heads
        self.{q} = nn.Linear(hidden_size, hidden_size)
        self.{k} = nn.Linear(hidden_size, hidden_size)
        self.{v} = nn.Linear(hidden_size, hidden_size)
        self.{o} = nn.Linear(hidden_size, hidden_size)
        {init_extra}

    def forward(self, x, attention_mask=None):
        B, n, hidden = x.shape

        def heads(q):
            return {split}

        q, k, v = heads(self.{q}(x)), heads(self.{k}(x)), heads(self.{v}(x))
        scores = torch.einsum("bhqd,bhkd->bhqk", q, k) / {scale}
        if attention_mask is not None:
            {mask}
        weights = torch.softmax(scores, dim={softmax_dim})
        z = (weights @ v).transpose(1, 2).reshape(B, n, hidden)
        return {out}, weights
"""


def sinusoid(body):
    return f"def sinusoidal_positions(num_positions, dim):\n{body}"


SIN_PAIR = ("    pos = torch.arange(num_positions, dtype=torch.float64)[:, None]\n"
            "    j = torch.arange(dim)\n")


def layer_norm_src(body):
    return f"def layer_norm(x, weight, bias, eps=1e-12):\n{body}"


def encoder_layer(forward, init=None, returns="x"):
    init = init or """
        h = config.hidden_size
        self.attention = ref_attention.MultiHeadSelfAttention(h, config.num_heads, config.attention_probs_dropout_prob)
        self.attention_norm = nn.LayerNorm(h, eps=config.layer_norm_eps)
        self.intermediate = nn.Linear(h, config.intermediate_size)
        self.output = nn.Linear(config.intermediate_size, h)
        self.output_norm = nn.LayerNorm(h, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)"""
    return f"""
class EncoderLayer(nn.Module):
    def __init__(self, config):
        super().__init__(){init}

    def forward(self, x, attention_mask=None):
{forward}
        return {returns}
"""


POST_LN = """        a, _ = self.attention(x, attention_mask)
        x = self.attention_norm(x + self.dropout(a))
        x = self.output_norm(x + self.dropout(self.output(F.gelu(self.intermediate(x)))))"""


EMBEDDINGS_INIT = """
        h = config.hidden_size
        self.word_embeddings = nn.Embedding(config.vocab_size, h)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, h)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, h)
        self.layer_norm = nn.LayerNorm(h, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)"""
WORD, POSITION, SEGMENT = ("self.word_embeddings(input_ids)", "self.position_embeddings(positions)",
                           "self.token_type_embeddings(token_type_ids)")


def embeddings(returns, init=EMBEDDINGS_INIT):
    return f"""
class BertEmbeddings(nn.Module):
    def __init__(self, config):
        super().__init__(){init}

    def forward(self, input_ids, token_type_ids):
        positions = torch.arange(input_ids.shape[1])
        return {returns}
"""


EMBEDDINGS_OK = f"self.dropout(self.layer_norm({WORD} + {POSITION} + {SEGMENT}))"


def bert(pooled="torch.tanh(self.pooler(x[:, 0]))", layer_call="layer(x, attention_mask)",
         layers="nn.ModuleList(EncoderLayer(config) for _ in range(config.num_layers))", hidden="tuple(states)",
         types="token_type_ids"):
    return f"""
class BertEncoder(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.layers = {layers}

    def forward(self, x, attention_mask=None):
        states = [x]
        for layer in self.layers:
            x = {layer_call}
            states.append(x)
        return {hidden}


class BertModel(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.embeddings = BertEmbeddings(config)
        self.encoder = BertEncoder(config)
        self.pooler = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        hidden_states = self.encoder(self.embeddings(input_ids, {types}), attention_mask)
        x = hidden_states[-1]
        return x, {pooled}, hidden_states
"""


# (test id, answer cell, wrong implementation, words the failure message must contain)
WRONG = [
    # ---- exercise 1: split_heads / merge_heads
    ("split without transpose", "ex1_heads_answer",
     SPLIT.format("x.reshape(B, num_heads, n, hd // num_heads)") + MERGE_OK, "without a transpose"),
    ("split (d, h) order", "ex1_heads_answer",
     SPLIT.format("x.view(B, n, hd // num_heads, num_heads).permute(0, 3, 1, 2)") + MERGE_OK, "(d, h) instead of (h, d)"),
    ("split view(B, d, h, n)-style", "ex1_heads_answer",
     SPLIT.format("x.transpose(1, 2).reshape(B, hd // num_heads, num_heads, n).permute(0, 2, 3, 1)") + MERGE_OK,
     "holds other numbers"),
    ("merge without transpose", "ex1_heads_answer",
     SPLIT_OK + MERGE.format("x.reshape(B, n, h * d)"), "Bring the head axis"),
    ("merge (d, h) order", "ex1_heads_answer",
     SPLIT_OK + MERGE.format("x.permute(0, 2, 3, 1).reshape(B, n, h * d)"), "Bring the head axis"),
    ("split calls the reference", "ex1_heads_answer",
     "def split_heads(x, num_heads):\n    return ref_attention.split_heads(x, num_heads)\n" + MERGE_OK, "switched off"),
    # ---- exercise 2: padding_mask
    ("mask along the query axis", "ex2_mask_answer",
     "def padding_mask(attention_mask):\n    return attention_mask.bool()[:, None, :, None]", "QUERY axis"),
    ("mask with 3 dims", "ex2_mask_answer",
     "def padding_mask(attention_mask):\n    return attention_mask.bool()[:, None, :]", "should have shape (2, 1, 1, 4)"),
    ("mask not bool", "ex2_mask_answer",
     "def padding_mask(attention_mask):\n    return attention_mask[:, None, None, :]", "bool tensor"),
    ("mask inverted", "ex2_mask_answer",
     "def padding_mask(attention_mask):\n    return (attention_mask == 0)[:, None, None, :]", "True exactly where"),
    ("mask calls the reference", "ex2_mask_answer",
     "def padding_mask(attention_mask):\n    return ref_attention.padding_mask(attention_mask)", "switched off"),
    # ---- exercise 3: MultiHeadSelfAttention
    ("mhsa heads split (d, h)", "ex3_mhsa_answer", mhsa(split="q.view(B, n, -1, self.h).permute(0, 3, 1, 2)"),
     "every h-th dimension"),
    ("mhsa heads reshaped without transpose", "ex3_mhsa_answer", mhsa(split="q.reshape(B, self.h, n, -1)"),
     "per-head attention weights"),
    ("mhsa scaled by sqrt(hidden)", "ex3_mhsa_answer", mhsa(scale="math.sqrt(hidden)"), "instead of sqrt(head size)"),
    ("mhsa not scaled", "ex3_mhsa_answer", mhsa(scale="1.0"), "not divided by sqrt(head size)"),
    ("mhsa mask along queries", "ex3_mhsa_answer",
     mhsa(mask="scores = scores.masked_fill(~attention_mask.bool()[:, None, :, None], float('-inf'))"),
     "padded QUERIES (rows) instead of padded keys"),
    ("mhsa mask along queries, -1e9", "ex3_mhsa_answer",
     mhsa(mask="scores = scores.masked_fill(~attention_mask.bool()[:, None, :, None], -1e9)"),
     "padded keys receive attention weight"),
    ("mhsa mask ignored", "ex3_mhsa_answer", mhsa(mask="pass"), "padded keys receive attention weight"),
    ("mhsa softmax over queries", "ex3_mhsa_answer", mhsa(softmax_dim="-2"), "per-head attention weights"),
    ("mhsa without output projection", "ex3_mhsa_answer", mhsa(out="z"), "apply self.output"),
    ("mhsa fused qkv under other names", "ex3_mhsa_answer", mhsa(names=("q_proj", "k_proj", "v_proj", "output")),
     "attribute named `query`"),
    ("mhsa wraps nn.MultiheadAttention", "ex3_mhsa_answer",
     mhsa(init_extra="self.inner = nn.MultiheadAttention(hidden_size, num_heads, batch_first=True)"), "switched off"),
    ("mhsa subclasses the reference", "ex3_mhsa_answer",
     "class MultiHeadSelfAttention(ref_attention.MultiHeadSelfAttention):\n"
     "    def forward(self, x, attention_mask=None):\n"
     "        return super().forward(x, attention_mask, output_attentions=True)", "write your own module"),
    ("mhsa calls F.scaled_dot_product_attention", "ex3_mhsa_answer",
     mhsa(out="self.output(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(B, n, hidden))"),
     "switched off"),
    # ---- exercise 4: equivariance_gap
    ("gap without permuting f(x)", "ex4_gap_answer",
     "def equivariance_gap(f, x, perm):\n    return (f(x[:, perm]) - f(x)).abs().max().item()", "permute f(x) too"),
    ("gap with the inverse permutation", "ex4_gap_answer",
     "def equivariance_gap(f, x, perm):\n    return (f(x[:, perm]) - f(x)[:, torch.argsort(perm)]).abs().max().item()",
     "inverse permutation"),
    ("gap as a mean", "ex4_gap_answer",
     "def equivariance_gap(f, x, perm):\n    return (f(x[:, perm]) - f(x)[:, perm]).abs().mean().item()",
     "the gap should be"),
    ("gap calls the reference", "ex4_gap_answer",
     "def equivariance_gap(f, x, perm):\n    return ref_positions.equivariance_gap(f, x, perm)", "switched off"),
    # ---- exercise 5: sinusoidal_positions
    ("sin and cos swapped", "ex5_sinusoid_answer",
     sinusoid(SIN_PAIR + "    angle = pos / 10000 ** ((j - j % 2) / dim)\n"
              "    return torch.where(j % 2 == 0, torch.cos(angle), torch.sin(angle)).float()"), "swapped"),
    ("frequency from the dimension index", "ex5_sinusoid_answer",
     sinusoid(SIN_PAIR + "    angle = pos / 10000 ** (j / dim)\n"
              "    return torch.where(j % 2 == 0, torch.sin(angle), torch.cos(angle)).float()"), "PAIR index"),
    ("sines then cosines", "ex5_sinusoid_answer",
     sinusoid("    pos = torch.arange(num_positions, dtype=torch.float64)[:, None]\n"
              "    angle = pos / 10000 ** (torch.arange(0, dim, 2) / dim)\n"
              "    return torch.cat([torch.sin(angle), torch.cos(angle)], dim=-1).float()"), "first half"),
    ("exponent i/dim instead of 2i/dim", "ex5_sinusoid_answer",
     sinusoid(SIN_PAIR + "    angle = pos / 10000 ** ((j // 2) / dim)\n"
              "    return torch.where(j % 2 == 0, torch.sin(angle), torch.cos(angle)).float()"), "should be"),
    ("sinusoid calls the reference", "ex5_sinusoid_answer",
     sinusoid("    return ref_positions.sinusoidal_positions(num_positions, dim)"), "switched off"),
    # ---- exercise 6: layer_norm
    ("layer norm over dim 0", "ex6_layernorm_answer",
     layer_norm_src("    m = x.mean(0, keepdim=True)\n    v = x.var(0, keepdim=True, unbiased=False)\n"
                    "    return (x - m) / torch.sqrt(v + eps) * weight + bias"), "LAST dimension"),
    ("layer norm over dim -2", "ex6_layernorm_answer",
     layer_norm_src("    m = x.mean(-2, keepdim=True)\n    v = x.var(-2, keepdim=True, unbiased=False)\n"
                    "    return (x - m) / torch.sqrt(v + eps) * weight + bias"), "LAST dimension"),
    ("layer norm unbiased variance", "ex6_layernorm_answer",
     layer_norm_src("    m = x.mean(-1, keepdim=True)\n    return (x - m) / torch.sqrt(x.var(-1, keepdim=True) + eps)"
                    " * weight + bias"), "unbiased variance"),
    ("layer norm eps outside the sqrt", "ex6_layernorm_answer",
     layer_norm_src("    m = x.mean(-1, keepdim=True)\n"
                    "    return (x - m) / (x.std(-1, keepdim=True, unbiased=False) + eps) * weight + bias"),
     "INSIDE the square root"),
    ("layer norm ignores eps", "ex6_layernorm_answer",
     layer_norm_src("    m = x.mean(-1, keepdim=True)\n    v = ((x - m) ** 2).mean(-1, keepdim=True)\n"
                    "    return (x - m) / torch.sqrt(v + 1e-12) * weight + bias"), "use the eps argument"),
    ("layer norm without weight and bias", "ex6_layernorm_answer",
     layer_norm_src("    m = x.mean(-1, keepdim=True)\n    v = ((x - m) ** 2).mean(-1, keepdim=True)\n"
                    "    return (x - m) / torch.sqrt(v + eps)"), "is not what it should be"),
    ("layer norm calls F.layer_norm", "ex6_layernorm_answer",
     layer_norm_src("    return F.layer_norm(x, x.shape[-1:], weight, bias, eps)"), "switched off"),
    ("layer norm uses nn.LayerNorm", "ex6_layernorm_answer",
     layer_norm_src("    ln = nn.LayerNorm(x.shape[-1], eps=eps)\n"
                    "    return ln(x) * weight + bias"), "switched off"),
    # ---- exercise 7: gelu
    ("gelu tanh approximation", "ex7_gelu_answer",
     "def gelu(x):\n    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))",
     "tanh approximation"),
    ("gelu sigmoid approximation", "ex7_gelu_answer",
     "def gelu(x):\n    return x * torch.sigmoid(1.702 * x)", "sigmoid approximation"),
    ("gelu is relu", "ex7_gelu_answer", "def gelu(x):\n    return x.clamp(min=0)", "ReLU"),
    ("gelu erf without sqrt(2)", "ex7_gelu_answer",
     "def gelu(x):\n    return 0.5 * x * (1 + torch.erf(x))", "not what it should be"),
    ("gelu calls F.gelu", "ex7_gelu_answer", "def gelu(x):\n    return F.gelu(x)", "switched off"),
    ("gelu uses nn.GELU", "ex7_gelu_answer", "def gelu(x):\n    return nn.GELU()(x)", "switched off"),
    # ---- exercise 8: EncoderLayer
    ("layer pre-LN", "ex8_layer_answer", encoder_layer(
        "        a, _ = self.attention(self.attention_norm(x), attention_mask)\n"
        "        x = x + self.dropout(a)\n"
        "        x = x + self.dropout(self.output(F.gelu(self.intermediate(self.output_norm(x)))))"), "not a post-LN"),
    ("layer norm before the residual add", "ex8_layer_answer", encoder_layer(
        "        a, _ = self.attention(x, attention_mask)\n"
        "        x = x + self.attention_norm(self.dropout(a))\n"
        "        x = x + self.output_norm(self.dropout(self.output(F.gelu(self.intermediate(x)))))"), "not a post-LN"),
    ("layer without residuals", "ex8_layer_answer", encoder_layer(
        "        a, _ = self.attention(x, attention_mask)\n"
        "        x = self.attention_norm(self.dropout(a))\n"
        "        x = self.output_norm(self.dropout(self.output(F.gelu(self.intermediate(x)))))"), "residual"),
    ("layer with relu", "ex8_layer_answer", encoder_layer(POST_LN.replace("F.gelu", "torch.relu")), "exact GELU"),
    ("layer with tanh gelu", "ex8_layer_answer",
     encoder_layer(POST_LN.replace("F.gelu(self.intermediate(x))", "F.gelu(self.intermediate(x), approximate='tanh')")),
     "exact GELU"),
    ("layer ignores the mask", "ex8_layer_answer",
     encoder_layer(POST_LN.replace("self.attention(x, attention_mask)", "self.attention(x)")), "ignores attention_mask"),
    ("layer returns a tuple", "ex8_layer_answer", encoder_layer(POST_LN, returns="x, None"), "not a tuple"),
    ("layer without dropout", "ex8_layer_answer",
     encoder_layer(POST_LN.replace("self.dropout(a)", "a").replace(
         "self.dropout(self.output(F.gelu(self.intermediate(x))))", "self.output(F.gelu(self.intermediate(x)))")),
     "same output in training mode"),
    ("layer with other names", "ex8_layer_answer", encoder_layer(
        POST_LN.replace("attention_norm", "norm1").replace("output_norm", "norm2"),
        init="""
        h = config.hidden_size
        self.attention = ref_attention.MultiHeadSelfAttention(h, config.num_heads)
        self.norm1 = nn.LayerNorm(h, eps=config.layer_norm_eps)
        self.intermediate = nn.Linear(h, config.intermediate_size)
        self.output = nn.Linear(config.intermediate_size, h)
        self.norm2 = nn.LayerNorm(h, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)"""), "have no place in your layer"),
    ("layer wraps course_lib's layer", "ex8_layer_answer",
     "class EncoderLayer(nn.Module):\n    def __init__(self, config):\n        super().__init__()\n"
     "        self.inner = ref_model.EncoderLayer(config)\n\n"
     "    def forward(self, x, attention_mask=None):\n        return self.inner(x, attention_mask)[0]", "switched off"),
    # ---- exercise 9: BertEmbeddings
    ("embeddings without positions", "ex9_embeddings_answer",
     embeddings(f"self.dropout(self.layer_norm({WORD} + {SEGMENT}))"), "position embeddings are missing"),
    ("embeddings without segments", "ex9_embeddings_answer",
     embeddings(f"self.dropout(self.layer_norm({WORD} + {POSITION}))"), "segment embeddings are missing"),
    ("embeddings with segment 0 everywhere", "ex9_embeddings_answer",
     embeddings(f"self.dropout(self.layer_norm({WORD} + {POSITION} + "
                f"self.token_type_embeddings(torch.zeros_like(token_type_ids))))"), "segment 0"),
    ("LayerNorm before the sum", "ex9_embeddings_answer",
     embeddings(f"self.dropout(self.layer_norm({WORD}) + {POSITION} + {SEGMENT})"), "before the sum"),
    ("embeddings without LayerNorm", "ex9_embeddings_answer",
     embeddings(f"self.dropout({WORD} + {POSITION} + {SEGMENT})"), "LayerNorm is missing"),
    ("positions counted from 1", "ex9_embeddings_answer",
     embeddings(f"self.dropout(self.layer_norm({WORD} + self.position_embeddings(positions + 1) + {SEGMENT}))"),
     "should be"),
    ("dropout active in eval mode", "ex9_embeddings_answer",
     embeddings(f"F.dropout(self.layer_norm({WORD} + {POSITION} + {SEGMENT}), 0.1, training=True)"),
     "dropout is active in eval mode"),
    ("embeddings without dropout", "ex9_embeddings_answer",
     embeddings(f"self.layer_norm({WORD} + {POSITION} + {SEGMENT})"), "same output in training mode"),
    ("embeddings with other names", "ex9_embeddings_answer",
     embeddings(EMBEDDINGS_OK.replace("self.layer_norm", "self.norm"), EMBEDDINGS_INIT.replace("self.layer_norm", "self.norm")),
     "name the submodules"),
    ("embeddings subclass the reference", "ex9_embeddings_answer",
     "class BertEmbeddings(ref_model.BertEmbeddings):\n    pass\n", "switched off"),
    ("embeddings hold transformers' module", "ex9_embeddings_answer",
     "class BertEmbeddings(nn.Module):\n    def __init__(self, config):\n        super().__init__()\n"
     "        self.inner = hf_bert.BertEmbeddings(course_lib.hf.config_to_transformers(config))\n\n"
     "    def forward(self, input_ids, token_type_ids):\n        return self.inner(input_ids, token_type_ids)\n",
     # the guard reads the class before it runs and names what it holds
     "holds `transformers.models.bert.modeling_bert.BertEmbeddings`"),
    # ---- exercise 10: BertEncoder and BertModel
    ("pooler on the mean of the tokens", "ex10_bert_answer",
     bert(pooled="torch.tanh(self.pooler(x.mean(1)))"), "[CLS] token"),
    ("pooler without tanh", "ex10_bert_answer", bert(pooled="self.pooler(x[:, 0])"), "tanh is missing"),
    ("pooler on the embeddings' [CLS]", "ex10_bert_answer",
     bert(pooled="torch.tanh(self.pooler(hidden_states[0][:, 0]))"), "LAST layer"),
    ("attention mask not passed to the layers", "ex10_bert_answer", bert(layer_call="layer(x)"), "pass attention_mask"),
    ("the same layer N times", "ex10_bert_answer",
     bert(layers="nn.ModuleList([EncoderLayer(config)] * config.num_layers)"), "SAME layer object"),
    ("token_type_ids ignored", "ex10_bert_answer", bert(types="torch.zeros_like(input_ids)"), "hidden_states[0]"),
    ("hidden states without the embeddings' output", "ex10_bert_answer", bert(hidden="tuple(states[1:])"),
     "hidden_states should hold"),
    ("BERT holding course_lib's model", "ex10_bert_answer",
     bert().replace("self.pooler = nn.Linear(config.hidden_size, config.hidden_size)",
                    "self.pooler = nn.Linear(config.hidden_size, config.hidden_size)\n"
                    "        self.inner = ref_model.BertModel(config)"), "switched off"),
    ("encoder is course_lib's", "ex10_bert_answer",
     bert() + "\nBertEncoder = ref_model.BertEncoder\n", "switched off"),
]


@pytest.mark.parametrize("answer_id, source, words", [w[1:] for w in WRONG], ids=[w[0] for w in WRONG])
def test_wrong_answer_is_rejected_in_plain_words(session, answer_id, source, words):
    error = _error(session, answer_id, source)
    assert error is not None, "a wrong implementation passed the grade cell"
    assert error[0] in ("AssertionError", "ForbiddenCallError"), error
    assert words in error[1], f"the failure message does not mention {words!r}: {error}"


CORRECT = [
    ("split with unflatten / merge with flatten", "ex1_heads_answer",
     "def split_heads(x, num_heads):\n    return x.unflatten(-1, (num_heads, -1)).transpose(1, 2)\n"
     "def merge_heads(x):\n    return x.transpose(1, 2).flatten(2)\n"),
    ("split with contiguous().view", "ex1_heads_answer",
     "def split_heads(x, num_heads):\n    B, n, hd = x.shape\n"
     "    return x.view(B, n, num_heads, hd // num_heads).permute(0, 2, 1, 3).contiguous()\n"
     "def merge_heads(x):\n    B, h, n, d = x.shape\n    return x.transpose(1, 2).contiguous().view(B, n, h * d)\n"),
    ("mask with view and comparison", "ex2_mask_answer",
     "def padding_mask(attention_mask):\n    B, n = attention_mask.shape\n    return (attention_mask > 0).view(B, 1, 1, n)"),
    ("mhsa -1e9, own softmax, matmul", "ex3_mhsa_answer",
     mhsa(mask="scores = scores + (1.0 - attention_mask[:, None, None, :].float()) * -1e9")),
    ("mhsa with the learner's own helpers and chapter 2's attention", "ex3_mhsa_answer", """
class MultiHeadSelfAttention(nn.Module):
    def __init__(self, hidden_size, num_heads):
        super().__init__()
        self.num_heads = num_heads
        for name in ("query", "key", "value", "output"):
            setattr(self, name, nn.Linear(hidden_size, hidden_size))

    def forward(self, x, attention_mask=None):
        q, k, v = (split_heads(p(x), self.num_heads) for p in (self.query, self.key, self.value))
        mask = None if attention_mask is None else padding_mask(attention_mask)
        z, a = scaled_dot_product_attention(q, k, v, mask)
        return self.output(merge_heads(z)), a
"""),
    ("gap returning a 0-d tensor", "ex4_gap_answer",
     "def equivariance_gap(f, x, perm):\n    with torch.no_grad():\n"
     "        return torch.max(torch.abs(f(x.index_select(1, perm)) - f(x).index_select(1, perm)))"),
    ("sinusoid with Python loops", "ex5_sinusoid_answer", sinusoid(
        "    pe = torch.zeros(num_positions, dim)\n"
        "    for p in range(num_positions):\n"
        "        for i in range(dim // 2):\n"
        "            angle = p / 10000 ** (2 * i / dim)\n"
        "            pe[p, 2 * i], pe[p, 2 * i + 1] = math.sin(angle), math.cos(angle)\n"
        "    return pe")),
    ("sinusoid with stack/flatten", "ex5_sinusoid_answer", sinusoid(
        "    pos = torch.arange(num_positions).float()[:, None]\n"
        "    freq = 1.0 / (10000 ** (torch.arange(0, dim, 2).float() / dim))\n"
        "    angle = pos * freq\n"
        "    return torch.stack([angle.sin(), angle.cos()], dim=-1).flatten(1)")),
    ("layer norm with var_mean and E[x^2] - mean^2", "ex6_layernorm_answer", layer_norm_src(
        "    m = x.mean(-1, keepdim=True)\n    v = (x * x).mean(-1, keepdim=True) - m * m\n"
        "    return weight * (x - m) / (v + eps).sqrt() + bias")),
    ("layer norm with torch.var_mean(correction=0)", "ex6_layernorm_answer", layer_norm_src(
        "    v, m = torch.var_mean(x, dim=-1, keepdim=True, correction=0)\n"
        "    return (x - m) * torch.rsqrt(v + eps) * weight + bias")),
    ("gelu with ndtr", "ex7_gelu_answer", "def gelu(x):\n    return x * torch.special.ndtr(x)"),
    ("gelu with erfc", "ex7_gelu_answer", "def gelu(x):\n    return 0.5 * x * torch.erfc(-x / 2 ** 0.5)"),
    ("layer with the learner's own attention and LayerNorm modules", "ex8_layer_answer", """
class MyLayerNorm(nn.Module):
    def __init__(self, d, eps):
        super().__init__()
        self.weight, self.bias, self.eps = nn.Parameter(torch.ones(d)), nn.Parameter(torch.zeros(d)), eps

    def forward(self, x):
        return layer_norm(x, self.weight, self.bias, self.eps)


class EncoderLayer(nn.Module):
    def __init__(self, config):
        super().__init__()
        h = config.hidden_size
        self.attention = MultiHeadSelfAttention(h, config.num_heads)
        self.attention_norm = MyLayerNorm(h, config.layer_norm_eps)
        self.intermediate = nn.Linear(h, config.intermediate_size)
        self.output = nn.Linear(config.intermediate_size, h)
        self.output_norm = MyLayerNorm(h, config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, x, attention_mask=None):
        x = self.attention_norm(x + self.dropout(self.attention(x, attention_mask)[0]))
        return self.output_norm(x + self.dropout(self.output(gelu(self.intermediate(x)))))
"""),
]


CORRECT += [
    ("embeddings with .weight indexing", "ex9_embeddings_answer", embeddings(
        "self.dropout(self.layer_norm(self.word_embeddings.weight[input_ids] + "
        "self.position_embeddings.weight[:input_ids.shape[1]] + self.token_type_embeddings.weight[token_type_ids]))")),
    ("embeddings with the learner's own layer_norm", "ex9_embeddings_answer", embeddings(
        f"self.dropout(layer_norm({WORD} + {POSITION} + {SEGMENT}, self.layer_norm.weight, self.layer_norm.bias, "
        f"self.layer_norm.eps))")),
    # token for token the program of course_lib's BertEmbeddings, as a learner may well write it
    ("embeddings written exactly as course_lib's", "ex9_embeddings_answer", """
class BertEmbeddings(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids, token_type_ids):
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        x = self.word_embeddings(input_ids) + self.position_embeddings(positions) + self.token_type_embeddings(token_type_ids)
        return self.dropout(self.layer_norm(x))
"""),
    ("bert with a list comprehension and a loop", "ex10_bert_answer", bert(
        layers="nn.ModuleList([EncoderLayer(config) for _ in range(config.num_layers)])")),
    ("bert on course_lib's encoder layers, unpacked", "ex10_bert_answer", bert(
        layers="nn.ModuleList(ref_model.EncoderLayer(config) for _ in range(config.num_layers))",
        layer_call="layer(x, attention_mask)[0]")),
    ("bert whose encoder returns a list", "ex10_bert_answer", bert(hidden="states")),
]


@pytest.mark.parametrize("answer_id, source", [c[1:] for c in CORRECT], ids=[c[0] for c in CORRECT])
def test_correct_variant_passes(session, answer_id, source):
    assert _error(session, answer_id, source) is None
