"""Command line: ``python -m ukernels info | demo | explain | bench``."""
import argparse
import json
import sys
from typing import List, Optional


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ukernels", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_info = sub.add_parser("info", help="CPU, features, chosen ISA, tiles, threads, build compiler")
    p_info.add_argument("--json", action="store_true", help="print JSON instead of text")
    p_demo = sub.add_parser("demo", help="multiply real matrices with numpy and ukernels, compare, print GFLOP/s")
    p_demo.add_argument("--quick", action="store_true", help="smaller matrices, fewer repeats")
    p_ex = sub.add_parser("explain", help="what a matmul of this shape resolves to (function, tiles, split)")
    p_ex.add_argument("M", type=int)
    p_ex.add_argument("N", type=int)
    p_ex.add_argument("K", type=int)
    p_ex.add_argument("--dtype", default="float32",
                      help="input dtype (float32, float16, bfloat16, int8, int16) or a triple name (u8s8s32, ...)")
    p_ex.add_argument("--backend", default="auto", choices=["auto", "ukernel", "codegen"])
    p_ex.add_argument("--source", action="store_true", help="also print the generated C source (codegen)")
    p_bench = sub.add_parser("bench", help="benchmark this machine: ukernels beside numpy, torch, onnxruntime, "
                                           "IREE; writes a report, JSON and charts")
    from ukernels.benchmark import add_arguments
    add_arguments(p_bench)
    args = parser.parse_args(argv)
    try:
        return _run(args, argv)
    except (ValueError, TypeError, RuntimeError) as exc:  # bad environment or arguments: one line, no traceback
        print(f"ukernels {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # e.g. an output directory that cannot be written
        print(f"ukernels {args.command}: error: {exc.strerror or exc}: {exc.filename or ''}", file=sys.stderr)
        return 2


def _run(args, argv: Optional[List[str]] = None) -> int:
    if args.command == "bench":
        from ukernels.benchmark import run
        return run(args, argv[1:] if argv is not None else None)
    if args.command == "explain":
        from ukernels.explain import explain, format_explain
        print(format_explain(explain(args.M, args.N, args.K, dtype=args.dtype, backend=args.backend,
                                     source=args.source)))
        return 0
    if args.command == "demo":
        from ukernels.demo import run
        return run(quick=args.quick)
    if args.command == "info":
        from ukernels.info import format_info, info
        d = info()
        print(json.dumps(d, indent=2) if args.json else format_info(d))
    return 0


if __name__ == "__main__":
    sys.exit(main())
