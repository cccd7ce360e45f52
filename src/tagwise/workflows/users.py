"""People who use a project through ``tagwise serve``: add, list, remove, and recognise their tokens.

Each user has a name, a role (``annotator`` < ``reviewer`` < ``admin``) and a random token. The token is
shown once (in the login link ``users add`` prints) and only its sha256 is stored, so a copy of the
project folder does not let anyone in. A project without users is served to one person on loopback, as
before; once it has one, every request to the server needs a user's token or session.
"""
from __future__ import annotations

import hashlib
import secrets
import unicodedata
from urllib.parse import quote

from ..project import Project
from ..types import TagwiseError

ROLES = ("annotator", "reviewer", "admin")
ROLE_RANK = {role: rank for rank, role in enumerate(ROLES)}
MAX_NAME_CHARS = 100
DEFAULT_BASE_URL = "http://127.0.0.1:8765"  # `tagwise serve`'s default --host and --port


def hash_token(token: str) -> str:
    """The hex sha256 of a token (what the store keeps)."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def check_name(name, where: str = "user name") -> str:
    """A user (or annotator) name: a non-empty string of at most ``MAX_NAME_CHARS`` printable characters."""
    if not isinstance(name, str) or not name.strip():
        raise TagwiseError(f"{where}: give a non-empty name such as 'alice'.")
    name = name.strip()
    if len(name) > MAX_NAME_CHARS:
        raise TagwiseError(f"{where}: a name of {len(name)} characters; the limit is {MAX_NAME_CHARS}.")
    bad = [c for c in name if unicodedata.category(c) in ("Cc", "Cs", "Cf", "Zl", "Zp")]
    if bad:
        raise TagwiseError(f"{where}: {name!r} holds a control or unpaired surrogate character "
                           f"({ascii(bad[0])}). Fix: use letters, digits, spaces and punctuation only.")
    return name


def check_role(role: str) -> str:
    if role not in ROLE_RANK:
        raise TagwiseError(f"unknown role {role!r}; the roles are {', '.join(ROLES)} (each can do what the "
                           f"ones before it can).")
    return role


def has_role(user: dict, role: str) -> bool:
    """Whether ``user`` (``{"role"}``) may do what ``role`` may."""
    return ROLE_RANK.get(user.get("role"), -1) >= ROLE_RANK[role]


def login_url(token: str, base_url: str = DEFAULT_BASE_URL) -> str:
    """The link a browser opens to sign in: ``BASE/login?token=TOKEN``."""
    return f"{base_url.rstrip('/')}/login?token={quote(token, safe='')}"


def add_user(project: Project, name: str, role: str = "annotator", base_url: str = DEFAULT_BASE_URL) -> dict:
    """Create a user with a fresh token. Returns ``{"name", "role", "token", "login_url"}`` (the only time
    the token is shown)."""
    name = check_name(name)
    role = check_role(role)
    token = secrets.token_urlsafe(32)
    project.store.add_user(name, role, hash_token(token), str(project.path))
    return {"name": name, "role": role, "token": token, "login_url": login_url(token, base_url)}


def list_users(project: Project) -> list[dict]:
    """``[{"name", "role", "created_at"}]`` by name (never the tokens, which are not stored)."""
    return [{k: u[k] for k in ("name", "role", "created_at")} for u in project.store.users()]


def remove_user(project: Project, name: str) -> dict:
    """Delete a user: their token and sessions stop working; the labels they gave stay, under their name."""
    if not project.store.remove_user(name):
        known = [u["name"] for u in project.store.users()]
        raise TagwiseError(f"{project.path}: no user named {name!r}. Users: {', '.join(known) or 'none'}.")
    return {"name": name, "removed": True}


def users_by_token_hash(project: Project) -> dict[str, dict]:
    """sha256 of a token -> ``{"name", "role"}``: what the server checks a request's token against."""
    return {u["token_sha256"]: {"name": u["name"], "role": u["role"]} for u in project.store.users()}
