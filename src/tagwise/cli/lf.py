"""``tagwise lf apply | analyze | import``: labeling functions and their stored votes."""
from __future__ import annotations

from ..project import Project
from .core import print_json


def cmd_apply(args) -> int:
    from ..workflows.weak import apply_lfs

    project = Project.open(args.project)
    out = apply_lfs(project, args.lfs, skip_failing=args.skip_failing)
    print(f"applied {out['n_lfs']} LFs ({len(out['columns'])} vote columns) to {out['n_examples']} examples: "
          f"{out['n_votes']} votes stored")
    for f in out["failed"]:
        print(f"skipped LF {f['lf']!r}: it raised on example {f['example']} ({f['text'][:60]!r}): {f['error']}")
    return 0


def cmd_analyze(args) -> int:
    from ..workflows.weak import analyze_lfs

    out = analyze_lfs(Project.open(args.project))
    if args.json:
        print_json({k: v for k, v in out.items() if k != "report_markdown"})
    else:
        print(out["report_markdown"], end="")
    return 0


def cmd_import(args) -> int:
    from ..workflows.weak import import_votes

    out = import_votes(Project.open(args.project), args.file, lf_prefix=args.prefix)
    print(f"imported {out['lfs']} LFs' votes for {out['n_matched_items']} of {out['n_items']} items "
          f"({out['n_examples']} project examples, {out['n_votes']} votes)")
    return 0


def register(sub) -> None:
    p = sub.add_parser("lf", help="labeling functions: apply, analyze, import published votes")
    lf_sub = p.add_subparsers(dest="lf_command", required=True, metavar="ACTION")
    a = lf_sub.add_parser("apply", help="run the LFs of a YAML file over the project and store their votes")
    a.add_argument("project")
    a.add_argument("lfs", help="LF YAML file (its LFs replace every LF applied from YAML before)")
    a.add_argument("--skip-failing", action="store_true",
                   help="leave out an LF that raises (it is reported) and apply the others")
    a.set_defaults(handler=cmd_apply)
    z = lf_sub.add_parser("analyze", help="per-LF coverage, overlaps, conflicts and accuracy")
    z.add_argument("project")
    z.add_argument("--json", action="store_true", help="print JSON instead of a markdown table")
    z.set_defaults(handler=cmd_analyze)
    i = lf_sub.add_parser("import", help="import published votes (WRENCH weak_labels JSON)")
    i.add_argument("project")
    i.add_argument("file", help="a WRENCH split file, e.g. train.json (label.json beside it names the classes)")
    i.add_argument("--prefix", default=None, help="LF name prefix (default: the file's folder name)")
    i.set_defaults(handler=cmd_import)
