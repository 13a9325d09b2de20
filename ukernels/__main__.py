"""Command line: ``python -m ukernels info`` and ``python -m ukernels demo``."""
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
    args = parser.parse_args(argv)
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
