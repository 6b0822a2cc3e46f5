"""Fetch every parameter of other nodes through their parameter services (async, for the recorder)."""

from __future__ import annotations

from typing import Any, Callable

from rcl_interfaces.msg import ParameterType
from rcl_interfaces.srv import GetParameters, ListParameters
from rclpy.node import Node

#: ``on_values(node_name, tag, values)``; ``values`` is ``{"_error": reason}`` on failure
OnValues = Callable[[str, Any, dict[str, Any]], None]


def parameter_value(pv: Any) -> Any:
    """rcl_interfaces/ParameterValue -> Python value (None when unset)."""
    return {
        ParameterType.PARAMETER_BOOL: lambda: pv.bool_value,
        ParameterType.PARAMETER_INTEGER: lambda: pv.integer_value,
        ParameterType.PARAMETER_DOUBLE: lambda: pv.double_value,
        ParameterType.PARAMETER_STRING: lambda: pv.string_value,
        ParameterType.PARAMETER_BYTE_ARRAY: lambda: [int(b) for b in pv.byte_array_value],
        ParameterType.PARAMETER_BOOL_ARRAY: lambda: list(pv.bool_array_value),
        ParameterType.PARAMETER_INTEGER_ARRAY: lambda: list(pv.integer_array_value),
        ParameterType.PARAMETER_DOUBLE_ARRAY: lambda: list(pv.double_array_value),
        ParameterType.PARAMETER_STRING_ARRAY: lambda: list(pv.string_array_value),
    }.get(pv.type, lambda: None)()


class ParamSnapshot:
    """List + get all parameters of ``nodes`` (names relative to ``owner``'s namespace, or absolute).

    :meth:`request` asks one node and calls ``on_values`` once with what it answered.
    """

    def __init__(self, owner: Node, nodes: list[str], on_values: OnValues) -> None:
        self._on_values = on_values
        self._clients: dict[str, tuple[Any, Any]] = {}
        for name in nodes:
            base = name if name.startswith("/") else f"{owner.get_namespace().rstrip('/')}/{name}"
            self._clients[name] = (owner.create_client(ListParameters, f"{base}/list_parameters"),
                                   owner.create_client(GetParameters, f"{base}/get_parameters"))

    @property
    def nodes(self) -> list[str]:
        return list(self._clients)

    def request(self, name: str, tag: Any) -> bool:
        """Ask ``name`` for all its parameters; False (and nothing sent) if its services are not ready."""
        lister, getter = self._clients[name]
        if not lister.service_is_ready() or not getter.service_is_ready():
            return False
        req = ListParameters.Request()
        req.depth = 0
        lister.call_async(req).add_done_callback(lambda f: self._on_list(name, getter, tag, f))
        return True

    def _on_list(self, node: str, getter: Any, tag: Any, fut: Any) -> None:
        try:
            names = list(fut.result().result.names)
        except Exception as exc:  # noqa: BLE001 -- a service failure is recorded, not fatal
            self._on_values(node, tag, {"_error": str(exc)})
            return
        req = GetParameters.Request()
        req.names = names
        getter.call_async(req).add_done_callback(lambda f: self._on_get(node, getter, tag, names, f))

    def _on_get(self, node: str, getter: Any, tag: Any, names: list[str], fut: Any) -> None:
        try:
            got = list(fut.result().values)
        except Exception as exc:  # noqa: BLE001
            self._on_values(node, tag, {"_error": str(exc)})
            return
        if len(got) == len(names):
            self._on_values(node, tag, {n: parameter_value(v) for n, v in zip(names, got)})
            return
        # rclpy answers nothing at all when one name cannot be read (e.g. an unset parameter):
        # ask one by one and keep what can be read
        values: dict[str, Any] = {}
        pending = set(names)

        def one_done(name: str, f: Any) -> None:
            try:
                vals = list(f.result().values)
                if vals:
                    values[name] = parameter_value(vals[0])
            except Exception:  # noqa: BLE001
                pass
            pending.discard(name)
            if not pending:
                self._on_values(node, tag, dict(sorted(values.items(), key=lambda kv: names.index(kv[0]))))

        for name in names:
            r = GetParameters.Request()
            r.names = [name]
            getter.call_async(r).add_done_callback(lambda f, nm=name: one_done(nm, f))
