"""Widget cells never stall the execution (issue 16, point 3): the short version of benchmarks/bench_hangs.py.

Every chapter that builds widgets (found in solutions/, ``notebook_utils.widget_chapters``) runs top to bottom
5 times in a fresh kernel with the harness's client (nbclient + ``course_lib.grading.execution``'s fix), with
``NBGRADER_EXECUTION=autograde`` as when grading. A cell whose execute_reply has not reached the client 5 s after
the kernel went idle is a hang (``watch_stalls``); so is any cell timeout. Cause and fix:
course_lib/grading/execution.py. The unit tests at the end check the fix itself on a minimal notebook.
"""
from __future__ import annotations

import pytest
from nbclient.exceptions import CellTimeoutError

from notebook_utils import (SOLUTIONS, NotebookSession, chapter_path, widget_chapters,
                            write_minimal_widget_notebook)

RUNS = 5
ENV = {"NBGRADER_EXECUTION": "autograde"}

WIDGET_CHAPTERS = widget_chapters(SOLUTIONS)


def test_widget_chapters_are_found():
    # the chapters that hung (ch03's interact, ch04's Output) must be among those the loop covers, and so must
    # ch07, whose only widget (the next-token explorer) is built by library code
    assert {"ch03_transformer", "ch04_pretraining", "ch07_generation"} <= set(WIDGET_CHAPTERS), WIDGET_CHAPTERS


@pytest.mark.slow
@pytest.mark.parametrize("chapter", WIDGET_CHAPTERS)
def test_widget_chapter_never_hangs(chapter):
    problems, rescued = [], 0
    for run in range(RUNS):
        with NotebookSession(chapter_path(chapter, SOLUTIONS), timeout=120, env=ENV,
                             client_kwargs={"raise_on_iopub_timeout": True}, watch_stalls=5.0) as s:
            try:
                s.run_all()
            except CellTimeoutError as e:
                problems.append(f"run {run + 1}: {str(e).splitlines()[0]}")
            problems += [f"run {run + 1}: {stall}" for stall in s.stalls]
            # (a wake-up lost despite the fix costs at most 1 s with the sliced wait: not a hang, but say so)
            rescued += s.client.lost_wakeups
    assert not problems, f"{chapter} hung:\n" + "\n".join(problems) + f"\n({rescued} lost wake-ups rescued)"


# --- the fix itself, on a minimal notebook (notebook_utils.MINIMAL_WIDGET_CELLS)


@pytest.fixture
def minimal_notebook(tmp_path):
    # an Output widget with clear_output(wait=True) + plotly fig.show(), and an interact with fig.show()
    return write_minimal_widget_notebook(tmp_path)


def test_client_guards_the_shell_channel(minimal_notebook):
    from course_lib.grading.execution import CourseNotebookClient

    with NotebookSession(minimal_notebook, timeout=60) as s:
        assert isinstance(s.client, CourseNotebookClient)
        assert getattr(s.client.kc.shell_channel, "_course_guarded", False)
        s.run_all()
        # the Output widget mimic sent its state back on the (guarded) shell channel and the outputs are kept
        outputs = [o for state in s.client.widget_state.values() for o in state.get("outputs", [])]
        assert any("application/vnd.plotly.v1+json" in o.get("data", {}) for o in outputs), outputs


@pytest.mark.slow
def test_minimal_widget_notebook_never_hangs(minimal_notebook):
    stalls = []
    for _ in range(10):
        with NotebookSession(minimal_notebook, timeout=60, client_kwargs={"raise_on_iopub_timeout": True},
                             watch_stalls=3.0) as s:
            s.run_all()
            stalls += s.stalls
            assert s.client.lost_wakeups == 0
    assert not stalls, [str(x) for x in stalls]


def test_guarded_wait_keeps_its_timeout():
    """The sliced wait still raises Empty at the caller's timeout, and returns a message as soon as it comes."""
    import asyncio
    import time
    from queue import Empty

    import zmq
    import zmq.asyncio
    from jupyter_client.channels import AsyncZMQSocketChannel
    from jupyter_client.session import Session

    from course_lib.grading.execution import guard_shell_channel

    async def main():
        ctx = zmq.asyncio.Context()
        a, b = ctx.socket(zmq.PAIR), ctx.socket(zmq.PAIR)
        port = a.bind_to_random_port("tcp://127.0.0.1")
        b.connect(f"tcp://127.0.0.1:{port}")
        session = Session(key=b"k")
        ch = guard_shell_channel(AsyncZMQSocketChannel(a, session), poll_interval=0.2)
        peer = AsyncZMQSocketChannel(b, session)
        t0 = time.monotonic()
        with pytest.raises(Empty):
            await ch.get_msg(timeout=0.7)
        assert 0.6 < time.monotonic() - t0 < 1.5
        asyncio.get_running_loop().call_later(0.3, peer.send, session.msg("ping"))
        t0 = time.monotonic()
        msg = await ch.get_msg(timeout=5)
        assert msg["msg_type"] == "ping" and time.monotonic() - t0 < 1.0
        ch.send(session.msg("pong"))
        assert (await peer.get_msg(timeout=5))["msg_type"] == "pong"
        a.close(linger=0), b.close(linger=0)
        ctx.term()

    asyncio.run(main())
