"""Checks a run must pass before anything is written: the run directory takes writes, and the
training state fits in memory.

Both failures otherwise surface late and badly: a read-only run directory as a traceback from
the first file a resume touches, a state too large for the machine as a run that swaps, hangs
or is killed by the kernel minutes later, with nothing said.
"""

from __future__ import annotations

import os
import tempfile

import jax

from goalax.errors import ConfigError
from goalax.training.loop import Program, buffer_bytes, seed_keys

#: Subdirectories of a run directory that training writes into.
WRITTEN_SUBDIRS = ("checkpoints", "tb")
#: A run is refused when its state alone needs more than this fraction of the available memory
#: (the compiled program needs some more on top: batches, rollouts, evaluation).
MEMORY_FRACTION = 0.9


def _write_probe(directory: str) -> None:
    """Create and remove a file in ``directory``; raises OSError when writes fail there (a real
    write, not ``os.access``: root passes permission bits, and a real write meets a read-only
    mount or a network file system's rules as the run would)."""
    fd, path = tempfile.mkstemp(prefix=".write-test-", dir=directory)
    os.close(fd)
    os.remove(path)


def check_writable(run_dir: str) -> None:
    """Raise ConfigError unless ``run_dir`` and the folders training writes in it take writes
    (permission bits, a read-only mount)."""
    folders = [run_dir] + [os.path.join(run_dir, name) for name in WRITTEN_SUBDIRS]
    for folder in folders:
        if not os.path.isdir(folder):
            continue
        try:
            _write_probe(folder)
        except OSError as err:
            raise ConfigError(
                f"run directory {run_dir} is not writable ({folder}: {err.strerror}); make it "
                f"writable, or copy it (cp -r {run_dir} NEW_DIR) and resume the copy"
            ) from err


def state_bytes(program: Program) -> tuple[int, int]:
    """(training state, of which replay buffer) in bytes, all seeds, from shapes alone:
    ``eval_shape`` traces ``init`` without allocating, so a state of any size costs well under a
    second to measure."""
    like = jax.eval_shape(program.init, seed_keys(program.config))
    total = sum(int(leaf.size) * leaf.dtype.itemsize for leaf in jax.tree.leaves(like))
    return total, buffer_bytes(like)


def _mem_available() -> int | None:
    """The kernel's estimate of allocatable host memory (MemAvailable), else free pages."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    except (OSError, ValueError, AttributeError):
        return None


def _cgroup_room() -> int | None:
    """Bytes left under this container's cgroup (v2) memory limit; ``None`` without a limit."""
    try:
        with open("/sys/fs/cgroup/memory.max") as f:
            limit = f.read().strip()
        if limit == "max":
            return None
        with open("/sys/fs/cgroup/memory.current") as f:
            return int(limit) - int(f.read())
    except (OSError, ValueError):
        return None


def _host_available() -> int | None:
    """Bytes this process can still allocate on the host: MemAvailable, capped by the cgroup
    limit, whose excess gets the process killed even when the host has memory to spare."""
    known = [n for n in (_mem_available(), _cgroup_room()) if n is not None]
    return min(known) if known else None


def available_memory(devices: list) -> int | None:
    """Free bytes for the state on ``devices`` (this process's share of the run's devices):
    host memory on CPU (all CPU devices share it), else each accelerator's free memory summed;
    ``None`` when the platform does not say."""
    if not devices:
        return None
    if devices[0].platform == "cpu":
        return _host_available()
    free = 0
    for device in devices:
        stats = device.memory_stats() or {}
        if "bytes_limit" not in stats:
            return None
        free += stats["bytes_limit"] - stats.get("bytes_in_use", 0)
    return free


def _size(nbytes: float) -> str:
    if nbytes >= 2**30:
        return f"{nbytes / 2**30:.1f} GiB"
    return f"{nbytes / 2**20:.1f} MiB"


def memory_refusal(needed: float, replay: float, available: int | None, where: str) -> str | None:
    """The refusal for a state of ``needed`` bytes (``replay`` of them the buffer) when it does
    not fit in ``MEMORY_FRACTION`` of ``available``; ``None`` when it fits or nothing is known."""
    if available is None or needed <= MEMORY_FRACTION * available:
        return None
    return (
        f"the training state needs an estimated {_size(needed)} (replay buffer {_size(replay)}) "
        f"but {_size(max(available, 0))} is available {where}; lower --num-envs, --buffer-size "
        "or --num-seeds"
    )


def check_memory(program: Program) -> None:
    """Refuse a run whose training state cannot fit in the memory available to this process,
    before anything is allocated or written."""
    devices = list(program.mesh.devices.flat) if program.mesh is not None else jax.devices()[:1]
    local = [d for d in devices if d.process_index == jax.process_index()]
    total, replay = state_bytes(program)
    share = len(local) / len(devices)  # the state is split over the devices (envs, buffer)
    where = "in host memory"
    if local and local[0].platform != "cpu":
        where = f"on {len(local)} x {local[0].device_kind}" if len(local) > 1 else "on the device"
    refusal = memory_refusal(total * share, replay * share, available_memory(local), where)
    if refusal:
        raise ConfigError(refusal)
