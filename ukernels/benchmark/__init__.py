"""``python -m ukernels bench``: measure this machine, run ukernels beside the libraries a
user would pick instead (numpy always; torch, onnxruntime, IREE when installed), check every
result, and write a Markdown report, the raw JSON and PNG charts.

    python -m ukernels bench                      # quick suite (about a minute on 2 cores)
    python -m ukernels bench --suite full --out results/
    python -m ukernels bench --workloads matmul,int8 --threads 1,2,4 --peers numpy,onnxruntime
    python -m ukernels bench --shapes my_shapes.txt --json

Modules: shapes (defaults, the --shapes file format), machine (peaks, bandwidth, caches),
workloads (inputs, references, checks, ukernels' implementations), peers (numpy, torch,
onnxruntime, IREE), runner (checking and interleaved timing), report (Markdown, JSON, charts)."""
import argparse
import dataclasses
import datetime
import json
import platform
import sys
import time
from typing import Dict, List, Optional

from ukernels.benchmark import machine as M
from ukernels.benchmark import peers as P
from ukernels.benchmark import report as R
from ukernels.benchmark import runner
from ukernels.benchmark.shapes import SUITES, suite_shapes
from ukernels.benchmark.workloads import LLM_WORKLOADS, QUICK_WORKLOADS, SUITE_WORKLOADS, WORKLOADS

MAX_THREADS = 256


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--suite", choices=sorted(SUITES), default="quick",
                   help="quick: 5 shapes, matmul and linear (about a minute here); full: every default shape "
                        "and workload (default: %(default)s)")
    p.add_argument("--threads", default="1,2", help="comma-separated thread counts (default: %(default)s)")
    p.add_argument("--workloads", default=None,
                   help=f"comma-separated, from {', '.join(WORKLOADS)} (default: quick: "
                        f"{', '.join(QUICK_WORKLOADS)}; llm: {', '.join(LLM_WORKLOADS)}; full: the others)")
    p.add_argument("--shapes", default=None, metavar="FILE",
                   help="a file of shapes, one 'MxNxK [label]' per line, '#' comments (default: the suite's)")
    p.add_argument("--peers", default=",".join(P.PEERS),
                   help="comma-separated, from %(default)s; those not installed are reported as skipped")
    p.add_argument("--out", default="ukernels-bench", metavar="DIR",
                   help="directory for report.md, results.json and charts (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print the results as JSON instead of the table")
    p.add_argument("--rounds", type=int, default=None, help="alternating timed blocks per implementation "
                                                           "(default: quick 3, full 5)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def _int_list(raw: str, what: str, lo: int, hi: int) -> List[int]:
    try:
        vals = [int(x) for x in raw.split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"--{what} must be comma-separated integers, e.g. 1,2; got {raw!r}") from None
    if not vals or any(not lo <= v <= hi for v in vals):
        raise ValueError(f"--{what} values must be between {lo} and {hi}; got {raw!r}")
    return sorted(set(vals))


def _names(raw: str, what: str, allowed) -> List[str]:
    names = [x.strip() for x in raw.split(",") if x.strip()]
    bad = [n for n in names if n not in allowed]
    if bad or not names:
        raise ValueError(f"--{what}: unknown {', '.join(map(repr, bad)) or 'empty list'}; "
                         f"choose from {', '.join(allowed)}")
    return list(dict.fromkeys(names))


def _versions(peers: List[str]) -> Dict[str, str]:
    import numpy
    import ukernels
    from ukernels._lib import ffi, lib
    v = {"python": platform.python_version(), "ukernels": getattr(ukernels, "__version__", "?"),
         "numpy": numpy.__version__, "compiler": ffi.string(lib.uk_build_compiler()).decode()}
    try:
        from threadpoolctl import threadpool_info
        blas = [f"{i.get('internal_api')} {i.get('version')}" for i in threadpool_info() if i.get("user_api") == "blas"]
        if blas:
            v["numpy BLAS"] = ", ".join(blas)
    except ImportError:
        pass
    for p in peers:
        if p != "numpy":
            v[p] = P.version(p)
    return v


def run(args: argparse.Namespace, argv: Optional[List[str]] = None) -> int:
    """The bench subcommand (arguments from add_arguments). ValueError on bad arguments."""
    threads = _int_list(args.threads, "threads", 1, MAX_THREADS)
    workloads = _names(args.workloads, "workloads", list(WORKLOADS)) if args.workloads else (
        SUITE_WORKLOADS.get(args.suite) or [w for w in WORKLOADS if w not in LLM_WORKLOADS])
    peers = _names(args.peers, "peers", P.PEERS)
    if "numpy" not in peers:
        peers.insert(0, "numpy")  # the reference peer: always measured
    if args.rounds is not None and not 1 <= args.rounds <= 100:
        raise ValueError(f"--rounds must be between 1 and 100; got {args.rounds}")
    shapes = suite_shapes(args.suite, args.shapes)
    settings = runner.SETTINGS[args.suite]
    rounds = args.rounds or settings.rounds  # more rounds asked for: a budget that fits them
    settings = dataclasses.replace(settings, threads=threads, rounds=rounds,
                                   case_seconds=settings.case_seconds * rounds / settings.rounds)
    skipped = {p: why for p in peers if (why := P.unavailable(p))}
    live = [p for p in peers if p not in skipped]
    P.configure(threads)
    t0 = time.time()
    if not args.no_progress:
        print("measuring the machine (peaks, bandwidth) ...", file=sys.stderr, flush=True)
    mach = M.measure(threads, quick=args.suite == "quick")
    results = runner.run_all([WORKLOADS[w] for w in workloads], shapes, live, settings,
                             progress=not args.no_progress)
    data = {
        "command": "python -m ukernels bench " + " ".join(argv if argv is not None else sys.argv[2:]),
        "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "seconds": time.time() - t0,
        "suite": args.suite,
        "settings": {"threads": threads, "rounds": settings.rounds, "block_seconds": settings.block_seconds,
                     "settle": settings.settle, "workloads": workloads, "shapes": [s.name for s in shapes]},
        "blas_pinning": runner.blas_pinning(),
        "machine": mach,
        "versions": _versions(live),
        "peers": live,
        "skipped_peers": skipped,
        "results": [r.as_dict() for r in results],
    }
    written = R.write(data, args.out)
    if args.json:
        print(json.dumps(dict(data, summary=R.summary_rows(data)), indent=1, default=float))
    else:
        print(R.table(data))
        for p, why in skipped.items():
            print(f"skipped peer {p}: {why}")
        print(f"wrote {written['report']}, {written['json']}"
              + (f" and {len(written['charts'])} charts" if written["charts"] else f"; {written['charts_skipped']}"))
    return 0
