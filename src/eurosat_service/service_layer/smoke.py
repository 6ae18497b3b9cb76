"""The seed's curl check as a use case: is an endpoint ready, and does it classify a real image?"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from eurosat_service.domain.land_cover import EUROSAT_CLASSES
from eurosat_service.domain.ports import EndpointProbe, HttpReply
from eurosat_service.service_layer.deployment import Waiting


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class SmokeReport:
    url: str
    checks: tuple[Check, ...] = field(default_factory=tuple)

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)


def smoke(
    base_url: str,
    probe: EndpointProbe,
    image: bytes,
    filename: str = "smoke.jpg",
    waiting: Waiting = Waiting(timeout=30.0, poll=1.0),
    timeout: float = 15.0,
) -> SmokeReport:
    """The seed's curl check: ``GET /readyz`` (retried until ready or the wait ends), then
    ``POST /predict`` with a real EuroSAT image and a well-formed answer."""
    base = base_url.rstrip("/")
    start = waiting.clock()
    while True:
        reply = probe.get(f"{base}/readyz", timeout)
        if reply.status == 200 or waiting.clock() - start >= waiting.timeout:
            break
        waiting.sleep(waiting.poll)
    ready = Check("GET /readyz", reply.status == 200,
                  f"{reply.status} in {reply.seconds * 1000:.0f} ms" if reply.status else f"no answer: {reply.error}")
    if not ready.ok:
        return SmokeReport(base, (ready,))
    reply = probe.post_file(f"{base}/predict", "file", filename, image, "image/jpeg", timeout)
    return SmokeReport(base, (ready, _check_prediction(reply)))


def _check_prediction(reply: HttpReply) -> Check:
    name = "POST /predict"
    if reply.status != 200:
        return Check(name, False, f"{reply.status or 'no answer'}: {reply.error or reply.body[:200]!r}")
    try:
        body = json.loads(reply.body)
        label, confidence, probabilities = body["label"], float(body["confidence"]), body["probabilities"]
    except (ValueError, KeyError, TypeError) as exc:
        return Check(name, False, f"200 but not a prediction ({exc}): {reply.body[:200]!r}")
    problems = []
    if label not in EUROSAT_CLASSES:
        problems.append(f"unknown label {label!r}")
    if not 0.0 <= confidence <= 1.0:
        problems.append(f"confidence {confidence} outside 0..1")
    if set(probabilities) != set(EUROSAT_CLASSES) or abs(sum(probabilities.values()) - 1.0) > 1e-3:
        problems.append("probabilities are not one per EuroSAT class summing to 1")
    if problems:
        return Check(name, False, "; ".join(problems))
    return Check(name, True, f"200 in {reply.seconds * 1000:.0f} ms: {label} ({confidence:.2f}), "
                             f"model {body.get('model_version', '?')}")
