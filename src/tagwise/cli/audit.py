"""Audit commands: ``audit`` (ranked label issues) and ``corrections`` (apply / undo / list)."""
from __future__ import annotations

import resource
import time

from ..project import Project


def cmd_audit(args) -> int:
    from ..audit.project import _check_output_path, audit_project, issue_rows, save_audit_run, write_issues

    out = _check_output_path(args.out)
    project = Project.open(args.project)
    t0 = time.perf_counter()
    result, ex, space = audit_project(project, split=args.split, folds=args.folds, k=args.k, encoder=args.encoder,
                                      progress=not args.quiet, max_flags=args.max_flags)
    rows = issue_rows(result, ex, space, all_rows=args.all)
    write_issues(rows, out)
    run = save_audit_run(project, result, rows, {"split": args.split, "folds": args.folds,
                                                 "k": int(result.neighbors.shape[1]), "all": args.all, "out": str(out)})
    by_type: dict[str, int] = {}
    for r in rows:
        for f in r["findings"]:
            by_type[f["type"]] = by_type.get(f["type"], 0) + 1
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"audited {len(ex)} labeled examples ({'multi' if result.multi_label else 'single'}-label, "
          f"{args.folds}-fold cross-fitting) in {time.perf_counter() - t0:.1f}s, peak RSS {peak_mb:.0f} MB")
    print(f"estimated {result.estimated_errors:.0f} label errors; flag budget {result.flag_budget} rows (--max-flags N)")
    print(f"flagged {int(result.is_flagged.sum())} examples: "
          + (", ".join(f"{v} {k}" for k, v in sorted(by_type.items())) or "no findings"))
    print(f"wrote {len(rows)} rows to {out} (run {run.name})")
    return 0


def cmd_corrections_apply(args) -> int:
    from ..audit.corrections import apply_corrections

    project = Project.open(args.project)
    batch, n = apply_corrections(project, args.file)
    print(f"applied {n} label corrections from {args.file} as batch {batch} "
          f"(undo with `tagwise corrections {args.project} undo`)")
    return 0


def cmd_corrections_undo(args) -> int:
    from ..audit.corrections import undo_corrections

    project = Project.open(args.project)
    undone = undo_corrections(project, to=args.to)
    print(f"undid {len(undone)} correction batch(es): {', '.join(undone) if undone else '(none after ' + args.to + ')'}")
    return 0


def cmd_corrections_list(args) -> int:
    from ..audit.corrections import correction_batches

    project = Project.open(args.project)
    for b in correction_batches(project):
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
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(handler=cmd_audit)

    c = subparsers.add_parser("corrections", help="apply or undo label corrections (kept with history)")
    c.add_argument("project")
    sub = c.add_subparsers(dest="action", required=True, metavar="ACTION")
    a = sub.add_parser("apply", help="accept suggested_labels of every row of an issues file")
    a.add_argument("file")
    a.set_defaults(handler=cmd_corrections_apply)
    u = sub.add_parser("undo", help="undo the latest batch, or every batch after --to RUN ('start' = all)")
    u.add_argument("--to", default=None)
    u.set_defaults(handler=cmd_corrections_undo)
    ls = sub.add_parser("list", help="list correction batches")
    ls.set_defaults(handler=cmd_corrections_list)
