"""The one way every rtc_ros node process starts, spins and shuts down."""

from __future__ import annotations

import signal
from typing import Callable

import rclpy
from rclpy.executors import Executor, ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node

from rtc_ros.nodes.params.declare import GLOBAL_ARGV


#: non-empty once a SIGINT reached this process (:func:`sigint_once`): an exception out of the spin after it is
#: the shutdown's, whatever its type
SIGINT_RECEIVED: list[bool] = []


def spin_node(
    make_node: Callable[[], Node],
    name: str,
    refuse_on: tuple[type[BaseException], ...],
    args: list[str] | None = None,
    executor_factory: Callable[[Node], Executor] = lambda node: SingleThreadedExecutor(),
) -> int:
    """``rclpy.init``, build the node, spin until Ctrl-C / shutdown, clean up; return the exit code.

    A constructor raising one of ``refuse_on`` (an invalid parameter) is logged as
    ``refusing to start: ...`` and gives exit code 2. The executor is built after the node
    (``executor_factory(node)``), so it can depend on the node's parameters. The node's ``stop()`` (if any) runs before it is destroyed.
    """
    sigint_once()  # before rclpy.init: rclpy's handler chains to it, and restores it at shutdown
    rclpy.init(args=args)
    GLOBAL_ARGV[:] = list(args) if args is not None else []  # (the params files the node's own check reads)
    try:
        node = make_node()
    except refuse_on as exc:
        where = getattr(exc, "node", "")  # (under a namespace: which robot's node refused)
        rclpy.logging.get_logger(name).fatal(f"refusing to start{f' ({where})' if where.count('/') > 1 else ''}: {exc}")
        rclpy.try_shutdown()
        return 2
    except KeyboardInterrupt:  # Ctrl-C while the node was being built (a policy loading for seconds)
        ignore_sigint()
        rclpy.try_shutdown()
        ignore_sigint()
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
        stop = getattr(node, "stop", None)
        if callable(stop):
            stop()
        if executor is not None:
            executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
        ignore_sigint()  # rclpy restores the handler that raises KeyboardInterrupt on shutdown
    return 0


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
