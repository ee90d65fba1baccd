"""Every zoo model declares, compiles and simulates with its own defaults."""

import numpy as np
import pytest

import symml as sm


@pytest.mark.parametrize("name", sm.zoo.names())
def test_zoo_model_is_a_documented_model(name):
    assert sm.zoo.get(name).__class__ is sm.Model
    assert (getattr(sm.zoo, name).__doc__ or "").strip(), "each zoo model documents its equations"


@pytest.mark.slow  # a compilation per zoo model (about 2 s each)
@pytest.mark.parametrize("name", sm.zoo.names())
def test_zoo_model_simulates_with_defaults(name):
    model = sm.zoo.get(name)
    traj = sm.simulate(model, t_span=(0, 1), saveat=5)
    assert np.all(np.isfinite(np.asarray(traj.y)))


def test_zoo_variants():
    for drag in ("none", "stokes", "newton"):
        assert sm.zoo.projectile(drag).name == f"projectile_{drag}"
    assert len(sm.zoo.pendulum(small_angle=True).params) == 2
    assert len(sm.zoo.harmonic_oscillator(damping=False).params) == 2
    assert len(sm.zoo.harmonic_oscillator(drive=True).params) == 5
    with pytest.raises(ValueError, match="drag must be 'stokes', 'newton' or 'none'"):
        sm.zoo.projectile("viscous")
    with pytest.raises(sm.UnknownNameError, match="No zoo model named 'lorentz'.*Did you mean 'lorenz'"):
        sm.zoo.get("lorentz")


@pytest.mark.slow
def test_lorenz_is_chaotic_but_deterministic():
    lor = sm.zoo.lorenz()
    a = sm.simulate(lor, t_span=(0, 5), saveat=50)
    b = sm.simulate(lor, t_span=(0, 5), saveat=50)
    np.testing.assert_array_equal(a.y, b.y)
    c = sm.simulate(lor, ics={"x": 1.0 + 1e-9}, t_span=(0, 30), saveat=2)
    d = sm.simulate(lor, t_span=(0, 30), saveat=2)
    assert np.max(np.abs(np.asarray(c.y[-1] - d.y[-1]))) > 1e-3  # sensitive dependence
