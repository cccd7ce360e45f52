"""Audit commands: ``audit`` (ranked label issues) and ``corrections`` (apply / undo / list)."""
from __future__ import annotations

from ..project import Project


def cmd_audit(args) -> int:
    from ..workflows.audit import audit
    from .core import engine_from_args

    engine = engine_from_args(args)
    try:
        r = audit(Project.open(args.project), args.out, split=args.split, folds=args.folds, k=args.k,
                  encoder=args.encoder, all_rows=args.all, max_flags=args.max_flags, progress=not args.quiet,
                  engine=engine, **({} if args.partition_rows is None else {"partition_rows": args.partition_rows or None}))
    finally:
        engine.shutdown()
    print(f"audited {r['n_examples']} labeled examples ({'multi' if r['multi_label'] else 'single'}-label, "
          f"{r['folds']}-fold cross-fitting) in {r['seconds']:.1f}s, peak RSS {r['peak_rss_mb']:.0f} MB")
    if r.get("partitions", 1) > 1:
        print(f"audited in {r['partitions']} random partitions of the examples (--partition-rows)")
    share = r["estimated_errors"] / max(r["n_examples"], 1)
    print(f"estimated {r['estimated_errors']:.0f} label errors ({share:.0%} of the rows); "
          f"flag budget {r['flag_budget']} rows (--max-flags N)")
    top = list(r.get("estimated_errors_by_label", {}).items())[:5]
    if top:
        print("most estimated errors: " + ", ".join(f"{name} {count:.0f}" for name, count in top))
    print(f"flagged {r['n_flagged']} examples: "
          + (", ".join(f"{v} {k}" for k, v in sorted(r["findings_by_type"].items())) or "no findings"))
    if r.get("beyond_budget"):
        print(f"left out {r['beyond_budget']} more flagged rows (conflicting duplicates or outliers, more "
              f"trustworthy than the {r['n_flagged']} kept): raise --max-flags to see them")
    print(f"wrote {r['rows_written']} rows to {r['out']} (run {r['run']})")
    return 0


def cmd_corrections_apply(args) -> int:
    from ..workflows.corrections import apply_corrections

    r = apply_corrections(Project.open(args.project), args.file)
    if not r["changed"]:
        print(f"no labels changed: every row of {args.file} already matches its example ({r['rows']} rows)")
        return 0
    print(f"applied {r['changed']} label corrections from {args.file} as batch {r['batch']} "
          f"(undo with `tagwise corrections undo {args.project}`)")
    return 0


def cmd_corrections_undo(args) -> int:
    from ..workflows.corrections import undo_corrections

    undone = undo_corrections(Project.open(args.project), to=args.to)
    print(f"undid {len(undone)} correction batch(es): {', '.join(undone) if undone else '(none after ' + args.to + ')'}")
    return 0


def cmd_corrections_list(args) -> int:
    from ..workflows.corrections import correction_batches

    for b in correction_batches(Project.open(args.project)):
        state = f"undone {b['undone_at']}" if b["undone_at"] else "active"
        print(f"{b['batch']}: {b['n']} examples, {b['created_at']}, {state} — {b['reason']}")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("audit", help="find wrong, missing and conflicting labels (ranked issues file)")
    p.add_argument("project")
    p.add_argument("--split", default="train", help="split to audit, or 'all' (default: train)")
    p.add_argument("--folds", type=int, default=5, help="cross-fitting folds (default 5)")
    p.add_argument("--k", type=int, default=None,
                   help="nearest neighbours per example (default: 50 for single-label data, 10 for multi-label)")
    p.add_argument("--encoder", default=None, help="encoder (default: the project's)")
    p.add_argument("--out", required=True, help="issues file: .csv, .jsonl or .parquet")
    p.add_argument("--all", action="store_true", help="write every example, not only flagged ones")
    p.add_argument("--max-flags", type=int, default=None,
                   help="flag the N least trustworthy rows (default: as many as the estimated label errors)")
    p.add_argument("--partition-rows", type=int, default=None,
                   help="above this many examples, audit random partitions of about that size one at a time, "
                        "so memory stays that of one partition (default 1000000; 0 = never partition)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    from .core import add_engine_args

    add_engine_args(p)
    p.set_defaults(handler=cmd_audit)

    c = subparsers.add_parser("corrections", help="apply or undo label corrections (kept with history)",
                              description="tagwise corrections ACTION PROJECT ... (the older `tagwise corrections "
                                          "PROJECT ACTION ...` is accepted too)")
    sub = c.add_subparsers(dest="action", required=True, metavar="ACTION")
    a = sub.add_parser("apply", help="accept suggested_labels of every row of an issues file")
    a.add_argument("project")
    a.add_argument("file")
    a.set_defaults(handler=cmd_corrections_apply)
    u = sub.add_parser("undo", help="undo the latest batch, or every batch after --to RUN ('start' = all)")
    u.add_argument("project")
    u.add_argument("--to", default=None)
    u.set_defaults(handler=cmd_corrections_undo)
    ls = sub.add_parser("list", help="list correction batches")
    ls.add_argument("project")
    ls.set_defaults(handler=cmd_corrections_list)
