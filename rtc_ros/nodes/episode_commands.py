"""episode_recorder's operator commands: the control topic's JSON commands (``start``, ``stop``, ``abort``,
``score``; see docs/recording.md) and the services ``~/start_episode``, ``~/stop_episode`` (data = success),
``~/abort_episode`` (std_srvs), answered by the recorder node ``node`` (its session, episodes and status topic)."""

from __future__ import annotations

from typing import Any

from rclpy.qos import QoSProfile, ReliabilityPolicy
from std_msgs.msg import String
from std_srvs.srv import SetBool, Trigger

from rtc_ros.recording.bag import read_sidecar
from rtc_ros.recording.metadata import parse_command, refused_start


class EpisodeCommands:
    """Created by the recorder node ``node``: subscribes its ``control_topic`` and offers the operator services."""

    def __init__(self, node: Any) -> None:
        self.node = node
        node.create_subscription(String, node.p.control_topic, self.on_control,
                                 QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE))
        node.create_service(Trigger, "~/start_episode", self.srv_start)
        node.create_service(SetBool, "~/stop_episode", self.srv_stop)
        node.create_service(Trigger, "~/abort_episode", self.srv_abort)

    def on_control(self, msg: String) -> None:
        """One command on the control topic (JSON: start, stop, abort, score); a bad one is refused, logged and
        answered on the status topic."""
        node = self.node
        try:
            cmd = parse_command(msg.data)
        except ValueError as exc:
            node.get_logger().error(f"ignoring episode command {msg.data!r}: {exc}")
            node._publish_status("error", error=f"bad command: {exc}")
            if refused_start(msg.data):  # a 'score' now is for the episode that did not start, not the one before
                node.session.last_closed = None
            return
        kind = cmd.pop("cmd")
        if kind == "start":
            meta = cmd.get("meta") or {}
            node.start_episode(meta if isinstance(meta, dict) else {"meta": meta})
        elif kind in ("stop", "abort"):
            if not node.session.recording:
                closed = read_sidecar(node.session.last_closed) if node.session.last_closed else None
                if (kind == "stop" and (closed or {}).get("status") in ("timeout", "stopped_low_disk", "failed")
                        and closed.get("success") is None):
                    # the recorder closed it just before (max_duration, low disk): the verdict still belongs to it
                    try:
                        node.session.amend_score(cmd)
                    except OSError as exc:
                        node._publish_status("error", error=f"verdict not written: {exc}")
                        return
                    node.get_logger().warning(f"'stop' after {closed.get('episode')} was closed "
                                              f"({closed.get('status')}): its verdict {cmd} added to it")
                    return
                node.get_logger().warning(f"'{kind}' received while not recording; ignored")
                node._publish_status("idle", warning=f"'{kind}' while not recording: ignored")  # (idle: a runner
                # waiting for the recorder to be ready reads the latched status)
                return
            node.request_stop("aborted" if kind == "abort" else "completed", cmd)
        elif kind == "score":
            try:
                scored = node.session.amend_score(cmd)
            except OSError as exc:
                node.get_logger().error(f"cannot write the score {cmd} of {node.session.last_closed}: {exc}")
                node._publish_status("error", error=f"score not written: {exc}")
                return
            if scored is None:
                node.get_logger().warning("'score' received but no episode was stopped yet; ignored")
                now = ({"episode": node.session.episode, "bag": str(node.session.bag.path)}  # (latched: a late
                       if node.session.recording and node.session.bag is not None else {})  # reader keeps the name)
                node._publish_status("recording" if now else "idle", **now, warning="'score' with no episode to "
                                     "score (none stopped yet, or the last start failed): ignored")
            else:
                if node.session.recording:  # in the stop grace: its pending verdict on disk too
                    node._write_sidecar()
                node.get_logger().info(f"episode {scored.get('episode')} scored: {cmd}")
        else:
            node.get_logger().error(f"unknown episode command {kind!r} (start, stop, abort, score)")
            node._publish_status("error", error=f"unknown command {kind!r} (start, stop, abort, score)")

    def srv_start(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        node = self.node
        if node.session.recording and node.session.pending_result is None:  # a second press: the demonstration
            response.success = False  # running would be cut to 'interrupted' (and left out of training)
            response.message = (f"already recording {node.session.episode}: stop or abort it first (the control "
                                "topic's 'start' closes it as interrupted)")
            return response
        path = node.start_episode({"started_by": "service"})
        response.success = path is not None
        response.message = f"recording {path}" if path else f"could not start: {node.last_start_error}"
        return response

    def srv_stop(self, request: SetBool.Request, response: SetBool.Response) -> SetBool.Response:
        node = self.node
        response.success = node.session.recording
        if response.success:
            node.request_stop("completed", {"success": bool(request.data)})
        response.message = ("stopping (success %s; add a score with the 'score' command on the control topic)"
                            % bool(request.data)) if response.success else "not recording"
        return response

    def srv_abort(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        node = self.node
        response.success = node.session.recording
        if response.success:
            node.request_stop("aborted", {})
        response.message = "aborting" if response.success else "not recording"
        return response
