"""Taxonomy commands: show the target taxonomy, suggest source-label mappings, change the label set.

    tagwise taxonomy show PROJECT [--json]
    tagwise taxonomy suggest PROJECT [--source NAME] [--top 3] [--json]
    tagwise taxonomy add PROJECT NAME [--parent P] [--description D]
    tagwise taxonomy rename PROJECT OLD NEW
    tagwise taxonomy merge PROJECT A B [...] --into C
    tagwise taxonomy split PROJECT A --into A1 A2 [...] [--keep-parent]
    tagwise taxonomy move PROJECT NAME --parent P|--root
    tagwise taxonomy retire PROJECT NAME
    tagwise taxonomy history PROJECT [--json]
    tagwise taxonomy undo PROJECT [--to CHANGE]
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
    p = sub.add_parser("taxonomy", help="show the taxonomy; suggest how source labels map onto it; add, rename, "
                                        "merge, split, move, retire labels with history and undo")
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
    register_changes(tsub)


# -- changes (issue 32) -----------------------------------------------------------------------------
def _report_change(change: dict, args) -> int:
    if getattr(args, "json", False):
        _print_json(change)
        return 0
    r = change["result"]
    rows = ", ".join(f"{n} {t}" for t, n in r.get("rows_rewritten", {}).items()) or "no stored row"
    print(f"change {change['id']}: {change['kind']} {_describe(change['kind'], change['args'])} "
          f"({r['labels_before']} -> {r['labels_after']} labels; rewrote {rows}). "
          f"Undo: tagwise taxonomy undo {args.project} --to {change['id']}")
    if change.get("queued_batch"):
        print(f"{len(r.get('queued', []))} examples of {change['args']['label']!r} queued for labeling the new "
              f"labels (label queue batch {change['queued_batch']}).")
    if change.get("train_suggested"):
        print(f"The current model serves the new names until retrained; run `tagwise train {args.project}` "
              f"to retrain on the changed labels (suggested).")
    return 0


def _describe(kind: str, a: dict) -> str:
    if kind == "add":
        return repr(a["name"]) + (f" under {a['parent']!r}" if a.get("parent") else "")
    if kind == "rename":
        return f"{a['old']!r} -> {a['new']!r}"
    if kind == "merge":
        return f"{', '.join(map(repr, a['labels']))} into {a['into']!r}"
    if kind == "split":
        return f"{a['label']!r} into {', '.join(map(repr, a['into']))}" + (" (kept as parent)" if a.get("keep_parent") else "")
    if kind == "move":
        return f"{a['name']!r} " + (f"under {a['parent']!r}" if a.get("parent") else "to the root")
    return repr(a.get("name"))


def cmd_change(args) -> int:
    from ..workflows import taxonomy_changes as tc

    project = Project.open(args.project)
    action = args.taxonomy_command
    if action == "add":
        change = tc.add_label(project, args.name, parent=args.parent, description=args.description)
    elif action == "rename":
        change = tc.rename_label(project, args.old, args.new)
    elif action == "merge":
        change = tc.merge_labels(project, args.labels, args.into)
    elif action == "split":
        change = tc.split_label(project, args.label, args.into, keep_parent=args.keep_parent)
    elif action == "move":
        change = tc.move_label(project, args.name, None if args.root else args.parent)
    else:
        change = tc.retire_label(project, args.name)
    return _report_change(change, args)


def cmd_history(args) -> int:
    from ..workflows.taxonomy_changes import history

    project = Project.open(args.project)
    changes = history(project)
    if args.json:
        _print_json(changes)
        return 0
    if not changes:
        print("no taxonomy change yet")
    for c in changes:
        state = f"undone {c['undone_at']}" if c["undone_at"] else "active"
        print(f"{c['id']:>4}  {c['created_at']}  {c['kind']:<7} {_describe(c['kind'], c['args'])}  [{state}]")
    return 0


def cmd_undo(args) -> int:
    from ..workflows.taxonomy_changes import undo

    project = Project.open(args.project)
    done = undo(project, to=args.to)
    if args.json:
        _print_json(done)
        return 0
    for c in done:
        print(f"undid change {c['id']}: {c['kind']} {_describe(c['kind'], c['args'])}")
    return 0


def register_changes(tsub) -> None:
    q = tsub.add_parser("add", help="add a label (unknown everywhere until labeled)")
    q.add_argument("project")
    q.add_argument("name")
    q.add_argument("--parent", default=None)
    q.add_argument("--description", default=None)

    q2 = tsub.add_parser("rename", help="rename a label; every judgement and the current model keep it")
    q2.add_argument("project")
    q2.add_argument("old")
    q2.add_argument("new")

    q3 = tsub.add_parser("merge", help="merge labels into one (positive where any was)")
    q3.add_argument("project")
    q3.add_argument("labels", nargs="+")
    q3.add_argument("--into", required=True)

    q4 = tsub.add_parser("split", help="split a label into new ones (unknown on its positives, which are queued)")
    q4.add_argument("project")
    q4.add_argument("label")
    q4.add_argument("--into", nargs="+", required=True)
    q4.add_argument("--keep-parent", action="store_true", help="keep the label as the new labels' parent")

    q5 = tsub.add_parser("move", help="give a label another parent (or none)")
    q5.add_argument("project")
    q5.add_argument("name")
    where = q5.add_mutually_exclusive_group(required=True)
    where.add_argument("--parent", default=None)
    where.add_argument("--root", action="store_true")

    q6 = tsub.add_parser("retire", help="hide a label from queues, models and exports (history kept)")
    q6.add_argument("project")
    q6.add_argument("name")
    for q in (q, q2, q3, q4, q5, q6):
        q.add_argument("--json", action="store_true")
        q.set_defaults(handler=cmd_change)

    q = tsub.add_parser("history", help="the taxonomy changes, oldest first")
    q.add_argument("project")
    q.add_argument("--json", action="store_true")
    q.set_defaults(handler=cmd_history)

    q = tsub.add_parser("undo", help="undo the latest taxonomy change (or CHANGE and every later one)")
    q.add_argument("project")
    q.add_argument("--to", type=int, default=None, metavar="CHANGE")
    q.add_argument("--json", action="store_true")
    q.set_defaults(handler=cmd_undo)
