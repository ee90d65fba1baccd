"""Bad inputs to every public entry point get a clear error: the right class and a message that
names the argument, what came in and what to pass (issue 12).

The cases are a table: ``(id, call, error class, message pattern)``. Every call fails before any
solve is compiled, so the whole table runs in a few seconds. The command line has its own table:
each bad invocation must print exactly one line on stderr and exit with code 2.
"""

import json
import math
import os

import numpy as np
import pytest
import sympy as sp

import symml as sm
from symml._serialize import FileFormatError
from symml.cli import main

t = sm.t
x, y = sm.states("x y")
k, c = sm.parameters("k c")
DECAY = sm.Model([sp.Eq(x.diff(t), -k * x)], defaults={k: 0.5, x: 1.0}, name="decay")
OSC = sm.zoo.pendulum()
TS = np.linspace(0, 1, 5)
NAN, INF = math.nan, math.inf


def _sim(**kw):
    kw.setdefault("t_span", (0, 1))
    kw.setdefault("saveat", 3)
    return lambda: sm.simulate(kw.pop("model", DECAY), **kw)


def _file(tmp, content: str | bytes, name="f.json"):
    path = os.path.join(tmp, name)
    with open(path, "wb") as f:
        f.write(content.encode() if isinstance(content, str) else content)
    return path


def _model_file(tmp, **changes):
    """A valid saved model file with parts of its content replaced."""
    path = os.path.join(tmp, "m.json")
    sm.save(DECAY, path)
    with open(path) as f:
        d = json.load(f)
    d["content"].update(changes)
    with open(path, "w") as f:
        json.dump(d, f)
    return path


def _eq(rhs):
    return [[["Derivative", ["State", "x", {"real": True}], 1], rhs]]


def _deep(n):
    node = ["State", "x", {"real": True}]
    for _ in range(n):
        node = ["Add", [node, ["Integer", "1"]]]
    return node


ME, IV, MV, DE, UN, FF = (
    sm.ModelError,
    sm.InvalidValueError,
    sm.MissingValueError,
    sm.DataError,
    sm.UnknownNameError,
    FileFormatError,
)

# (id, call, error, match); calls taking ``tmp`` get a fresh temporary folder.
CASES = [
    # ---------------------------------------------------------------- declaring
    ("states-not-str", lambda: sm.states(3), TypeError, "names must be a string"),
    ("states-empty", lambda: sm.states("  "), ValueError, "names is empty"),
    ("states-1x", lambda: sm.states("1x"), ME, "'1x' .* is not a valid name"),
    ("states-dash", lambda: sm.states("a-b"), ME, "'a-b' .* not a valid name"),
    ("states-dup", lambda: sm.states("x x"), ME, "'x' appears twice"),
    ("states-t", lambda: sm.states("t"), ME, "cannot be called 't'"),
    ("params-dup", lambda: sm.parameters("a a"), ME, "'a' appears twice"),
    ("params-t", lambda: sm.parameters("t"), ME, "cannot be called 't'"),
    ("params-code", lambda: sm.parameters("__import__('os')"), ME, "not a valid name"),
    ("model-int", lambda: sm.Model([3]), ME, "is the number 3"),
    ("model-int-bare", lambda: sm.Model(3), ME, "is the number 3"),
    ("model-str", lambda: sm.Model(["x' = -x"]), ME, "is the string .* does not parse strings"),
    ("model-none", lambda: sm.Model([None]), ME, "must be a SymPy expression or a number, got NoneType"),
    ("model-empty", lambda: sm.Model([]), ME, "at least one equation"),
    ("model-no-derivative", lambda: sm.Model([sp.Eq(x, 1)]), ME, "derivative"),
    ("model-I", lambda: sm.Model([sp.Eq(x.diff(t), sp.I * x)]), ME, "imaginary unit"),
    ("model-complex-coef", lambda: sm.Model([sp.Eq(x.diff(t), (1 + 2j) * x)]), ME, "imaginary unit"),
    (
        "model-piecewise-no-default",
        lambda: sm.Model([sp.Eq(x.diff(t), sp.Piecewise((1, x > 0)))]),
        ME,
        "no default branch",
    ),
    ("model-undeclared", lambda: sm.Model([sp.Eq(x.diff(t), sp.Symbol("q") * x)]), ME, "q"),
    ("model-name-empty", lambda: sm.Model([sp.Eq(x.diff(t), -x)], name=""), ME, "non-empty string"),
    ("model-name-int", lambda: sm.Model([sp.Eq(x.diff(t), -x)], name=3), ME, "non-empty string"),
    ("model-defaults-list", lambda: sm.Model([sp.Eq(x.diff(t), -k * x)], defaults=[1]), ME, "defaults must"),
    ("model-params-str", lambda: sm.Model([sp.Eq(x.diff(t), -x)], params="k"), ME, "params must be a list"),
    (
        "default-nan",
        lambda: sm.Model([sp.Eq(x.diff(t), -k * x)], defaults={k: NAN}),
        ME,
        "default for k is nan",
    ),
    (
        "default-inf",
        lambda: sm.Model([sp.Eq(x.diff(t), -k * x)], defaults={k: INF}),
        ME,
        "default for k is inf",
    ),
    (
        "default-complex",
        lambda: sm.Model([sp.Eq(x.diff(t), -k * x)], defaults={k: np.complex128(1 + 2j)}),
        ME,
        "complex number",
    ),
    ("default-str", lambda: sm.Model([sp.Eq(x.diff(t), -k * x)], defaults={k: "1"}), ME, "must be a number"),
    ("default-sympy-I", lambda: sm.Model([sp.Eq(x.diff(t), -k * x)], defaults={k: sp.I}), ME, "complex"),
    (
        "default-unknown",
        lambda: sm.Model([sp.Eq(x.diff(t), -k * x)], defaults={"kk": 1.0}),
        UN,
        "Did you mean 'k'",
    ),
    ("with-defaults-nan", lambda: DECAY.with_defaults({k: NAN}), ME, "default for k is nan"),
    ("with-defaults-list", lambda: DECAY.with_defaults([1.0]), ME, "with_defaults needs a dict"),
    ("subs-str", lambda: DECAY.subs({k: "__import__('os')"}), ME, "does not parse strings"),
    ("subs-str-key", lambda: DECAY.subs({"k": "2"}), ME, "does not parse strings"),
    ("subs-nan", lambda: DECAY.subs({k: NAN}), ME, "replacement for k is nan"),
    ("subs-list", lambda: DECAY.subs([k, 1]), ME, "subs needs a dict"),
    ("subs-I", lambda: DECAY.subs({k: sp.I}), ME, "imaginary unit"),
    ("lookup-typo", lambda: DECAY.lookup("kk"), UN, "'kk' is not a state or parameter"),
    ("lookup-str-expr", lambda: DECAY.lookup(object()), ME, "A key must be a SymPy expression"),
    ("event-str", lambda: sm.Event("y"), TypeError, "got the string 'y'"),
    ("event-direction", lambda: sm.Event(x, direction="sideways"), ValueError, "'up', 'down' or None"),
    ("event-object", lambda: sm.Event(object()), TypeError, "Event needs a SymPy expression"),
    ("event-I", lambda: sm.Event(sp.I * x), TypeError, "real SymPy expression"),
    ("neural-name", lambda: sm.neural("1U", inputs=[x]), ValueError, "identifier"),
    ("neural-str-input", lambda: sm.neural("U", inputs=["x"]), ME, "got strings"),
    ("neural-no-input", lambda: sm.neural("U", inputs=[]), ValueError, "at least one input"),
    ("neural-width", lambda: sm.neural("U", inputs=[x], width=0), ValueError, "width >= 1"),
    (
        "neural-activation",
        lambda: sm.neural("U", inputs=[x], activation="exec"),
        ValueError,
        "unknown activation",
    ),
    # ---------------------------------------------------------------- simulate: values
    (
        "sim-model-name",
        lambda: sm.simulate("pendulum", t_span=(0, 1)),
        IV,
        r"got the string 'pendulum'.*zoo.get",
    ),
    ("sim-model-none", lambda: sm.simulate(None, t_span=(0, 1)), IV, "simulate needs a Model"),
    ("sim-ics-list", _sim(ics=[1.0]), IV, r"ics must be a dict .* got list"),
    ("sim-ics-nan", _sim(ics={x: NAN}), IV, "ics value for x is nan"),
    ("sim-ics-inf", _sim(ics={"x": -INF}), IV, "ics value for x is -inf"),
    ("sim-ics-complex", _sim(ics={x: 1 + 2j}), IV, "complex number"),
    ("sim-ics-np-complex", _sim(ics={x: np.array([1 + 1j, 2])}), IV, "holds complex numbers"),
    ("sim-ics-str", _sim(ics={x: "1.0"}), IV, "is the string '1.0'"),
    ("sim-ics-symbol", _sim(ics={x: k}), IV, "SymPy expression k"),
    ("sim-ics-sympy-I", _sim(ics={x: 1 + sp.I}), IV, "SymPy expression"),
    ("sim-ics-array-nan", _sim(ics={x: np.array([1.0, NAN])}), IV, "NaN or infinity .*index 1"),
    ("sim-ics-object-array", _sim(ics={x: np.array(["a"])}), IV, "must be a number or an array"),
    ("sim-ics-param", _sim(ics={k: 1.0}), MV, "ics has a value for parameter k"),
    ("sim-ics-unknown", _sim(ics={"z": 1.0}), UN, "'z' is not a state or parameter"),
    ("sim-params-nan", _sim(params={k: NAN}), IV, "params value for k is nan"),
    ("sim-params-complex", _sim(params={"k": 1j}), IV, "complex number"),
    ("sim-params-tuple", _sim(params=(0.5,)), IV, r"params must be a dict .* got tuple"),
    (
        "sim-params-missing",
        _sim(model=sm.Model([sp.Eq(x.diff(t), -c * x)], defaults={x: 1.0})),
        MV,
        "parameter",
    ),
    ("sim-ensemble-lengths", _sim(ics={x: np.ones(3)}, params={k: np.ones(2)}), ValueError, "Ensemble sizes"),
    # ---------------------------------------------------------------- simulate: times and options
    ("sim-tspan-nan", _sim(t_span=(0, NAN)), IV, "t_span t1 is nan"),
    ("sim-tspan-inf", _sim(t_span=(-INF, 1)), IV, "t_span t0 is -inf"),
    ("sim-tspan-scalar", _sim(t_span=5.0), IV, "t_span must be a pair"),
    ("sim-tspan-triple", _sim(t_span=(0, 1, 2)), IV, "t_span must be a pair"),
    ("sim-tspan-str", _sim(t_span=("0", "1")), IV, "t_span t0 is the string"),
    ("sim-tspan-complex", _sim(t_span=(0, 1j)), IV, "t_span t1 is the complex"),
    ("sim-no-tspan", lambda: sm.simulate(DECAY, saveat=3), MV, "No time span"),
    ("sim-saveat-zero", _sim(saveat=0), ValueError, "positive count"),
    ("sim-saveat-2d", _sim(saveat=np.ones((2, 2))), ValueError, "1-D array of times"),
    ("sim-saveat-outside", _sim(saveat=[0.0, 2.0]), IV, "saveat time 2 lies outside t_span=.0, 1."),
    ("sim-saveat-before", _sim(saveat=[-1.0, 0.5]), IV, "saveat time -1 lies outside"),
    ("sim-saveat-decreasing", _sim(saveat=[0.5, 0.1]), ValueError, "non-decreasing"),
    ("sim-backwards-increasing", _sim(t_span=(1, 0), saveat=[0.0, 0.5]), IV, "runs backwards"),
    ("sim-saveat-nan", _sim(saveat=[0.0, NAN]), IV, "saveat holds NaN"),
    ("sim-rtol-negative", _sim(rtol=-1e-6), IV, "rtol must be a finite number >= 0, got -1e-06"),
    ("sim-atol-nan", _sim(atol=NAN), IV, "atol must be a finite number >= 0, got nan"),
    ("sim-rtol-str", _sim(rtol="1e-6"), IV, "rtol must be a finite number"),
    ("sim-tols-zero", _sim(rtol=0.0, atol=0.0), IV, "both 0"),
    ("sim-method", _sim(method="exact"), ValueError, "method must be 'auto', 'analytic' or 'numeric'"),
    ("sim-solver", _sim(solver="rk99", method="numeric"), ValueError, "Unknown solver 'rk99'"),
    ("sim-event-type", _sim(event=x, method="numeric"), TypeError, r"event must be sm.Event"),
    ("sim-euler-no-dt0", _sim(solver="euler"), MV, "pass dt0"),
    # ---------------------------------------------------------------- data
    ("dataset-y-array", lambda: sm.Dataset(TS, y=np.ones(5)), DE, "y must be a dict .* got ndarray"),
    ("dataset-y-str", lambda: sm.Dataset(TS, y="x"), DE, "y must be a dict"),
    ("dataset-no-y", lambda: sm.Dataset(TS), DE, "needs times t=... and observed values"),
    ("dataset-t-str", lambda: sm.Dataset("abc", y={x: np.ones(5)}), DE, "Times must be an array of numbers"),
    ("dataset-t-complex", lambda: sm.Dataset(TS + 1j, y={x: TS}), DE, "Times holds complex"),
    ("dataset-y-complex", lambda: sm.Dataset(TS, y={x: TS * 1j}), DE, "'x' holds complex"),
    ("dataset-y-strings", lambda: sm.Dataset(TS, y={x: ["a"] * 5}), DE, "'x' must be an array of numbers"),
    ("dataset-y-nan", lambda: sm.Dataset(TS, y={x: [1, 2, NAN, 4, 5]}), DE, "NaN or inf at rows 2"),
    ("dataset-y-length", lambda: sm.Dataset(TS, y={x: np.ones(4)}), DE, "4 entries but there are 5 times"),
    ("dataset-t-decreasing", lambda: sm.Dataset(TS[::-1], y={x: TS}), DE, "strictly increasing"),
    ("dataset-ics-str", lambda: sm.Dataset(TS, y={x: TS}, ics={x: "a"}), DE, "Initial value of 'x' must be"),
    ("dataset-ics-nan", lambda: sm.Dataset(TS, y={x: TS}, ics={x: NAN}), DE, "must be finite"),
    ("dataset-key-int", lambda: sm.Dataset(TS, y={3: TS}), DE, "Observed keys must be states"),
    ("from-model-noise", lambda: sm.Dataset.from_model(DECAY, ts=TS, noise=-1), DE, "noise must be a finite"),
    ("from-model-no-ts", lambda: sm.Dataset.from_model(DECAY), DE, "needs ts="),
    ("csv-missing", lambda tmp: sm.Dataset.from_csv(os.path.join(tmp, "no.csv")), DE, "No such data file"),
    ("csv-empty", lambda tmp: sm.Dataset.from_csv(_file(tmp, "", "e.csv")), DE, "is empty"),
    ("csv-header-only", lambda tmp: sm.Dataset.from_csv(_file(tmp, "t,x\n", "h.csv")), DE, "at least 2 time"),
    (
        "csv-ragged",
        lambda tmp: sm.Dataset.from_csv(_file(tmp, "t,x\n0,1\n1,2,3,4\n", "r.csv")),
        DE,
        "not a readable",
    ),
    (
        "csv-binary",
        lambda tmp: sm.Dataset.from_csv(_file(tmp, b"\xff\xfe\x00t,x", "b.csv")),
        DE,
        "not a readable",
    ),
    (
        "csv-text-values",
        lambda tmp: sm.Dataset.from_csv(_file(tmp, "t,x\n0,a\n1,b\n", "s.csv")),
        DE,
        "not numbers",
    ),
    (
        "csv-no-time",
        lambda tmp: sm.Dataset.from_csv(_file(tmp, "s,x\n0,1\n1,2\n", "n.csv")),
        DE,
        "No time column 't'",
    ),
    # ---------------------------------------------------------------- save / load
    (
        "save-kind",
        lambda tmp: sm.save(object(), os.path.join(tmp, "o.json")),
        TypeError,
        "cannot save a object",
    ),
    ("load-missing", lambda tmp: sm.load(os.path.join(tmp, "none.json")), FileNotFoundError, "No such file"),
    ("load-not-json", lambda tmp: sm.load(_file(tmp, "{nope")), FF, "is not a JSON file"),
    ("load-binary", lambda tmp: sm.load(_file(tmp, b"\xff\xfe")), FF, "is not a JSON file"),
    ("load-no-tag", lambda tmp: sm.load(_file(tmp, "{}")), FF, "no 'symml' tag"),
    ("load-list", lambda tmp: sm.load(_file(tmp, "[1, 2]")), FF, "no 'symml' tag"),
    ("load-version", lambda tmp: sm.load(_file(tmp, '{"symml": "model", "version": 99}')), FF, "version 99"),
    (
        "load-kind",
        lambda tmp: sm.load(_file(tmp, '{"symml": "pickle", "version": 1}')),
        FF,
        "unknown object kind",
    ),
    (
        "load-no-content",
        lambda tmp: sm.load(_file(tmp, '{"symml": "model", "version": 1}')),
        FF,
        "malformed symml",
    ),
    (
        "load-huge-pow",
        lambda tmp: sm.load(
            _model_file(tmp, equations=_eq(["Pow", ["Integer", "10"], ["Integer", str(10**10)]]))
        ),
        FF,
        "exponent 10000000000 is beyond",
    ),
    (
        "load-huge-rational-pow",
        lambda tmp: sm.load(
            _model_file(tmp, equations=_eq(["Pow", ["Integer", "3"], ["Rational", "1", str(10**9)]]))
        ),
        FF,
        "exponent .* is beyond",
    ),
    (
        "load-derivative-order",
        lambda tmp: sm.load(_model_file(tmp, equations=_eq(["Derivative", ["State", "x", {}], 10**6]))),
        FF,
        "derivative order 1000000",
    ),
    (
        "load-derivative-zero",
        lambda tmp: sm.load(_model_file(tmp, equations=_eq(["Derivative", ["State", "x", {}], 0]))),
        FF,
        "derivative order 0",
    ),
    ("load-deep", lambda tmp: sm.load(_model_file(tmp, equations=_eq(_deep(200)))), FF, "nested deeper than"),
    ("load-json-deep", lambda tmp: sm.load(_file(tmp, "[" * 100000 + "]" * 100000)), FF, "nested too deeply"),
    (
        "load-long-integer",
        lambda tmp: sm.load(_model_file(tmp, equations=_eq(["Integer", "9" * 5000]))),
        FF,
        "5000 digits",
    ),
    (
        "load-bad-integer",
        lambda tmp: sm.load(_model_file(tmp, equations=_eq(["Integer", "1e5"]))),
        FF,
        "bad integer '1e5'",
    ),
    (
        "load-bad-node",
        lambda tmp: sm.load(_model_file(tmp, equations=_eq(["Eval", "__import__('os')"]))),
        FF,
        "unknown expression node 'Eval'",
    ),
    (
        "load-bad-fn",
        lambda tmp: sm.load(_model_file(tmp, equations=_eq(["Fn", "exec", []]))),
        FF,
        "unknown function 'exec'",
    ),
    (
        "load-bad-float",
        lambda tmp: sm.load(_model_file(tmp, equations=_eq(["Float", 0, "5", 0, 99, 53]))),
        FF,
        "bad Float node",
    ),
    ("load-name-type", lambda tmp: sm.load(_model_file(tmp, name=3)), FF, "bad name 3"),
    ("load-equations-type", lambda tmp: sm.load(_model_file(tmp, equations=5)), FF, "malformed symml model"),
    (
        "load-default-hex",
        lambda tmp: sm.load(_model_file(tmp, defaults=[[["Parameter", "k", {"real": True}], "zz"]])),
        FF,
        "malformed symml model",
    ),
    (
        "load-bad-assumption",
        lambda tmp: sm.load(_model_file(tmp, params=[["Symbol", "q", {"evil": True}]])),
        FF,
        "bad assumptions",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_refused_clearly(case, tmp_path):
    _, call, error, match = case
    with pytest.raises(error, match=match):
        call(str(tmp_path)) if call.__code__.co_argcount == 1 else call()


def test_the_table_is_large_and_covers_the_entry_points():
    assert len(CASES) + len(CLI_CASES) >= 80
    prefixes = {c[0].split("-")[0] for c in CASES}
    assert {
        "states",
        "params",
        "model",
        "subs",
        "event",
        "neural",
        "sim",
        "dataset",
        "csv",
        "load",
    } <= prefixes


# ---------------------------------------------------------------------------- the command line


def _csv(tmp, text="t,x\n0,1\n1,2\n"):
    return _file(tmp, text, "d.csv")


CLI_CASES = [
    (
        "t1-nan",
        lambda tmp: ["simulate", "pendulum", "--t1", "nan"],
        "argument --t1: expected a finite number, got 'nan'",
    ),
    (
        "t0-inf",
        lambda tmp: ["simulate", "pendulum", "--t0", "inf"],
        "argument --t0: expected a finite number",
    ),
    ("rtol-neg", lambda tmp: ["simulate", "pendulum", "--rtol", "-1"], "rtol must be a finite number >= 0"),
    ("n-zero", lambda tmp: ["simulate", "pendulum", "--n", "0"], "--n must be at least 1"),
    ("ics-nan", lambda tmp: ["simulate", "pendulum", "--ics", "theta=nan"], "ics value for theta is nan"),
    ("ics-unknown", lambda tmp: ["simulate", "pendulum", "--ics", "thta=1"], "Did you mean 'theta'"),
    (
        "ics-not-pair",
        lambda tmp: ["simulate", "pendulum", "--ics", "theta"],
        "--ics expects name=value pairs",
    ),
    ("unknown-model", lambda tmp: ["simulate", "pendulm"], "unknown model 'pendulm'.*Did you mean"),
    (
        "csv-no-folder",
        lambda tmp: ["simulate", "pendulum", "--csv", os.path.join(tmp, "no", "o.csv")],
        "--csv: the folder .* does not exist",
    ),
    ("csv-is-folder", lambda tmp: ["simulate", "pendulum", "--csv", tmp], "--csv: .* is a folder"),
    (
        "plot-no-folder",
        lambda tmp: ["simulate", "pendulum", "--plot", os.path.join(tmp, "no", "o.png")],
        "--plot: the folder",
    ),
    ("model-missing-json", lambda tmp: ["show", os.path.join(tmp, "no.json")], "no such file"),
    ("model-bad-json", lambda tmp: ["show", _file(tmp, "{oops")], "is not a JSON file"),
    (
        "model-deep-json",
        lambda tmp: ["show", _model_file(tmp, equations=_eq(_deep(200)))],
        "nested deeper than",
    ),
    (
        "model-huge-pow",
        lambda tmp: [
            "simulate",
            _model_file(tmp, equations=_eq(["Pow", ["Integer", "10"], ["Integer", str(10**10)]])),
        ],
        "exponent .* is beyond",
    ),
    ("model-not-a-model", lambda tmp: ["show", _dataset_file(tmp)], "holds a Dataset, not a model"),
    ("discover-missing", lambda tmp: ["discover", os.path.join(tmp, "none.csv")], "No such data file"),
    ("discover-empty", lambda tmp: ["discover", _file(tmp, "", "e.csv")], "is empty"),
    (
        "discover-ragged",
        lambda tmp: ["discover", _file(tmp, "t,x\n0,1\n1,2,3\n", "r.csv")],
        "not a readable CSV",
    ),
    (
        "discover-out-folder",
        lambda tmp: ["discover", _csv(tmp), "--out", os.path.join(tmp, "no", "m.json")],
        "--out: the folder",
    ),
    ("discover-time", lambda tmp: ["discover", _csv(tmp), "--time", "time"], "No time column 'time'"),
    (
        "demo-out-file",
        lambda tmp: ["demo", "--quick", "--out", _file(tmp, "x", "plain.txt")],
        "--out: .* is not a folder",
    ),
    ("bad-command", lambda tmp: ["frobnicate"], "invalid choice"),
]


def _dataset_file(tmp):
    path = os.path.join(tmp, "data.json")
    sm.save(sm.Dataset(TS, y={x: TS}), path)
    return path


@pytest.mark.parametrize("case", CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_cli_bad_input_is_one_line_and_exit_2(case, tmp_path, capsys):
    _, argv, match = case
    rc = main(argv(str(tmp_path)))
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1 and err.startswith("symml: error:"), err
    assert "Traceback" not in err
    import re

    assert re.search(match, err), err


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs a non-root POSIX user")
def test_cli_read_only_output_folder_fails_before_the_work(tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        rc = main(["simulate", "pendulum", "--csv", str(ro / "out.csv")])
    finally:
        ro.chmod(0o700)
    err = capsys.readouterr()
    assert rc == 2 and "permission denied" in err.err and err.out == ""  # nothing was solved or printed


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux) for a real ENOSPC")
def test_cli_os_error_during_the_work_is_one_line(tmp_path, capsys):
    # a real full disk: every write to /dev/full fails with ENOSPC, after the work has run
    out = tmp_path / "out.csv"
    out.symlink_to("/dev/full")
    rc = main(["simulate", "pendulum", "--csv", str(out)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.count("\n") == 0 and "No space left on device" in err


# ---------------------------------------------------------------------------- nothing executes


def _payload(marker) -> str:
    return f"__import__('pathlib').Path({str(marker)!r}).touch()"


def test_no_entry_point_executes_code_from_strings_or_files(tmp_path, capsys):
    marker = tmp_path / "pwned"
    code = _payload(marker)
    attempts = [
        lambda: sm.Model([code]),
        lambda: sm.Model([sp.Eq(x.diff(t), -k * x)], defaults={k: code}),
        lambda: sm.Model([sp.Eq(x.diff(t), -k * x)], defaults={code: 1.0}),
        lambda: DECAY.subs({k: code}),
        lambda: DECAY.subs({"k": code}),
        lambda: DECAY.subs({code: 1.0}),
        lambda: DECAY.with_defaults({k: code}),
        lambda: DECAY.lookup(code),
        lambda: sm.states(code),
        lambda: sm.parameters(code),
        lambda: sm.neural("U", inputs=[code]),
        lambda: sm.simulate(DECAY, ics={x: code}, t_span=(0, 1)),
        lambda: sm.simulate(DECAY, params={code: 1.0}, t_span=(0, 1)),
        lambda: sm.simulate(DECAY, t_span=(0, code)),
        lambda: sm.Dataset(TS, y={x: TS}, ics={x: code}),
    ]
    for attempt in attempts:
        with pytest.raises(sm.SymmlError, match="string|not a valid name|not a state|got str"):
            attempt()
    with pytest.raises(TypeError, match="got the string"):
        sm.Event(code)
    # Files: a model whose names and nodes carry the payload, a CSV whose cells and header do.
    path = _model_file(str(tmp_path), equations=_eq(["Fn", code, []]))
    with pytest.raises(FileFormatError, match="unknown function"):
        sm.load(path)
    named = _model_file(str(tmp_path), name=code)
    assert sm.load(named).name == code  # a name is kept as text, never evaluated
    csv = _file(str(tmp_path), f"t,x\n0,{code}\n1,2\n", "p.csv")
    with pytest.raises(sm.DataError, match="not numbers"):
        sm.Dataset.from_csv(csv)
    header = _file(str(tmp_path), f"t,{code}\n0,1\n1,2\n", "h.csv")
    assert list(sm.Dataset.from_csv(header).keys) == [code]
    for argv in (
        ["show", path],
        ["show", named],
        ["simulate", "pendulum", "--ics", f"theta={code}"],
        ["show", "projectile", "--option", f"drag={code}"],
        ["discover", csv],
        ["simulate", code],
    ):
        assert main(argv) in (0, 2)
    capsys.readouterr()
    assert not marker.exists()


def test_nan_is_refused_after_a_warm_call_too():
    # A repeated call takes a cached fast path; NaN and infinity must still reach the binder.
    model = sm.Model([sp.Eq(x.diff(t), -k * x**2)], defaults={k: 0.5, x: 1.0}, name="warm")
    for _ in range(2):
        sm.simulate(model, ics={x: 1.0}, t_span=(0, 1), saveat=3)
    with pytest.raises(sm.InvalidValueError, match="ics value for x is nan"):
        sm.simulate(model, ics={x: NAN}, t_span=(0, 1), saveat=3)
    with pytest.raises(sm.InvalidValueError, match="t_span t1 is inf"):
        sm.simulate(model, ics={x: 1.0}, t_span=(0, INF), saveat=3)


@pytest.mark.slow  # a symbolic solve (dsolve) under the worker's budget
def test_closed_form_does_not_run_through_a_blow_up(monkeypatch):
    import symml._analytic._closed_form as closed_form

    monkeypatch.setattr(closed_form, "ANALYTIC_TIMEOUT", 120.0)  # a loaded CI machine
    model = sm.Model([sp.Eq(x.diff(t), x**2)], defaults={x: 1.0}, name="blowup")  # x = 1 / (1 - t)
    before = sm.simulate(model, t_span=(0, 0.5), saveat=3, method="analytic")
    assert np.allclose(np.asarray(before[x]), [1.0, 4 / 3, 2.0])
    with pytest.raises(sm.SolveError, match=r"singular at t ~ 1\b.*blows up"):
        sm.simulate(model, t_span=(0, 2), saveat=5, method="analytic")


def test_a_field_that_turns_nan_mid_solve_is_named_not_called_stiff():
    # x' = -sqrt(x) - 0.1 reaches x = 0 near t = 1.5 and sqrt is NaN beyond: every step is then
    # rejected up to the step limit, which once read "the problem may be stiff"
    (x,) = sm.states("x")
    m = sm.Model([sp.Eq(x.diff(sm.t), -sp.sqrt(x) - 0.1)], defaults={x: 1.0})
    with pytest.raises(sm.SolveError, match=r"becomes NaN or infinite at t ≈ 1\.5\d* \(x = -?\d") as err:
        sm.simulate(m, t_span=(0, 5), saveat=5)
    assert "stiff" not in str(err.value)
    ens = {x: np.array([1.0, 4.0])}
    with pytest.raises(sm.SolveError, match=r"leaves the domain where the model is defined"):
        sm.simulate(m, ics=ens, t_span=(0, 5), saveat=5)
    # a blow-up keeps its own message (it grows without bound; no domain is left)
    blow = sm.Model([sp.Eq(x.diff(sm.t), x**2)], defaults={x: 1.0})
    with pytest.raises(sm.SolveError, match=r"grow without bound"):
        sm.simulate(blow, t_span=(0, 2), saveat=5, method="numeric")
