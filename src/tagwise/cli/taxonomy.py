"""Taxonomy commands: show the target taxonomy, suggest source-label mappings; transfer evaluation.

    tagwise taxonomy show PROJECT [--json]
    tagwise taxonomy suggest PROJECT [--source NAME] [--top 3] [--json]
    tagwise evaluate PROJECT --transfer [--json]      (flag added to core's evaluate; runs here)
"""
from __future__ import annotations

import json
import sys

from ..project import Project


def _print_json(obj) -> None:
    json.dump(obj, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


def taxonomy_summary(project) -> dict:
    """{"declared", "labels": [{"name", "parent", "description", "sources": [...]}]} for ``show``."""
    tax = project.taxonomy
    by_label: dict[str, list[str]] = {n: [] for n in tax.labels}
    for rec in project.store.sources():
        covered = tax.covered(rec["annotated"])
        for name in tax.labels:
            if name in covered:
                by_label[name].append(rec["name"])
    return {"declared": tax.declared,
            "labels": [{"name": n, "parent": tax.parents.get(n), "description": tax.descriptions.get(n),
                        "sources": by_label[n]} for n in tax.labels]}


def cmd_show(args) -> int:
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
    from ..sources.harmonize import suggest_mappings

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


def cmd_evaluate_transfer(args) -> int:
    """``tagwise evaluate PROJECT --transfer [--json]``: matrix, leave-one-out, languages."""
    from .._io import atomic_write_json
    from ..evaluate.transfer import format_transfer, transfer_evaluation

    project = Project.open(args.project)
    result = transfer_evaluation(project, sources=getattr(args, "sources", None),
                                 encoder=getattr(args, "encoder", None), progress=not args.json)
    run_dir = project.new_run("transfer", {"sources": list(result["matrix"])})
    atomic_write_json(run_dir / "transfer.json", result)
    if args.json:
        _print_json({k: result[k] for k in ("metric", "matrix", "leave_one_out", "languages")})
        return 0
    print(format_transfer(result))
    print(f"\nsaved to {run_dir / 'transfer.json'}")
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
