"""``python -m ukernels.codegen build --spec FILE -o DIR`` (and ``tune``)."""
import argparse
import sys
from typing import List, Optional


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ukernels.codegen",
                                 description="Build-time generator and tuner for generated mmt4d ukernels.")
    sub = ap.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="render + compile every kernel of a spec file into one library + manifest")
    b.add_argument("--spec", required=True, help="JSON spec file (see ukernels.codegen.generator)")
    b.add_argument("-o", "--output", required=True, help="output directory")
    b.add_argument("-j", "--jobs", type=int, default=0, help="parallel compiles (default: cores)")
    b.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    if args.command == "build":
        from ukernels.codegen.generator import build, specs_and_shapes_from_file
        try:
            specs, shapes = specs_and_shapes_from_file(args.spec)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        from ukernels.codegen.compiler import CodegenError
        try:
            build(specs, args.output, jobs=args.jobs, progress=None if args.quiet else sys.stderr, shapes=shapes)
        except (CodegenError, OSError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
