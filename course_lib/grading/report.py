"""What ``course grade`` writes for the instructor: ``grades.csv`` and ``summary.txt``.

Everything in them that a submission controls (exception messages, file names, cell sources) goes through
:func:`plain` first: one line, no control characters or terminal escapes, bounded length; and a CSV
field that a spreadsheet would run as a formula is quoted.
"""
from __future__ import annotations

import csv
import re
from pathlib import Path

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def plain(text, limit: int = 300) -> str:
    """``text`` as one printable line: control characters (newlines, ANSI escapes) shown as ``\\xNN``."""
    s = _CONTROL.sub(lambda m: "\\n" if m.group() == "\n" else f"\\x{ord(m.group()):02x}", str(text))
    return s if len(s) <= limit else s[: limit - 1] + "…"


def _csv_field(text: str) -> str:
    text = plain(text, 2000)
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def fmt_points(x) -> str:
    if x is None:
        return ""
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def exercise_columns(results: list[dict]) -> list[tuple[str, str, str]]:
    """(chapter, grade_id, column name) in chapter and cell order; names get a chapter prefix only when
    two chapters share a grade_id."""
    seen: dict[str, list[str]] = {}
    order: list[tuple[str, str]] = []
    for r in sorted(results, key=lambda r: r["chapter"]):
        for c in r["cells"]:
            key = (r["chapter"], c["grade_id"])
            if key not in order:
                order.append(key)
                seen.setdefault(c["grade_id"], []).append(r["chapter"])
    return [(ch, gid, gid if len(seen[gid]) == 1 else f"{ch}/{gid}") for ch, gid in order]


def totals(r: dict) -> tuple[float, float, float]:
    """(points so far, max points, points waiting for manual grading)."""
    pts = sum(c["score"] or 0 for c in r["cells"])
    mx = sum(c["max"] for c in r["cells"])
    pending = sum(c["max"] for c in r["cells"] if c.get("needs_manual_grade"))
    return pts, mx, pending


def problems(r: dict) -> str:
    bits = []
    if r["status"] != "graded":
        bits.append(r["message"])
    for c in r["cells"]:
        if c.get("error"):
            bits.append(f"{c['grade_id']}: {c['error'].split(':')[0]}")
    return plain("; ".join(bits), 1000)


def _listing(items: list[dict]) -> str:
    return plain("; ".join(f"{t['grade_id']}: {t['what']}" for t in items), 2000)


def write_csv(results: list[dict], path: Path) -> None:
    cols = exercise_columns(results)
    header = ["student", "chapter", "status", "points", "max_points", "pending_manual"] + [c[2] for c in cols] + [
        "tampering", "repaired", "review", "problems"]
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for r in sorted(results, key=lambda r: (r["student"], r["chapter"])):
            pts, mx, pending = totals(r)
            by = {c["grade_id"]: c for c in r["cells"]}
            row = [r["student"], r["chapter"], r["status"], fmt_points(pts), fmt_points(mx), fmt_points(pending)]
            for ch, gid, _ in cols:
                c = by.get(gid) if ch == r["chapter"] else None
                row.append("" if c is None else fmt_points(c["score"]))
            row += [_listing(r["tampering"]), _listing(r.get("slips", [])), _listing(r.get("review", [])),
                    problems(r)]
            w.writerow([_csv_field(v) for v in row])


def summary(results: list[dict], skipped: list[str] | None = None, seconds: float | None = None,
            sandboxed: bool = True) -> str:
    lines = []
    if not sandboxed:
        lines += ["WARNING: these grades were NOT isolated (--no-sandbox): every submission ran with this machine "
                  "in reach, and could have changed its own or anyone else's grade.", ""]
    for ch in sorted({r["chapter"] for r in results}):
        rows = sorted((r for r in results if r["chapter"] == ch), key=lambda r: r["student"])
        ids = [c["grade_id"] for c in rows[0]["cells"]]
        table = [["student", "points"] + ids + ["notes"]]
        for r in rows:
            pts, mx, pending = totals(r)
            cells = []
            for c in r["cells"]:
                if c.get("needs_manual_grade"):
                    cells.append(f"?/{fmt_points(c['max'])}")
                else:
                    cells.append(f"{fmt_points(c['score'] or 0)}/{fmt_points(c['max'])}")
            note = problems(r)
            if r["tampering"]:
                note = "TAMPERING (see below)" + ("; " + note if note else "")
            total = f"{fmt_points(pts)}/{fmt_points(mx)}" + (f" (+{fmt_points(pending)} by hand)" if pending else "")
            table.append([r["student"], total] + cells + [plain(note, 120)])
        widths = [max(len(row[i]) for row in table) for i in range(len(table[0]) - 1)]
        lines.append(f"== {ch} ({len(rows)} learners)")
        for row in table:
            lines.append("  ".join(v.ljust(wd) for v, wd in zip(row, widths)) + "  " + row[-1])
        lines.append("")
    sections = [
        ("tampering", "Tampering (locked cells: nbgrader graded the originals; the tests: graded cells that ran "
                      "after it score 0):"),
        ("slips", "Repaired (slips that cost nothing):"),
        ("review", "For review (unusual code; no points taken):"),
    ]
    for key, title in sections:
        items = [(r, t) for r in results for t in r.get(key, [])]
        if items:
            lines.append(title)
            for r, t in sorted(items, key=lambda x: (x[0]["student"], x[0]["chapter"])):
                lines.append(f"  {r['student']} {r['chapter']}: {plain(t['grade_id'], 80)}: {plain(t['what'])}")
            lines.append("")
    if skipped:
        lines.append("Skipped files:")
        lines.extend(f"  {plain(s)}" for s in skipped)
        lines.append("")
    if seconds is not None:
        lines.append(f"Graded {len(results)} submissions in {seconds:.1f} s"
                     + (", each kernel in a sandbox." if sandboxed else ", WITHOUT a sandbox."))
    return "\n".join(lines)
