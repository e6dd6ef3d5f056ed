"""What every maintainer tool needs: the repository's own course_lib (never an installed copy), and where the
shipped assets live in the source tree."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ASSETS = REPO / "course_lib" / "assets"


def source_course_lib():
    """The course_lib package of this checkout; an error if Python would import another copy (the tools write
    into the source tree's assets, and a regular install's site-packages must stay untouched)."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    import course_lib

    found = Path(course_lib.__file__).resolve().parent
    if found != REPO / "course_lib":
        raise SystemExit(f"this tool remakes the assets of {REPO / 'course_lib'}, but Python imports course_lib from "
                         f"{found}: run it from the checkout's environment (pip install -e .)")
    return course_lib
