"""``tagwise suggest``: which examples to label next (active learning), as JSONL or Label Studio JSON."""
from __future__ import annotations

from ..project import Project


def cmd_suggest(args) -> int:
    from ..workflows.suggest import suggest, write_suggestions

    project = Project.open(args.project)
    rows = suggest(project, args.budget, encoder=args.encoder, relabel=args.relabel, seed=args.seed,
                   strategy=args.strategy, risk=args.risk, confidence=args.confidence)
    write_suggestions(rows, args.out, args.format, project.labels.names)
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["reason"]] = counts.get(r["reason"], 0) + 1
    print(f"wrote {len(rows)} suggestions to {args.out} ({', '.join(f'{k}: {v}' for k, v in counts.items())}). "
          + (f"Label them in Label Studio, export the result as JSON, then bring it back with "
             f"`tagwise labels import {args.project} export.json`." if args.format == "label-studio" else
             f"Label them (a \"labels\" list of label names on each line, keeping \"example_id\" and "
             f"\"source\"), then bring them back with `tagwise labels import {args.project} answers.jsonl`."))
    return 0


def register(sub) -> None:
    p = sub.add_parser("suggest", help="choose the next examples to label (active learning)")
    p.add_argument("project")
    p.add_argument("--budget", type=int, default=100, help="how many examples to suggest (default 100)")
    p.add_argument("--out", required=True, help="output file (.jsonl, or .json with --format label-studio)")
    p.add_argument("--format", default="jsonl", choices=["jsonl", "label-studio"])
    p.add_argument("--relabel", type=int, default=0,
                   help="also list this many already-labeled examples whose labels look doubtful; where "
                        "several people annotated, those where one more annotation would most likely fix "
                        "the consensus (every row then carries error_reduction on one scale)")
    p.add_argument("--encoder", default=None, help="defaults to the project's encoder")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--strategy", default="default", choices=["default", "abstain"],
                   help="default: boundary rows per label, rare labels and diverse rows; abstain: the rows the current "
                        "model would send to a person under --risk (default fnr=0.1), most doubtful first")
    p.add_argument("--risk", default=None, metavar="NAME=LEVEL", help="with --strategy abstain: the promise "
                   "(fnr=0.1, precision=0.9, fdr=0.1; default fnr=0.1)")
    p.add_argument("--confidence", default=None, type=float, help="with --strategy abstain: hold the promise with "
                   "this probability")
    p.set_defaults(handler=cmd_suggest)
