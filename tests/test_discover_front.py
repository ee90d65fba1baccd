"""select="solver" with a symbolic-regression backend: Pareto-front members chosen by integration."""

import dataclasses

import numpy as np
import pytest
import sympy as sp

import symml as sm
from symml._discover import DiscoveryError, discover_system
from symml.distill.base import Backend, Candidate, Expression, additive_coefficients

K = 0.5


@dataclasses.dataclass(frozen=True)
class FrontBackend(Backend):
    """A stand-in for Operon: a fixed Pareto front per call, the first member its choice.

    ``members(x)`` gives ``[(expr, mse)]``; the regression numbers are what the backend claims,
    so a member can look best on the derivatives and still blow up once integrated.
    """

    members: object = None
    name = "front"
    linear = False

    def fit(self, X, y, inputs):
        (x,) = inputs
        front = tuple(Candidate(e, i + 1, mse, 1) for i, (e, mse) in enumerate(self.members(x)))
        chosen = front[0]
        var = float(np.var(y))
        return Expression(
            expr=chosen.expr,
            inputs=tuple(inputs),
            backend=self.name,
            mse=chosen.mse,
            r2=1 - chosen.mse / var,
            complexity=chosen.complexity,
            n_samples=len(y),
            n_params=1,
            coefficients=additive_coefficients(chosen.expr),
            front=front,
        )


@pytest.fixture(scope="module")
def decay():
    (x,) = sm.states("x")
    (k,) = sm.parameters("k")
    model = sm.Model([sp.Eq(x.diff(sm.t), -k * x)], defaults={k: K, x: 1.0})
    return x, sm.Dataset.from_model(model, ts=np.linspace(0, 4, 41), noise=0.01, seed=0)


def test_a_front_member_that_blows_up_is_never_chosen(decay):
    x, data = decay
    # claimed to fit the derivatives best (the backend's choice), it runs from x = 1 into its
    # singularity at x = 0.5 and cannot be integrated across the data
    blow_up = -sp.Float(0.1) * x**2 / (x - sp.Float(0.5))
    backend = FrontBackend(members=lambda x: [(blow_up, 1e-6), (-0.45 * x, 1e-3), (0.2 - 0.4 * x, 2e-3)])
    plain = discover_system(data, backend=backend, select="backend")
    assert plain.results[x.diff(sm.t)].expr == blow_up.xreplace({})
    found = discover_system(data, backend=backend)  # select="solver", the default
    res = found.results[x.diff(sm.t)]
    assert res.selection == "solver-bic"
    assert res.info["backend_choice"] == str(blow_up)
    # the linear member, its scale refitted through the solver: -0.45 becomes -K
    coefs = additive_coefficients(res.expr)
    assert set(coefs) == {x}
    assert float(coefs[x]) == pytest.approx(-K, rel=0.02)
    assert found.validation["combinations"] == 3 and found.validation["integrated"] == 2
    assert min(found.validation["r2"]) > 0.99
    traj = sm.simulate(found.model, t_span=(0, 4), saveat=5)
    np.testing.assert_allclose(np.asarray(traj[x]), np.exp(-K * np.linspace(0, 4, 5)), rtol=0.03)


def test_when_no_member_integrates_the_error_says_what_to_do(decay):
    x, data = decay
    backend = FrontBackend(members=lambda x: [(-1 / (x - sp.Float(0.5)), 1e-6), (x**3 * 5, 1e-3)])
    with pytest.raises(DiscoveryError, match=r"None of the 2 combinations of Pareto-front members"):
        discover_system(data, backend=backend, select="solver")
