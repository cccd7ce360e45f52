"""Annotator commands.

    tagwise annotators PROJECT [--json]              agreement, annotator quality, pairwise agreement
    tagwise annotators PROJECT --add SPEC [--replace]  ingest a source with per-annotator labels
"""
from __future__ import annotations

import sys

from ..project import Project
from .core import print_json


def register(subparsers) -> None:
    p = subparsers.add_parser("annotators", help="agreement and annotator quality where several people "
                              "labeled the same examples")
    p.add_argument("project")
    p.add_argument("--json", action="store_true", help="print one JSON object (stable contract)")
    p.add_argument("--add", metavar="SPEC", help="first ingest this source spec with per-annotator labels "
                   "(columns/annotator, labels/annotator_columns or labels/format votes)")
    p.add_argument("--replace", action="store_true", help="with --add: re-ingest a source of the same name")
    p.set_defaults(handler=cmd_annotators)


def cmd_annotators(args) -> int:
    from ..workflows.annotators import add_annotated_source, annotator_report

    project = Project.open(args.project)
    try:
        if args.add:
            added = add_annotated_source(project, args.add, replace=args.replace)
            for warning in added.get("warnings", ()):
                print(f"tagwise: warning: {warning}", file=sys.stderr)
            from ..workflows.health import format_warning, shared_text_warnings, shared_texts

            for w in shared_text_warnings(shared_texts(project, sources=[added["name"]]), project):
                print(format_warning(w), file=sys.stderr)
            if not args.json:
                print(f"added {added['name']}: {added['n_examples']} examples, {added['n_annotations']} "
                      f"judgements by {len(added['annotators'])} annotators")
        report = annotator_report(project)
    finally:
        project.close()
    if args.json:
        print_json(report)
        return 0
    print(f"{report['n_examples']} examples, {report['n_judgements']} judgements")
    print(f"\n{'label':24s} {'alpha':>7s} {'judged':>7s} {'pos.rate':>8s} {'consensus+':>10s}")
    for name, rec in report["labels"].items():
        a = "-" if rec["alpha"] is None else f"{rec['alpha']:.3f}"
        pr = "-" if rec["positive_rate"] is None else f"{rec['positive_rate']:.3f}"
        print(f"{name[:24]:24s} {a:>7s} {rec['n_judgements']:7d} {pr:>8s} {rec['consensus_positive']:10d}")
    print(f"\n{'annotator':24s} {'quality':>7s} {'examples':>8s}  worst label (sensitivity / specificity)")
    for name, rec in sorted(report["annotators"].items(), key=lambda kv: kv[1]["quality"]):
        worst = min(rec["per_label"].items(), key=lambda kv: kv[1]["sensitivity"] + kv[1]["specificity"],
                    default=None)
        w = "" if worst is None else f"{worst[0]} ({worst[1]['sensitivity']:.2f} / {worst[1]['specificity']:.2f})"
        print(f"{name[:24]:24s} {rec['quality']:7.3f} {rec['n_examples']:8d}  {w}")
    if report["pairwise"]:
        low = sorted(report["pairwise"], key=lambda p: p["agreement"])[:5]
        print("\nleast agreeing pairs: " + ", ".join(f"{p['a']}-{p['b']} {p['agreement']:.2f} ({p['cells']} cells)"
                                                   for p in low))
    return 0
