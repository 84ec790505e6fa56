"""The control arm: a stable, seeded share of leads handed over in the rules' order.

Each lead falls in the `control` arm when a hash of its id (BLAKE2b of ``"<salt>:<lead_id>"``,
the first 53 bits as a fraction of 1) is below `share`, else in the `model` arm. The hash,
not a random draw, makes the arm a property of the lead: the same in every run, on every
machine and engine, and independent of the model and of the lead's data. Sales works the
`model` arm in the model's order (probability) and the `control` arm in the rules' order
(`rule_points`), so `leadscore.monitor.realized` can measure the model's lift over the rules
on the outcomes that follow, in production.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np

ARMS = ("model", "control")


def control_fraction(lead_id: str, salt: str) -> float:
    """The lead's position in [0, 1) of the hash order (uniform over ids)."""
    digest = hashlib.blake2b(f"{salt}:{lead_id}".encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "big") >> 11) / float(1 << 53)


def assign_arms(lead_ids: Iterable[str], share: float, salt: str) -> np.ndarray:
    """"control" for the leads whose hash falls below `share`, "model" for the others."""
    if not 0.0 <= share <= 0.5:
        raise ValueError(f"the control share must be in [0, 0.5], not {share}")
    ids = list(lead_ids)
    if share == 0.0:
        return np.full(len(ids), ARMS[0], dtype=object)
    frac = np.fromiter((control_fraction(str(i), salt) for i in ids), dtype=float, count=len(ids))
    return np.where(frac < share, ARMS[1], ARMS[0]).astype(object)
