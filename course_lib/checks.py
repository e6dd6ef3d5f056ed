"""Helpers for the notebooks' autograder test cells: readable comparisons and a guard against shortcuts.

A learner who is asked to write softmax should not pass by calling `torch.softmax` (or the course's own
reference). Three pieces work together:

* :func:`forbid` swaps such functions out while the learner's code runs (the error it raises says what to do
  instead); with ``answer=`` it first checks the learner's answer itself (:func:`check_answer`): an answer
  that *is* a forbidden function (``from course_lib.attention import attention_scores``), *holds* one (a
  default argument, a closure, a namespace it reads), or *copies* one (a function rebuilt from the reference's
  code object, or its source pasted) fails before it runs.
* :func:`substitute` puts course_lib's references in place of the earlier exercises an exercise builds on,
  so that one mistake costs one exercise; :func:`prerequisite` says, visibly, when such an earlier answer is
  wrong.
* :func:`check_close` and :func:`check_shape` compare with private references to torch's functions, taken
  when this module is imported, and accept only plain tensors: reassigning ``torch.allclose`` or returning a
  tensor subclass whose comparisons lie does not change their verdict.
"""
import builtins
import contextlib
import dis
import functools
import inspect
import math
import sys
import types

import torch

# (a forbidden function is also switched off where it is defined: _homes; torch.func re-exports functorch's)
_SEARCHED_MODULES = ("torch", "torch.nn.functional", "torch.special", "torch.linalg", "torch.nn", "torch.func")

_ABSENT = object()

# --- private references, taken at import time --------------------------------------------------------------
# A learner's code runs in the same process as the tests. Everything the helpers below compare with is looked up
# here, once, so that `torch.allclose = lambda *a, **k: True` (or `builtins.isinstance = ...`) in a notebook does
# not change a verdict. torch._C.TensorBase is an immutable C type: its methods cannot be replaced.
_isinstance, _type, _len, _tuple, _float, _int, _repr = (builtins.isinstance, builtins.type, builtins.len,
                                                        builtins.tuple, builtins.float, builtins.int, builtins.repr)
_getattr, _callable, _id, _print = builtins.getattr, builtins.callable, builtins.id, builtins.print
_Tensor = torch.Tensor
_Parameter = torch.nn.Parameter
_TensorBase = torch._C.TensorBase
_PLAIN_TENSOR_TYPES = (_Tensor, _Parameter)
_as_tensor, _allclose, _isfinite, _equal = torch.as_tensor, torch.allclose, torch.isfinite, torch.equal
_abs, _sub, _nan_to_num, _argmax, _amax = torch.abs, torch.sub, torch.nan_to_num, torch.argmax, torch.amax
_logical_not, _nonzero, _all = torch.logical_not, torch.nonzero, torch.all
_float64 = torch.float64
_t_double, _t_to, _t_item, _t_tolist = _TensorBase.double, _TensorBase.to, _TensorBase.item, _TensorBase.tolist
_t_size = _TensorBase.size
_t_device = _TensorBase.device.__get__
_t_dtype = _TensorBase.dtype.__get__
_t_getitem = _TensorBase.__getitem__
_t_bool = _TensorBase.__bool__
_getattr_static = inspect.getattr_static
_isclose = math.isclose


class ForbiddenCallError(RuntimeError):
    """Raised when an exercise calls (or is, or copies) the very function it is asked to write."""


def _describe(fn) -> str:
    module = _getattr(fn, "__module__", None) or ""
    name = _getattr(fn, "__qualname__", None) or _getattr(fn, "__name__", _repr(fn))
    return f"{module}.{name}" if module and not name.startswith(module) else name


def _shape(t) -> tuple:
    return _tuple(_t_size(t))


# --- exact types --------------------------------------------------------------------------------------------
def _type_name(x) -> str:
    t = _type(x)
    return t.__name__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"


def require_tensor(x, what: str = "the result") -> None:
    """Assert that `x` is a plain torch.Tensor (or nn.Parameter), not None, a number, a list or a subclass."""
    if _type(x) in _PLAIN_TENSOR_TYPES:
        return
    if x is None:
        raise AssertionError(f"{what} is None: did you forget to `return` it?")
    if _isinstance(x, _Tensor):
        raise AssertionError(f"{what} should be a plain torch.Tensor, but it is a {_type_name(x)} (a subclass of "
                             "torch.Tensor): return an ordinary tensor, e.g. the result of torch operations")
    if _isinstance(x, (bool, int, float, complex)):
        raise AssertionError(f"{what} should be a torch.Tensor, but it is a Python {_type(x).__name__} ({x!r}): "
                             "keep the computation in torch and return the tensor (not .item() or float(...))")
    if _isinstance(x, (list, tuple)):
        raise AssertionError(f"{what} should be a torch.Tensor, but it is a Python {_type(x).__name__}: return one "
                             "tensor (torch.stack or torch.tensor turn a list into one)")
    raise AssertionError(f"{what} should be a torch.Tensor, but it is a {_type_name(x)}")


def _expected_tensor(x):
    if _type(x) in _PLAIN_TENSOR_TYPES:
        return x
    if _isinstance(x, _Tensor):  # the tests' own expectations are plain; be safe anyway
        raise AssertionError("internal: the expected value is a tensor subclass; tell the course team")
    return _as_tensor(x)


def check_shape(t, shape, what: str = "the result") -> None:
    """Assert that `t` is a plain tensor of exactly `shape`, with a message naming both shapes."""
    require_tensor(t, what)
    if _shape(t) != _tuple(shape):
        raise AssertionError(f"{what} should have shape {_tuple(shape)}, but it has shape {_shape(t)}")


def check_close(got, expected, what: str = "the result", atol: float = 1e-5, rtol: float = 1e-4,
                hint: str = "") -> None:
    """Assert that two tensors agree elementwise, saying where and by how much they differ when they don't.
    `got` must be a plain tensor (see :func:`require_tensor`); `expected` may be anything torch.as_tensor takes."""
    require_tensor(got, what)
    expected = _expected_tensor(expected)
    check_shape(got, _shape(expected), what)
    got64 = _t_double(_t_to(got, _t_device(expected)))
    expected64 = _t_double(expected)
    finite_got, finite_expected = _isfinite(got64), _isfinite(expected64)
    if not _t_bool(_all(finite_got)) and _t_bool(_all(finite_expected)):
        bad = _t_tolist(_t_getitem(_nonzero(_logical_not(finite_got)), 0))
        raise AssertionError(f"{what} contains NaN or inf (first at index {bad}) where finite values were expected"
                             + (f". {hint}" if hint else ""))
    if not _allclose(got64, expected64, atol=atol, rtol=rtol, equal_nan=True):
        diff = _nan_to_num(_abs(_sub(got64, expected64)), float("inf"))
        where = divmod_index(_int(_t_item(_argmax(diff))), _shape(diff))
        raise AssertionError(
            f"{what} is not what it should be: largest difference {_t_item(_amax(diff)):.3g} at index {where} "
            f"(got {_t_item(_t_getitem(got64, where)):.6g}, expected {_t_item(_t_getitem(expected64, where)):.6g})"
            + (f". {hint}" if hint else ""))


def same(a, b, atol: float = 1e-5, rtol: float = 1e-4) -> bool:
    """Both plain tensors of the same shape and values (NaN counts as different). For matching known mistakes."""
    if _type(a) not in _PLAIN_TENSOR_TYPES or _type(b) not in _PLAIN_TENSOR_TYPES or _shape(a) != _shape(b):
        return False
    return bool(_allclose(_t_double(a), _t_to(_t_double(b), _t_device(a)), atol=atol, rtol=rtol))


def close_numbers(a, b, rel_tol: float = 1e-9, abs_tol: float = 0.0) -> bool:
    """math.isclose for two Python numbers (int or float, not bool, not a tensor); False for anything else."""
    if _type(a) not in (int, float) or _type(b) not in (int, float):
        return False
    return _isclose(a, b, rel_tol=rel_tol, abs_tol=abs_tol)


def divmod_index(flat: int, shape: tuple) -> tuple:
    """The multi-dimensional index of position `flat` in a tensor of `shape`."""
    index = []
    for size in reversed(shape):
        flat, rest = divmod(flat, size)
        index.append(rest)
    return _tuple(reversed(index))


# --- the guard: is, holds or copies a forbidden function -----------------------------------------------------
def _code_key(code):
    """What makes two code objects the same program: bytecode, constants (nested code too) and names. Not the
    function's name, its file or line numbers, nor the names of its local variables: renaming does not hide a copy.
    The docstring is a constant, so an honest answer that happens to compute the same way as a one-line reference
    (with the notebook's own docstring) is not taken for a copy."""
    consts = _tuple(_code_key(c) if _isinstance(c, types.CodeType) else (_type(c).__name__, _repr(c))
                    for c in code.co_consts)
    return (_instructions(code), consts, code.co_names, code.co_argcount, code.co_kwonlyargcount,
            code.co_posonlyargcount, code.co_flags & (inspect.CO_VARARGS | inspect.CO_VARKEYWORDS))


_SAME_OP = {"LOAD_METHOD": "LOAD_ATTR"}  # 3.11 picks one or the other for `math.sqrt(...)` by where `math` was imported


def _instructions(code) -> tuple:
    """The bytecode as (operation, argument) pairs; jump targets (offsets) are left out, as they move with the
    size of the instructions before them."""
    def argument(ins):
        if ins.opcode in dis.hasjrel or ins.opcode in dis.hasjabs:
            return None
        if ins.opcode in dis.hasconst or ins.opname == "KW_NAMES":
            return ins.arg
        return ins.argval if _isinstance(ins.argval, (str, int)) else ins.arg

    return _tuple((_SAME_OP.get(ins.opname, ins.opname), argument(ins))
                  for ins in dis.get_instructions(code) if ins.opname not in ("CACHE", "PRECALL", "PUSH_NULL"))


def _codes_of(obj):
    """Code objects that stand for a forbidden function or class (its methods), for copy detection."""
    if _isinstance(obj, types.FunctionType):
        # a decorated reference (@torch.no_grad(), functools.wraps): its own code is the decorator's, shared by
        # every function so decorated, the learner's too; a copy would copy the body it wraps
        wrapped = _getattr_static(obj, "__wrapped__", None)
        return _codes_of(wrapped) if wrapped is not None else [obj.__code__]
    if _isinstance(obj, type):
        return [f.__code__ for f in vars(obj).values() if _isinstance(f, types.FunctionType)
                and _len(f.__code__.co_code) > 8]
    return []


def _library_globals():
    """Globals dicts of imported modules other than __main__: functions defined there are library code.
    (__main__ is also listed under other names, e.g. __mp_main__ once multiprocessing is imported: by identity.)"""
    main = sys.modules.get("__main__")
    main_globals = _id(vars(main)) if _isinstance(main, types.ModuleType) else None
    return {_id(vars(m)) for m in list(sys.modules.values())
            if m is not None and _isinstance(m, types.ModuleType) and _id(vars(m)) != main_globals}


def _is_library_class(cls) -> bool:
    """A class that its module really defines (not one that only claims a library's __module__), outside __main__."""
    module = sys.modules.get(_getattr(cls, "__module__", None) or "")
    if module is None or module.__name__ == "__main__":
        return False
    obj = module
    for part in (_getattr(cls, "__qualname__", "") or "").split("."):
        obj = _getattr_static(obj, part, None)
        if obj is None:
            return False
    return obj is cls


_TRUSTED: dict = {}  # id -> wrapper made by substitute(): a course reference put in place of an earlier exercise


def _attr_chains(code):
    """(global name, attribute names...) loaded by `code`, e.g. ('ref', 'attention_scores') for
    `ref.attention_scores(...)`; nested functions and lambdas included."""
    chains, current = [], None
    for ins in dis.get_instructions(code):
        if ins.opname in ("LOAD_GLOBAL", "LOAD_NAME"):
            current = [ins.argval]
            chains.append(current)
        elif ins.opname in ("LOAD_ATTR", "LOAD_METHOD") and current is not None:
            current.append(ins.argval)
        elif ins.opname not in ("CACHE", "PRECALL", "EXTENDED_ARG"):
            current = None
    for c in code.co_consts:
        if _isinstance(c, types.CodeType):
            chains += _attr_chains(c)
    return chains


class _Finding(Exception):
    def __init__(self, how, forbidden, where):
        super().__init__(how)
        self.how, self.forbidden, self.where = how, forbidden, where


def _copied(code, keys):
    """The forbidden function that `code` copies (an equal program, or for a dictated one the very same code
    object), or None."""
    return keys.get(_code_key(code)) or keys.get(("same code object", _id(code)))


def _scan(answer, forbidden, keys):
    """Raise _Finding if `answer` is, holds or copies one of `forbidden`."""
    library = _library_globals()
    forbidden_ids = {_id(f): f for f in forbidden}
    seen = set()

    def is_forbidden(value, where, depth):
        if _id(value) in forbidden_ids:
            raise _Finding("is" if depth == 0 else "calls", forbidden_ids[_id(value)], where)
        if _isinstance(value, type):
            for f in forbidden:
                if _isinstance(f, type) and value is not f and issubclass(value, f):
                    raise _Finding("subclasses", f, where)

    def visit(value, where, depth=0):
        if depth > 12 or _id(value) in seen or _id(value) in _TRUSTED:
            return
        seen.add(_id(value))
        is_forbidden(value, where, depth)
        if _isinstance(value, types.MethodType):
            visit(value.__func__, where, depth + 1)
            return
        if _isinstance(value, functools.partial):
            visit(value.func, where, depth + 1)
            for a in (*value.args, *value.keywords.values()):
                visit(a, where, depth + 1)
            return
        if _isinstance(value, (staticmethod, classmethod)):
            visit(value.__func__, where, depth + 1)
            return
        if _isinstance(value, (list, tuple, set, frozenset)) and _len(value) <= 64:
            for v in value:
                visit(v, where, depth + 1)
            return
        if _isinstance(value, dict) and _len(value) <= 64:
            for v in value.values():
                visit(v, where, depth + 1)
            return
        if _isinstance(value, types.CodeType):
            if _copied(value, keys) is not None:
                raise _Finding("copies", _copied(value, keys), where)
            return
        wrapped = _getattr_static(value, "__wrapped__", None) if not _isinstance(value, types.ModuleType) else None
        if wrapped is not None and _callable(wrapped):
            visit(wrapped, where, depth + 1)
        if _isinstance(value, type):
            if _is_library_class(value):
                return
            for name, member in list(vars(value).items()):
                if _isinstance(member, (types.FunctionType, staticmethod, classmethod, property)):
                    visit(member.fget if _isinstance(member, property) else member, f"{where}.{name}", depth + 1)
            for base in value.__mro__[1:]:
                if base is not object:
                    visit(base, where, depth + 1)
            return
        if not _isinstance(value, types.FunctionType):
            return
        code = value.__code__
        if _copied(code, keys) is not None:
            raise _Finding("copies", _copied(code, keys), where)
        if _id(value.__globals__) in library:
            return  # library code: its own globals are switched at run time by forbid()
        for cell in value.__closure__ or ():
            try:
                visit(cell.cell_contents, where, depth + 1)
            except ValueError:  # an empty cell
                pass
        for v in (*(value.__defaults__ or ()), *(value.__kwdefaults__ or {}).values()):
            visit(v, where, depth + 1)
        for c in code.co_consts:
            if _isinstance(c, types.CodeType) and _copied(c, keys) is not None:
                raise _Finding("copies", _copied(c, keys), where)
        namespace, builtin_ns = value.__globals__, value.__globals__.get("__builtins__", builtins)
        if _isinstance(builtin_ns, types.ModuleType):
            builtin_ns = vars(builtin_ns)
        for chain in _attr_chains(code):
            head = chain[0]
            obj = namespace[head] if head in namespace else builtin_ns.get(head, _ABSENT)
            if obj is _ABSENT:
                continue
            visit(obj, where, depth + 1)
            for attr in chain[1:]:
                try:
                    obj = _getattr_static(obj, attr)
                except AttributeError:
                    break
                visit(obj, where, depth + 1)

    visit(answer, _getattr(answer, "__name__", "your answer"))


def _guard_message(answer, finding) -> str:
    name = _getattr(answer, "__name__", None) or "your answer"
    ref = _describe(finding.forbidden)
    inside = "" if finding.where in (name, "your answer") else f" (in {finding.where})"
    if finding.how == "is":
        what = f"`{name}` is `{ref}` itself (imported or assigned)"
    elif finding.how == "calls":
        what = f"`{name}` calls or holds `{ref}`{inside}"
    elif finding.how == "subclasses":
        return (f"`{name}` is built on `{ref}` (a subclass of it){inside}, which is switched off while your code is "
                f"tested: write your own module yourself instead of subclassing it")
    else:
        what = f"`{name}` is a copy of `{ref}`'s code (rebuilt from it, or its source pasted){inside}"
    return (f"{what}, which is switched off while your function is tested: this exercise asks you to write it "
            f"yourself. Write the steps out in your own code, from basic tensor operations (+, *, @, exp, sum, "
            f"max, ...) and the pieces the exercise allows")


def check_answer(answer, *forbidden, dictated=()) -> None:
    """Raise ForbiddenCallError, with a message that says what to do instead, if the learner's `answer` (a function,
    a class, or a tuple of them) is one of `forbidden`, holds one (closure, default argument, a global or attribute
    it reads, a function it calls, recursively through the learner's own functions), or is a copy of one (same code
    object: bytecode, constants and names).

    `dictated`: forbidden classes whose every line the exercise dictates (a module of named submodules, such as
    BERT's embeddings), so that a correct answer can be the same program token for token; of these, only their
    very code objects (a class rebuilt from the reference's methods) count as a copy."""
    answers = answer if _isinstance(answer, (tuple, list)) else (answer,)
    dictated = [f for f in dictated if f is not None]
    forbidden = [f for f in forbidden if f is not None] + dictated
    keys = {}
    for f in forbidden:
        for code in _codes_of(f):
            keys[("same code object", _id(code)) if any(f is d for d in dictated) else _code_key(code)] = f
    for a in answers:
        if a is None:
            continue
        try:
            _scan(a, forbidden, keys)
        except _Finding as finding:
            raise ForbiddenCallError(_guard_message(a, finding)) from None


# --- forbid: switch functions off while the learner's code runs ----------------------------------------------
_PAUSED = [0]  # > 0 while a trusted course reference runs (see substitute)


def _places():
    """Every namespace where a learner's code could find a forbidden function."""
    places = [sys.modules[name] for name in _SEARCHED_MODULES if name in sys.modules]
    places.append(_Tensor)
    places += [module for name, module in list(sys.modules.items())
               if name == "course_lib" or name.startswith("course_lib.")]
    if "__main__" in sys.modules:
        places.append(sys.modules["__main__"])
    return places


def _homes(fn) -> list:
    """Where `fn` is defined: its module and, for a method, its class (by its qualified name), so that forbid()
    switches it off there too (a static method such as ``GPTLMHeadModel.next_token_loss``)."""
    owner = sys.modules.get(_getattr(fn, "__module__", None) or "")
    homes = [] if owner is None else [owner]
    for part in (_getattr(fn, "__qualname__", None) or "").split(".")[:-1]:
        owner = _getattr(owner, "__dict__", {}).get(part)
        if not _isinstance(owner, type):
            break
        homes.append(owner)
    return homes


@contextlib.contextmanager
def forbid(*functions, answer=None, dictated=()):
    """Within the block, calling any of `functions` (and of `dictated`) raises ForbiddenCallError with a helpful
    message.

    With ``answer=`` (the learner's function or class, or a tuple of them), first check that the answer is not,
    does not hold and does not copy any of them (:func:`check_answer`; see there for `dictated`)."""
    dictated = _tuple(f for f in dictated if f is not None)
    functions = _tuple(f for f in functions if f is not None)
    if answer is not None:
        check_answer(answer, *functions, dictated=dictated)
    functions = functions + dictated
    swapped = []
    for fn in functions:
        message = (f"this exercise asks you to write it yourself, so `{_describe(fn)}` is switched off while "
                   f"your function is tested: build it from basic tensor operations (+, *, @, exp, sum, max, ...)")

        def blocked(*args, _message=message, _original=fn, **kwargs):
            if _PAUSED[0]:  # a course reference that stands in for an earlier exercise is running
                return _original(*args, **kwargs)
            raise ForbiddenCallError(_message)

        for place in _places() + _homes(fn):
            # dir() rather than __dict__: torch.Tensor's methods live on its C base class, and
            # shadowing them on torch.Tensor itself is enough to catch `x.softmax(...)`.
            for attr in dir(place):
                try:
                    current = _getattr(place, attr, None)
                except Exception:  # noqa: BLE001 - a lazy attribute that fails to load
                    continue
                if current is fn:
                    original = place.__dict__.get(attr, _ABSENT)
                    swapped.append((place, attr, original))
                    # a static method stays one, so that `self.f(...)` of a paused reference still works
                    setattr(place, attr, staticmethod(blocked) if _isinstance(original, staticmethod) else blocked)
    try:
        yield
    finally:
        for place, attr, value in reversed(swapped):
            if value is _ABSENT:
                delattr(place, attr)
            else:
                setattr(place, attr, value)


# --- one mistake costs one exercise ----------------------------------------------------------------------------
def trusted(reference):
    """A wrapper that runs course_lib's `reference` with every forbid() paused: it stands in for an earlier
    exercise, so what it uses internally (torch's softmax, say) is not the learner's shortcut."""
    if _isinstance(reference, type):
        raise TypeError("trusted() wraps functions; substitute classes by a function that builds them")

    @functools.wraps(reference)
    def call(*args, **kwargs):
        _PAUSED[0] += 1
        try:
            return reference(*args, **kwargs)
        finally:
            _PAUSED[0] -= 1

    del call.__wrapped__  # the guard must not look through it (it is not the learner's code)
    call.__course_reference__ = reference
    return call


@contextlib.contextmanager
def substitute(namespace, **references):
    """Within the block, `namespace[name]` (the notebook's globals()) is course_lib's reference for each earlier
    exercise `name=reference`, so a wrong earlier answer cannot fail the exercise under test:
    ``with substitute(globals(), attention_scores=ref.attention_scores): ...``."""
    saved, made = {}, []
    for name, reference in references.items():
        if _isinstance(reference, type):   # a class goes in as it is (it must not be one the test forbids)
            wrapper = reference
        else:
            wrapper = trusted(reference)
            _TRUSTED[_id(wrapper)] = wrapper
            made.append(wrapper)
        saved[name] = namespace.get(name, _ABSENT)
        namespace[name] = wrapper
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is _ABSENT:
                namespace.pop(name, None)
            else:
                namespace[name] = value
        for wrapper in made:
            _TRUSTED.pop(_id(wrapper), None)


def prerequisite(label: str, check) -> bool:
    """Run `check()` (it raises when the learner's earlier answer is wrong). If it fails, print, visibly and
    first, that the earlier exercise is wrong and that this one is graded with the reference; never raise.
    `label` names it, e.g. "exercise 1's `attention_scores`". Returns whether the earlier answer passed."""
    try:
        check()
    except NotImplementedError:
        _print(f"Note: {label} is not written yet; this exercise is graded with the course's reference for it.")
        return False
    except NameError:
        _print(f"Note: {label} is not defined (run its cell first); this exercise is graded with the course's "
               "reference for it.")
        return False
    except Exception as err:  # noqa: BLE001 - any failure of the earlier answer
        first = (str(err).strip().splitlines() or [_type(err).__name__])[0]
        _print(f"Note: {label} is wrong, fix it first; this exercise is graded with the reference. "
               f"(What is wrong there: {first[:300]})")
        return False
    return True


__all__ = ["ForbiddenCallError", "check_answer", "check_close", "close_numbers", "check_shape", "forbid", "prerequisite",
           "require_tensor", "same", "substitute", "trusted"]
