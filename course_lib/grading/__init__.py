"""Grading: ``course grade`` (a whole class) and ``course check`` (one notebook), on top of nbgrader.

Every submission is untrusted code: its kernel runs in a bubblewrap sandbox, what decides a cell's
points is read by the grader rather than written by the submission, and honest slips cost at most the
cell they touch. The modules, in the order a grading run uses them:

* ``pipeline``      the whole run: collect, stage, one worker per learner, merge, reports; ``course check``
* ``preprocessors`` the nbgrader preprocessors the course's ``nbgrader_config.py`` names
"""
