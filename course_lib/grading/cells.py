"""Reading a submission's cells: which are graded, what the learner changed, and a copy nbgrader can digest.

A submitted notebook is compared with the release (what learners received) cell by cell, by nbgrader's
``grade_id``. Two kinds of difference are reported, and neither costs more than the cell it touches:

* **tampering** (:func:`find_tampering`): a locked cell edited, deleted or duplicated. nbgrader grades the
  original cell from the source anyway, so this is reported for the instructor, not scored.
* **slips** (:func:`restore_metadata`): nbgrader metadata a learner's editor changed (a renamed
  ``grade_id``, a test cell pasted from another chapter, an answer cell turned into a test cell). nbgrader
  would reject the whole notebook for these; instead the release's metadata is put back on every cell it
  can be matched to (by ``grade_id``, by cell id, or, for a locked cell, by its source), metadata that
  matches nothing is dropped, and both are listed.
"""
from __future__ import annotations

import copy
import uuid
from collections import defaultdict
from pathlib import Path


def nbgrader_meta(cell) -> dict:
    meta = (cell.get("metadata") or {}).get("nbgrader")
    return meta if isinstance(meta, dict) else {}


def source_text(cell) -> str:
    s = cell.get("source", "")
    return ("".join(s) if isinstance(s, list) else str(s)).strip()


def is_autograded_test(cell) -> bool:
    m = nbgrader_meta(cell)
    return cell.get("cell_type") == "code" and bool(m.get("grade")) and not m.get("solution")


def is_learner_cell(cell) -> bool:
    """A cell whose code is the learner's: not locked (answer cells and unlocked given code)."""
    m = nbgrader_meta(cell)
    return not m.get("locked") and not is_autograded_test(cell)


def grade_cells(nb) -> list[dict]:
    """The graded cells of a (release or source) notebook in order: grade_id, points, kind auto/manual."""
    out = []
    for cell in nb.cells:
        m = nbgrader_meta(cell)
        if m.get("grade") and m.get("grade_id"):
            out.append({"grade_id": m["grade_id"], "max": float(m.get("points", 0) or 0),
                        "kind": "auto" if is_autograded_test(cell) else "manual"})
    return out


def read_notebook(path: Path):
    """nbformat v4 notebook, or raise ValueError saying why it is not one."""
    import nbformat

    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"not a text file ({e.reason})") from None
    try:
        nb = nbformat.reads(text, as_version=4)
    except Exception as e:  # NotJSONError, KeyError, ...
        msg = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
        raise ValueError(f"not a valid notebook: {msg}") from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list) \
            or not all(isinstance(c, dict) and c.get("cell_type") for c in nb["cells"]):
        raise ValueError("not a valid notebook: no list of cells")
    return nb


def find_tampering(release_nb, submitted_nb) -> list[dict]:
    """Locked cells of the release that the submission edited, deleted or duplicated."""
    ref = {nbgrader_meta(c)["grade_id"]: c for c in release_nb.cells if nbgrader_meta(c).get("grade_id")}
    seen = defaultdict(list)
    for cell in submitted_nb.cells:
        gid = nbgrader_meta(cell).get("grade_id")
        if gid in ref:
            seen[gid].append(cell)
    issues = []
    for gid, rc in ref.items():
        if not nbgrader_meta(rc).get("locked"):
            continue
        copies = seen.get(gid, [])
        if not copies:
            issues.append({"grade_id": gid, "what": "deleted locked cell"})
        elif len(copies) > 1:
            issues.append({"grade_id": gid, "what": f"duplicated locked cell ({len(copies)} copies)"})
        if any(source_text(cp) != source_text(rc) or cp.get("cell_type") != rc.cell_type for cp in copies):
            issues.append({"grade_id": gid, "what": "edited locked cell"})
    return issues


_COMPARED = ("grade_id", "locked", "grade", "solution", "points", "task")


def restore_metadata(release_nb, nb) -> list[dict]:
    """Give every cell of ``nb`` that matches a release cell that cell's nbgrader metadata (and type),
    drop nbgrader metadata that matches nothing, keep one copy of a duplicated graded cell (the last),
    make cell ids unique. Changes ``nb`` in place; returns the slips, ``{"grade_id", "what"}``."""
    release = [c for c in release_nb.cells if nbgrader_meta(c).get("grade_id")]
    by_gid = {nbgrader_meta(c)["grade_id"]: c for c in release}
    by_id = {c.get("id"): c for c in release if c.get("id")}
    by_locked_source = {source_text(c): c for c in release if nbgrader_meta(c).get("locked")}
    matches = []
    for cell in nb.cells:
        gid = nbgrader_meta(cell).get("grade_id")
        match = by_gid.get(gid) if isinstance(gid, str) else None
        if match is None and (nbgrader_meta(cell) or cell.get("id") in by_id):
            match = by_id.get(cell.get("id")) or by_locked_source.get(source_text(cell))
        matches.append(match)
    last = {id(m): i for i, m in enumerate(matches) if m is not None}
    slips = []
    for i, (cell, match) in enumerate(zip(nb.cells, matches)):
        mine = nbgrader_meta(cell)
        md = cell.setdefault("metadata", {})
        if match is None or last[id(match)] != i:
            if "nbgrader" in md:
                del md["nbgrader"]
                gid = mine.get("grade_id") or "(no grade_id)"
                what = (f"second copy of graded cell '{gid}': only the last copy counts" if match is not None
                        else f"unknown graded cell '{gid}': runs as a plain cell")
                slips.append({"grade_id": str(gid), "what": what})
            continue
        theirs = nbgrader_meta(match)
        changed = [k for k in _COMPARED if mine.get(k) != theirs.get(k)]
        if changed or cell.get("cell_type") != match.cell_type:
            slips.append({"grade_id": theirs["grade_id"],
                          "what": "nbgrader metadata restored from the release (" + ", ".join(changed or ["cell type"]) + ")"})
        md["nbgrader"] = copy.deepcopy(theirs)
        if cell.get("cell_type") != match.cell_type:
            cell["cell_type"] = match.cell_type
            if match.cell_type == "code":
                cell.setdefault("outputs", [])
                cell.setdefault("execution_count", None)
            else:
                cell.pop("outputs", None)
                cell.pop("execution_count", None)
    ids = set()
    for cell in nb.cells:
        if "id" in cell:
            if cell["id"] in ids:
                cell["id"] = uuid.uuid4().hex[:8]
            ids.add(cell["id"])
    return slips


def cell_failures(nb) -> dict[str, str]:
    """grade_id -> 'Ename: message' for graded code cells of an executed notebook that raised."""
    out = {}
    for cell in nb.cells:
        gid = nbgrader_meta(cell).get("grade_id")
        if cell.get("cell_type") != "code" or not gid:
            continue
        for o in cell.get("outputs", []):
            if o.get("output_type") == "error":
                ev = str(o.get("evalue", "")).strip()
                out[gid] = f"{o.get('ename', 'Error')}: {ev}" if ev else str(o.get("ename", "Error"))
                break
    return out


def stderr_text(nb) -> dict[str, str]:
    """grade_id -> what an autograded test cell printed on stderr (it costs nothing; feedback shows it)."""
    out = {}
    for cell in nb.cells:
        if is_autograded_test(cell):
            text = "".join(o.get("text", "") for o in cell.get("outputs", [])
                           if o.get("output_type") == "stream" and o.get("name") == "stderr")
            if text.strip():
                out[nbgrader_meta(cell)["grade_id"]] = text.strip()
    return out
