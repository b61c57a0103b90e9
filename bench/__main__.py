"""`make bench` (``python -m bench``): run the benchmark, write bench/results/*.json and the
figures in docs/performance.md. ``--quick`` is a short smoke run that leaves the docs alone."""

import argparse
import json
import sys
from pathlib import Path

from bench.config import FULL, QUICK, SCALES
from bench.report import DOCS, RESULTS_DIR, update_docs, write_json
from bench.run import PARTS, run, say
from bench.servers import PostgresUnavailableError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short smoke run (scale quick)")
    parser.add_argument("--scale", choices=sorted(SCALES), help="full, quick or tiny")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--docs", dest="docs", action="store_true", default=None,
                        help="rewrite the figures in docs/performance.md (default: full runs)")
    parser.add_argument("--no-docs", dest="docs", action="store_false")
    parser.add_argument("--app", metavar="MODULE:FACTORY",
                        help="what-if run: benchmark this app factory instead of the service's")
    parser.add_argument("--only", metavar="PART[,PART]", type=lambda text: text.split(","),
                        help=f"these parts only ({', '.join(PARTS)}), each with its "
                             "baseline; leaves the docs alone")
    parser.add_argument("--profile", action="store_true",
                        help="sample each service with py-spy during its scenarios (needs "
                             "py-spy installed; the figures then include its cost)")
    parser.add_argument("--report", type=Path, metavar="RESULTS_JSON",
                        help="only rewrite docs/performance.md from a saved run's results")
    args = parser.parse_args(argv)
    if args.report:
        update_docs(json.loads(args.report.read_text()))
        say(f"figures of {args.report.name} written to {DOCS}")
        return 0
    scale = SCALES[args.scale] if args.scale else (QUICK if args.quick else FULL)
    unknown = set(args.only or ()) - set(PARTS)
    if unknown:
        parser.error(f"no such part: {', '.join(sorted(unknown))}")
    try:
        results = run(scale, args.app, args.only or PARTS, profile=args.profile)
    except PostgresUnavailableError as exc:
        say(f"cannot run: {exc}")
        return 3
    path = write_json(results, args.results_dir)
    say(f"results written to {path}")
    # Only a whole, unprofiled run of the service as it is stands for the platform.
    whole_run = scale is FULL and not (args.app or args.only or args.profile)
    if args.docs if args.docs is not None else whole_run:
        update_docs(results)
        say(f"figures written to {DOCS}")
    for target in results["targets"]:
        verdict = "met" if target["met"] else ("MISSED" if target["measured"] is not None
                                               else "-")
        measured = "not measured" if target["measured"] is None else target["measured"]
        beside = (f"; ours {target['ours']}, baseline {target['baseline']}"
                  if target.get("scenario") else "")
        say(f"{verdict:>6}  {target['description']}: {measured} "
            f"(target {'>=' if target['higher_is_better'] else '<='} {target['bound']}"
            f"{beside})")
    if results.get("aborted"):
        say(f"the run stopped early: {results['aborted']}")
        return 2
    if results["failures"]:
        say("requests or events failed, so the figures above are not trustworthy: "
            + "; ".join(results["failures"]))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
