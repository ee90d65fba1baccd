"""Reference systems, each a few lines of SymPy with the defaults of the reference problems
(``docs/problems.md``).

Every function returns a fresh `symml.Model` whose defaults include parameter values
and initial values, so ``sm.simulate(sm.zoo.lorenz(), t_span=(0, 10))`` just works.

>>> import symml as sm
>>> sm.zoo.names()[:3]
('projectile', 'pendulum', 'lotka_volterra')
"""

from __future__ import annotations

import math
from typing import Any

import sympy as sp

from ._declare._model import Model
from ._declare._symbols import parameters, states, t
from ._mechanics import hamiltonian, lagrangian
from .errors import UnknownNameError, suggest

__all__ = [
    "projectile",
    "pendulum",
    "lotka_volterra",
    "duffing",
    "harmonic_oscillator",
    "van_der_pol",
    "lorenz",
    "robertson",
    "double_pendulum",
    "kepler_hamiltonian",
    "kepler",
    "names",
    "get",
]


def projectile(drag: str = "stokes", v0: float = 15.0, angle_deg: float = 60.0) -> Model:
    """Shot put with air drag (``docs/problems.md`` §1).

    * ``drag="stokes"``: m x'' = -k x',  m y'' = -k y' - m g  (k = 0.45 kg/s)
    * ``drag="newton"``: m x'' = -k |v| x', m y'' = -k |v| y' - m g, |v| = sqrt(x'^2 + y'^2)
      (k = 0.05 kg/m, a strong quadratic drag so that it matters over a throw)
    * ``drag="none"``:   x'' = 0, y'' = -g

    Defaults: m = 7.26 kg, g = 9.81 m/s^2, launch at ``v0`` m/s and ``angle_deg`` degrees
    from the origin.

    Args:
        drag: ``"stokes"`` (linear), ``"newton"`` (quadratic) or ``"none"``.
        v0: launch speed in m/s.
        angle_deg: launch angle above the horizontal, in degrees.

    Returns:
        The Model ``projectile_{drag}`` with states ``x, y`` (and their velocities).

    Raises:
        ValueError: ``drag`` is not one of the three choices.

    >>> from symml import zoo
    >>> zoo.projectile().params
    (g, k, m)
    """
    x, y = states("x y")
    m, k, g = parameters("m k g", positive=True)
    vx, vy = x.diff(t), y.diff(t)
    if drag == "stokes":
        eqs = [sp.Eq(m * x.diff(t, 2), -k * vx), sp.Eq(m * y.diff(t, 2), -k * vy - m * g)]
        kval = 0.45
    elif drag == "newton":
        speed = sp.sqrt(vx**2 + vy**2)
        eqs = [
            sp.Eq(m * x.diff(t, 2), -k * speed * vx),
            sp.Eq(m * y.diff(t, 2), -k * speed * vy - m * g),
        ]
        kval = 0.05
    elif drag == "none":
        eqs = [sp.Eq(x.diff(t, 2), 0), sp.Eq(y.diff(t, 2), -g)]
        kval = None
    else:
        raise ValueError(f"drag must be 'stokes', 'newton' or 'none', got {drag!r}")
    th = math.radians(angle_deg)
    defaults: dict[sp.Basic, float] = {g: 9.81, x: 0.0, y: 0.0, vx: v0 * math.cos(th), vy: v0 * math.sin(th)}
    if kval is not None:
        defaults.update({m: 7.26, k: kval})
    return Model(eqs, defaults=defaults, name=f"projectile_{drag}")


def pendulum(small_angle: bool = False, theta0: float = 1.0) -> Model:
    """Pendulum (``docs/problems.md`` §2): theta'' + (g/l) sin(theta) = 0.

    Defaults g = 9.81, l = 1, theta(0) = ``theta0``, theta'(0) = 0.

    Args:
        small_angle: use the linearised theta'' + (g/l) theta = 0 instead.
        theta0: the initial angle in radians.

    Returns:
        The Model ``pendulum`` (or ``pendulum_small_angle``) with the state ``theta``.

    >>> from symml import zoo
    >>> list(zoo.pendulum().rhs.values())
    [Derivative(theta(t), t), -g*sin(theta(t))/l]
    """
    (theta,) = states("theta")
    g, l = parameters("g l", positive=True)  # noqa: E741
    restoring = theta if small_angle else sp.sin(theta)
    eq = sp.Eq(theta.diff(t, 2), -(g / l) * restoring)
    return Model(
        [eq],
        defaults={g: 9.81, l: 1.0, theta: theta0, theta.diff(t): 0.0},
        name="pendulum_small_angle" if small_angle else "pendulum",
    )


def lotka_volterra() -> Model:
    """Lotka–Volterra (``docs/problems.md`` §3): u' = alpha u - beta u v,  v' = -gamma v + delta u v.

    Defaults alpha, beta, gamma, delta = 1.3, 0.9, 0.8, 1.8 and u(0), v(0) = 0.44249296, 4.6280594.

    Returns:
        The Model ``lotka_volterra`` with states ``u`` (prey) and ``v`` (predators).

    >>> from symml import zoo
    >>> zoo.lotka_volterra().states
    (u(t), v(t))
    """
    u, v = states("u v")
    a, b, c, d = parameters("alpha beta gamma delta", positive=True)
    return Model(
        [sp.Eq(u.diff(t), a * u - b * u * v), sp.Eq(v.diff(t), -c * v + d * u * v)],
        defaults={a: 1.3, b: 0.9, c: 0.8, d: 1.8, u: 0.44249296, v: 4.6280594},
        name="lotka_volterra",
    )


def duffing(form: str = "real") -> Model:
    """Duffing oscillator (``docs/problems.md`` §4).

    * ``form="real"``: q'' + gamma q' + omega0^2 q + epsilon q^3 = f cos(omega t), with
      omega0 = 1, gamma = 0.1, epsilon = 0.25, f = 0.3, omega = 1.2, q(0) = q'(0) = 0.
    * ``form="amplitude"``: the rotating-frame complex amplitude z = a + i b,
      z' = -i(omega0 - omega(t)) z - (gamma/2) z - i epsilon |z|^2 z + i f, written in real
      parts, under a linear frequency sweep omega(t) = omega_start + rate t:
      a' = c b - (gamma/2) a,  b' = -c a - (gamma/2) b + f,  c = omega0 - omega(t) + epsilon (a^2 + b^2).
      Defaults omega0 = 1, gamma = 0.05, epsilon = 0.02, f = 0.02, omega_start = 0.9,
      rate = 0.001 (a sweep through resonance over t in [0, 200]).

    Args:
        form: ``"real"`` (second order, driven) or ``"amplitude"`` (the swept complex amplitude).

    Returns:
        The Model ``duffing`` (state ``q``) or ``duffing_amplitude`` (states ``a, b``).

    Raises:
        ValueError: ``form`` is not one of the two choices.

    >>> from symml import zoo
    >>> zoo.duffing("amplitude").states
    (a(t), b(t))
    """
    if form == "real":
        (q,) = states("q")
        w0, gam, eps, f, w = parameters("omega0 gamma epsilon f omega", real=True)
        eq = sp.Eq(q.diff(t, 2) + gam * q.diff(t) + w0**2 * q + eps * q**3, f * sp.cos(w * t))
        return Model(
            [eq],
            defaults={w0: 1.0, gam: 0.1, eps: 0.25, f: 0.3, w: 1.2, q: 0.0, q.diff(t): 0.0},
            name="duffing",
        )
    if form == "amplitude":
        a, b = states("a b")
        w0, gam, eps, f, ws, rate = parameters("omega0 gamma epsilon f omega_start rate", real=True)
        c = w0 - (ws + rate * t) + eps * (a**2 + b**2)
        return Model(
            [sp.Eq(a.diff(t), c * b - gam / 2 * a), sp.Eq(b.diff(t), -c * a - gam / 2 * b + f)],
            defaults={w0: 1.0, gam: 0.05, eps: 0.02, f: 0.02, ws: 0.9, rate: 0.001, a: 0.0, b: 0.0},
            name="duffing_amplitude",
        )
    raise ValueError(f"form must be 'real' or 'amplitude', got {form!r}")


def harmonic_oscillator(damping: bool = True, drive: bool = False) -> Model:
    """Harmonic oscillator m x'' + c x' + k x = F cos(Omega t).

    Defaults m = 1, k = 4, c = 0.4, F = 1, Omega = 1.5, x(0) = 1, x'(0) = 0.

    Args:
        damping: include the damping term c x'.
        drive: include the drive F cos(Omega t).

    Returns:
        The Model ``harmonic_oscillator`` with the state ``x``.

    >>> from symml import zoo
    >>> zoo.harmonic_oscillator(damping=False).params
    (k, m)
    """
    (x,) = states("x")
    m, k = parameters("m k", positive=True)
    lhs = m * x.diff(t, 2) + k * x
    rhs = sp.Integer(0)
    defaults = {m: 1.0, k: 4.0, x: 1.0, x.diff(t): 0.0}
    if damping:
        (c,) = parameters("c", positive=True)
        lhs += c * x.diff(t)
        defaults[c] = 0.4
    if drive:
        F, W = parameters("F Omega", positive=True)
        rhs = F * sp.cos(W * t)
        defaults.update({F: 1.0, W: 1.5})
    return Model([sp.Eq(lhs, rhs)], defaults=defaults, name="harmonic_oscillator")


def van_der_pol(mu: float = 1.0) -> Model:
    """Van der Pol oscillator x'' - mu (1 - x^2) x' + x = 0, with x(0) = 2, x'(0) = 0.

    Args:
        mu: the default of the nonlinearity ``mu`` (a parameter of the model).

    Returns:
        The Model ``van_der_pol`` with the state ``x``.

    >>> from symml import zoo
    >>> zoo.van_der_pol(mu=2.0).defaults[zoo.van_der_pol().params[0]]
    2.0
    """
    (x,) = states("x")
    (m,) = parameters("mu", positive=True)
    eq = sp.Eq(x.diff(t, 2), m * (1 - x**2) * x.diff(t) - x)
    return Model([eq], defaults={m: mu, x: 2.0, x.diff(t): 0.0}, name="van_der_pol")


def lorenz() -> Model:
    """Lorenz system: x' = sigma (y - x), y' = x (rho - z) - y, z' = x y - beta z.

    Defaults sigma, rho, beta = 10, 28, 8/3 and (x, y, z)(0) = (1, 1, 1).

    Returns:
        The Model ``lorenz`` with states ``x, y, z``.

    >>> from symml import zoo
    >>> zoo.lorenz().params
    (beta, rho, sigma)
    """
    x, y, z = states("x y z")
    s, r, b = parameters("sigma rho beta", positive=True)
    return Model(
        [
            sp.Eq(x.diff(t), s * (y - x)),
            sp.Eq(y.diff(t), x * (r - z) - y),
            sp.Eq(z.diff(t), x * y - b * z),
        ],
        defaults={s: 10.0, r: 28.0, b: 8.0 / 3.0, x: 1.0, y: 1.0, z: 1.0},
        name="lorenz",
    )


def robertson(groups: int = 1) -> Model:
    """Robertson's chemical kinetics, the classic stiff test problem (no parameters):

    y1' = -0.04 y1 + 10^4 y2 y3,  y2' = 0.04 y1 - 10^4 y2 y3 - 3·10^7 y2²,  y3' = 3·10^7 y2²,

    from y = (1, 0, 0). It is stiff only once the intermediate species y2 has formed (t ≈ 0.03;
    the Jacobian at t = 0 has eigenvalues (-0.04, 0, 0)), so a solver chosen at the start picks an
    explicit method; ``sm.simulate(..., solver="auto")`` detects it during the solve. The total
    y1 + y2 + y3 is conserved.

    Args:
        groups: ``G > 1`` declares ``G`` independent copies (a large stiff system whose Jacobian
            is block-diagonal), states ``y1_i, y2_i, y3_i``; copy ``i`` runs with 0.04 and
            3·10^7 scaled by ``1 + i / G`` and ``1 / (1 + i / G)`` so that the copies differ.

    Returns:
        The Model ``robertson`` (``robertson_G`` for ``G`` copies), without parameters.

    Raises:
        ValueError: ``groups`` is not a positive integer.

    >>> from symml import zoo
    >>> rob = zoo.robertson()
    >>> rob.states, rob.params
    ((y1(t), y2(t), y3(t)), ())
    >>> len(zoo.robertson(groups=10).states)
    30
    """
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
        raise ValueError(f"groups must be a positive integer, got {groups!r}")
    if groups == 1:
        y1, y2, y3 = ((y,) for y in states("y1 y2 y3"))
        scales = [sp.Integer(1)]
    else:
        y1, y2, y3 = states("y1 y2 y3", n=groups)
        scales = [1 + sp.Rational(i, groups) for i in range(groups)]
    eqs, defaults = [], {}
    for i, s in enumerate(scales):
        k1, k2, k3 = sp.Rational(4, 100) * s, 10**4, 3 * 10**7 / s
        a, b, c = y1[i], y2[i], y3[i]
        eqs += [
            sp.Eq(a.diff(t), -k1 * a + k2 * b * c),
            sp.Eq(b.diff(t), k1 * a - k2 * b * c - k3 * b**2),
            sp.Eq(c.diff(t), k3 * b**2),
        ]
        defaults.update({a: 1.0, b: 0.0, c: 0.0})
    return Model(eqs, defaults=defaults, name="robertson" if groups == 1 else f"robertson_{groups}")


def kepler(eccentricity: float = 0.5) -> Model:
    """Kepler two-body problem in the plane: q'' = -mu q / |q|^3 for q = (qx, qy).

    Energy (|q'|^2/2 - mu/|q|) and angular momentum (qx qy' - qy qx') are conserved.
    Defaults mu = 1 and an orbit of the given eccentricity starting at periapsis (1 - e, 0).

    Args:
        eccentricity: of the default orbit, in [0, 1).

    Returns:
        The Model ``kepler`` with states ``qx, qy`` (and their velocities).

    Raises:
        ValueError: ``eccentricity`` is outside [0, 1) (no bound orbit).

    >>> from symml import zoo
    >>> len(zoo.kepler().states)
    4
    """
    qx, qy = states("qx qy")
    (mu,) = parameters("mu", positive=True)
    r3 = (qx**2 + qy**2) ** sp.Rational(3, 2)
    e = float(eccentricity)
    if not 0.0 <= e < 1.0:
        raise ValueError(f"eccentricity must be in [0, 1) for a bound orbit, got {eccentricity!r}")
    return Model(
        [sp.Eq(qx.diff(t, 2), -mu * qx / r3), sp.Eq(qy.diff(t, 2), -mu * qy / r3)],
        defaults={
            mu: 1.0,
            qx: 1.0 - e,
            qy: 0.0,
            qx.diff(t): 0.0,
            qy.diff(t): math.sqrt((1 + e) / (1 - e)),
        },
        name="kepler",
    )


def double_pendulum() -> Model:
    """Double pendulum from its Lagrangian (`symml.lagrangian`): chaotic, energy conserved.

    T = (m1 + m2) l1^2 th1'^2 / 2 + m2 l2^2 th2'^2 / 2 + m2 l1 l2 th1' th2' cos(th1 - th2),
    V = -(m1 + m2) g l1 cos th1 - m2 g l2 cos th2; unit masses and lengths, g = 9.81, released
    from th1 = th2 = pi/2 at rest.

    Returns:
        The Model ``double_pendulum`` (states ``theta1, theta2`` and their velocities; ``.energy``).

    >>> from symml import zoo
    >>> zoo.double_pendulum().states[:2], sorted(zoo.double_pendulum().invariants)
    ((theta1(t), theta2(t)), ['energy'])
    """
    th1, th2 = states("theta1 theta2")
    m1, m2, l1, l2, g = parameters("m1 m2 l1 l2 g", positive=True)
    w1, w2 = th1.diff(t), th2.diff(t)
    T = (m1 + m2) * l1**2 * w1**2 / 2 + m2 * l2**2 * w2**2 / 2 + m2 * l1 * l2 * w1 * w2 * sp.cos(th1 - th2)
    V = -(m1 + m2) * g * l1 * sp.cos(th1) - m2 * g * l2 * sp.cos(th2)
    defaults = {m1: 1.0, m2: 1.0, l1: 1.0, l2: 1.0, g: 9.81}
    defaults.update({th1: math.pi / 2, th2: math.pi / 2, w1: 0.0, w2: 0.0})
    return lagrangian(T - V, [th1, th2], defaults=defaults, name="double_pendulum")


def kepler_hamiltonian(eccentricity: float = 0.5) -> Model:
    """Kepler two-body problem from its Hamiltonian (`symml.hamiltonian`), for symplectic solvers.

    H = (p_x^2 + p_y^2)/2 - mu / sqrt(x^2 + y^2); ``.energy`` and
    ``.invariants["angular_momentum_xy"]`` are conserved. Defaults as `kepler`.

    Args:
        eccentricity: of the default orbit, in [0, 1).

    Returns:
        The Model ``kepler_hamiltonian`` with states ``x, y, p_x, p_y``.

    Raises:
        ValueError: ``eccentricity`` is outside [0, 1) (no bound orbit).

    >>> from symml import zoo
    >>> kep = zoo.kepler_hamiltonian()
    >>> kep.states, sorted(kep.invariants)
    ((x(t), y(t), p_x(t), p_y(t)), ['angular_momentum_xy', 'energy'])
    """
    x, y, px, py = states("x y p_x p_y")
    (mu,) = parameters("mu", positive=True)
    e = float(eccentricity)
    if not 0.0 <= e < 1.0:
        raise ValueError(f"eccentricity must be in [0, 1) for a bound orbit, got {eccentricity!r}")
    H = (px**2 + py**2) / 2 - mu / sp.sqrt(x**2 + y**2)
    defaults = {mu: 1.0, x: 1.0 - e, y: 0.0, px: 0.0, py: math.sqrt((1 + e) / (1 - e))}
    return hamiltonian(H, [x, y], [px, py], defaults=defaults, name="kepler_hamiltonian")


_REGISTRY = {
    "projectile": projectile,
    "pendulum": pendulum,
    "lotka_volterra": lotka_volterra,
    "duffing": duffing,
    "harmonic_oscillator": harmonic_oscillator,
    "van_der_pol": van_der_pol,
    "lorenz": lorenz,
    "robertson": robertson,
    "double_pendulum": double_pendulum,
    "kepler_hamiltonian": kepler_hamiltonian,
    "kepler": kepler,
}


def names() -> tuple[str, ...]:
    """Names of the zoo models (usable on the command line).

    Returns:
        The names, in the order of the reference problems.

    >>> names()[-1]
    'kepler'
    """
    return tuple(_REGISTRY)


def get(name: str, **kwargs: Any) -> Model:
    """The zoo model called ``name``.

    Args:
        name: one of `names`.
        **kwargs: the model function's options (``drag="newton"`` for the projectile).

    Returns:
        A fresh Model.

    Raises:
        UnknownNameError: no zoo model has this name (the message suggests the closest).

    >>> get("projectile", drag="newton").name
    'projectile_newton'
    """
    if name not in _REGISTRY:
        raise UnknownNameError(
            f"No zoo model named {name!r}; available: {', '.join(_REGISTRY)}." + suggest(name, _REGISTRY)
        )
    return _REGISTRY[name](**kwargs)
