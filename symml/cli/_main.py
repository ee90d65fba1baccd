"""The ``symml`` command line.

    symml demo [--quick] [--backend sindy|operon] [--seed N] [--out DIR]
    symml show MODEL
    symml simulate MODEL --t1 10 --ics theta=1.0 --params g=9.81 --plot out.png --csv out.csv
    symml discover DATA.csv [--time t] [--backend sindy|operon] [--out model.json]
    symml bench [--quick|--full|--preset NAME] [--out DIR] [--jobs N] [--scheduler ADDRESS]

MODEL is a zoo name (``symml show --list``), ``path/to/file.py:function`` (a function
returning a Model) or a ``.json`` file written by ``sm.save``.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from ._bench import add_bench_parser
from ._paths import CliError, check_output_dir, check_output_file, finite_float


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit code 2, no usage dump
        raise CliError(f"{message} (see '{self.prog} --help')")


def load_model(spec: str, options: Sequence[str] = ()):
    """Resolve MODEL: a zoo name, ``file.py:function`` or a saved ``.json`` model."""
    from .. import zoo
    from .._serialize import load

    kwargs = _parse_pairs(options, "--option", convert=_literal)
    if spec.endswith(".json"):
        if not os.path.exists(spec):
            raise CliError(f"no such file: {spec}")
        from .._declare._model import Model

        obj = load(spec)
        model = getattr(obj, "model", obj)
        if not isinstance(model, Model):
            raise CliError(
                f"{spec} holds a {type(obj).__name__}, not a model; give a file saved from a Model."
            )
        return model
    if ":" in spec and spec.split(":", 1)[0].endswith(".py"):
        path, func = spec.split(":", 1)
        if not os.path.exists(path):
            raise CliError(f"no such file: {path}")
        mod_spec = importlib.util.spec_from_file_location("_symml_user_model", path)
        if mod_spec is None or mod_spec.loader is None:
            raise CliError(f"cannot load {path} as a Python module; give a .py file defining {func!r}")
        module = importlib.util.module_from_spec(mod_spec)
        mod_spec.loader.exec_module(module)  # the user's own model file, by their request
        if not hasattr(module, func):
            raise CliError(f"{path} has no function {func!r}")
        return getattr(module, func)(**kwargs)
    if spec not in zoo.names():
        from ..errors import suggest

        raise CliError(
            f"unknown model {spec!r}; zoo models: {', '.join(zoo.names())}.{suggest(spec, zoo.names())}"
        )
    return zoo.get(spec, **kwargs)


def _literal(s: str) -> Any:
    for conv in (int, float):
        try:
            return conv(s)
        except ValueError:
            pass
    if s in ("True", "False"):
        return s == "True"
    return s


def _parse_pairs(items: Sequence[str], flag: str, convert: Callable[[str], Any] = float) -> dict[str, Any]:
    out = {}
    for item in items or ():
        for part in item.split(","):
            if not part:
                continue
            if "=" not in part:
                raise CliError(f"{flag} expects name=value pairs, got {part!r}")
            k, v = part.split("=", 1)
            try:
                out[k.strip()] = convert(v.strip())
            except ValueError:
                raise CliError(f"{flag}: {k.strip()!r} needs a number, got {v.strip()!r}") from None
    return out


# ----------------------------------------------------------------------------- commands


def cmd_show(args) -> int:
    from .. import zoo

    if args.list or args.model is None:
        for name in zoo.names():
            doc = (getattr(zoo, name).__doc__ or "").strip().splitlines()[0]
            print(f"{name:22s} {doc}")
        return 0
    model = load_model(args.model, args.option)
    from .._declare._symbols import state_name

    print(model)
    print("states:     " + ", ".join(f"{state_name(s)} = {s}" for s in model.states))
    print("parameters: " + (", ".join(p.name for p in model.params) or "none"))
    if model.defaults:
        print("defaults:   " + ", ".join(f"{_name(model, k)}={v:g}" for k, v in model.defaults.items()))
    return 0


def _name(model, k) -> str:
    from .._declare._symbols import state_name

    return state_name(k) if k in model.rhs else str(k)


def cmd_simulate(args) -> int:
    from .._solve._simulate import Event, simulate

    for path, flag in ((args.csv, "--csv"), (args.plot, "--plot")):
        if path:
            check_output_file(path, flag)
    if args.n < 1:
        raise CliError(f"--n must be at least 1, got {args.n}")
    model = load_model(args.model, args.option)
    ics = _parse_pairs(args.ics, "--ics")
    params = _parse_pairs(args.params, "--params")
    event = None
    if args.event:
        name, _, direction = args.event.partition(":")
        event = Event(model.lookup(name), direction=direction or None)
    traj = simulate(
        model,
        ics=ics,
        t_span=(args.t0, args.t1),
        saveat=args.n,
        params=params,
        solver=args.solver,
        rtol=args.rtol,
        atol=args.atol,
        event=event,
    )
    df = traj.to_pandas()
    if args.csv:
        df.to_csv(args.csv, index=False)
        print(f"wrote {args.csv} ({len(df)} rows)")
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 4))
        traj.plot(ax=ax)
        ax.set_title(model.name)
        fig.savefig(args.plot, dpi=120, bbox_inches="tight")
        plt.close(fig)
        print(f"wrote {args.plot}")
    if traj.event_time is not None:
        print(f"event at t = {float(traj.event_time):.10g}")
    if not args.csv and not args.plot:
        print(df.to_string(index=False, max_rows=20))
    return 0


def cmd_demo(args) -> int:
    from ._demo import run_demo

    check_output_dir(args.out, "--out")
    return run_demo(backend=args.backend, seed=args.seed, out=args.out, quick=args.quick)


def cmd_discover(args) -> int:
    from ._discover import discover_cli

    if args.out:
        check_output_file(args.out, "--out")
    return discover_cli(args)


def cmd_bench(args) -> int:
    from ._bench import bench_cli

    return bench_cli(args)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="symml", description="Declare ODEs in SymPy; solve, fit, learn and distill them.")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)

    d = sub.add_parser(
        "demo", help="the whole chain on Lotka-Volterra: data, UDE, distill, refit, extrapolate"
    )
    d.add_argument("--backend", choices=["sindy", "operon"], default="sindy")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--out", default="symml-demo", help="folder for figures and results")
    d.add_argument("--quick", action="store_true", help="short training, for CI")
    d.set_defaults(func=cmd_demo)

    s = sub.add_parser("show", help="print a model's equations, states, parameters and defaults")
    s.add_argument("model", nargs="?", help="zoo name, file.py:function or model.json")
    s.add_argument("--list", action="store_true", help="list the zoo")
    s.add_argument("--option", action="append", default=[], help="model option, e.g. drag=newton")
    s.set_defaults(func=cmd_show)

    m = sub.add_parser("simulate", help="solve a model and write CSV / a plot")
    m.add_argument("model", help="zoo name, file.py:function or model.json")
    m.add_argument("--t0", type=finite_float, default=0.0)
    m.add_argument("--t1", type=finite_float, default=10.0)
    m.add_argument("--n", type=int, default=200, help="number of samples")
    m.add_argument("--ics", action="append", default=[], help="initial values, e.g. theta=1.0,theta_t=0")
    m.add_argument("--params", action="append", default=[], help="parameter values, e.g. g=9.81")
    m.add_argument("--option", action="append", default=[], help="model option, e.g. drag=newton")
    m.add_argument("--solver", default="tsit5")
    m.add_argument("--rtol", type=finite_float, default=1e-7)
    m.add_argument("--atol", type=finite_float, default=1e-9)
    m.add_argument("--event", help="terminal event STATE[:up|down], e.g. y:down")
    m.add_argument("--plot", help="write a PNG plot here")
    m.add_argument("--csv", help="write the trajectory as CSV here")
    m.set_defaults(func=cmd_simulate)

    c = sub.add_parser("discover", help="discover equations from a CSV of trajectories")
    c.add_argument("data", help="CSV with a time column and one column per state")
    c.add_argument("--time", default="t", help="name of the time column")
    c.add_argument("--columns", help="comma-separated state columns (default: all but time)")
    c.add_argument("--backend", choices=["sindy", "operon", "pysr"], default="sindy")
    c.add_argument(
        "--degree",
        type=int,
        default=None,
        help="polynomial degree; with --degree or --trig the library is polynomials (and sin/cos) only "
        "(default: degree 3 with sin/cos and rational terms, chosen through the solver)",
    )
    c.add_argument("--trig", action="store_true", help="polynomials and sin/cos of each state only")
    c.add_argument(
        "--select",
        default="solver",
        choices=["solver", "backend"],
        help="structure chosen by integrating candidates against the data (solver, the default) "
        "or the backend's own regression choice",
    )
    c.add_argument("--order", type=int, choices=[1, 2], default=1, help="differential order")
    c.add_argument(
        "--differentiation",
        default="auto",
        choices=["auto", "finite_difference", "savgol", "spline", "weak"],
        help="derivative estimate (auto: weak form with SINDy, Savitzky-Golay otherwise)",
    )
    c.add_argument("--out", help="save the discovered model (JSON) here")
    c.set_defaults(func=cmd_discover)

    add_bench_parser(sub).set_defaults(func=cmd_bench)  # its options: cli/_bench.py
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from ..errors import SymmlError

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return 2
        return int(args.func(args) or 0)
    except CliError as err:
        print(f"symml: error: {err}", file=sys.stderr)
        return 2
    except (SymmlError, ValueError, KeyError, TypeError, OSError, RecursionError) as err:
        # One line and exit code 2 for what the user can fix (bad values, unreadable or
        # unwritable files, a full disk); SYMML_DEBUG=1 shows the traceback instead.
        if os.environ.get("SYMML_DEBUG"):
            raise
        msg = str(err).strip().replace("\n", " ")[:2000] or type(err).__name__
        if isinstance(err, RecursionError):
            msg = "the input is nested too deeply to process"
        print(f"symml: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("symml: interrupted", file=sys.stderr)
        return 130
