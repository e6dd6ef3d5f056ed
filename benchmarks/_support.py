"""What the benchmarks share with the tests: the helpers of tests/support/, loaded from their files (tests/ is not
a package, and no script here edits sys.path)."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

TEST_SUPPORT = Path(__file__).resolve().parents[1] / "tests" / "support"


def test_support(name: str):
    """The module tests/support/NAME.py (loaded once, registered under NAME as an import would)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, TEST_SUPPORT / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # registered before it runs, as an import does (its dataclasses look it up)
    spec.loader.exec_module(module)
    return module
