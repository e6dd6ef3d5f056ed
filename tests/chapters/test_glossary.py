"""The source document's terms appear with their Chinese at their first mention in the course.

tests/chapters/data/glossary.json lists the terms: the Chinese as the document writes it and a regular expression for the
English the course uses. The course is read as a learner reads it: the released notebooks in chapter order
(ch01, ch02, ... as they exist, so a new chapter joins on its own), markdown cells only, top to bottom. At the first
place where a term's English occurs, its Chinese must be near it: in the same cell, at most BEFORE characters before
or AFTER characters after the English (a term in a heading may be explained in the sentence under it).
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[2]
GLOSSARY = json.loads((Path(__file__).parent / "data" / "glossary.json").read_text(encoding="utf-8"))["terms"]
BEFORE, AFTER = 200, 300


def course_markdown() -> list[tuple[str, int, str]]:
    """(chapter, cell index, text) of every markdown cell of the released notebooks, in course order."""
    cells = []
    for path in sorted((REPO / "notebooks").glob("ch*/ch*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        cells += [(path.parent.name, i, c.source) for i, c in enumerate(nb.cells) if c.cell_type == "markdown"]
    return cells


CELLS = course_markdown()


def first_mention(pattern: str):
    rx = re.compile(rf"\b(?:{pattern})\b", re.IGNORECASE)
    for chapter, index, text in CELLS:
        match = rx.search(text)
        if match:
            return chapter, index, text, match
    return None


@pytest.mark.parametrize("term", GLOSSARY, ids=[re.sub(r"\W+", "-", t["english"].split("|")[0]).strip("-") for t in GLOSSARY])
def test_term_has_its_chinese_at_first_mention(term):
    found = first_mention(term["english"])
    assert found is not None, (f"{term['chinese']} (/{term['english']}/, §{term['section']}) is never mentioned in the "
                               "course's markdown: mention it, with its Chinese, where the course first needs it")
    chapter, index, text, match = found
    near = text[max(0, match.start() - BEFORE): match.end() + AFTER]
    assert term["chinese"] in near, (
        f"the first mention of {match.group(0)!r} in the course ({chapter}, cell {index}) does not give the document's "
        f"term {term['chinese']} (§{term['section']}) next to it: ...{text[max(0, match.start() - 80): match.end() + 80]}...")


def test_glossary_is_well_formed():
    chinese = [t["chinese"] for t in GLOSSARY]
    assert len(chinese) == len(set(chinese)), "a term is listed twice"
    for t in GLOSSARY:
        assert set(t) == {"chinese", "english", "section"}, t
        re.compile(t["english"])
        assert re.search(r"[\u4e00-\u9fff]", t["chinese"]), t


def test_core_concepts_are_tied_together_with_section_2_4():
    """§2.4 (核心概念之间的联系) is where the document connects architecture, pretraining, fine-tuning and transfer."""
    assert any("§2.4" in text and "核心概念之间的联系" in text for _, _, text in CELLS), (
        "no chapter cites §2.4 (核心概念之间的联系) where it ties the core concepts together")
