"""Who is asking: the ONE place the web app learns a request's user (the seam for accounts, issue 28).

``request_user(request) -> {"name", "role"} | None`` is all the pages, queues and the team page use.
Until accounts land (``serve/auth.py``: ``tagwise users add``, Bearer / session cookie), every
request is the server's ``--annotator`` with role ``admin``: today's single-person use.

TEST-ONLY, to be removed at the merge with accounts: an app built with
``create_app(..., trust_user_header=True)`` (no CLI flag sets it) takes the user from the
``X-Tagwise-User`` header (role from ``X-Tagwise-Role``, default ``annotator``), so tests can act as
several people before real logins exist. At merge: make ``request_user`` return auth's current user
(None when nobody is logged in), delete ``USER_HEADER``/``ROLE_HEADER`` and ``trust_user_header``, and
let the tests log in with ``tagwise users add`` tokens instead of the header.
"""
from __future__ import annotations

from fastapi import HTTPException, Request

ROLES = ("annotator", "reviewer", "admin")
USER_HEADER = "X-Tagwise-User"   # TEST-ONLY (see the module docstring)
ROLE_HEADER = "X-Tagwise-Role"   # TEST-ONLY
MAX_NAME = 100


def request_user(request: Request) -> dict | None:
    """The requesting user ``{"name", "role"}`` (None: nobody; the real seam answers None when not logged in)."""
    state = request.app.state
    if getattr(state, "trust_user_header", False):  # TEST-ONLY
        name = request.headers.get(USER_HEADER, "").strip()
        if name:
            role = request.headers.get(ROLE_HEADER, "annotator").strip()
            if len(name) > MAX_NAME or role not in ROLES:
                raise HTTPException(400, f"{USER_HEADER} must be at most {MAX_NAME} characters and "
                                         f"{ROLE_HEADER} one of {', '.join(ROLES)}.")
            return {"name": name, "role": role}
    return {"name": state.annotator, "role": "admin"}


def require_user(request: Request, *roles: str) -> dict:
    """The requesting user, or HTTP 401 (nobody) / 403 (a role outside ``roles``, when given)."""
    user = request_user(request)
    if user is None:
        raise HTTPException(401, "log in first: open the login link `tagwise users add` printed.")
    if roles and user["role"] not in roles:
        raise HTTPException(403, f"{user['name']} is {user['role']!r}; this needs one of {', '.join(roles)}.")
    return user
