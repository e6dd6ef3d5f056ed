"""Chapter 6 (the decoder): the grade cells reject typical wrong answers with a plain-words message, and accept other
correct implementations.

One kernel for the whole module (tests/support/notebook_utils.NotebookSession): it runs the notebook's setup, helper and
solution cells once; each test then swaps in a variant of one exercise, runs that exercise's grade cell (visible AND
hidden tests, from the instructor source) and restores the solution.
"""
import pytest

from notebook_utils import chapter_path, grade_points, prepared_session

pytestmark = pytest.mark.slow

NOTEBOOK = chapter_path("ch06_decoder")
GRADES = {  # answer cell -> its grade cell
    "ex1_causal_answer": "ex1_causal_tests",
    "ex2_influence_answer": "ex2_influence_tests",
    "ex3_shift_answer": "ex3_shift_tests",
    "ex4_lm_loss_answer": "ex4_lm_loss_tests",
    "ex5_cross_answer": "ex5_cross_tests",
    "ex6_layer_answer": "ex6_layer_tests",
    "ex7_greedy_answer": "ex7_greedy_tests",
}


@pytest.fixture(scope="module")
def session():
    yield from prepared_session(NOTEBOOK, ["setup", *list(GRADES)[:5], "attention_weights", *list(GRADES)[5:]])


def _error(session, answer_id, source):
    r = session.try_answer(answer_id, source, GRADES[answer_id])
    return None if r.ok else (r.ename, r.evalue)


def test_points_and_ids():
    points = grade_points(NOTEBOOK)
    assert sum(points.values()) == 24, points
    assert sum(p for gid, p in points.items() if gid.startswith("written_")) == 6


# ------------------------------------------------------------------------------------------------ exercise 1
CAUSAL = "def causal_mask(n, device=None):\n    return {}\n"


@pytest.mark.parametrize("body, words", [
    ("torch.ones(n, n, dtype=torch.bool, device=device).tril(-1)", "diagonal"),
    ("torch.ones(n, n, dtype=torch.bool, device=device).triu()", "upper triangle"),
    ("~torch.ones(n, n, dtype=torch.bool, device=device).tril()", "swapped"),
    ("torch.ones(n, n, device=device).tril()", "float"),
    ("torch.ones(n, n, dtype=torch.long, device=device).tril()", "bool tensor"),
    ("torch.ones(n, n, dtype=torch.bool).tril().to('meta') if device is not None else "
     "torch.ones(n, n, dtype=torch.bool).tril()", "device"),
    ("ref_attention.causal_mask(n, n, device)", "switched off"),
])
def test_causal_mask_mistakes(session, body, words):
    err = _error(session, "ex1_causal_answer", CAUSAL.format(body))
    assert err is not None, body
    assert words in err[1], err


@pytest.mark.parametrize("body", ["torch.ones(n, n, device=device).tril().bool()",
                                  "torch.tril(torch.ones(n, n, dtype=torch.bool, device=device))",
                                  "~torch.ones(n, n, dtype=torch.bool, device=device).triu(1)"])
def test_causal_mask_other_correct(session, body):
    assert _error(session, "ex1_causal_answer", CAUSAL.format(body)) is None


# ------------------------------------------------------------------------------------------------ exercise 2
def influence(inner="squared[i] += grad.pow(2).sum(dim=-1)", finish="squared.sqrt()", per_row=False, transpose=False):
    loop = ("    for i in range(n):\n"
            "        (grad,) = torch.autograd.grad(out[i].sum(), x, retain_graph=True)\n"
            "        squared[i] += grad.pow(2).sum(dim=-1)\n") if per_row else (
            "    for i in range(n):\n        for k in range(d):\n"
            "            (grad,) = torch.autograd.grad(out[i, k], x, retain_graph=True)\n"
            f"            {inner}\n")
    return ("def influence_matrix(layer, x):\n    x = x.detach().requires_grad_(True)\n    out = layer(x)\n"
            "    n, d = out.shape\n    squared = torch.zeros(n, x.shape[0])\n" + loop
            + f"    result = {finish}\n    return result.T if {transpose} else result\n")


@pytest.mark.parametrize("source, words", [
    (influence(transpose=True), "transposed"),
    (influence(per_row=True), "out[i].sum()"),
    (influence(inner="squared[i] += grad.abs().sum(dim=-1)", finish="squared"), "absolute values"),
    (influence(finish="squared"), "square root"),
    ("def influence_matrix(layer, x):\n    J = torch.autograd.functional.jacobian(layer, x)\n"
     "    return J.pow(2).sum(dim=(1, 3)).sqrt()", "switched off"),
    ("def influence_matrix(layer, x):\n    x.requires_grad_(True)\n    x.data.mul_(1.0 + 1e-3)\n"
     "    out = layer(x)\n    rows = []\n    for i in range(out.shape[0]):\n        sq = 0\n"
     "        for k in range(out.shape[1]):\n            (g,) = torch.autograd.grad(out[i, k], x, retain_graph=True)\n"
     "            sq = sq + g.pow(2).sum(-1)\n        rows.append(sq.sqrt())\n    return torch.stack(rows)",
     "changed x"),
])
def test_influence_mistakes(session, source, words):
    err = _error(session, "ex2_influence_answer", source)
    assert err is not None, source
    assert words in err[1], err


def test_influence_other_correct(session):
    # one backward pass per output number through vector-Jacobian products with a one-hot vector
    source = ("def influence_matrix(layer, x):\n    x = x.detach().requires_grad_(True)\n    out = layer(x)\n"
              "    n, d = out.shape\n    rows = []\n    for i in range(n):\n        blocks = []\n"
              "        for k in range(d):\n            v = torch.zeros_like(out)\n            v[i, k] = 1.0\n"
              "            (g,) = torch.autograd.grad(out, x, grad_outputs=v, retain_graph=True)\n"
              "            blocks.append(g)\n        rows.append(torch.stack(blocks).pow(2).sum(dim=(0, 2)).sqrt())\n"
              "    return torch.stack(rows)")
    assert _error(session, "ex2_influence_answer", source) is None


# ------------------------------------------------------------------------------------------------ exercise 3
SHIFT = "def shift_right(target_ids, start_id):\n{}\n"


@pytest.mark.parametrize("body, words", [
    ("    out = torch.roll(target_ids, -1, dims=1)\n    out[:, -1] = start_id\n    return out", "LEFT"),
    ("    return torch.roll(target_ids, 1, dims=1)", "wraps around"),
    ("    start = torch.full_like(target_ids[:, :1], start_id)\n    return torch.cat([start, target_ids], 1)",
     "n + 1"),
    ("    out = torch.zeros_like(target_ids)\n    out[:, 1:] = target_ids[:, :-1]\n    return out", "start_id"),
    ("    target_ids[:, 1:] = target_ids[:, :-1].clone()\n    target_ids[:, 0] = start_id\n    return target_ids",
     "in place"),
    ("    out = torch.cat([torch.full_like(target_ids[:, :1], start_id), target_ids[:, :-1]], 1)\n"
     "    return out.float()", "dtype"),
    ("    return toy.shift_right(target_ids, start_id)", "switched off"),
])
def test_shift_mistakes(session, body, words):
    err = _error(session, "ex3_shift_answer", SHIFT.format(body))
    assert err is not None, body
    assert words in err[1], err


def test_shift_other_correct(session):
    body = "    out = torch.roll(target_ids, 1, dims=1)\n    out[:, 0] = start_id\n    return out"
    assert _error(session, "ex3_shift_answer", SHIFT.format(body)) is None


# ------------------------------------------------------------------------------------------------ exercise 4
def lm(pred="logits[:, :-1]", target="input_ids[:, 1:]", mask="attention_mask[:, 1:]", reduce="mean",
       call="F.cross_entropy(p.reshape(-1, p.shape[-1]), t.reshape(-1), ignore_index=-100, reduction='{reduce}')"):
    return ("def lm_loss(logits, input_ids, attention_mask=None):\n"
            f"    p, t = {pred}, {target}\n"
            f"    if attention_mask is not None:\n        t = t.masked_fill({mask} == 0, -100)\n"
            f"    return {call.format(reduce=reduce)}\n")


@pytest.mark.parametrize("source, words", [
    (lm(pred="logits", target="input_ids", mask="attention_mask"), "no shift"),
    (lm(pred="logits[:, 1:]", target="input_ids[:, :-1]", mask="attention_mask[:, :-1]"), "wrong way"),
    (lm(mask="(attention_mask[:, 1:] * 0 + 1)"), "padding was counted"),
    (lm(reduce="sum"), "sum"),
    (lm(call="F.cross_entropy(p, t, ignore_index=-100)"), "axis 1"),
    ("def lm_loss(logits, input_ids, attention_mask=None):\n    p, t = logits[:, :-1], input_ids[:, 1:]\n"
     "    m = torch.ones_like(t) if attention_mask is None else attention_mask[:, 1:]\n"
     "    nll = -torch.log_softmax(p, -1).gather(-1, t[..., None])[..., 0]\n"
     "    return ((nll * m).sum(1) / m.sum(1)).mean()", "each row first"),
    ("def lm_loss(logits, input_ids, attention_mask=None):\n"
     "    return GPTLMHeadModel.next_token_loss(logits, input_ids, attention_mask)", "switched off"),
    ("def lm_loss(logits, input_ids, attention_mask=None):\n"
     "    p, t = logits[:, :-1], input_ids[:, 1:]\n"
     "    return torch.tensor(F.cross_entropy(p.reshape(-1, p.shape[-1]), t.reshape(-1)).item())", "gradient"),
])
def test_lm_loss_mistakes(session, source, words):
    err = _error(session, "ex4_lm_loss_answer", source)
    assert err is not None, source
    assert words in err[1], err


def test_lm_loss_other_correct(session):
    # the classes on axis 1 by a transpose, the mask as weights
    source = ("def lm_loss(logits, input_ids, attention_mask=None):\n    p, t = logits[:, :-1], input_ids[:, 1:]\n"
              "    per = F.cross_entropy(p.transpose(1, 2), t, reduction='none')\n"
              "    m = torch.ones_like(per) if attention_mask is None else attention_mask[:, 1:].to(per.dtype)\n"
              "    return (per * m).sum() / m.sum()")
    assert _error(session, "ex4_lm_loss_answer", source) is None


# ------------------------------------------------------------------------------------------------ exercise 5
def cross(q="decoder_x @ W_q", kv="encoder_out", mask="encoder_mask.bool()[:, None, :]", extra=""):
    return ("def cross_attention(decoder_x, encoder_out, W_q, W_k, W_v, encoder_mask=None):\n"
            f"    Q, K, V = {q}, {kv} @ W_k, {kv} @ W_v\n"
            f"    m = None if encoder_mask is None else {mask}\n{extra}"
            "    return scaled_dot_product_attention(Q, K, V, m)\n")


CAUSAL_EXTRA = ("    c = torch.ones(Q.shape[1], K.shape[1], dtype=torch.bool).tril()\n"
                "    m = c if m is None else m & c\n")


@pytest.mark.parametrize("source, words", [
    (cross(q="encoder_out @ W_q", kv="decoder_x"), "ENCODER"),
    (cross(extra=CAUSAL_EXTRA), "causal mask"),
    (cross(mask="None"), "ignored"),
    ("def cross_attention(decoder_x, encoder_out, W_q, W_k, W_v, encoder_mask=None):\n"
     "    Q, K, V = decoder_x @ W_q, encoder_out @ W_k, encoder_out @ W_v\n"
     "    S = Q @ K.transpose(-2, -1)\n"
     "    if encoder_mask is not None:\n        S = S.masked_fill(encoder_mask[:, None, :] == 0, float('-inf'))\n"
     "    A = torch.softmax(S, dim=-1)\n    return A @ V, A", "sqrt(d_k)"),
    ("def cross_attention(decoder_x, encoder_out, W_q, W_k, W_v, encoder_mask=None):\n"
     "    Q, K, V = decoder_x @ W_q, encoder_out @ W_k, encoder_out @ W_v\n"
     "    return F.scaled_dot_product_attention(Q, K, V), None", "switched off"),
])
def test_cross_attention_mistakes(session, source, words):
    err = _error(session, "ex5_cross_answer", source)
    assert err is not None, source
    assert words in err[1], err


def test_cross_attention_mask_on_queries(session):
    # the mask on the query axis can only be told apart where its shape fits (n = m): the hidden tests have such a case
    err = _error(session, "ex5_cross_answer", cross(mask="encoder_mask.bool()[:, :, None]"))
    assert err is not None
    assert "query" in err[1] or "(B, 1, m)" in err[1] or "padding" in err[1], err


def test_cross_attention_other_correct(session):
    source = ("def cross_attention(decoder_x, encoder_out, W_q, W_k, W_v, encoder_mask=None):\n"
              "    Q = torch.einsum('bnd,dk->bnk', decoder_x, W_q)\n    K, V = encoder_out @ W_k, encoder_out @ W_v\n"
              "    S = Q @ K.transpose(1, 2) / Q.shape[-1] ** 0.5\n"
              "    if encoder_mask is not None:\n"
              "        S = S.masked_fill(~encoder_mask.bool()[:, None, :], torch.finfo(S.dtype).min)\n"
              "    A = (S - S.amax(-1, keepdim=True)).exp()\n    A = A / A.sum(-1, keepdim=True)\n    return A @ V, A")
    assert _error(session, "ex5_cross_answer", source) is None


# ------------------------------------------------------------------------------------------------ exercise 6
def solution_of(session, gid):
    return session.nb.cells[session.index(gid)].source


@pytest.mark.parametrize("old, new, words", [
    ("future_hidden = causal_mask(x.shape[1], device=x.device)", "future_hidden = None", "not causal"),
    ("source_mask = None if memory_mask is None else memory_mask.bool()[:, None, None, :]", "source_mask = None",
     "ignored"),
    ("x = self.norm1(x + self.dropout1(self.attend(self.self_attn, x, x, future_hidden)))",
     "x = x + self.dropout1(self.attend(self.self_attn, self.norm1(x), self.norm1(x), future_hidden))", None),
    ("return self.norm3(x + self.dropout3(self.linear2(self.dropout(F.relu(self.linear1(x))))))",
     "return x + self.dropout3(self.linear2(self.dropout(F.relu(self.linear1(self.norm3(x))))))", "post-LN"),
    ("self.multihead_attn, x, memory, source_mask", "self.self_attn, x, memory, source_mask", None),
    ("self.multihead_attn, x, memory, source_mask", "self.multihead_attn, memory, x, source_mask", None),
    ("F.relu(self.linear1(x))", "F.gelu(self.linear1(x))", None),
    ("self.norm1 = nn.LayerNorm(hidden_size, eps=layer_norm_eps)", "self.norm_1 = nn.LayerNorm(hidden_size)",
     "do not load"),
])
def test_decoder_layer_mistakes(session, old, new, words):
    solution = solution_of(session, "ex6_layer_answer")
    assert old in solution, old
    if old.startswith("self.norm1 ="):
        solution = solution.replace("self.norm1(", "self.norm_1(")
    err = _error(session, "ex6_layer_answer", solution.replace(old, new))
    assert err is not None, new
    if words:
        assert words in err[1], err


def test_decoder_layer_built_in_is_switched_off(session):
    source = ("class DecoderLayer(nn.Module):\n"
              "    def __init__(self, hidden_size, num_heads, intermediate_size, dropout=0.1, layer_norm_eps=1e-5):\n"
              "        super().__init__()\n"
              "        self.inner = nn.TransformerDecoderLayer(hidden_size, num_heads, intermediate_size, dropout,\n"
              "                                                batch_first=True)\n\n"
              "    def forward(self, x, memory, memory_mask=None):\n        return self.inner(x, memory)\n")
    err = _error(session, "ex6_layer_answer", source)
    assert err is not None and "switched off" in err[1], err


# ------------------------------------------------------------------------------------------------ exercise 7
def greedy(session, old=None, new=None):
    solution = solution_of(session, "ex7_greedy_answer")
    if old is not None:
        assert old in solution, old
        solution = solution.replace(old, new)
    return solution


@pytest.mark.parametrize("old, new, words", [
    ("outputs = [[] for _ in range(src_ids.shape[0])]", "outputs = [[start_id] for _ in range(src_ids.shape[0])]",
     "begins with start_id"),
    ("                    if token == end_id:\n                        finished[row] = True\n"
     "                    else:\n                        outputs[row].append(token)",
     "                    outputs[row].append(token)\n                    if token == end_id:\n"
     "                        finished[row] = True", "end_id"),
    ("src_mask = (src_ids != model.config.pad_token_id).long()", "src_mask = None", "padding"),
    ("torch.full((src_ids.shape[0], 1), start_id,", "torch.full((src_ids.shape[0], 1), model.config.bos_token_id,",
     "start_id"),
    ("            if finished.all():\n", "            if finished.any():\n", None),
    ("model.generator(hidden[:, -1])", "model.generator(hidden[:, 0])", None),
    ("    return outputs", "    return torch.tensor([r + [0] * (12 - len(r)) for r in outputs])", "list of lists"),
])
def test_greedy_mistakes(session, old, new, words):
    err = _error(session, "ex7_greedy_answer", greedy(session, old, new))
    assert err is not None, new
    if words:
        assert words in err[1], err


def test_greedy_reference_is_switched_off(session):
    source = ("def greedy_translate(model, src_ids, max_len, start_id, end_id):\n"
              "    out = ref_seq2seq.greedy_search(model, src_ids, (src_ids != 0).long(), max_len)\n"
              "    return [[t for t in r[1:] if t not in (0, end_id)] for r in out.tolist()]")
    err = _error(session, "ex7_greedy_answer", source)
    assert err is not None and "switched off" in err[1], err


def test_greedy_other_correct(session):
    # the forward pass (model(...).logits) instead of encode/decode, a Python loop per row
    source = ("def greedy_translate(model, src_ids, max_len, start_id, end_id):\n    results = []\n"
              "    with torch.no_grad():\n        for row in range(src_ids.shape[0]):\n"
              "            src = src_ids[row:row + 1]\n            src = src[:, src[0] != model.config.pad_token_id]\n"
              "            target = [start_id]\n            for _ in range(max_len):\n"
              "                logits = model(src, torch.tensor([target])).logits\n"
              "                token = int(logits[0, -1].argmax())\n                if token == end_id:\n"
              "                    break\n                target.append(token)\n"
              "            results.append(target[1:])\n    return results\n")
    assert _error(session, "ex7_greedy_answer", source) is None
