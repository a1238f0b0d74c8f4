"""Where the server and the load generator run: the server on its own core, the load
generator (and the runner with its sampler) on the others, with taskset."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass


@dataclass(frozen=True)
class Pinning:
    """Server on its own core, load generator (and this runner) on the others."""

    server_cpus: tuple[int, ...] | None
    client_cpus: tuple[int, ...] | None
    requested: bool = True  # pinning asked for (--no-pin: False)
    per_host_roles: bool = False  # a cluster run: each host pins its own role

    @classmethod
    def detect(cls, enabled: bool = True, cpus: list[int] | None = None) -> "Pinning":
        """From this process's CPUs, or from `cpus` (a cluster worker: the CPUs it was
        started with, before it moved itself off the cores it measures)."""
        cpus = sorted(os.sched_getaffinity(0) if cpus is None else cpus)
        if not enabled or len(cpus) < 2 or shutil.which("taskset") is None:
            return cls(None, None, enabled)
        return cls((cpus[0],), tuple(cpus[1:]))

    @classmethod
    def per_host(cls, enabled: bool = True) -> "Pinning":
        """On a cluster: nothing pinned here; each host pins its own role (`detect` there)."""
        return cls(None, None, enabled, per_host_roles=True)

    def prefix(self, cpus: tuple[int, ...] | None) -> list[str]:
        return ["taskset", "-c", ",".join(map(str, cpus))] if cpus else []

    def as_dict(self) -> dict:
        method = "taskset" if self.server_cpus else None
        if self.per_host_roles and self.requested:
            method = "taskset on each host: meta.json cluster.placement says what ran where"
        return {"server_cpus": self.server_cpus, "client_cpus": self.client_cpus,
                "method": method, "requested": self.requested}
