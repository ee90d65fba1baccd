"""``symml discover DATA.csv``: equations straight from a CSV file of trajectories."""

from __future__ import annotations

import sys
from typing import Any

from .._data import Dataset
from .._discover import discover_system
from .._serialize import save
from ..distill import Polynomial, Trig


def discover_cli(args: Any) -> int:
    """``symml discover DATA.csv ...`` (see ``symml discover --help``)."""
    columns = None
    if getattr(args, "columns", None):
        columns = [c.strip() for c in args.columns.split(",") if c.strip()]
    data = Dataset.from_csv(args.data, time=args.time, columns=columns)
    options: dict[str, Any] = {}
    degree = args.degree
    if args.backend == "sindy":
        if degree is not None or args.trig:
            lib = Polynomial(3 if degree is None else int(degree))
            options["library"] = lib + Trig() if args.trig else lib
    elif args.trig or degree is not None:
        print(
            f"note: --degree and --trig shape SINDy's library; backend {args.backend} ignores them",
            file=sys.stderr,
        )
    found = discover_system(
        data,
        backend=args.backend,
        differentiation=args.differentiation,
        order=args.order,
        select=args.select,
        **options,
    )
    print(found.summary())
    if args.out:
        save(found.model, args.out)
        print(f"wrote {args.out}")
    return 0
