"""One source per reference answer: every exercise's solution (from the solutions notebook) and its course_lib twin
(the function the library itself runs, named in REFERENCES of test_reference_guard.py) give the same results on the
same inputs.

The pairs come from REFERENCES, so a new chapter's exercises join through their REFERENCES rows. INPUTS says how to
call each pair (a list of calls: positional and keyword arguments, made afresh for each side); classes are built
with the same arguments, the twin's weights are loaded into the solution's module, and their outputs on the same
input are compared. A twin without an entry in INPUTS fails `test_every_twin_has_inputs`.
"""
from __future__ import annotations

import ast
import copy
import importlib
import json
import math

import pytest
import torch

from notebook_utils import SOLUTIONS, exercises
from test_reference_guard import REFERENCES


def _g(seed):
    return torch.Generator().manual_seed(seed)


def _t(*shape, seed=0):
    return torch.randn(*shape, generator=_g(seed))


def _mask(batch, length, keep):
    """An attention mask (batch, length) of 1s then 0s, `keep[b]` ones in row b."""
    return torch.tensor([[1] * k + [0] * (length - k) for k in keep])


# (chapter, name) -> a function returning the calls: [(args, kwargs), ...]
INPUTS = {
    ("ch01_background", "bigram_log_probs"): lambda: [((torch.tensor([0, 1, 2, 1, 0, 3, 3, 1]), 5), {}),
                                                      ((torch.tensor([4, 4, 0, 2]), 6), {"alpha": 0.5})],
    ("ch01_background", "perplexity"): lambda: [((torch.log_softmax(_t(5, 5), -1), torch.tensor([0, 3, 1, 4, 2, 2])),
                                                 {})],
    ("ch01_background", "wordpiece_tokenize"): lambda: [
        ((word, {"un", "##aff", "##able", "play", "##ing", "##s", "a", "##b"}), {})
        for word in ("unaffable", "playings", "ab", "xyz", "a" * 120, "")],
    ("ch01_background", "bert_param_count"): lambda: [((30522, 768, 12, 3072), {}), ((8192, 256, 4, 1024), {}),
                                                      ((100, 16, 1, 64), {"max_position_embeddings": 32,
                                                                          "type_vocab_size": 1})],
    ("ch01_background", "adam_training_memory_bytes"): lambda: [((110_000_000,), {}), ((1000,), {"bytes_per_value": 2})],
    ("ch02_attention", "attention_scores"): lambda: [((_t(2, 5, 8), _t(2, 7, 8, seed=1)), {})],
    ("ch02_attention", "softmax"): lambda: [((_t(3, 6) * 30,), {}), ((_t(2, 4, 5),), {"dim": 1}),
                                           ((torch.tensor([[1e4, 0.0], [-1e4, -1e4 + 1.0]]),), {})],
    ("ch02_attention", "scaled_dot_product_attention"): lambda: [
        ((_t(2, 5, 8), _t(2, 6, 8, seed=1), _t(2, 6, 4, seed=2)), {}),
        ((_t(2, 5, 8), _t(2, 6, 8, seed=1), _t(2, 6, 4, seed=2)),
         {"mask": _mask(2, 6, (6, 3)).bool()[:, None, :]}),
        # a row with every key masked (a padding query under a causal + padding mask): the same answer, no NaN
        ((_t(2, 5, 8), _t(2, 6, 8, seed=1), _t(2, 6, 4, seed=2)),
         {"mask": _mask(2, 6, (6, 0)).bool()[:, None, :]})],
    ("ch02_attention", "self_attention"): lambda: [
        ((_t(2, 5, 8), _t(8, 4, seed=1), _t(8, 4, seed=2), _t(8, 3, seed=3)), {}),
        ((_t(2, 5, 8), _t(8, 4, seed=1), _t(8, 4, seed=2), _t(8, 3, seed=3)),
         {"mask": _mask(2, 5, (5, 2)).bool()[:, None, :]})],
    ("ch03_transformer", "split_heads"): lambda: [((_t(2, 5, 12), 3), {})],
    ("ch03_transformer", "merge_heads"): lambda: [((_t(2, 3, 5, 4),), {})],
    ("ch03_transformer", "padding_mask"): lambda: [((_mask(3, 6, (6, 2, 4)),), {})],
    ("ch03_transformer", "equivariance_gap"): lambda: [((lambda x: x.cumsum(0), _t(6, 3), torch.randperm(6, generator=_g(1))),
                                                        {}),
                                                       ((lambda x: x * 2, _t(6, 3), torch.randperm(6, generator=_g(2))),
                                                        {})],
    ("ch03_transformer", "sinusoidal_positions"): lambda: [((16, 8), {}), ((5, 6), {})],
    ("ch03_transformer", "layer_norm"): lambda: [((_t(2, 5, 8) * 3 + 1, _t(8, seed=1), _t(8, seed=2)), {}),
                                                 ((_t(4, 6), torch.ones(6), torch.zeros(6)), {"eps": 1e-5})],
    ("ch03_transformer", "gelu"): lambda: [((torch.linspace(-6, 6, 101),), {})],
    ("ch04_pretraining", "mask_tokens"): lambda: [
        ((torch.randint(5, 100, (4, 32), generator=_g(3)), torch.zeros(4, 32, dtype=torch.bool), 4, 100),
         {"generator": _g(7)}),
        ((torch.randint(5, 100, (2, 64), generator=_g(4)), torch.rand(2, 64, generator=_g(5)) < 0.2, 4, 100),
         {"mlm_probability": 0.3, "generator": _g(8)})],
    ("ch04_pretraining", "mlm_loss"): lambda: [((_t(2, 6, 11), torch.tensor([[-100, 3, -100, 0, 10, -100],
                                                                            [1, -100, -100, -100, -100, 2]])), {})],
    ("ch04_pretraining", "pretraining_loss"): lambda: [((_t(2, 6, 11), _t(2, 2, seed=1),
                                                         torch.tensor([[-100, 3, -100, 0, 10, -100], [1] + [-100] * 5]),
                                                         torch.tensor([0, 1])), {})],
    ("ch05_finetuning", "linear_warmup_decay"): lambda: [((step, 10, 100), {}) for step in (0, 1, 5, 10, 11, 50, 100)],
    ("ch05_finetuning", "accuracy"): lambda: [((_t(9, 2), torch.tensor([0, 1, 1, 0, 0, 1, 0, 1, 1])), {})],
    ("ch01_background", "fit_bigram_logits"): lambda: [((torch.tensor([0, 1, 0, 1, 1, 2]), 3), {"steps": 20}),
                                                       ((torch.tensor([3, 0, 2, 2, 1, 3, 0]), 5), {"steps": 5, "lr": 0.3})],
    ("ch06_decoder", "causal_mask"): lambda: [((1,), {}), ((5,), {})],
    ("ch06_decoder", "shift_right"): lambda: [((torch.tensor([[5, 6, 7], [8, 9, 10]]), 1), {}),
                                              ((torch.tensor([[4]]), 0), {})],
    ("ch07_generation", "sample_next"): lambda: [((_t(4, 10), 0.7), {"generator": _g(3)}),
                                                 ((_t(4, 10), 0), {}), ((_t(2, 6) * 5,), {"generator": _g(4)})],
    ("ch07_generation", "top_k_filter"): lambda: [((_t(3, 10), 4), {}), ((_t(2, 5), 9), {}), ((_t(2, 5), 1), {})],
    ("ch07_generation", "top_p_filter"): lambda: [((_t(3, 10), 0.5), {}), ((_t(2, 6) * 4, 0.9), {}),
                                                  ((_t(2, 6), 1.0), {})],
    ("ch07_generation", "kv_cache_bytes"): lambda: [((12, 768, 1024), {}),
                                                    ((32, 4096, 4096), {"batch_size": 2, "bytes_per_value": 4})],
    ("ch07_generation", "distinct_n"): lambda: [(([[1, 2, 3, 1, 2], [1, 2]], 2), {}), (([[]], 1), {}),
                                                (([[1, 2, 3]], 5), {}), (([["a", "b"], ["a", "b"]], 1), {})],
}

#: twins whose signature differs from the exercise's: how to call the twin with the exercise's arguments
TWIN_CALLS = {
    ("ch06_decoder", "causal_mask"): lambda f: lambda n, device=None: f(n, n, device=device),
}

#: twins whose comparison needs a model or training set-up: compared elsewhere, named here so that none is forgotten
#: (MultiHeadSelfAttention: test_model.py; EncoderLayer, SequenceClassifier: test_model.py parity with transformers;
#: freeze_encoder, fine_tune_step: test_finetune.py, which also checks that fine_tune, the loop `course finetune`
#: runs on fine_tune_step, trains as train() does)
#: BertEmbeddings, BertEncoder, BertModel, MaskedLMHead: the chapters' grade cells hold the solution to transformers'
#: modules with the same weights, and test_model.py course_lib's; DecoderLayer: ch06 against
#: torch.nn.TransformerDecoderLayer, test_seq2seq.py course_lib's against torch.nn.Transformer; greedy_translate
#: (ch06) and generate (ch07): their grade cells compare the answer token for token with these very twins)
COMPARED_ELSEWHERE = {("ch03_transformer", "MultiHeadSelfAttention"), ("ch03_transformer", "EncoderLayer"),
                      ("ch05_finetuning", "SequenceClassifier"), ("ch05_finetuning", "freeze_encoder"),
                      ("ch05_finetuning", "fine_tune_step"), ("ch03_transformer", "BertEmbeddings"),
                      ("ch03_transformer", "BertEncoder"), ("ch03_transformer", "BertModel"),
                      ("ch04_pretraining", "MaskedLMHead"), ("ch06_decoder", "DecoderLayer"),
                      ("ch06_decoder", "greedy_translate"), ("ch07_generation", "generate")}

PAIRS = sorted(key for key, reference in REFERENCES.items() if reference)


def _imports(source: str) -> str:
    """The top-level import statements of a cell (IPython magics: none)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return ""
    return "\n".join(ast.unparse(node) for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom)))


_NAMESPACES: dict[str, dict] = {}


def solution_namespace(chapter: str) -> dict:
    """The chapter's imports and its answer cells (with their solutions), run in order in one namespace."""
    if chapter not in _NAMESPACES:
        nb = json.loads((SOLUTIONS / chapter / f"{chapter}.ipynb").read_text())
        answers = {gid for ex in exercises(chapter) for gid in ex.answers}
        namespace: dict = {"__name__": f"solution_{chapter}"}
        for cell in nb["cells"]:
            source = "".join(cell["source"])
            gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
            if cell["cell_type"] == "code":
                code = source if gid in answers else _imports(source)
                exec(compile(code, f"<{chapter} {gid or 'imports'}>", "exec"), namespace)
        _NAMESPACES[chapter] = namespace
    return _NAMESPACES[chapter]


def twin(chapter: str, name: str):
    module, attr = REFERENCES[(chapter, name)].split(":")
    function = getattr(importlib.import_module(module), attr)
    adapt = TWIN_CALLS.get((chapter, name))
    return adapt(function) if adapt else function


def disagreement(a, b, where="the result") -> str | None:
    """None when `a` and `b` agree (tensors to 1e-6, NaN where both are NaN), else what differs."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)):
            return f"{where}: a {type(a).__name__} and a {type(b).__name__}"
        # the exercises ask for "a float tensor": float32 and float64 agree when their values do
        if a.shape != b.shape or (a.dtype != b.dtype and not (a.is_floating_point() and b.is_floating_point())):
            return f"{where}: shape/dtype {tuple(a.shape)} {a.dtype} vs {tuple(b.shape)} {b.dtype}"
        if not torch.allclose(a.double(), b.double(), atol=1e-6, rtol=1e-5, equal_nan=True):
            return f"{where}: values differ (largest gap {(a.double() - b.double()).abs().nan_to_num(math.inf).max()})"
        return None
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        if len(a) != len(b):
            return f"{where}: {len(a)} items vs {len(b)}"
        return next((d for i, (x, y) in enumerate(zip(a, b)) if (d := disagreement(x, y, f"{where}[{i}]"))), None)
    if isinstance(a, float) or isinstance(b, float):
        return None if math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9) or (a != a and b != b) else f"{where}: {a} vs {b}"
    return None if a == b else f"{where}: {a!r} vs {b!r}"


def _call(function, args, kwargs):
    try:
        return "returned", function(*copy.deepcopy(args), **copy.deepcopy(kwargs))
    except Exception as e:  # noqa: BLE001 - both sides must refuse the same input the same way
        return "raised", type(e).__name__


def test_every_twin_has_inputs():
    missing = [pair for pair in PAIRS if pair not in INPUTS and pair not in COMPARED_ELSEWHERE]
    assert not missing, f"add these to INPUTS (how to call the solution and its twin): {missing}"


@pytest.mark.parametrize("chapter, name", [pytest.param(*p, id="-".join(p)) for p in PAIRS if p in INPUTS])
def test_solution_and_library_twin_agree(chapter, name):
    solution, reference = solution_namespace(chapter)[name], twin(chapter, name)
    for i, (args, kwargs) in enumerate(INPUTS[(chapter, name)]()):
        got, want = _call(solution, args, kwargs), _call(reference, args, kwargs)
        problem = disagreement(got, want, f"call {i}")
        assert problem is None, (f"{chapter}'s solution of {name} and its twin {REFERENCES[(chapter, name)]} "
                                 f"disagree: {problem} (solution {got[0]}, twin {want[0]})")
