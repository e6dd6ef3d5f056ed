"""course_lib.checks, the in-kernel test helpers: verdicts that a learner's code cannot change cheaply.

* check_close / check_shape / same keep private references to what they compare with, so reassigning
  torch.allclose, torch.isfinite, Tensor.double or builtins.isinstance does not change a verdict;
* they accept plain tensors only (a subclass whose comparisons lie, a float or a list where a tensor is asked
  for -> a clear message);
* the guard (check_answer / forbid(answer=...)) catches an answer that is, calls, holds or copies a forbidden
  function, and leaves honest answers alone;
* substitute() puts a course reference in place of an earlier exercise, and it keeps working inside forbid().
"""
import builtins
import inspect
import sys
import types

import pytest
import torch

import course_lib.attention as ref
from course_lib import checks
from course_lib.checks import (ForbiddenCallError, check_answer, check_close, check_shape, forbid, prerequisite,
                               require_tensor, same, substitute)


# --- private references ----------------------------------------------------------------------------------------
@pytest.fixture
def restore_torch():
    saved = {name: getattr(torch, name) for name in ("allclose", "isfinite", "equal", "as_tensor", "abs")}
    saved_double, saved_isinstance = torch.Tensor.double, builtins.isinstance
    yield
    for name, fn in saved.items():
        setattr(torch, name, fn)
    torch.Tensor.double = saved_double
    builtins.isinstance = saved_isinstance


def test_reassigned_allclose_does_not_change_the_verdict(restore_torch):
    torch.allclose = lambda *a, **k: True
    torch.isfinite = lambda t: torch.ones_like(t, dtype=torch.bool)
    with pytest.raises(AssertionError, match="not what it should be"):
        check_close(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 3.0]))
    with pytest.raises(AssertionError, match="NaN or inf"):
        check_close(torch.tensor([float("nan"), 2.0]), torch.tensor([1.0, 2.0]))
    assert not same(torch.tensor([1.0]), torch.tensor([2.0]))


def test_reassigned_tensor_methods_and_isinstance_do_not_change_the_verdict(restore_torch):
    torch.Tensor.double = lambda self: torch.zeros(self.shape, dtype=torch.float64)
    with pytest.raises(AssertionError, match="not what it should be"):
        check_close(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 3.0]))
    saved, error = builtins.isinstance, None
    builtins.isinstance = lambda obj, cls: True   # (undone at once: pytest itself needs the real one)
    try:
        check_close([1.0, 3.0], torch.tensor([1.0, 3.0]))
    except AssertionError as e:
        error = e
    finally:
        builtins.isinstance = saved
    assert error is not None and "should be a torch.Tensor" in str(error), error


def test_close_numbers_keeps_its_own_isclose():
    import math
    saved = math.isclose
    math.isclose = lambda *a, **k: True
    try:
        assert not checks.close_numbers(1.0, 2.0, rel_tol=1e-4)
    finally:
        math.isclose = saved
    assert checks.close_numbers(1.0, 1.0 + 1e-9, rel_tol=1e-6)
    assert not checks.close_numbers(torch.tensor(1.0), 1.0) and not checks.close_numbers(True, 1)


def test_comparisons_still_work():
    check_close(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.0 + 1e-7]))
    check_close(torch.tensor([1.0, 2.0], dtype=torch.float64), [1.0, 2.0])
    check_close(torch.nn.Parameter(torch.ones(2)), torch.ones(2))
    check_shape(torch.zeros(2, 3), (2, 3))
    assert same(torch.ones(2), torch.ones(2))
    with pytest.raises(AssertionError, match=r"largest difference 1 at index \(1,\)"):
        check_close(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 3.0]))
    with pytest.raises(AssertionError, match=r"shape \(2,\), but it has shape \(3,\)"):
        check_close(torch.zeros(3), torch.zeros(2))


# --- exact types -------------------------------------------------------------------------------------------------
class LyingTensor(torch.Tensor):
    def __eq__(self, other):
        return torch.ones(self.shape, dtype=torch.bool)

    def allclose(self, *args, **kwargs):
        return True


@pytest.mark.parametrize("value, phrase", [
    (torch.zeros(2).as_subclass(LyingTensor), "subclass of torch.Tensor"),
    (1.5, "Python float"),
    (3, "Python int"),
    ([1.0, 2.0], "Python list"),
    (None, "forget to `return`"),
    ("0.5", "should be a torch.Tensor"),
])
def test_only_plain_tensors_are_accepted(value, phrase):
    for check in (lambda: check_close(value, torch.zeros(2)), lambda: check_shape(value, (2,)),
                  lambda: require_tensor(value)):
        with pytest.raises(AssertionError, match=phrase.replace("(", r"\(").replace(")", r"\)")):
            check()
    assert not same(value, torch.zeros(2))


# --- the guard ----------------------------------------------------------------------------------------------------
def _learner(source, name, namespace=None):
    """Define `name` from `source` as a notebook would (globals = a fresh __main__-like dict)."""
    ns = {"__name__": "__main__", "torch": torch, "ref": ref} if namespace is None else namespace
    exec(compile(source, "<cell>", "exec"), ns)
    return ns[name]


HONEST = "def attention_scores(Q, K):\n    '''S = Q Kᵀ, my own.'''\n    return Q @ K.transpose(-2, -1)\n"


@pytest.mark.parametrize("kind, make", [
    ("is", lambda: ref.attention_scores),
    ("calls", lambda: _learner("def attention_scores(Q, K):\n    return ref.attention_scores(Q, K)",
                               "attention_scores")),
    ("holds (default argument)", lambda: _learner(
        "def attention_scores(Q, K, _f=ref.attention_scores):\n    return _f(Q, K)", "attention_scores")),
    ("holds (closure)", lambda: _learner(
        "def make():\n    f = ref.attention_scores\n    def attention_scores(Q, K):\n        return f(Q, K)\n"
        "    return attention_scores\nattention_scores = make()", "attention_scores")),
    ("holds (namespace)", lambda: _learner(
        "import types\nns = types.SimpleNamespace(f=ref.attention_scores)\n"
        "def attention_scores(Q, K):\n    return ns.f(Q, K)", "attention_scores")),
    ("rebuilt with its own globals", lambda: types.FunctionType(ref.attention_scores.__code__, {"torch": torch})),
    ("calls a rebuilt copy", lambda: _learner(
        "import types\n_copy = types.FunctionType(ref.attention_scores.__code__, {})\n"
        "def attention_scores(Q, K):\n    return _copy(Q, K)", "attention_scores")),
    ("pasted source, renamed", lambda: _learner(
        'def my_scores(Q, K):\n    """S = QKᵀ: (..., n, d_k) x (..., m, d_k) -> (..., n, m)."""\n'
        "    return Q @ K.transpose(-2, -1)\nattention_scores = my_scores", "attention_scores")),
    ("calls a helper that calls it", lambda: _learner(
        "def _helper(a, b):\n    return ref.attention_scores(a, b)\n"
        "def attention_scores(Q, K):\n    return _helper(Q, K)", "attention_scores")),
    ("functools.partial", lambda: _learner(
        "import functools\nattention_scores = functools.partial(ref.attention_scores)", "attention_scores")),
])
def test_guard_catches_reference_in_any_disguise(kind, make):
    answer = make()
    with pytest.raises(ForbiddenCallError, match="switched off") as info:
        check_answer(answer, ref.attention_scores)
    assert "write it yourself" in str(info.value)
    with pytest.raises(ForbiddenCallError):
        with forbid(ref.attention_scores, answer=answer):
            pass


def test_guard_reads_the_notebooks_own_functions_when_main_has_an_alias(monkeypatch):
    # in a kernel, multiprocessing lists __main__ again as __mp_main__: its functions are still the learner's
    main = types.ModuleType("__main__")
    monkeypatch.setitem(sys.modules, "__main__", main)
    monkeypatch.setitem(sys.modules, "__mp_main__", main)
    vars(main).update(torch=torch, ref=ref)
    answer = _learner("def attention_scores(Q, K, _f=ref.attention_scores):\n    return _f(Q, K)",
                      "attention_scores", vars(main))
    with pytest.raises(ForbiddenCallError, match="switched off"):
        check_answer(answer, ref.attention_scores)


def test_guard_tells_a_decorated_answer_from_a_decorated_reference():
    # @torch.no_grad() gives every decorated function the same wrapper code: that alone is not a copy
    reference = torch.no_grad()(ref.attention_scores)
    honest = _learner("@torch.no_grad()\n" + HONEST, "attention_scores")
    check_answer(honest, reference)
    copied = _learner("@torch.no_grad()\n" + inspect.getsource(ref.attention_scores), "attention_scores",
                      {"__name__": "__main__", "torch": torch})
    with pytest.raises(ForbiddenCallError, match="switched off"):
        check_answer(copied, reference)


def test_guard_catches_a_pasted_copy_of_a_longer_reference():
    import inspect
    source = inspect.getsource(ref.scaled_dot_product_attention).replace("def scaled_dot_product_attention",
                                                                         "def sdpa")
    ns = {"__name__": "__main__", "torch": torch, "math": __import__("math"), "nn": torch.nn,
          "attention_scores": ref.attention_scores, "softmax": ref.softmax}
    answer = _learner(source, "sdpa", ns)
    with pytest.raises(ForbiddenCallError, match="copy of"):
        check_answer(answer, ref.scaled_dot_product_attention)


def test_guard_catches_builtins_and_classes():
    softmax = _learner("def softmax(x, dim=-1):\n    return torch.softmax(x, dim)", "softmax")
    with pytest.raises(ForbiddenCallError, match="torch.softmax|softmax"):
        check_answer(softmax, torch.softmax)
    Sub = type("MultiHeadSelfAttention", (ref.MultiHeadSelfAttention,), {})
    with pytest.raises(ForbiddenCallError, match="subclass"):
        check_answer(Sub, ref.MultiHeadSelfAttention)
    with pytest.raises(ForbiddenCallError, match="itself"):
        check_answer(ref.MultiHeadSelfAttention, ref.MultiHeadSelfAttention)


def test_guard_leaves_honest_answers_alone():
    check_answer(_learner(HONEST, "attention_scores"), ref.attention_scores, torch.softmax)
    # an honest answer that uses other course functions, torch, and a name that torch also has (softmax)
    ns = {"__name__": "__main__", "torch": torch, "math": __import__("math")}
    _learner("def softmax(x, dim=-1):\n    e = (x - x.amax(dim, keepdim=True)).exp()\n"
             "    return e / e.sum(dim, keepdim=True)\n" + HONEST, "softmax", ns)
    sdpa = _learner("def sdpa(Q, K, V, mask=None):\n    s = attention_scores(Q, K) / math.sqrt(Q.shape[-1])\n"
                    "    s = s if mask is None else s.masked_fill(~mask, torch.finfo(s.dtype).min)\n"
                    "    A = softmax(s)\n    return A @ V, A", "sdpa", ns)
    check_answer(sdpa, torch.softmax, torch.nn.functional.softmax, ref.softmax, ref.scaled_dot_product_attention,
                 torch.nn.functional.scaled_dot_product_attention)
    # a class that uses torch modules
    Net = _learner("class Net(torch.nn.Module):\n    def __init__(self):\n        super().__init__()\n"
                   "        self.lin = torch.nn.Linear(2, 2)\n    def forward(self, x):\n        return self.lin(x)",
                   "Net")
    check_answer(Net, ref.MultiHeadSelfAttention, torch.nn.MultiheadAttention)


def test_forbid_blocks_calls_at_run_time_and_restores():
    with forbid(ref.attention_scores):
        with pytest.raises(ForbiddenCallError, match="switched off"):
            ref.attention_scores(torch.ones(1, 2), torch.ones(1, 2))
    assert ref.attention_scores(torch.ones(1, 2), torch.ones(1, 2)).shape == (1, 1)


def test_forbid_reaches_functions_where_they_live_and_static_methods():
    """torch.autograd.functional / torch.func functions and a class's static method are switched off too; the static
    method stays one (a paused reference still calls it through self), and all is restored afterwards."""
    from course_lib.checks import trusted
    from course_lib.gpt import GPTConfig, GPTLMHeadModel

    model = GPTLMHeadModel(GPTConfig.preset("tiny", vocab_size=50, max_position_embeddings=16))
    ids = torch.randint(0, 50, (1, 6), generator=torch.Generator().manual_seed(0))
    square = lambda x: x * x  # noqa: E731
    calls = {"torch.autograd.functional.jacobian": lambda: torch.autograd.functional.jacobian(square, torch.ones(2)),
             "torch.func.jacrev": lambda: torch.func.jacrev(square)(torch.ones(2)),
             "GPTLMHeadModel.next_token_loss": lambda: GPTLMHeadModel.next_token_loss(model(ids).logits, ids),
             "the model's own call": lambda: model(ids, labels=ids)}
    with forbid(torch.autograd.functional.jacobian, torch.func.jacrev, GPTLMHeadModel.next_token_loss):
        for what, call in calls.items():
            with pytest.raises(ForbiddenCallError, match="switched off"):
                call()
                pytest.fail(f"{what} was not switched off")
        assert trusted(lambda: model(ids, labels=ids).loss)().isfinite()
    assert isinstance(GPTLMHeadModel.__dict__["next_token_loss"], staticmethod)
    for call in calls.values():
        call()


# --- substitute ---------------------------------------------------------------------------------------------------
def test_substitute_puts_the_reference_in_and_works_inside_forbid():
    ns = {"__name__": "__main__", "torch": torch, "math": __import__("math")}
    _learner("def attention_scores(Q, K):\n    return K @ Q.transpose(-2, -1)\n"   # wrong: K Qᵀ
             "def softmax(x, dim=-1):\n    return x\n"                             # wrong
             "def self_attention(X, Wq, Wk, Wv):\n    return scaled_dot_product_attention(X @ Wq, X @ Wk, X @ Wv)\n"
             "def scaled_dot_product_attention(Q, K, V):\n    A = softmax(attention_scores(Q, K) / 2.0)\n"
             "    return A @ V, A", "self_attention", ns)
    X, W = torch.randn(2, 3, 4), torch.randn(4, 4)
    expected = ref.self_attention(X, W, W, W)
    forbidden = (torch.softmax, ref.softmax, ref.attention_scores, ref.scaled_dot_product_attention,
                 ref.self_attention)
    with substitute(ns, attention_scores=ref.attention_scores, softmax=ref.softmax,
                    scaled_dot_product_attention=ref.scaled_dot_product_attention):
        with forbid(*forbidden, answer=ns["self_attention"]):
            got = ns["self_attention"](X, W, W, W)
            with pytest.raises(ForbiddenCallError):  # still switched off outside the trusted stand-ins
                torch.softmax(X, -1)
    check_close(got[0], expected[0])
    assert ns["attention_scores"].__code__.co_code != ref.attention_scores.__code__.co_code  # restored


def test_prerequisite_prints_and_never_raises(capsys):
    def wrong():
        raise AssertionError("S is transposed")

    assert prerequisite("exercise 1's `attention_scores`", wrong) is False
    out = capsys.readouterr().out
    assert "exercise 1's `attention_scores` is wrong, fix it first; this exercise is graded with the reference" in out
    assert "S is transposed" in out

    def stub():
        raise NotImplementedError()

    assert prerequisite("exercise 1's `attention_scores`", stub) is False
    assert "not written yet" in capsys.readouterr().out
    assert prerequisite("exercise 1", lambda: None) is True
    assert capsys.readouterr().out == ""


def test_helpers_are_listed():
    assert set(checks.__all__) >= {"check_close", "check_shape", "forbid", "substitute", "prerequisite",
                                   "check_answer", "require_tensor"}
