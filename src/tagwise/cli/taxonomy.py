"""Taxonomy commands: show the target taxonomy, suggest source-label mappings.

    tagwise taxonomy show PROJECT [--json]
    tagwise taxonomy suggest PROJECT [--source NAME] [--top 3] [--json]
"""
from __future__ import annotations

from ..project import Project
from .core import print_json as _print_json


def cmd_show(args) -> int:
    from ..workflows.taxonomy import taxonomy_summary

    project = Project.open(args.project)
    summary = taxonomy_summary(project)
    if args.json:
        _print_json(summary)
        return 0
    tax = project.taxonomy
    print(f"{len(tax.labels)} labels ({'declared' if tax.declared else 'grown from sources'}); "
          f"sources annotating each label in brackets")
    info = {d["name"]: d for d in summary["labels"]}

    def walk(name: str, depth: int) -> None:
        d = info[name]
        desc = f" - {d['description']}" if d["description"] else ""
        print(f"{'  ' * depth}{name} [{', '.join(d['sources']) or 'no source'}]{desc[:90]}")
        for child in tax.children(name):
            walk(child, depth + 1)

    for root in tax.roots():
        walk(root, 0)
    return 0


def cmd_suggest(args) -> int:
    from ..workflows.taxonomy import suggest_mappings

    project = Project.open(args.project)
    result = suggest_mappings(project, sources=args.source, top=args.top, encoder=args.encoder)
    if args.json:
        _print_json(result)
        return 0
    for source, labels in result.items():
        print(f"{source}:  (score: combined; name / co-occurrence / centroid signals)")
        for label, item in labels.items():
            cur = ", ".join(item["current"]) or "dropped"
            best = item["suggestions"][0] if item["suggestions"] else None
            flag = "" if best is None or best["target"] in item["current"] else "   <- differs from the spec's map"
            cands = "; ".join(
                f"{s['target']} {s['score']:.2f} ({'/'.join('-' if s[k] is None else f'{s[k]:.2f}' for k in ('name', 'cooccurrence', 'centroid'))})"
                for s in item["suggestions"])
            print(f"  {label:<18} now -> {cur:<16} suggest: {cands}{flag}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("taxonomy", help="show the taxonomy; suggest how source labels map onto it")
    tsub = p.add_subparsers(dest="taxonomy_command", required=True, metavar="SUBCOMMAND")

    q = tsub.add_parser("show", help="the label tree with descriptions and the sources annotating each label")
    q.add_argument("project")
    q.add_argument("--json", action="store_true")
    q.set_defaults(handler=cmd_show)

    q = tsub.add_parser("suggest", help="propose source label -> taxonomy label mappings with scores")
    q.add_argument("project")
    q.add_argument("--source", action="append", help="only this source (repeatable)")
    q.add_argument("--top", type=int, default=3, help="candidates per source label")
    q.add_argument("--encoder", default=None)
    q.add_argument("--json", action="store_true")
    q.set_defaults(handler=cmd_suggest)
