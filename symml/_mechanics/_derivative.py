"""Derivatives of neural placeholders as SymPy expressions that compile to ``jax.grad``.

SymPy writes ``d H_0(q, p) / dp`` as ``Derivative(H_0(q(t), p(t)), p(t))``, which a Model cannot
hold (its only derivatives are those of states with respect to ``t``). `NeuralDerivative` keeps
the network call and the inputs it is differentiated by as its arguments instead:

* the compiler (`symml._compile._codegen.build_program`) turns it into one instruction that
  differentiates the network with ``jax.grad``, so training and solving go through it;
* once the call is replaced by an expression (``sm.distill`` does
  ``xreplace({H_0(q, p): p**2/2 - cos(q)})``), SymPy rebuilds the node and its constructor
  returns the ordinary derivative of that expression: a distilled Hamiltonian network becomes
  a symbolic Hamiltonian model with no extra step.

>>> import sympy as sp, symml as sm
>>> q, p = sm.states("q p")
>>> Hn = sm.neural("H", inputs=[q, p], outputs=1)
>>> dH = differentiate(Hn[0] + q**2 / 2, p)
>>> dH
NeuralDerivative(H_0(q(t), p(t)), p(t))
>>> dH.xreplace({Hn[0]: p**2 / 2 + sp.cos(q)})
p(t)
"""

from __future__ import annotations

from typing import Any

import sympy as sp

from .._declare._symbols import Parameter, is_neural_call

__all__ = ["NeuralDerivative", "differentiate"]


class NeuralDerivative(sp.Function):
    """``d^n U_k(x) / dx_i ... dx_j`` of a neural output: ``NeuralDerivative(U_k(x), x_i, ..., x_j)``.

    Build it with `differentiate`. Its first argument is the network call, the others are inputs
    of the call. When the first argument is no longer a network call (after a substitution), the
    node evaluates to the ordinary SymPy derivative.
    """

    # Read by symml._compile._codegen (a marker rather than an import: the compiler sits below).
    _symml_network_derivative = True
    is_real = True

    def __new__(cls, f: Any, *wrt: Any, **options: Any) -> Any:
        # The evaluation rules live in the constructor, not in SymPy's evaluation hook: every
        # construction (SymPy's own rebuilds after ``xreplace`` too) goes through this one place.
        f = sp.sympify(f, strict=True)
        if not wrt:
            return f
        if not is_neural_call(f):
            d = differentiate(f, *wrt)
            # Constants that differentiate away (the additive constant of a distilled H) stay
            # visible, unevaluated, so that they remain parameters of the model.
            if not (_parameters(f) - _parameters(d)):
                return d
        elif any(v not in f.args for v in wrt):
            return sp.S.Zero
        return super().__new__(cls, f, *wrt, evaluate=False)

    def doit(self, **hints: Any) -> Any:
        call, *wrt = self.args
        if is_neural_call(call):
            return self
        return differentiate(call.doit(**hints), *wrt)

    def _eval_derivative(self, s: Any) -> Any:
        # The chain rule through the network's inputs; the inputs listed after the call are labels.
        call, *wrt = self.args
        if not is_neural_call(call):
            return sp.diff(self.doit(), s)
        total = sp.S.Zero
        for a in call.args:
            da = sp.diff(a, s)
            if da != 0:
                total += NeuralDerivative(call, *wrt, a) * da
        return total

    def _latex(self, printer: Any) -> str:
        call, *wrt = self.args
        den = " ".join(r"\partial " + printer._print(v) for v in wrt)
        num = r"\partial" + (f"^{{{len(wrt)}}}" if len(wrt) > 1 else "")
        return rf"\frac{{{num} {printer._print(call)}}}{{{den}}}"


def _parameters(e: Any) -> set:
    return {s for s in e.free_symbols if isinstance(s, Parameter)}


def _is_network_derivative(e: Any) -> bool:
    return isinstance(e, sp.Derivative) and is_neural_call(e.expr)


def _to_neural(d: Any) -> Any:
    wrt = [v for v, n in d.variable_count for _ in range(int(n))]
    return NeuralDerivative(d.expr, *wrt)


def differentiate(expr: Any, *wrt: Any) -> Any:
    """``d expr / d wrt[0] ... d wrt[-1]``, derivatives of network outputs as `NeuralDerivative`.

    ``wrt`` may be states (``q``, ``x.diff(t)``) or symbols, like ``sp.diff``.
    """
    out = sp.sympify(expr, strict=True)  # expressions only: a string is never parsed
    for v in wrt:
        out = sp.diff(out, v)
    return out.replace(_is_network_derivative, _to_neural)
