"""Chapter 7 (generating text): the grade cells reject classic wrong answers with a plain-words message and accept
every correct variant: any valid sampler (torch.multinomial, the inverse CDF, the Gumbel-max trick), topk or sort,
a generation loop with or without the decorator form of no_grad, and so on.

The sampler's checks are statistical (20,000 draws per distribution, each count within a band that a correct sampler
leaves with probability below FALSE_ALARM = 1e-6 per check), so a correct sampler written another way passes with
near certainty, and with these fixed seeds it passes deterministically.

One kernel for the whole module (tests/support/notebook_utils.prepared_session): setup, test helpers and the solutions
once; each test swaps in one variant, runs that exercise's grade cell (visible AND hidden tests) and restores the
solution.
"""
import pytest

from notebook_utils import chapter_path, grade_points, prepared_session

pytestmark = pytest.mark.slow

NOTEBOOK = chapter_path("ch07_generation")
ANSWERS = ["sample_next", "top_k_filter", "top_p_filter", "generate", "attend_with_cache", "kv_cache_bytes",
           "distinct_n"]
GRADES = {name: f"test_{name}" for name in ANSWERS}


@pytest.fixture(scope="module")
def session():
    yield from prepared_session(NOTEBOOK, ["setup", "test_helpers", *ANSWERS])


def _error(session, answer_id, source):
    r = session.try_answer(answer_id, source, GRADES[answer_id])
    return None if r.ok else (r.ename, r.evalue)


def test_points_and_ids():
    points = grade_points(NOTEBOOK)
    assert sum(points.values()) == 24, points
    assert sum(v for gid, v in points.items() if gid.startswith("written_")) == 6
    assert {f"test_{name}" for name in ANSWERS} <= set(points)


SAMPLE = "def sample_next(logits, temperature=1.0, generator=None):\n"
TOPK = "def top_k_filter(logits, k):\n"
TOPP = "def top_p_filter(logits, p):\n"
CACHE = "def attend_with_cache(q_t, k_t, v_t, cache):\n"
BYTES = "def kv_cache_bytes(num_layers, hidden_size, num_tokens, batch_size=1, bytes_per_value=2):\n"
DISTINCT = "def distinct_n(texts, n):\n"
GENERATE = '''def generate(model, input_ids, max_new_tokens, temperature=1.0, top_k=None, top_p=None, eos_id=None,
             generator=None):
    tokens = input_ids
    finished = torch.zeros(tokens.shape[0], dtype=torch.bool)
    with torch.no_grad():
        for _ in range({steps}):
            logits = model({context}).logits[:, -1].float()
            if temperature == 0:
                next_token = sample_next(logits, 0)
            else:
                {filters}
                next_token = sample_next(logits, 1.0, {generator})
            {eos}
            tokens = torch.cat([{keep}, next_token[:, None]], dim=1)
            {stop}
    return tokens
'''


def generate_variant(steps="max_new_tokens", context="tokens", generator="generator", keep="tokens",
                     filters="logits = logits / temperature\n                if top_k is not None:\n"
                             "                    logits = top_k_filter(logits, top_k)\n"
                             "                if top_p is not None:\n                    logits = top_p_filter(logits, top_p)",
                     eos="if eos_id is not None:\n                next_token = next_token.masked_fill(finished, eos_id)\n"
                         "                finished |= next_token == eos_id",
                     stop="if finished.all():\n                break"):
    return GENERATE.format(steps=steps, context=context, generator=generator, keep=keep, filters=filters, eos=eos,
                           stop=stop)


def attend_variant(append="keys, values = (k_t, v_t) if cache is None else (torch.cat([cache[0], k_t], -2), "
                          "torch.cat([cache[1], v_t], -2))",
                   scores="q_t @ keys.transpose(-2, -1) / math.sqrt(q_t.shape[-1])", dim="-1",
                   result="torch.softmax(scores, dim={dim}) @ values, (keys, values)"):
    return (CACHE + f"    {append}\n    scores = {scores}\n    return {result.format(dim=dim)}\n")


# (test id, exercise, wrong implementation, words the failure message must contain)
WRONG = [
    # ---- exercise 1: sample_next
    ("sampler multiplies by T", "sample_next",
     SAMPLE + "    if temperature == 0:\n        return logits.argmax(-1)\n"
              "    return torch.multinomial(torch.softmax(logits * temperature, -1), 1, generator=generator).squeeze(-1)",
     "multiplied the logits by the temperature"),
    ("sampler ignores T", "sample_next",
     SAMPLE + "    if temperature == 0:\n        return logits.argmax(-1)\n"
              "    return torch.multinomial(torch.softmax(logits, -1), 1, generator=generator).squeeze(-1)",
     "temperature has no effect"),
    ("sampler is greedy", "sample_next", SAMPLE + "    return logits.argmax(-1)", "always return the most likely"),
    ("sampler is uniform", "sample_next",
     SAMPLE + "    if temperature == 0:\n        return logits.argmax(-1)\n"
              "    return torch.randint(0, logits.shape[-1], (logits.shape[0],), generator=generator)",
     "equally often"),
    ("sampler ignores the generator", "sample_next",
     SAMPLE + "    if temperature == 0:\n        return logits.argmax(-1)\n"
              "    return torch.multinomial(torch.softmax(logits / temperature, -1), 1).squeeze(-1)",
     "generator"),
    ("sampler keeps a dimension", "sample_next",
     SAMPLE + "    if temperature == 0:\n        return logits.argmax(-1, keepdim=True)\n"
              "    return torch.multinomial(torch.softmax(logits / temperature, -1), 1, generator=generator)",
     "should have shape"),
    ("sampler divides by T = 0", "sample_next",
     SAMPLE + "    return torch.multinomial(torch.softmax(logits / temperature, -1), 1, generator=generator).squeeze(-1)",
     "raised"),
    ("sampler returns floats", "sample_next",
     SAMPLE + "    if temperature == 0:\n        return logits.argmax(-1).float()\n"
              "    return torch.multinomial(torch.softmax(logits / temperature, -1), 1, generator=generator)"
              ".squeeze(-1).float()", "torch.long"),
    ("sampler softmax over the batch", "sample_next",
     SAMPLE + "    if temperature == 0:\n        return logits.argmax(-1)\n"
              "    return torch.multinomial(torch.softmax(logits / temperature, 0), 1, generator=generator).squeeze(-1)",
     "raised"),
    ("sampler exp without the max", "sample_next",
     SAMPLE + "    if temperature == 0:\n        return logits.argmax(-1)\n"
              "    e = (logits / temperature).exp()\n"
              "    return torch.multinomial(e / e.sum(-1, keepdim=True), 1, generator=generator).squeeze(-1)",
     "raised"),
    ("sampler calls the reference", "sample_next", SAMPLE + "    return ref.sample_next(logits, temperature, generator)",
     "switched off"),
    # ---- exercise 2: top_k_filter
    ("top-k keeps k + 1", "top_k_filter",
     TOPK + "    kth = logits.sort(dim=-1, descending=True).values[..., min(k, logits.shape[-1] - 1):][..., :1]\n"
            "    return logits.masked_fill(logits < kth, float('-inf'))", "one more than k"),
    ("top-k along dim 0", "top_k_filter",
     TOPK + "    kth = logits.topk(min(k, logits.shape[0]), dim=0).values[-1:]\n"
            "    return logits.masked_fill(logits < kth, float('-inf'))", "COLUMN"),
    ("top-k sorted values", "top_k_filter",
     TOPK + "    s = logits.sort(dim=-1, descending=True).values\n"
            "    return torch.where(torch.arange(logits.shape[-1]) < k, s, torch.full_like(s, float('-inf')))",
     "sorted order"),
    ("top-k in place", "top_k_filter",
     TOPK + "    kth = logits.topk(min(k, logits.shape[-1]), dim=-1).values[..., -1:]\n"
            "    return logits.masked_fill_(logits < kth, float('-inf'))", "in place"),
    ("top-k zeros instead of -inf", "top_k_filter",
     TOPK + "    kth = logits.topk(min(k, logits.shape[-1]), dim=-1).values[..., -1:]\n"
            "    return logits.masked_fill(logits < kth, 0.0)", "not -inf"),
    ("top-k k > V crashes", "top_k_filter",
     TOPK + "    kth = logits.topk(k, dim=-1).values[..., -1:]\n"
            "    return logits.masked_fill(logits < kth, float('-inf'))", "raised"),
    ("top-k with transformers", "top_k_filter",
     TOPK + "    return transformers.TopKLogitsWarper(top_k=k)(None, logits.clone())", "switched off"),
    ("top-k calls the reference", "top_k_filter", TOPK + "    return ref.top_k_filter(logits, k)", "switched off"),
    # ---- exercise 3: top_p_filter
    ("top-p drops the crossing token", "top_p_filter",
     TOPP + "    s, order = logits.sort(dim=-1, descending=True)\n    c = torch.softmax(s, -1).cumsum(-1)\n"
            "    drop = c > p\n    drop[..., 0] = False\n"
            "    return logits.masked_fill(drop.scatter(-1, order, drop), float('-inf'))", "crosses p is missing"),
    ("top-p unsorted cumsum", "top_p_filter",
     TOPP + "    probs = torch.softmax(logits, -1)\n"
            "    return logits.masked_fill(probs.cumsum(-1) - probs >= p, float('-inf'))", "vocabulary order"),
    ("top-p on logits", "top_p_filter",
     TOPP + "    s, order = logits.sort(dim=-1, descending=True)\n    before = s.cumsum(-1) - s\n"
            "    drop = before >= p\n    return logits.masked_fill(drop.scatter(-1, order, drop), float('-inf'))",
     "added up logits"),
    ("top-p returns probabilities", "top_p_filter",
     TOPP + "    s, order = logits.sort(dim=-1, descending=True)\n    probs = torch.softmax(s, -1)\n"
            "    drop = probs.cumsum(-1) - probs >= p\n"
            "    return torch.softmax(logits, -1).masked_fill(drop.scatter(-1, order, drop), float('-inf'))",
     "keep their logits"),
    ("top-p forgets to unsort", "top_p_filter",
     TOPP + "    s, order = logits.sort(dim=-1, descending=True)\n    probs = torch.softmax(s, -1)\n"
            "    return logits.masked_fill(probs.cumsum(-1) - probs >= p, float('-inf'))", "nucleus is positions"),
    ("top-p with transformers", "top_p_filter",
     TOPP + "    return transformers.TopPLogitsWarper(top_p=p)(None, logits.clone())", "switched off"),
    ("top-p calls the reference", "top_p_filter", TOPP + "    return ref.top_p_filter(logits, p)", "switched off"),
    # ---- exercise 4: generate
    ("generate returns only the new tokens", "generate",
     generate_variant().replace("    return tokens", "    return tokens[:, input_ids.shape[1]:]"), "should have shape"),
    ("generate reads only the last token", "generate", generate_variant(context="tokens[:, -1:]"), "differs"),
    ("generate one step too many", "generate", generate_variant(steps="max_new_tokens + 1"), "should have shape"),
    ("generate filters before the temperature", "generate",
     generate_variant(filters="if top_k is not None:\n                    logits = top_k_filter(logits, top_k)\n"
                              "                if top_p is not None:\n                    logits = top_p_filter(logits, top_p)\n"
                              "                logits = logits / temperature"), "temperature first"),
    ("generate ignores eos", "generate", generate_variant(eos="pass", stop="pass"), "eos"),
    ("generate never stops early", "generate", generate_variant(stop="pass"), "should have shape"),
    ("generate ignores the generator", "generate", generate_variant(generator="None"), "same seed"),
    ("generate calls the reference", "generate",
     "def generate(model, input_ids, max_new_tokens, temperature=1.0, top_k=None, top_p=None, eos_id=None, "
     "generator=None):\n    return ref.generate(model, input_ids, max_new_tokens, do_sample=temperature > 0, "
     "temperature=temperature or 1.0, top_k=top_k, top_p=top_p, eos_token_id=eos_id, generator=generator, "
     "use_cache=False)", "switched off"),
    # ---- exercise 5: attend_with_cache
    ("cache: no scaling", "attend_with_cache", attend_variant(scores="q_t @ keys.transpose(-2, -1)"), "not scaled"),
    ("cache: attends before appending", "attend_with_cache",
     CACHE + "    if cache is None:\n        return v_t, (k_t, v_t)\n"
             "    scores = q_t @ cache[0].transpose(-2, -1) / math.sqrt(q_t.shape[-1])\n"
             "    z = torch.softmax(scores, -1) @ cache[1]\n"
             "    return z, (torch.cat([cache[0], k_t], -2), torch.cat([cache[1], v_t], -2))", "BEFORE attending"),
    ("cache: replaced, not appended", "attend_with_cache", attend_variant(append="keys, values = k_t, v_t"),
     "cached keys after step 2"),
    ("cache: concatenated on the heads", "attend_with_cache",
     attend_variant(append="keys, values = (k_t, v_t) if cache is None else (torch.cat([cache[0], k_t], 1), "
                           "torch.cat([cache[1], v_t], 1))"), "cached keys"),
    ("cache: new token first", "attend_with_cache",
     attend_variant(append="keys, values = (k_t, v_t) if cache is None else (torch.cat([k_t, cache[0]], -2), "
                           "torch.cat([v_t, cache[1]], -2))"), "append them at the end"),
    ("cache: softmax over the query axis", "attend_with_cache", attend_variant(dim="-2"),
     "against full causal attention"),
    ("cache: returns the old cache", "attend_with_cache",
     attend_variant(result="torch.softmax(scores, dim={dim}) @ values, cache"), "tuple (keys, values)"),
    # ---- exercise 6: kv_cache_bytes
    ("bytes: keys only", "kv_cache_bytes",
     BYTES + "    return num_layers * hidden_size * num_tokens * batch_size * bytes_per_value", "AND a value"),
    ("bytes: no layers", "kv_cache_bytes",
     BYTES + "    return 2 * hidden_size * num_tokens * batch_size * bytes_per_value", "number of layers"),
    ("bytes: bits", "kv_cache_bytes",
     BYTES + "    return 2 * num_layers * hidden_size * num_tokens * batch_size * bytes_per_value * 8", "bits"),
    ("bytes: no batch", "kv_cache_bytes",
     BYTES + "    return 2 * num_layers * hidden_size * num_tokens * bytes_per_value", "batch size"),
    ("bytes: a float", "kv_cache_bytes",
     BYTES + "    return 2.0 * num_layers * hidden_size * num_tokens * batch_size * bytes_per_value", "Python int"),
    ("bytes: in GiB", "kv_cache_bytes",
     BYTES + "    return 2 * num_layers * hidden_size * num_tokens * batch_size * bytes_per_value // 2 ** 30",
     "should be"),
    # ---- exercise 7: distinct_n
    ("distinct across texts", "distinct_n",
     DISTINCT + "    t = [x for text in texts for x in text]\n    g = [tuple(t[i:i + n]) for i in range(len(t) - n + 1)]\n"
                "    return len(set(g)) / len(g) if g else 0.0", "span two texts"),
    ("distinct per text, averaged", "distinct_n",
     DISTINCT + "    scores = []\n    for t in texts:\n        g = [tuple(t[i:i + n]) for i in range(len(t) - n + 1)]\n"
                "        if g:\n            scores.append(len(set(g)) / len(g))\n"
                "    return sum(scores) / len(scores) if scores else 0.0", "per text"),
    ("distinct over tokens", "distinct_n",
     DISTINCT + "    g = [tuple(t[i:i + n]) for t in texts for i in range(len(t) - n + 1)]\n"
                "    tokens = sum(len(t) for t in texts)\n    return len(set(g)) / tokens if tokens else 0.0",
     "not of tokens"),
    ("distinct orderless", "distinct_n",
     DISTINCT + "    g = [frozenset(t[i:i + n]) for t in texts for i in range(len(t) - n + 1)]\n"
                "    return len(set(g)) / len(g) if g else 0.0", "ordered tuple"),
    ("distinct divides by zero", "distinct_n",
     DISTINCT + "    g = [tuple(t[i:i + n]) for t in texts for i in range(len(t) - n + 1)]\n"
                "    return len(set(g)) / len(g)", "raised"),
    ("distinct returns a tensor", "distinct_n",
     DISTINCT + "    g = [tuple(t[i:i + n]) for t in texts for i in range(len(t) - n + 1)]\n"
                "    return torch.tensor(len(set(g)) / len(g)) if g else torch.tensor(0.0)", "Python float"),
    ("distinct calls the reference", "distinct_n", DISTINCT + "    return ref.distinct_n(texts, n)", "switched off"),
]


@pytest.mark.parametrize("answer_id, source, words", [w[1:] for w in WRONG], ids=[w[0] for w in WRONG])
def test_wrong_answer_is_rejected_in_plain_words(session, answer_id, source, words):
    error = _error(session, answer_id, source)
    assert error is not None, "a wrong implementation passed the grade cell"
    assert error[0] in ("AssertionError", "ForbiddenCallError"), error
    assert words.lower() in error[1].lower(), f"the failure message does not mention {words!r}: {error}"


CORRECT = [
    ("sampler inverse CDF", "sample_next",
     SAMPLE + "    if temperature == 0:\n        return logits.argmax(dim=-1)\n"
              "    cdf = torch.softmax(logits.double() / temperature, -1).cumsum(-1)\n"
              "    u = torch.rand(logits.shape[0], 1, generator=generator, dtype=torch.float64) * cdf[:, -1:]\n"
              "    return torch.searchsorted(cdf, u).squeeze(-1).clamp(max=logits.shape[-1] - 1)"),
    ("sampler Gumbel-max", "sample_next",
     SAMPLE + "    if temperature == 0:\n        return logits.argmax(dim=-1)\n"
              "    u = torch.rand(logits.shape, generator=generator, dtype=torch.float64).clamp_min(1e-300)\n"
              "    return (logits.double() / temperature - torch.log(-torch.log(u))).argmax(dim=-1)"),
    ("sampler exponential races", "sample_next",
     SAMPLE + "    if not temperature:\n        return torch.max(logits, dim=-1).indices\n"
              "    e = torch.empty(logits.shape, dtype=torch.float64).exponential_(generator=generator)\n"
              "    return (torch.softmax(logits.double() / temperature, -1) / e).argmax(-1)"),
    ("top-k sort + scatter", "top_k_filter",
     TOPK + "    k = min(k, logits.shape[-1])\n    values, order = logits.sort(dim=-1, descending=True)\n"
            "    drop = torch.arange(logits.shape[-1]) >= k\n"
            "    return logits.masked_fill(drop.expand_as(order).scatter(-1, order, drop.expand_as(order)), float('-inf'))"),
    ("top-k where + kthvalue", "top_k_filter",
     TOPK + "    V = logits.shape[-1]\n    if k >= V:\n        return logits.clone()\n"
            "    kth = torch.kthvalue(logits, V - k + 1, dim=-1, keepdim=True).values\n"
            "    return torch.where(logits >= kth, logits, torch.tensor(float('-inf'), dtype=logits.dtype))"),
    ("top-p ascending like transformers", "top_p_filter",
     TOPP + "    s, order = logits.sort(dim=-1)\n    c = torch.softmax(s, -1).cumsum(-1)\n    drop = c <= 1 - p\n"
            "    drop[..., -1] = False\n    return logits.masked_fill(drop.scatter(-1, order, drop), float('-inf'))"),
    ("top-p shifted mask", "top_p_filter",
     TOPP + "    s, order = torch.sort(logits, dim=-1, descending=True)\n    c = s.softmax(-1).cumsum(-1)\n"
            "    drop = c > p\n    drop[..., 1:] = drop[..., :-1].clone()\n    drop[..., 0] = False\n"
            "    return logits.masked_fill(drop.scatter(-1, order, drop), float('-inf'))"),
    ("generate with the decorator and a list", "generate",
     "@torch.no_grad()\ndef generate(model, input_ids, max_new_tokens, temperature=1.0, top_k=None, top_p=None, "
     "eos_id=None, generator=None):\n    out = [input_ids]\n    done = torch.zeros(len(input_ids), dtype=torch.bool)\n"
     "    for _ in range(max_new_tokens):\n        logits = model(torch.cat(out, 1)).logits[:, -1]\n"
     "        if temperature > 0:\n            logits = logits / temperature\n"
     "            logits = logits if top_k is None else top_k_filter(logits, top_k)\n"
     "            logits = logits if top_p is None else top_p_filter(logits, top_p)\n"
     "            new = sample_next(logits, 1.0, generator=generator)\n        else:\n"
     "            new = sample_next(logits, temperature=0)\n"
     "        if eos_id is not None:\n            new = torch.where(done, torch.full_like(new, eos_id), new)\n"
     "            done = done | (new == eos_id)\n        out.append(new.unsqueeze(1))\n"
     "        if eos_id is not None and bool(done.all()):\n            break\n    return torch.cat(out, 1)"),
    ("cache with F.scaled_dot_product_attention", "attend_with_cache",
     CACHE + "    if cache is not None:\n        k_t, v_t = torch.cat((cache[0], k_t), dim=2), torch.cat((cache[1], v_t), dim=2)\n"
             "    return F.scaled_dot_product_attention(q_t, k_t, v_t), (k_t, v_t)"),
    ("cache einsum", "attend_with_cache",
     attend_variant(scores="torch.einsum('bhqd,bhkd->bhqk', q_t, keys) * q_t.shape[-1] ** -0.5",
                    result="(torch.einsum('bhqk,bhkd->bhqd', torch.softmax(scores, dim={dim}), values), "
                           "(keys, values))")),
    ("bytes int()", "kv_cache_bytes",
     BYTES + "    per_token = 2 * num_layers * hidden_size * bytes_per_value\n"
             "    return int(per_token * num_tokens * batch_size)"),
    ("distinct with a Counter of ints", "distinct_n",
     DISTINCT + "    c = Counter()\n    for t in texts:\n        c.update(tuple(t[i:i + n]) for i in range(len(t) - n + 1))\n"
                "    total = sum(c.values())\n    return float(len(c) / total) if total else 0.0"),
]


@pytest.mark.parametrize("answer_id, source", [c[1:] for c in CORRECT], ids=[c[0] for c in CORRECT])
def test_correct_variant_passes(session, answer_id, source):
    assert _error(session, answer_id, source) is None
