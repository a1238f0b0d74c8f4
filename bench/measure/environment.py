"""The environment that makes a number meaningful (DESIGN §3), collected automatically
into meta.json: CPU, kernel, Python and packages, git commit, a real UTC date, pinning,
limits, network sysctls, virtualization and load at the start."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import resource
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

from bench import PROJECT_ROOT

# 2: one fresh server per repetition, window-edge samples, syscalls apart, new columns
FORMAT_VERSION = 2
PACKAGES = ("psutil", "pandas", "numpy", "matplotlib", "hdrhistogram", "scipy", "tqdm",
            "uvloop", "iomodels")
SYSCTLS = ("net/core/somaxconn", "net/ipv4/tcp_max_syn_backlog", "net/ipv4/ip_local_port_range",
           "net/ipv4/tcp_tw_reuse", "fs/file-max")


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def _run(*cmd: str) -> str | None:
    if shutil.which(cmd[0]) is None:
        return None
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=5, cwd=PROJECT_ROOT)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def cpu_model() -> str | None:
    for line in (_read("/proc/cpuinfo") or "").splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or None


def virtualization() -> dict:
    """systemd-detect-virt's answer when it exists, and the CPU's hypervisor flag."""
    detected = _run("systemd-detect-virt")
    flags = ""
    for line in (_read("/proc/cpuinfo") or "").splitlines():
        if line.startswith("flags"):
            flags = line
            break
    hypervisor_flag = " hypervisor" in flags
    return {
        "systemd_detect_virt": detected,
        "hypervisor_flag": hypervisor_flag,
        "is_vm": bool(hypervisor_flag or (detected not in (None, "none"))),
    }


def package_versions() -> dict:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_state() -> dict:
    commit = _run("git", "rev-parse", "HEAD")
    status = _run("git", "status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if commit else None}


def limits() -> dict:
    out = {}
    for name in ("RLIMIT_NOFILE", "RLIMIT_NPROC"):
        soft, hard = resource.getrlimit(getattr(resource, name))
        out[name.lower()] = {"soft": soft, "hard": hard}
    return out


def collect(profile: dict, command: list[str], pinning: dict, models: dict) -> dict:
    """Everything meta.json holds at the start of a run."""
    uname = platform.uname()
    return {
        "format_version": FORMAT_VERSION,
        "started_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "cwd": os.getcwd(),
        "profile": profile,
        "models": models,
        "pinning": pinning,
        "cpu": {"model": cpu_model(), "logical_cpus": os.cpu_count(),
                "usable_cpus": sorted(os.sched_getaffinity(0)),
                "governor": _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")},
        "kernel": {"system": uname.system, "release": uname.release, "version": uname.version,
                   "machine": uname.machine},
        "python": {"version": platform.python_version(),
                   "implementation": platform.python_implementation(),
                   "executable": sys.executable},
        "packages": package_versions(),
        "git": git_state(),
        "limits": limits(),
        "sysctl": {path.replace("/", "."): _read(f"/proc/sys/{path}") for path in SYSCTLS},
        "virtualization": virtualization(),
        "load_average_at_start": list(os.getloadavg()),
        "memory_total_bytes": _memory_total(),
    }


def _memory_total() -> int | None:
    for line in (_read("/proc/meminfo") or "").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return None
