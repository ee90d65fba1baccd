"""Big ensembles: chunked to a memory budget and sharded over devices, with identical results."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import symml as sm
from symml._solve._ensemble import chunk_members, member_bytes

N = 7
KW = dict(t_span=(0.0, 1.0), saveat=5, method="numeric")


@pytest.fixture(scope="module")
def lorenz():
    return sm.zoo.lorenz()


def _ics(model):
    rng = np.random.default_rng(0)
    x, y, z = model.states
    return {x: rng.uniform(-10, 10, N), y: rng.uniform(-10, 10, N), z: rng.uniform(10, 30, N)}


@pytest.fixture(scope="module")
def whole(lorenz):
    return sm.simulate(lorenz, ics=_ics(lorenz), **KW)


@pytest.mark.slow
def test_chunked_equals_unchunked(lorenz, whole):
    per = member_bytes(3, len(lorenz.params), 5, implicit=False)
    budget = 2 * per  # chunks of 2 members, the last one padded
    assert chunk_members(N, per, budget, 1) == 2
    chunked = sm.simulate(lorenz, ics=_ics(lorenz), memory_budget=budget, **KW)
    assert chunked.y.shape == whole.y.shape == (N, 5, 3)
    np.testing.assert_allclose(chunked.y, whole.y, rtol=1e-13, atol=1e-13)
    np.testing.assert_array_equal(chunked.p, whole.p)
    np.testing.assert_array_equal(chunked.num_steps, whole.num_steps)
    np.testing.assert_array_equal(chunked.t, whole.t)


def test_an_ensemble_equals_its_members_solved_alone(lorenz, whole):
    ics = _ics(lorenz)
    for i in (0, N - 1):
        one = sm.simulate(lorenz, ics={k: float(v[i]) for k, v in ics.items()}, **KW)
        np.testing.assert_allclose(whole.y[i], one.y, rtol=1e-12, atol=1e-12)


def test_member_estimate_and_chunk_sizes():
    assert member_bytes(2, 1, 10, implicit=True) > member_bytes(2, 1, 10, implicit=False)
    assert chunk_members(10, per_member=100, budget=10**9, n_devices=1) == 10
    assert chunk_members(10, per_member=100, budget=350, n_devices=2) == 2
    assert chunk_members(10, per_member=100, budget=50, n_devices=1) == 1


def test_an_ensemble_too_big_for_memory_is_refused_up_front(lorenz):
    x = lorenz.states[0]
    huge = np.broadcast_to(1.0, (10**7,))  # a view: nothing is allocated
    with pytest.raises(sm.InvalidValueError, match=r"needs [\d.]+ GiB for its result alone.*saveat"):
        sm.simulate(lorenz, ics={x: huge}, t_span=(0.0, 1.0), saveat=10**5, method="numeric")


_SHARDED = textwrap.dedent(
    """
    import json, sys
    import jax, numpy as np
    import symml as sm
    import symml._solve._ensemble as ens

    assert jax.local_device_count() == 2, jax.local_devices()
    used = []
    put = jax.device_put
    def spy(a, s=None, **kw):  # the puts that name a sharding (the runner puts its save grid plainly)
        if s is not None:
            used.append(len(s.device_set))
        return put(a, s, **kw)
    ens.jax.device_put = spy
    model = sm.zoo.lorenz()
    x, y, z = model.states
    ics = {k: np.asarray(v) for k, v in zip((x, y, z), json.loads(sys.argv[1]))}
    traj = sm.simulate(model, ics=ics, t_span=(0.0, 1.0), saveat=5, method="numeric")
    assert used and set(used) == {2}, used
    print(json.dumps(np.asarray(traj.y).tolist()))
    """
)


@pytest.mark.slow
def test_sharded_equals_unsharded(lorenz, whole):
    ics = [v.tolist() for v in _ics(lorenz).values()]
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu")
    out = subprocess.run(
        [sys.executable, "-c", _SHARDED, json.dumps(ics)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    sharded = np.asarray(json.loads(out.stdout.strip().splitlines()[-1]))
    np.testing.assert_allclose(sharded, whole.y, rtol=1e-13, atol=1e-13)
