"""nbgrader configuration of the course (read by `nbgrader ...`, the JupyterLab nbgrader extension
and `course release/check/grade`).

Layout: instructor sources in solutions/, the generated learner version in notebooks/, and everything
an instructor produces while grading (gradebook, exchange, submitted/autograded/feedback folders, CSV)
under the git-ignored grading/ folder.

Environment overrides (handy on JupyterHub and in tests):
  COURSE_CELL_TIMEOUT   per-cell execution timeout in seconds while grading/validating (default 120)
  COURSE_MEMORY_LIMIT   address-space limit of each grading kernel, e.g. 4G (default 4G; 0 = none)
  NBGRADER_EXCHANGE     exchange folder shared by instructors and learners on a multi-user server
                        (default grading/exchange, enough for one machine)
  COURSE_ID             course id used in the exchange (default llm-bert)
"""
import os

from course_lib.grading.preprocessors import AUTOGRADE_PREPROCESSORS, FEEDBACK_PREPROCESSORS

c = get_config()  # noqa: F821 (provided by traitlets when it loads this file)

ROOT = os.path.dirname(os.path.abspath(__file__))
GRADING = os.path.join(ROOT, "grading")

# --- course layout -------------------------------------------------------------------------------
c.CourseDirectory.course_id = os.environ.get("COURSE_ID", "llm-bert")
c.CourseDirectory.root = ROOT
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "notebooks"
c.CourseDirectory.submitted_directory = "grading/submitted"
c.CourseDirectory.autograded_directory = "grading/autograded"
c.CourseDirectory.feedback_directory = "grading/feedback"
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(GRADING, "gradebook.db")
c.Exchange.root = os.environ.get("NBGRADER_EXCHANGE", os.path.join(GRADING, "exchange"))

# --- execution (autograde, validate) ---------------------------------------------------------------
# Per-cell timeout. Set on nbgrader's own Execute class (and on nbconvert's, which it subclasses):
# tests/grading/test_grading_pipeline.py proves that a looping cell is stopped after this many seconds.
_timeout = int(os.environ.get("COURSE_CELL_TIMEOUT", "120"))
c.Execute.timeout = _timeout
c.ExecutePreprocessor.timeout = _timeout
c.Execute.interrupt_on_timeout = True
c.GuardedExecute.memory_limit = os.environ.get("COURSE_MEMORY_LIMIT", "4G")
c.GuardedExecute.sandbox = False  # course grade sets it per learner, with the sandbox's folders

# Autograde: GuardedExecute (the kernel in the bubblewrap sandbox, memory/CPU/output limits, the integrity
# witness, survives a dead or stuck kernel) replaces Execute, and SaveVerdicts (the course's rule for a test
# cell: stderr costs nothing, a shown value or earlier tampering fails it) replaces SaveAutoGrades; the
# other steps are nbgrader 0.9's defaults. `course grade` turns the sandbox on per learner
# (GuardedExecute.sandbox_files/sandbox_site); plain `nbgrader autograde` and Validate run unsandboxed.
c.Autograde.autograde_preprocessors = AUTOGRADE_PREPROCESSORS
# A deleted graded cell is put back (and run) from the source version instead of silently scoring 0.
c.OverwriteCells.add_missing_cells = True

# --- feedback ----------------------------------------------------------------------------------------
# No hidden test source in feedback HTML: neither the cell source nor the traceback of a failure.
c.GenerateFeedback.preprocessors = FEEDBACK_PREPROCESSORS
c.ClearHiddenTestsInGradeCells.enforce_metadata = False
