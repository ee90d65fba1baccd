"""Big ensembles: the memory of a batch estimated up front, chunks to a budget, devices in parallel.

One vmapped solve holds, per member, the saved states twice (diffrax's save buffer and the
output), the solver's stages and, for implicit solvers, the Jacobian and its factorisation.
`member_bytes` estimates that; an ensemble whose estimate exceeds ``memory_budget`` is solved in
equal chunks (the last one padded, so all chunks share one compiled runner) and the results
are gathered on the host. With several local devices (``jax.local_devices()``, e.g. GPUs, or
CPU devices made with ``XLA_FLAGS=--xla_force_host_platform_device_count=N``) each chunk is
sharded along the member axis (``jax.sharding``), so the devices solve their members in
parallel; every member is solved exactly as on one device.

>>> member_bytes(n_states=3, n_params=3, n_save=100, implicit=False)
5296
>>> chunk_members(10_000, per_member=5296, budget=2**20, n_devices=1)
197
"""

from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from ..errors import InvalidValueError

__all__ = ["DEFAULT_MEMORY_BUDGET", "member_bytes", "chunk_members", "solve_members"]

#: Bytes one vmapped solve of an ensemble may use before it is split into chunks (1 GiB).
DEFAULT_MEMORY_BUDGET = 2**30


def member_bytes(n_states: int, n_params: int, n_save: int, implicit: bool, itemsize: int = 8) -> int:
    """Estimated bytes one ensemble member occupies during a vmapped solve.

    Args:
        n_states: states of the model.
        n_params: parameters of the model.
        n_save: saved times.
        implicit: an implicit solver (adds the Jacobian, its factorisation and Newton iterates).
        itemsize: bytes per number (8 in float64).

    Returns:
        The estimate in bytes.
    """
    n = n_states
    numbers = 2 * n_save * n + 16 * n + 2 * n_params + 8  # saves x2, stages/state, p, scalars
    if implicit:
        numbers += 3 * n * n + 8 * n
    return int(numbers * itemsize)


def chunk_members(n_members: int, per_member: int, budget: float, n_devices: int) -> int:
    """Members per chunk: chunks of equal size that fit ``budget``, a multiple of ``n_devices``.

    Args:
        n_members: ensemble size.
        per_member: `member_bytes`.
        budget: bytes one chunk may use.
        n_devices: devices the chunk is sharded over.

    Returns:
        The chunk size.
    """
    fit = max(1, int(budget // max(per_member, 1)))
    n_chunks = -(-n_members // fit)
    size = -(-n_members // n_chunks)  # equal chunks: the padding of the last one stays small
    if n_devices > 1:
        size = max(n_devices, size - size % n_devices)
    return size


def check_output_fits(n_members: int, n_save: int, n_states: int, itemsize: int = 8) -> None:
    """Refuse an ensemble whose saved states alone exceed the machine's memory.

    Raises:
        InvalidValueError: the estimate and what to pass instead.
    """
    need = n_members * n_save * n_states * itemsize
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not POSIX: no estimate of the machine
        return
    if need > 0.8 * total:
        raise InvalidValueError(
            f"An ensemble of {n_members} members x {n_save} saved times x {n_states} states needs "
            f"{need / 2**30:.1f} GiB for its result alone, more than this machine's "
            f"{total / 2**30:.1f} GiB. Save fewer times (saveat=...), or solve the members in "
            "batches and reduce each batch before the next."
        )


def solve_members(
    runner: Any, nets: Any, y0: np.ndarray, p: np.ndarray, span: Any, ts: Any, dt0: Any, chunk: int
) -> tuple:
    """Run ``runner`` on members ``y0``/``p`` (host arrays, ``(N, n)``) in chunks of ``chunk``.

    With several local devices each chunk is sharded over them along the member axis.

    Returns:
        The runner's outputs for all ``N`` members, gathered (host arrays, ``ts`` once).
    """
    n = y0.shape[0]
    devices = jax.local_devices()
    n_dev = len(devices) if len(devices) > 1 and chunk >= len(devices) else 1
    put = _placer(devices if n_dev > 1 else None)
    parts: list[list[Any]] = []
    ts_out = None
    for start in range(0, n, chunk):
        idx = np.arange(start, start + chunk)
        idx = np.minimum(idx, n - 1)  # pad the last chunk: one compiled shape for every chunk
        out = runner(nets, put(y0[idx]), put(p[idx]), put(span, False), put(ts, False), dt0)
        ys, ev_t, ev_y, ts_out, p_out, status = out
        keep = min(chunk, n - start)
        parts.append([None if a is None else np.asarray(a)[:keep] for a in (ys, ev_t, ev_y, p_out, status)])
    ys, ev_t, ev_y, p_out, status = (None if col[0] is None else np.concatenate(col) for col in zip(*parts))
    return ys, ev_t, ev_y, np.asarray(ts_out), p_out, status


def _placer(devices):
    if devices is None:
        return lambda a, split=True: a
    mesh = Mesh(np.asarray(devices), ("members",))
    split_s = NamedSharding(mesh, PartitionSpec("members"))
    whole = NamedSharding(mesh, PartitionSpec())

    def put(a, split=True):
        if a is None:
            return None
        return jax.device_put(a, split_s if split else whole)

    return put
