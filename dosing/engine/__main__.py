"""``python -m dosing.engine CASE.json``: print the JSON result of a dosing case.

Exit status 0 with the result on stdout (its ``success`` and ``status`` say whether the fit and the
recommendation can be used); exit status 2 with one line on stderr and nothing on stdout for unreadable or
invalid input; exit status 1 with one line on stderr for an internal error.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from dosing.engine.case import CaseError, run_case

USAGE = """usage: python -m dosing.engine CASE.json
       python -m dosing.engine -          (read the case from standard input)
       python -m dosing.engine --help

Fit a vancomycin dosing case (one JSON object: model, patient, doses, levels, target ...) and print the
result as JSON: the fitted models, warnings (each with a stable code), the forecast and the recommended
regimen. The case format and the result are described in dosing/engine/README.md.

exit status: 0 result printed (its "success" and "status" say whether the numbers can be used),
             2 unreadable, malformed or impossible input (one "error: ..." line on stderr),
             1 internal error (please report the case)."""


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    if len(args) != 1:
        print(USAGE.splitlines()[0] + "  (try --help)", file=sys.stderr)
        return 2
    try:
        text = sys.stdin.read() if args[0] == "-" else Path(args[0]).read_text(encoding="utf-8")
    except OSError as exc:
        print(f"error: cannot read {args[0]}: {exc.strerror}", file=sys.stderr)
        return 2
    try:
        case = json.loads(text)
    except json.JSONDecodeError as exc:
        print(f"error: {args[0]} is not valid JSON: {exc}", file=sys.stderr)
        return 2
    try:
        result = run_case(case)
    except CaseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # a bug, not bad input: say so plainly instead of printing a traceback
        print(f"error: internal error ({type(exc).__name__}: {exc}); please report the case", file=sys.stderr)
        return 1
    json.dump(result, sys.stdout, indent=2, allow_nan=False, default=_nan_free)
    sys.stdout.write("\n")
    return 0


def _nan_free(value: object) -> object:
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


if __name__ == "__main__":
    raise SystemExit(main())
