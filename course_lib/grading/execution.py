"""Notebook execution that does not stall on widget cells: a ``NotebookClient`` mixin.

Used by the test/benchmark harness (``tests/support/notebook_utils.py``) and by the grading executor
(``course_lib.grading.preprocessors.GuardedExecute``, an nbgrader ``Execute``). Light on purpose (nbclient,
traitlets, pyzmq and the standard library), because nbgrader imports the grading plug-ins.

The stall
---------
Under nbclient, a cell that writes into an ``ipywidgets.Output`` (``with out: ... fig.show()``, and every
``widgets.interact``, which renders its function into an Output widget) sometimes finishes in the kernel (the
kernel sends its ``execute_reply`` and goes idle) while the client goes on waiting for the reply until the cell's
timeout runs out; then the cell "finishes" without any error, so the stall only shows up as time.

Cause (pyzmq 27.3, jupyter_client 8.10, nbclient 0.11; nothing in the kernel):

1. nbclient waits for the reply on the shell channel with a single long poll:
   ``await self.kc.shell_channel.get_msg(timeout=<rest of the cell timeout>)`` (nbclient/client.py:782, in
   ``_async_poll_for_reply``), which is ``await socket.poll(timeout)`` on the ``zmq.asyncio`` socket
   (jupyter_client/channels.py:325). pyzmq's asyncio socket wakes that waiter only when the event loop sees the
   socket's ``ZMQ_FD`` become readable (zmq/_future.py, ``_add_recv_event`` / ``_handle_events``). ``ZMQ_FD``
   is edge-triggered: any libzmq call on the socket that processes its pending commands (a send, reading
   ``EVENTS``) consumes the notification, after which the FD does not signal again for messages already queued.
2. While that poll is pending, nbclient's mimic of the Output widget *sends on the same socket*: for every output
   captured by an Output widget (and for ``clear_output``) ``OutputWidget.sync_state`` sends a ``comm_msg`` on
   the shell channel (nbclient/output_widget.py:63, ``self.kernel_client.shell_channel.send(msg)``, called from
   ``output()`` and ``clear_output()``, lines 97 and 37), from the iopub task, i.e. while the reply task
   awaits its poll.
3. ``Session.send`` does not send through the asyncio socket: it replaces it by a blocking
   ``zmq.Socket.shadow(stream.underlying)`` of the same libzmq socket (jupyter_client/session.py:819-821 and
   914-915). pyzmq's own asyncio send path would re-check the socket's events after sending and wake a pending
   receiver (zmq/_future.py:553-559, "schedule wake for recv if there are any receivers waiting"); the shadow
   send bypasses it.

So when the kernel's ``execute_reply`` reaches the client's shell socket just before that send (it does: the
kernel sends the widget's last output, then the reply; the client's ``comm_msg`` goes out as it processes that
output), the send consumes the readable edge, the reply sits in the socket, the asyncio poll is never woken, and
nothing else arrives on the shell socket because the kernel is idle. The poll ends at its timeout, and then
pyzmq's timeout path runs a real zero-timeout ``zmq_poll`` (zmq/_future.py:142-173: ``trigger_timeout``, then
``poll(0)`` at line 156), finds the reply and returns it: which is why the stalled cell completes, without
error, exactly at the cell timeout. Observed with a watchdog during a stall: the kernel idle,
``shell.get(EVENTS) & POLLIN`` true, one pending asyncio poll on the socket, the only client send in the cell
the widget's ``comm_msg`` a few ms before the idle message.
(``raise_on_iopub_timeout`` does not come into it: the idle message on iopub arrived long before.)
This is jupyter/nbclient#312 / jupyter/nbconvert#2003 / #2029 (nbclient PR #311, unmerged). No released nbclient
(latest 0.11.0, installed) or jupyter_client (8.10.0) changes this path.

The fix
-------
:func:`guard_shell_channel`, applied by :class:`ReliableShellMixin` to the client's shell channel as soon as the
kernel client starts (before any cell runs):

* every send on the shell channel is followed by ``socket.get(zmq.EVENTS)`` on the *asyncio* socket. That is
  pyzmq's public way to re-arm an edge-triggered socket: the asyncio socket's ``get(EVENTS)`` processes pending
  commands and, if a message is readable while a receiver is waiting, schedules the receiver's wake-up on the
  event loop (zmq/_future.py:262-265, ``_schedule_remaining_events``). A reply that arrived before or during the
  send is thereby delivered at once; one that arrives after it signals the FD afresh. That removes the cause,
  whatever code sends (the Output-widget mimic, ``kc.execute``, ``kc.kernel_info``, a grader's probe);
* belt and braces, the wait for a shell message is cut into slices of ``shell_poll_interval`` seconds (default 1)
  up to the same overall timeout, and each slice that ends in pyzmq's timeout path re-polls the socket for real;
  a lost wake-up from any other source would cost at most one slice, not the cell timeout. A slice that
  times out *and* finds a message the kernel sent more than 0.5 s before is counted in ``lost_wakeups`` (the
  benchmark reports it; with the first measure in place it stays 0).

Nothing in the kernel needs to change, and the notebooks need not either: the widget cells are correct.
"""
from __future__ import annotations

import time
import typing as t
from datetime import datetime, timezone
from queue import Empty

import zmq
import zmq.asyncio
from nbclient import NotebookClient
from nbclient.util import run_sync
from traitlets import Float
from traitlets.config import LoggingConfigurable

__all__ = ["ReliableShellMixin", "CourseNotebookClient", "guard_shell_channel"]

#: a message found by a slice's timeout that the kernel had sent longer ago than this counts as a lost wake-up
LOST_WAKEUP_AGE_S = 0.5


def guard_shell_channel(channel, poll_interval: float = 1.0, on_lost_wakeup: t.Callable[[], None] | None = None):
    """Patch a jupyter_client shell channel (an ``AsyncZMQSocketChannel``) in place, as described in the module
    docstring: re-arm the asyncio socket after every send; wait for messages in slices of ``poll_interval``.
    A no-op for a blocking channel (``zmq.Socket.poll`` is level-triggered) or one already guarded."""
    socket = getattr(channel, "socket", None)
    if not isinstance(socket, zmq.asyncio.Socket) or getattr(channel, "_course_guarded", False):
        return channel
    original_send = channel.send

    def send(msg: dict[str, t.Any]) -> None:
        original_send(msg)  # Session.send: written through a blocking shadow of this socket
        sock = channel.socket
        if sock is not None and not sock.closed:
            sock.get(zmq.EVENTS)  # re-arm: wake a receiver waiting on this socket if a message is already there

    async def get_msg(timeout: float | None = None) -> dict[str, t.Any]:
        deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            step = poll_interval if left is None else min(poll_interval, left)
            sock = channel.socket
            assert sock is not None, "shell channel closed"
            t0 = time.monotonic()
            ready = await sock.poll(int(step * 1000))
            if ready:
                msg = await channel._recv()
                if on_lost_wakeup is not None and step > 0 and time.monotonic() - t0 >= step * 0.999:
                    # the poll ran to its timeout, yet a message was there: a lost wake-up if it had been
                    # sent a while before (not one that happened to arrive as the slice ended)
                    sent = (msg.get("header") or {}).get("date")
                    if isinstance(sent, datetime) and sent.tzinfo is not None and \
                            (datetime.now(timezone.utc) - sent).total_seconds() > LOST_WAKEUP_AGE_S:
                        on_lost_wakeup()
                return msg
            if left is not None and left <= step:
                raise Empty

    channel.send = send
    channel.get_msg = get_msg
    channel._course_guarded = True
    return channel


class ReliableShellMixin(LoggingConfigurable):
    """Mix into an nbclient ``NotebookClient`` subclass (nbconvert's ``ExecutePreprocessor``, nbgrader's
    ``Execute``), *before* it in the bases: guards the kernel client's shell channel as soon as it starts.
    See the module docstring for the cause of the stall and why this is the fix."""

    shell_poll_interval = Float(
        1.0,
        help="Longest single wait (seconds) for a shell message; the overall timeouts are unchanged. "
        "Bounds the cost of a lost zmq wake-up on the shell socket.",
    ).tag(config=True)

    #: shell waits that ran to their slice's timeout although a message was waiting (lost wake-ups that the
    #: slicing caught); counted over the client's lifetime
    lost_wakeups: int = 0

    def _count_lost_wakeup(self) -> None:
        self.lost_wakeups += 1
        self.log.warning("a shell message was waiting without waking the client (caught after %.1f s)",
                         self.shell_poll_interval)

    async def async_start_new_kernel_client(self):
        kc = await super().async_start_new_kernel_client()
        guard_shell_channel(kc.shell_channel, self.shell_poll_interval, self._count_lost_wakeup)
        return kc

    # nbclient binds the sync wrapper to its own coroutine: re-bind it to ours
    start_new_kernel_client = run_sync(async_start_new_kernel_client)


class CourseNotebookClient(ReliableShellMixin, NotebookClient):
    """nbclient's ``NotebookClient`` with the shell-channel guard (the client of ``tests/support/notebook_utils.py``)."""
