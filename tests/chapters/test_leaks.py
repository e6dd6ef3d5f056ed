"""No answers in plain sight: no function a learner can see in a released notebook passes an exercise's graded cells
when it is bound to the exercise's name.

For each chapter, the candidates are every function and class defined at top level in any code cell of the
RELEASED notebook (notebooks/, as the learner gets it: no solutions, no hidden tests), and every course_lib callable
that a released cell imports by name (`from course_lib... import x`). Each candidate is bound, in turn, to each name
an exercise's answer cells define, and that exercise's graded cells run in full (visible AND hidden tests, from
solutions/). A candidate that passes them all is a leak.

Exercises come from nbgrader metadata (tests/support/notebook_utils.exercises), so later chapters are covered without
edits. One kernel per chapter (tests/support/notebook_utils.graded_session: setup, helper, answer and test cells of the
solution, in order); a candidate whose signature cannot be called in any of the ways the tests may call the
exercise (a prefix of its parameters by position, the rest by name) cannot pass and is not run.
"""
import ast
import json

import nbformat
import pytest

from notebook_utils import NOTEBOOKS, chapter_path, chapters, exercises, graded_session

pytestmark = pytest.mark.slow


def _strip_magics(source: str) -> str:
    return "\n".join("" if ln.lstrip().startswith(("%", "!")) else ln for ln in source.splitlines())


def visible_candidates(chapter: str) -> tuple[dict, dict]:
    """({key: source of a top-level def/class of a released cell}, {key: (module, attribute)} of course_lib imports)."""
    nb = nbformat.read(chapter_path(chapter, NOTEBOOKS), as_version=4)
    defs, imports = {}, {}
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        source = _strip_magics(cell.source)
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        lines = source.splitlines()
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                first = min([node.lineno] + [d.lineno for d in node.decorator_list])
                defs[f"cell {i}: {node.name}"] = (node.name, "\n".join(lines[first - 1:node.end_lineno]))
            elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "course_lib":
                for alias in node.names:
                    imports[f"cell {i}: from {node.module} import {alias.name}"] = (node.module, alias.name)
    return defs, imports


DEFINE = r'''
import importlib as _il, inspect as _insp, json as _json
_LEAK_CANDIDATES, _leak_skipped = {}, []
_MISSING = object()
class _LeakPlaceholder:
    """Stands in, while a def runs, for a name that a demo cell (not run here) defines: defaults like
    `dim=pcfg.hidden_size` need some value."""
    def __getattr__(self, name):
        return self

    def __call__(self, *args, **kwargs):
        return self


for _key, (_name, _src) in %(defs)s.items():
    _saved, _placeholders = globals().get(_name, _MISSING), []
    try:
        for _attempt in range(20):
            try:
                exec(compile(_src, "<released " + _key + ">", "exec"), globals())
                break
            except NameError as _e:
                if _e.name is None or _e.name in globals():
                    raise
                globals()[_e.name] = _LeakPlaceholder()
                _placeholders.append(_e.name)
        _LEAK_CANDIDATES[_key] = globals()[_name]
    except Exception as _e:
        _leak_skipped.append(f"{_key}: {type(_e).__name__}: {_e}")
    finally:
        if _saved is _MISSING:
            globals().pop(_name, None)
        else:
            globals()[_name] = _saved
        for _p in _placeholders:
            globals().pop(_p, None)
for _key, (_module, _attr) in %(imports)s.items():
    _obj = getattr(_il.import_module(_module), _attr, None)
    if callable(_obj):
        _LEAK_CANDIDATES[_key] = _obj


def _leak_can_take(candidate, exercise):
    """Can `candidate` be called in any of the ways a test may call `exercise`: the first k of its parameters by
    position (k = 0 .. all), the other required ones by name, and the other optional ones by name or not at all?"""
    try:
        params = [p for p in _insp.signature(exercise).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        sig = _insp.signature(candidate)
    except (TypeError, ValueError):
        return True
    positional = [p for p in params if p.kind != p.KEYWORD_ONLY]
    for k in range(len(positional) + 1):
        rest = params[k:] if k <= len(positional) else []
        required = {p.name: None for p in rest if p.default is p.empty}
        for kwargs in (required, {**required, **{p.name: None for p in rest}}):
            try:
                sig.bind(*[None] * k, **kwargs)
                return True
            except TypeError:
                pass
    return False


print(_json.dumps({"skipped": _leak_skipped, "pairs": [[_n, _k] for _n in %(names)s for _k, _c in _LEAK_CANDIDATES.items()
                                                        if _n in globals() and _leak_can_take(_c, globals()[_n])],
                   "candidates": len(_LEAK_CANDIDATES)}))
'''


@pytest.mark.parametrize("chapter", chapters())
def test_no_visible_function_passes_an_exercise(chapter):
    if not chapter_path(chapter, NOTEBOOKS).is_file():
        pytest.skip(f"{chapter} is not released")
    defs, imports = visible_candidates(chapter)
    exs = exercises(chapter)
    names = [n for ex in exs for n in ex.names]
    gen = graded_session(chapter)
    session = next(gen)
    try:
        r = session.run_source(DEFINE % {"defs": repr(defs), "imports": repr(imports), "names": repr(names)})
        assert r.ok, r.error
        info = json.loads(r.text.strip().splitlines()[-1])
        pairs = {tuple(p) for p in info["pairs"]}
        leaks, tried = [], 0
        for ex in exs:
            for name in ex.names:
                gid = next(g for g in ex.answers if name in session.nb.cells[session.index(g)].source)
                solution = session.nb.cells[session.index(gid)].source
                for key in sorted(k for n, k in pairs if n == name):
                    tried += 1
                    source = f"{solution}\n{name} = _LEAK_CANDIDATES[{key!r}]"
                    if all(session.try_answer(gid, source, test).ok for test in ex.tests):
                        leaks.append(f"{key} passes {', '.join(ex.tests)} as `{name}`")
        print(f"{chapter}: {info['candidates']} visible functions, {tried} (exercise, candidate) pairs run; "
              f"skipped: {info['skipped']}")
        assert not leaks, f"{chapter}: visible functions that pass an exercise:\n" + "\n".join(leaks)
    finally:
        gen.close()
