"""Key unavailable (layers 1 + 4): the primary region is lost, as in a region outage, and at recovery time
the layer-4 data key cannot be fetched: the key service (a KMS stand-in the drill owns,
fixtures.key_service, over TLS with a bearer token) is down. The recovery gets the key through the escrow
(layers.key_escrow: the data key wrapped under a recovery key kept apart, drill_recovery_key, the blob stored
beside the offsite copies) as its own RTO phase "key", then restores the newest offsite copy that
authenticates under it. With no recovery key configured nothing else holds the key: the drill fails with
one message naming the problem and the fix."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from fixtures.key_service import KeyService
from layers.key_escrow import RecoveryKey, put_escrow
from layers.key_source import KeyUnavailable, obtain_key
from layers.offsite import Keyring, keyring
from layers.store import ObjectStore
from reports.result import Objectives
from scenarios import region_outage
from scenarios.base import Recovery, Scenario, detect_by_monitor

if TYPE_CHECKING:
    from fixtures.drill import Drill
    from reports.stopwatch import Stopwatch


@dataclass
class KeyState:
    service: KeyService | None = None
    recovery: RecoveryKey | None = None


def recovery_key(drill: Drill) -> RecoveryKey | None:
    """drill_recovery_key: 'generate', 'none', or a file (relative to the rootdir)."""
    setting = drill.config.recovery_key
    if setting == "none":
        return None
    if setting == "generate":
        return RecoveryKey.generate()
    return RecoveryKey.from_file(drill.session.rootdir / Path(setting).expanduser())


def arm(drill: Drill) -> None:
    """A region outage's arming, then the key service holding the data key, and its escrow (if configured)."""
    region_outage.arm(drill, None)
    assert drill.offsite is not None
    key, state = drill.offsite.key, drill.state(KeyState)
    service = KeyService(drill.artifacts / "key-service.log", reaper=drill.session.reaper,
                         timeout=drill.config.startup_timeout)  # fmt: skip
    drill.cleanups.append(service.close)
    state.service = service.start(key)
    served = service.client().fetch(key.key_id)  # the service works before it goes down
    if served.secret != key.secret:
        raise RuntimeError(f"key service {service.url} hands out another key for {key.key_id}")
    state.recovery = recovery_key(drill)
    escrow = put_escrow(drill.offsite.offsite, key, state.recovery) if state.recovery else None
    drill.details.update(key_service=service.url, key_escrow=escrow or "none (drill_recovery_key = none)",
                         recovery_key=f"{state.recovery.key_id} ({state.recovery.source})" if state.recovery else "none")  # fmt: skip


def damage(drill: Drill) -> None:
    region_outage.damage(drill, None)
    service = drill.state(KeyState).service
    assert service is not None
    service.kill()  # and the key source is down


def keys_via_service_or_escrow(drill: Drill, watch: Stopwatch, offsite: ObjectStore) -> Keyring:
    """The key service first (it is down), then the escrow; phase "key". Raises KeyUnavailable."""
    state = drill.state(KeyState)
    assert state.service is not None and drill.offsite is not None
    try:
        obtained = obtain_key(drill.offsite.key.key_id, state.service.client(), offsite, state.recovery)
    except KeyUnavailable as exc:
        drill.details["key_obtained"] = {"via": None, "error": str(exc)}
        watch.mark("key")
        raise
    drill.details["key_obtained"] = {"via": obtained.via, "key": f"{obtained.key.key_id} ({obtained.key.source})",
                                     "seconds": round(watch.mark("key"), 4), "problems": list(obtained.problems)}  # fmt: skip
    return keyring(obtained.key)


def recover(drill: Drill, watch: Stopwatch) -> Recovery:
    return region_outage.recover(drill, watch, None, keys_via_service_or_escrow)


KEY_UNAVAILABLE = Scenario(
    name="key-unavailable",
    title="primary region lost and the key service down; the layer-4 key recovered from its escrow",
    layers=(1, 4),
    objectives=Objectives(rpo_seconds=20.0, rto_seconds=60.0),  # as a region outage
    arm=arm,
    damage=damage,
    detect=detect_by_monitor,
    recover=recover,
)
