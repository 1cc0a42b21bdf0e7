"""The active gate: plugin objects registered when a staging target is configured, one per role.

==============  ==========================================================================
process         plugin objects
==============  ==========================================================================
plain run       :class:`.collection.Collection`, :class:`.accounting.Accounting`,
                :class:`.issuer.Issuer`
xdist worker    :class:`.collection.Collection`, :class:`.worker.Worker` (accounting that
                publishes its collection, a tier barrier across workers)
xdist controller :class:`.controller.Controller` (collects and runs nothing),
                :class:`.issuer.Issuer`
==============  ==========================================================================

Every process also gets :class:`.reruns.Reruns` with ``--staging-reruns``, and
:class:`.scrubbing.Scrubbing` when there are secrets to hide. Accounting (and the worker's)
registers :class:`.accounting.TierGuard`, the setup hook that may skip a test, only once it can:
on a worker, on a sensitive target, after a tier failed under fail-fast. What they share (settings, target,
ledger, the test under way) is :class:`.state.Gate`. The flow is one way: collection → accounting
(the ledger) → decision (:mod:`..core.decide`) → verdict (:mod:`..verdict`) → reports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # this package's __init__ is imported by every run with the plugin: keep it light
    from ..settings import Settings
    from .state import Gate

GATE_KEY = pytest.StashKey["Gate"]()


def start(config: pytest.Config, settings: Settings, controller: bool) -> Gate:
    """Register this process's roles; the verdict path is held (an ``incomplete`` HOLD) before
    this returns. Raises ``ConfigError`` for an unwritable verdict path (nothing is registered)."""
    from .state import Gate

    gate = Gate(config, settings)
    manager = config.pluginmanager
    if hasattr(config, "workerinput"):
        from .collection import Collection
        from .worker import Worker

        worker = Worker(gate)
        roles: list[tuple[object, str]] = [
            (Collection(gate, worker.collected), "staging-collection"),
            (worker, "staging-worker"),
        ]
    else:
        from .issuer import Issuer

        issuer = Issuer(gate)
        if settings.verdict_path is not None:
            issuer.hold_verdict_path()
        if controller:
            from .controller import Controller

            issuer.controller = Controller(gate)
            roles = [(issuer.controller, "staging-controller"), (issuer, "staging-issuer")]
        else:
            from .accounting import Accounting
            from .collection import Collection

            roles = [
                (Collection(gate), "staging-collection"),
                (Accounting(gate), "staging-accounting"),
                (issuer, "staging-issuer"),
            ]
    if gate.scrub:
        from .scrubbing import Scrubbing

        roles.append((Scrubbing(gate.scrub), "staging-scrubbing"))
    if settings.reruns:
        from .reruns import Reruns

        roles.append((Reruns(settings.reruns, gate.records, gate.is_quarantined), "staging-reruns"))
    gate.signals.install()
    config.stash[GATE_KEY] = gate
    for plugin, name in roles:
        manager.register(plugin, name)
    return gate
