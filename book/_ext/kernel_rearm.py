"""Cure the stall of widget cells in every kernel client of this process: the book build's
(myst-nb executes the chapters through nbclient) and the Colab-like run's
(``tools/colab_test.py`` imports :func:`rearm_after_send` from here).

As a Sphinx extension (``local_extensions`` in ``_config.yml``) it patches jupyter_client's
channels when the build starts, before any chapter is executed. Without it a chapter with an
``interactive`` widget (chapter 4, 6) can wait for the cell's full execution timeout now and
then, with an idle kernel, because a reply's wake-up was lost (see :func:`rearm_after_send`).
"""

import jupyter_client.channels
import zmq
import zmq.asyncio


def rearm(socket) -> None:
    """Make an asyncio zmq socket notice a message that arrived during a synchronous send."""
    if isinstance(socket, zmq.asyncio.Socket):
        socket.get(zmq.EVENTS)  # public API: re-schedules its event handling when events wait


def rearm_after_send() -> None:
    """Cure the stall of widget cells: re-arm the shell socket after every channel send.

    The cause. While a cell runs, nbclient waits for its ``execute_reply`` with an asyncio poll
    on the shell socket. When an ipywidgets ``Output`` widget (the one inside ``interactive``)
    captures a figure, nbclient sends the widget's state back to the kernel on that same socket
    (``OutputWidget.sync_state`` -> ``shell_channel.send``), and jupyter_client's
    ``Session.send`` does so through a *synchronous shadow* of the asyncio socket. That send
    processes the socket's pending commands and so consumes the edge-triggered ``ZMQ_FD``
    wake-up of a reply that arrived a few milliseconds earlier: the asyncio poller is never
    woken, and the reply is read only when the poll times out, after which the cell passes as
    if nothing happened (it "takes" exactly its timeout). Reading ``EVENTS`` through the asyncio
    socket after each send re-schedules the handling of what is pending, as pyzmq's own asyncio
    send path does. Idempotent.
    """
    channel = jupyter_client.channels.ZMQSocketChannel
    if getattr(channel.send, "_rearms", False):
        return
    send = channel.send

    def send_and_rearm(self, msg):
        send(self, msg)
        rearm(self.socket)

    send_and_rearm._rearms = True
    channel.send = send_and_rearm


def setup(app):
    rearm_after_send()
    return {"parallel_read_safe": True, "parallel_write_safe": True}
