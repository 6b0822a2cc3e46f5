"""Where a spec's ``model:`` comes from: a registered name or an import path (bring your own policy).

The spec field ``model`` is either

* a **registered name**: the built-ins (:data:`BUILTIN_MODELS`) or any name a package registers in
  the entry-point group :data:`ENTRY_POINT_GROUP`, e.g. in its ``pyproject.toml``::

      [project.entry-points."rtc_ros.policies"]
      my_policy = "my_package.policy:make_policy"

* or an **import path** ``package.module:factory`` (the package only has to be importable).

Either way it names a **factory** ``factory(config: dict) -> FlowPolicy``: given the spec's ``config``
mapping it builds the (untrained) model, an ``nn.Module`` with ``horizon``, ``action_dim`` and
``obs_dim`` and either ``forward(a_tau, obs, tau)`` or ``encode(obs)`` / ``velocity(a_tau, context,
tau)`` (:class:`rtc_ros.policies.base.FlowPolicy`); rtc_ros then loads the spec's safetensors weights
into it. A user's package works without editing rtc_ros.
"""

from __future__ import annotations

import importlib
import inspect
import re
from importlib.metadata import entry_points
from typing import Any, Callable

import numpy as np

from rtc_ros.policies.base import FlowPolicy

ENTRY_POINT_GROUP = "rtc_ros.policies"
#: built-in models (also registered as entry points by setup.py; listed here so a source checkout works)
BUILTIN_MODELS: dict[str, str] = {"mlp_mixer": "rtc_ros.policies.mixer:make_mixer",
                                  "bimanual_cnn": "rtc_ros.policies.cnn_mixer:make_cnn_mixer"}
ModelFactory = Callable[[dict[str, Any]], FlowPolicy]
_IMPORT_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def registered_models() -> dict[str, str]:
    """Name -> ``module:attr`` of every registered model (built-ins and entry points)."""
    out = dict(BUILTIN_MODELS)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        out.setdefault(ep.name, ep.value)
    return out


def _import(target: str) -> Any:
    module, _, attr = target.partition(":")
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        raise ValueError(f"cannot import module {module!r} ({exc}); is the package installed or on PYTHONPATH?") from exc
    except Exception as exc:  # noqa: BLE001 -- a SyntaxError, NameError... in the plug-in's module (an audit: a raw
        # traceback, and the node's refusal did not name policy_spec)
        raise ValueError(f"importing module {module!r} failed: {type(exc).__name__}: {exc}") from exc
    try:
        return getattr(mod, attr)
    except AttributeError:
        raise ValueError(f"module {module!r} has no attribute {attr!r}") from None


def resolve_model_factory(model: str) -> ModelFactory:
    """The factory named by a spec's ``model`` field.

    Raises:
        ValueError: unknown name (listing the registered ones), an import path that does not
            import, or something that is not callable.
    """
    if not isinstance(model, str) or not model:
        raise ValueError(f"must be a registered name or 'package.module:factory', got {model!r}")
    known = registered_models()
    if model in known:
        target = known[model]
    elif _IMPORT_PATH.match(model):
        target = model
    else:
        raise ValueError(f"unknown model {model!r}; registered: {sorted(known)}; or give an import path "
                         "'package.module:factory'")
    factory = _import(target)
    if not callable(factory):
        raise ValueError(f"{target!r} is not callable (expected factory(config: dict) -> FlowPolicy)")
    return factory


def build_model(model: str, config: dict[str, Any]) -> FlowPolicy:
    """``resolve_model_factory(model)(config)``, checking what comes back.

    Raises:
        ValueError: from :func:`resolve_model_factory`; ``TypeError``/``ValueError`` raised by the
            factory (a bad config) are re-raised as ``ValueError`` prefixed ``config:``.
    """
    factory = resolve_model_factory(model)
    try:
        inspect.signature(factory).bind(dict(config))  # (a factory taking no config, or only keywords: the
    except (TypeError, ValueError) as exc:  # model's fault, which a TypeError below would blame on config -- an audit)
        if isinstance(exc, TypeError):
            raise ValueError(f"model {model!r}: its factory cannot be called as factory(config: dict) ({exc})") from exc
    try:
        net = factory(dict(config))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"config: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 -- e.g. a KeyError for a config field the factory needs
        raise ValueError(f"config: the factory {model!r} failed: {type(exc).__name__}: {exc}") from exc
    missing = [a for a in ("horizon", "action_dim", "obs_dim")  # (numpy integers too: an audit)
               if isinstance(getattr(net, a, None), bool) or not isinstance(getattr(net, a, None), (int, np.integer))]
    if missing or not hasattr(net, "state_dict"):
        raise ValueError(f"{model!r} built {type(net).__name__}, which lacks {missing or ['state_dict']} "
                         "(a FlowPolicy nn.Module with int horizon, action_dim, obs_dim)")
    for a in ("horizon", "action_dim", "obs_dim"):
        if not isinstance(getattr(net, a), int):  # (a numpy integer: a plain int; a read-only property stays)
            try:
                setattr(net, a, int(getattr(net, a)))
            except AttributeError:
                pass
    if not hasattr(net, "encode"):  # a plain nn.Module with forward(a_tau, obs, tau): encode = identity
        net.encode = lambda obs: obs  # type: ignore[method-assign]
        net.velocity = net.forward  # type: ignore[method-assign]
    return net
