"""Accounts for ``tagwise serve``.

    tagwise users add PROJECT NAME [--role annotator|reviewer|admin] [--base-url URL] [--json]
    tagwise users list PROJECT [--json]
    tagwise users remove PROJECT NAME
"""
from __future__ import annotations

from ..project import Project
from .core import print_json


def cmd_add(args) -> int:
    from ..workflows.users import add_user

    project = Project.open(args.project)
    try:
        user = add_user(project, args.name, role=args.role, base_url=args.base_url)
    finally:
        project.close()
    if args.json:
        print_json(user)
        return 0
    print(f"added {user['role']} {user['name']!r}. Send them this login link (it is shown only once):\n"
          f"  {user['login_url']}\n"
          f"Programs send `Authorization: Bearer {user['token']}`.")
    return 0


def cmd_list(args) -> int:
    from ..workflows.users import list_users

    project = Project.open(args.project)
    try:
        users = list_users(project)
    finally:
        project.close()
    if args.json:
        print_json({"users": users})
        return 0
    if not users:
        print("no users: `tagwise serve` answers only loopback requests, as one person (add one with "
              "`tagwise users add PROJECT NAME`)")
    for u in users:
        print(f"{u['name'][:40]:40s} {u['role']:10s} added {u['created_at']}")
    return 0


def cmd_remove(args) -> int:
    from ..workflows.users import remove_user

    project = Project.open(args.project)
    try:
        remove_user(project, args.name)
    finally:
        project.close()
    print(f"removed {args.name!r}: their link and sessions stop working; their labels stay")
    return 0


def register(subparsers) -> None:
    from ..workflows.users import DEFAULT_BASE_URL, ROLES

    p = subparsers.add_parser("users", help="accounts for `tagwise serve` (a login link per person)")
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    a = sub.add_parser("add", help="add a user and print their login link")
    a.add_argument("project")
    a.add_argument("name")
    a.add_argument("--role", default="annotator", choices=ROLES,
                   help="annotator: labels; reviewer: also the review queue; admin: also retrain and users")
    a.add_argument("--base-url", default=DEFAULT_BASE_URL,
                   help=f"where the server is reached, for the link (default {DEFAULT_BASE_URL})")
    a.add_argument("--json", action="store_true", help='print {"name", "role", "token", "login_url"}')
    a.set_defaults(handler=cmd_add)
    ls = sub.add_parser("list", help="users and their roles")
    ls.add_argument("project")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(handler=cmd_list)
    r = sub.add_parser("remove", help="remove a user (revokes their link; their labels stay)")
    r.add_argument("project")
    r.add_argument("name")
    r.set_defaults(handler=cmd_remove)
