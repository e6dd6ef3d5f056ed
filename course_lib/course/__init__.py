"""The course as files: where things are (``layout``), running nbgrader (``nbgrader_apps``), ``course release``
(``release``) and the learner's own copy with JupyterLab on it (``lab``).

Standard library only at import time (``course --help`` must stay fast).
"""
from .lab import free_port, lab_command, run_until_stopped, sync_my_work, write_lab_overrides
from .layout import NOTEBOOK_SUFFIX, chapter_notebook, chapters, course_config, repo_root, resolve_chapters
from .nbgrader_apps import run_nbgrader, run_nbgrader_many, tool_env, write_nbgrader_config
from .release import release

__all__ = ["NOTEBOOK_SUFFIX", "chapter_notebook", "chapters", "course_config", "free_port", "lab_command",
           "release", "repo_root", "resolve_chapters", "run_nbgrader", "run_nbgrader_many", "run_until_stopped",
           "sync_my_work", "tool_env", "write_lab_overrides", "write_nbgrader_config"]
