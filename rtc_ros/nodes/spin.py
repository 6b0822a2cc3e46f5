"""The one way every rtc_ros node process starts, spins and shuts down."""

from __future__ import annotations

import faulthandler
import os
import signal
import socket
import sys
import threading
from typing import Callable

import rclpy
from rclpy.executors import Executor, ExternalShutdownException, SingleThreadedExecutor
from rclpy.signals import SignalHandlerOptions
from rclpy.node import Node

from rtc_ros.nodes.params.declare import GLOBAL_ARGV


#: non-empty once a SIGINT reached this process (:func:`sigint_once`): an exception out of the spin after it is
#: the shutdown's, whatever its type
SIGINT_RECEIVED: list[bool] = []
#: a node process still there this long (s) after its stop began (its first SIGINT / SIGTERM under
#: ``brake_on_stop``, else the end of its spin) writes every thread's Python stack to stderr ("Timeout (0:00:08)!")
#: and exits with code 1 -- under ``ros2 launch`` before its SIGKILL (SIGTERM 5 s after its SIGINT, SIGKILL 5-10 s
#: after that, by launch version; the brake takes at most 3 s of it). faulthandler's watchdog
#: is a C thread: it works when a thread holding the GIL is blocked, where no Python handler runs (CI 2026-12-07:
#: chunk_executor neither braked nor exited at a SIGINT, nor at ros2 launch's SIGTERM, and left no trace)
SHUTDOWN_HANG_S = 8.0


def spin_node(
    make_node: Callable[[], Node],
    name: str,
    refuse_on: tuple[type[BaseException], ...],
    args: list[str] | None = None,
    executor_factory: Callable[[Node], Executor] = lambda node: SingleThreadedExecutor(),
    brake_on_stop: bool = False,
) -> int:
    """``rclpy.init``, build the node, spin until Ctrl-C / shutdown, clean up; return the exit code.

    A constructor raising one of ``refuse_on`` (an invalid parameter) is logged as
    ``refusing to start: ...`` and gives exit code 2. The executor is built after the node
    (``executor_factory(node)``), so it can depend on the node's parameters. The node's ``stop()`` (if any) runs before it is destroyed.
    ``brake_on_stop``: SIGINT / SIGTERM first call the node's ``brake_to_stop(cut_short)`` while ROS still runs, then
    shut down (:class:`StopSignals`; the robot-facing executor's commands brake instead of stopping dead).
    """
    signals = StopSignals.install() if brake_on_stop else None  # (None outside the main thread)
    try:
        return _spin(make_node, name, refuse_on, args, executor_factory, signals)
    finally:
        if signals is not None:
            signals.close()
        faulthandler.cancel_dump_traceback_later()  # (stopped in time; the caller -- a test -- may go on)


def _spin(make_node: Callable[[], Node], name: str, refuse_on: tuple[type[BaseException], ...],
          args: list[str] | None, executor_factory: Callable[[Node], Executor], signals: "StopSignals | None") -> int:
    if signals is None:
        sigint_once()  # before rclpy.init: rclpy's handler chains to it, and restores it at shutdown
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO if signals is not None else None)
    GLOBAL_ARGV[:] = list(args) if args is not None else []  # (the params files the node's own check reads)
    try:
        node = make_node()
    except refuse_on as exc:
        where, set_in = getattr(exc, "node", ""), getattr(exc, "set_in", [])  # (under a namespace: which robot's)
        rclpy.logging.get_logger(name).fatal(f"refusing to start{f' ({where})' if where.count('/') > 1 else ''}: {exc}"
                                             + (f" (set in {', '.join(set_in)})" if set_in else ""))
        rclpy.try_shutdown()
        return 2
    except KeyboardInterrupt:  # Ctrl-C while the node was being built (a policy loading for seconds)
        ignore_sigint()
        rclpy.try_shutdown()
        ignore_sigint()
        return 0
    if signals is not None and not signals.attach(node):  # stopped before the node existed: nothing commanded yet
        stop = getattr(node, "stop", None)
        if callable(stop):
            stop()
        node.destroy_node()
        rclpy.try_shutdown()
        return 0
    executor: Executor | None = None
    try:  # (a SIGINT right after the constructor, before the spin, is a shutdown too: no traceback)
        executor = executor_factory(node)
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:  # noqa: BLE001 -- a SIGINT that shuts the context down while the executor builds its
        # wait set surfaces as RCLError ("the given context is not valid"); one whose KeyboardInterrupt is raised
        # inside pybind11's conversion of a call's arguments (rclpy's take_message) surfaces as RuntimeError
        # ("Unable to convert call argument '0' to Python object": CI 2026-12-07): a shutdown too
        if rclpy.ok() and not SIGINT_RECEIVED:
            raise
    finally:
        # Ctrl-C in a terminal reaches every process of the group and `ros2 launch` then sends its own
        # SIGINT: a second one must not abort the cleanup with a KeyboardInterrupt (SIGTERM still works).
        ignore_sigint()
        if signals is None:
            watch_the_stop()
        stop = getattr(node, "stop", None)
        if callable(stop):
            stop()
        if executor is not None:
            executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
        ignore_sigint()  # rclpy restores the handler that raises KeyboardInterrupt on shutdown
    return 0


def watch_the_stop() -> None:
    """Arm the :data:`SHUTDOWN_HANG_S` watchdog (``spin_node`` cancels it once the node is stopped)."""
    try:
        faulthandler.dump_traceback_later(SHUTDOWN_HANG_S, exit=True, file=sys.__stderr__)
    except (AttributeError, OSError, ValueError, RuntimeError):  # (no stderr to write to)
        pass


def ignore_sigint() -> None:
    """Ignore further SIGINTs (the process is already shutting down); no-op outside the main thread."""
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:
        pass


def sigint_once() -> None:
    """The first SIGINT raises KeyboardInterrupt (after rclpy's own handler has shut the context down), later
    ones are ignored: Ctrl-C in a terminal reaches every process of the group and `ros2 launch` sends its own
    SIGINT too, and a second one landing between the end of the spin and :func:`ignore_sigint` aborted the
    cleanup with a traceback (exit code -2; seen in CI 2026-12-06). No-op outside the main thread."""
    fired = SIGINT_RECEIVED
    fired.clear()  # (this process's from now on)

    def handler(signum: int, frame: object) -> None:
        if not fired:
            fired.append(True)
            raise KeyboardInterrupt

    try:
        signal.signal(signal.SIGINT, handler)
    except ValueError:
        pass


class StopSignals:
    """SIGINT / SIGTERM for a node that must act before ROS shuts down (``spin_node(brake_on_stop=True)``).

    rclpy's own handlers shut the context down at the signal, after which nothing can be published; here rclpy
    installs none. Python's handlers for both signals only record the signal, and :func:`signal.set_wakeup_fd`
    (as ``ros2 launch`` itself does) wakes a thread whichever thread the signal hit, the main thread being blocked
    in the executor's wait: the first signal starts a thread that calls the node's ``brake_to_stop(cut_short)``
    (with ROS still running), then :func:`rclpy.try_shutdown`, which ends the spin. Later SIGINTs are ignored
    (Ctrl-C in a terminal and ``ros2 launch`` each send one); a SIGTERM while it brakes sets ``cut_short`` (``ros2
    launch`` escalates to SIGTERM 5 s after its SIGINT), one after that exits at once (exit code 143), as SIGTERM
    did before.
    """

    def __init__(self) -> None:
        self.node: object | None = None
        self.cut_short = threading.Event()
        self._lock = threading.Lock()  # (node and _shutting_down: the reader thread and spin_node)
        self._shutting_down = False
        self._closed = False
        self._rsock, self._wsock = socket.socketpair()
        self._wsock.setblocking(False)
        self._old = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        self._old_fd = -1
        self._thread = threading.Thread(target=self._wait, name="rtc_stop_signals", daemon=True)

    @classmethod
    def install(cls) -> "StopSignals | None":
        """Install the handlers (main thread only: None elsewhere, e.g. a node run inside a test's thread)."""
        if threading.current_thread() is not threading.main_thread():
            return None
        self = cls()
        SIGINT_RECEIVED.clear()
        for sig in self._old:
            signal.signal(sig, _record_signal)
        self._old_fd = signal.set_wakeup_fd(self._wsock.fileno(), warn_on_full_buffer=False)
        self._thread.start()
        return self

    def attach(self, node: object) -> bool:
        """The node is built (rclpy is up): signals from now on brake it. False if one came before (the caller shuts
        down without spinning)."""
        with self._lock:
            self.node = node
            return not self._shutting_down

    def _wait(self) -> None:
        while True:
            try:
                data = self._rsock.recv(64)
            except OSError:
                return
            if not data or self._closed:
                return
            for signum in data:
                if signum in (signal.SIGINT, signal.SIGTERM):  # (the fd carries every Python-handled signal)
                    self._on_signal(signum)

    def _on_signal(self, signum: int) -> None:
        with self._lock:
            first, self._shutting_down = not self._shutting_down, True
            node = self.node
        if not first:  # (a later SIGINT: ignored)
            if signum == signal.SIGTERM and not self.cut_short.is_set():
                self.cut_short.set()  # while braking (ros2 launch's escalation): shut down now
            elif signum == signal.SIGTERM:
                os._exit(128 + signal.SIGTERM)  # the cleanup hangs: SIGTERM terminates, as before
            return
        SIGINT_RECEIVED.append(True)  # (an exception out of the spin from here on is the shutdown's)
        if node is None:  # before the node exists (rclpy may not be up yet): spin_node ends after building it
            self.cut_short.set()
            return
        watch_the_stop()  # (the brake, the shutdown and the cleanup: SHUTDOWN_HANG_S in all)
        threading.Thread(target=self._stop, args=(node,), name="rtc_stop", daemon=True).start()  # (this one reads on)

    def _stop(self, node: object) -> None:
        brake = getattr(node, "brake_to_stop", None)
        if callable(brake):
            try:
                brake(self.cut_short)
            except Exception as exc:  # noqa: BLE001 -- the shutdown must happen whatever the brake did
                rclpy.logging.get_logger("rtc_ros").error(f"braking before the shutdown failed: {exc!r}")
        self.cut_short.set()
        rclpy.try_shutdown()

    def close(self) -> None:
        """Restore the wakeup fd and the handlers (SIGINT ignored from here on, as :func:`ignore_sigint`)."""
        if self._closed:
            return
        self._closed = True
        try:
            signal.set_wakeup_fd(self._old_fd)
            signal.signal(signal.SIGTERM, self._old[signal.SIGTERM])
        except ValueError:
            pass
        ignore_sigint()
        self._wsock.close()  # (the waiting thread's recv returns empty) ...
        self._thread.join(0.5)  # ... before its socket is closed (no recv on a reused fd)
        self._rsock.close()


def _record_signal(signum: int, frame: object) -> None:
    """Python's handler under :class:`StopSignals` (the thread woken by the wakeup fd does the work)."""
