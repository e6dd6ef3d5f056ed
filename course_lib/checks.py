"""Helpers for the notebooks' autograder test cells: readable comparisons and a guard against shortcuts.

A learner who is asked to write softmax should not pass by calling `torch.softmax` (or the course's own
reference). `forbid` swaps such functions out while the learner's code runs, and the error it raises says
what to do instead.
"""
import contextlib
import sys

import torch

_SEARCHED_MODULES = ("torch", "torch.nn.functional", "torch.special", "torch.linalg", "torch.nn")


_ABSENT = object()


class ForbiddenCallError(RuntimeError):
    """Raised when an exercise calls the very function it is asked to write."""


def _places():
    """Every namespace where a learner's code could find a forbidden function."""
    places = [sys.modules[name] for name in _SEARCHED_MODULES if name in sys.modules]
    places.append(torch.Tensor)
    places += [module for name, module in list(sys.modules.items())
               if name == "course_lib" or name.startswith("course_lib.")]
    if "__main__" in sys.modules:
        places.append(sys.modules["__main__"])
    return places


def _describe(fn) -> str:
    module = getattr(fn, "__module__", None) or ""
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", repr(fn))
    return f"{module}.{name}" if module and not name.startswith(module) else name


@contextlib.contextmanager
def forbid(*functions):
    """Within the block, calling any of `functions` raises ForbiddenCallError with a helpful message."""
    swapped = []
    for fn in functions:
        message = (f"this exercise asks you to write it yourself, so `{_describe(fn)}` is switched off while "
                   f"your function is tested: build it from basic tensor operations (+, *, @, exp, sum, max, ...)")

        def blocked(*args, _message=message, **kwargs):
            raise ForbiddenCallError(_message)

        for place in _places():
            # dir() rather than __dict__: torch.Tensor's methods live on its C base class, and
            # shadowing them on torch.Tensor itself is enough to catch `x.softmax(...)`.
            for attr in dir(place):
                if getattr(place, attr, None) is fn:
                    swapped.append((place, attr, place.__dict__.get(attr, _ABSENT)))
                    setattr(place, attr, blocked)
    try:
        yield
    finally:
        for place, attr, value in reversed(swapped):
            if value is _ABSENT:
                delattr(place, attr)
            else:
                setattr(place, attr, value)


def _as_tensor(x):
    return x if isinstance(x, torch.Tensor) else torch.as_tensor(x)


def check_shape(t, shape, what: str = "the result") -> None:
    """Assert that `t` is a tensor of exactly `shape`, with a message naming both shapes."""
    if not isinstance(t, torch.Tensor):
        raise AssertionError(f"{what} should be a torch.Tensor, but it is a {type(t).__name__}")
    if tuple(t.shape) != tuple(shape):
        raise AssertionError(f"{what} should have shape {tuple(shape)}, but it has shape {tuple(t.shape)}")


def check_close(got, expected, what: str = "the result", atol: float = 1e-5, rtol: float = 1e-4,
                hint: str = "") -> None:
    """Assert that two tensors agree elementwise, saying where and by how much they differ when they don't."""
    if got is None:
        raise AssertionError(f"{what} is None: did you forget to `return` it?")
    expected = _as_tensor(expected)
    if isinstance(got, torch.Tensor):
        check_shape(got, expected.shape, what)
    got = _as_tensor(got).to(expected.device)
    if got.shape != expected.shape:
        raise AssertionError(f"{what} should have shape {tuple(expected.shape)}, but it has {tuple(got.shape)}")
    got64, expected64 = got.double(), expected.double()
    if not torch.isfinite(got64).all() and torch.isfinite(expected64).all():
        bad = (~torch.isfinite(got64)).nonzero()[0].tolist()
        raise AssertionError(f"{what} contains NaN or inf (first at index {bad}) where finite values were expected"
                             + (f". {hint}" if hint else ""))
    if not torch.allclose(got64, expected64, atol=atol, rtol=rtol, equal_nan=True):
        diff = (got64 - expected64).abs().nan_to_num(float("inf"))
        where = divmod_index(int(diff.argmax()), tuple(diff.shape))
        raise AssertionError(
            f"{what} is not what it should be: largest difference {diff.max().item():.3g} at index {where} "
            f"(got {got64[where].item():.6g}, expected {expected64[where].item():.6g})" + (f". {hint}" if hint else ""))


def divmod_index(flat: int, shape: tuple) -> tuple:
    """The multi-dimensional index of position `flat` in a tensor of `shape`."""
    index = []
    for size in reversed(shape):
        flat, rest = divmod(flat, size)
        index.append(rest)
    return tuple(reversed(index))


__all__ = ["ForbiddenCallError", "check_close", "check_shape", "forbid"]
