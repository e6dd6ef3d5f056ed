"""A read of the submission's own cells for code that reaches into the tests' machinery.

The witness in the kernel (``integrity``) sees what such code *does*; this scan sees what it *says*, which
also covers what leaves no trace at run time (a module attribute replaced and put back, a patch made by
code the kernel never reached). It is deliberately narrow: every rule names a tool that the course's
exercises have no use for. A finding is ``(line, what, tampering)``: ``tampering`` findings (IPython and
sys hooks, rebuilt functions, patched modules, tensor subclasses) cost the graded cells after them;
the others (``exec``, ``setattr``, ``threading``, ...) have rare honest uses and are only reported, for
the instructor to read.
"""
from __future__ import annotations

import ast

#: IPython shell attributes that change how cells run or how errors are reported
IPYTHON_HOOKS = {"set_custom_exc", "input_transformers_cleanup", "input_transformers_post", "ast_transformers",
                 "events", "displayhook", "display_pub", "CustomTB", "showtraceback", "run_cell", "run_code",
                 "kernel", "set_hook", "register_magic_function", "user_ns", "user_global_ns"}
#: sys attributes that change tracing, frames, hooks or the module table
SYS_HOOKS = {"settrace", "setprofile", "_getframe", "_current_frames", "displayhook", "excepthook", "modules",
             "addaudithook", "meta_path", "path_hooks"}
#: modules whose only use here would be to inspect or rewrite running code
FORBIDDEN_MODULES = {"ctypes", "gc", "inspect", "dis", "builtins", "sys.monitoring"}
#: modules with rare honest uses that can also rewrite running code (reported only)
REVIEWED_MODULES = {"types", "importlib", "threading", "_thread", "code", "codeop", "multiprocessing"}
#: attributes that expose or rebuild a function's code, globals or class
DUNDERS = {"__code__", "__globals__", "__closure__", "__defaults__", "__kwdefaults__", "__builtins__",
           "__subclasses__", "__torch_function__", "__torch_dispatch__", "__getattribute__", "__import__"}
#: attributes with rare honest uses (reported only)
REVIEWED_DUNDERS = {"__dict__", "__class__", "__bases__", "__mro__", "__setattr__"}
#: names that ``from PACKAGE import NAME`` binds to a module in the course's notebooks
SUBMODULES = {"nn", "functional", "optim", "linalg", "special", "testing", "fft", "autograd", "backends", "checks",
              "attention", "model", "data", "train", "finetune", "viz", "ngram", "scale", "positions", "losses",
              "tokenizer", "random"}
DYNAMIC_BUILTINS = {"exec", "eval", "compile", "__import__", "globals", "vars", "setattr", "delattr"}


def _transform(source: str) -> str:
    """The cell as Python (magics and shell escapes turned into calls), as IPython will run it."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager
    except ImportError:  # pragma: no cover - IPython ships with nbgrader
        return source
    try:
        return TransformerManager().transform_cell(source)
    except Exception:  # noqa: BLE001 - leave it to Python's parser to fail
        return source


def _dotted(node) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    elif isinstance(node, ast.Call):
        parts.append(_dotted(node.func) + "()")
    return ".".join(reversed(parts))


class _Scanner(ast.NodeVisitor):
    def __init__(self):
        self.findings: list[tuple[int, str, bool]] = []
        self.modules: set[str] = set()  # names bound by import statements

    def flag(self, node, what: str, tampering: bool = True) -> None:
        self.findings.append((getattr(node, "lineno", 0), what, tampering))

    def _imported(self, node, module: str, what: str) -> None:
        if module.split(".")[0] in FORBIDDEN_MODULES or module in FORBIDDEN_MODULES:
            self.flag(node, what)
        elif module.split(".")[0] in REVIEWED_MODULES:
            self.flag(node, what, tampering=False)

    def visit_Import(self, node):
        for alias in node.names:
            self.modules.add((alias.asname or alias.name).split(".")[0])
            self._imported(node, alias.name, f"imports {alias.name}")
        self.generic_visit(node)

    def visit_ImportFrom(self, node):
        module = node.module or ""
        self._imported(node, module, f"imports from {module}")
        if module == "sys" and any(a.name in SYS_HOOKS for a in node.names):
            self.flag(node, "imports a tracing or hook function from sys")
        for alias in node.names:
            if alias.name in SUBMODULES:  # from torch import nn, from torch.nn import functional as F
                self.modules.add(alias.asname or alias.name)
        self.generic_visit(node)

    def _check_target(self, target, node) -> None:
        if isinstance(target, ast.Attribute):
            root = _dotted(target).split(".")[0]
            if root in self.modules:
                self.flag(node, f"assigns {_dotted(target)}, an attribute of an imported module")
            if target.attr in DUNDERS or target.attr in REVIEWED_DUNDERS:
                self.flag(node, f"assigns {target.attr}")
        elif isinstance(target, ast.Subscript) and isinstance(target.value, ast.Attribute) \
                and (target.value.attr in DUNDERS or target.value.attr in REVIEWED_DUNDERS):
            self.flag(node, f"writes into {target.value.attr}")
        elif isinstance(target, (ast.Tuple, ast.List)):
            for t in target.elts:
                self._check_target(t, node)

    def visit_Assign(self, node):
        for t in node.targets:
            self._check_target(t, node)
        self.generic_visit(node)

    def visit_AugAssign(self, node):
        self._check_target(node.target, node)
        self.generic_visit(node)

    def visit_Delete(self, node):
        for t in node.targets:
            self._check_target(t, node)
        self.generic_visit(node)

    def visit_Attribute(self, node):
        name = _dotted(node)
        if node.attr in DUNDERS:
            self.flag(node, f"uses {node.attr}")
        elif node.attr in REVIEWED_DUNDERS:
            self.flag(node, f"uses {node.attr}", tampering=False)
        elif node.attr in IPYTHON_HOOKS and ("get_ipython()" in name or name.split(".")[0] in {"ip", "shell"}):
            self.flag(node, f"uses IPython's {node.attr}")
        elif node.attr in SYS_HOOKS and name.split(".")[0] == "sys":
            self.flag(node, f"uses sys.{node.attr}")
        self.generic_visit(node)

    def visit_Call(self, node):
        if isinstance(node.func, ast.Name) and node.func.id in DYNAMIC_BUILTINS:
            self.flag(node, f"calls {node.func.id}()", tampering=False)
        self.generic_visit(node)

    def visit_ClassDef(self, node):
        for base in node.bases:
            if _dotted(base).split(".")[-1] == "Tensor":
                self.flag(node, f"defines {node.name}, a subclass of torch.Tensor")
        self.generic_visit(node)


def scan_source(source: str) -> list[tuple[int, str, bool]]:
    """Findings in one cell of a submission: ``[(line, what, tampering), ...]`` (empty for an honest cell)."""
    try:
        tree = ast.parse(_transform(source))
    except SyntaxError:
        return []  # it fails when it runs, and costs only itself
    scanner = _Scanner()
    scanner.visit(tree)
    return scanner.findings
