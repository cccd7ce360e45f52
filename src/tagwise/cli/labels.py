"""``tagwise labels import|export|list|undo`` and ``tagwise serve`` (the web app and HTTP API)."""
from __future__ import annotations

import argparse
import json
import socket

from ..project import Project
from ..types import TagwiseError


def cmd_import(args) -> int:
    from ..workflows.labels import import_labels

    r = import_labels(Project.open(args.project), args.file, annotator=args.annotator)
    extra = f" ({r['skipped_unannotated']} unlabeled tasks skipped)" if r["skipped_unannotated"] else ""
    again = " (same example, annotator and labels; not added again)" if r["already_stored"] else ""
    print(f"imported {r['imported']} annotations from {args.file} ({r['format']}, origin {r['origin']}): "
          f"{r['imported']} new, {r['already_stored']} already stored{again}{extra}")
    return 0


def cmd_export(args) -> int:
    from ..workflows.labels import export_labels

    r = export_labels(Project.open(args.project), args.out, fmt=args.format, consensus=args.consensus)
    extra = f"; {r['consensus_rows']} from the consensus of several annotators" if r["consensus_rows"] else ""
    print(f"wrote {r['rows']} labeled examples to {r['out']} ({r['format']}{extra})")
    return 0


def cmd_list(args) -> int:
    from ..workflows.labels import list_annotations

    for a in list_annotations(Project.open(args.project))[-args.last:]:
        state = f"undone {a['undone_at']}" if a["undone_at"] else "active"
        print(f"{a['id']}\texample {a['example']}\t{json.dumps(a['labels'], ensure_ascii=False)}\t{a['annotator']}\t"
              f"{a['origin']}\t{a['created_at']}\t{state}")
    return 0


def cmd_undo(args) -> int:
    from ..workflows.labels import undo_annotation

    a = undo_annotation(Project.open(args.project), args.id, annotator=args.annotator if args.id is None else None)
    print(f"undid annotation {a['id']} (example {a['example']}, {a['annotator']}, {a['origin']})")
    return 0


def _overlap(value: str) -> int:
    import argparse

    try:
        k = int(value)
    except ValueError:
        k = 0
    if k < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number of at least 1 (people per example)")
    return k


def port_number(value: str) -> int:
    """``--port``: a TCP port, 0-65535 (0: any free port)."""
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a port number; give a whole number from 0 to 65535, "
                                         f"e.g. 8765") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a TCP port; give a number from 0 to 65535, e.g. 8765")
    return port


def check_can_listen(host: str, port: int) -> None:
    """A clear error for an address the server could not bind (in use, or a host name that does not resolve)."""
    try:
        with socket.create_server((host, port)):
            pass
    except OSError as exc:
        raise TagwiseError(f"cannot listen on {host}:{port} ({exc.strerror or exc}). Fix: pick another --port, stop "
                           f"what holds this one, or check --host.") from None


def cmd_serve(args) -> int:
    from ..serve.app import run_server

    check_can_listen(args.host, args.port)
    run_server(args.project, host=args.host, port=args.port, token=args.token, annotator=args.annotator,
               allow_hosts=args.allow_host, overlap=args.overlap)
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("labels", help="import / export / list / undo the labels people gave (annotations)",
                              description="tagwise labels ACTION PROJECT ... (the older `tagwise labels PROJECT "
                                          "ACTION ...` is accepted too)")
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    i = sub.add_parser("import", help="JSONL {id|example_id, labels}, CSV, or a Label Studio JSON export; "
                       "a judgement already stored (same example, annotator and labels) is not added again")
    i.add_argument("project")
    i.add_argument("file")
    i.add_argument("--annotator", default="import", help="annotator name for rows that name none")
    i.set_defaults(handler=cmd_import)
    e = sub.add_parser("export", help="every labeled example with its labels and provenance")
    e.add_argument("project")
    e.add_argument("--out", required=True)
    e.add_argument("--format", default="jsonl", choices=["jsonl", "label-studio", "csv"])
    e.add_argument("--consensus", default="model", choices=["model", "model-classifier", "majority", "none"],
                   help="labels of an example several people annotated (as `tagwise train --consensus`)")
    e.set_defaults(handler=cmd_export)
    ls = sub.add_parser("list", help="the latest annotations")
    ls.add_argument("project")
    ls.add_argument("--last", type=int, default=50)
    ls.set_defaults(handler=cmd_list)
    u = sub.add_parser("undo", help="undo annotation ID, or --annotator NAME's latest")
    u.add_argument("project")
    u.add_argument("id", nargs="?", type=int, default=None)
    u.add_argument("--annotator", default="web")
    u.set_defaults(handler=cmd_undo)

    s = subparsers.add_parser("serve", help="web app (label queue, review queue, model page) and HTTP API")
    s.add_argument("project")
    s.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1; others need users or "
                   "--token)")
    s.add_argument("--port", type=port_number, default=8765, help="TCP port, 0-65535 (default 8765)")
    s.add_argument("--token", default=None, help="an admin token: `Authorization: Bearer TOKEN`, or a browser's "
                   "/login?token=TOKEN (users: `tagwise users add`)")
    s.add_argument("--annotator", default="web", help="name stored with labels given without a user (the local "
                   "person, or the --token admin)")
    s.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                   help="also answer requests whose Host header is NAME (a reverse proxy's name); repeatable")
    s.add_argument("--overlap", type=_overlap, default=1, metavar="K",
                   help="give each queued example to K distinct people (default 1); /team shows their agreement")
    s.set_defaults(handler=cmd_serve)
