"""Server-rendered pages: Jinja2 templates (``serve/templates/``) with autoescaping on for every
template, so every text, label, source and model name is escaped by default. JSON in attributes goes
through ``tojson`` inside single-quoted attributes (it escapes ``<>&'``). The only script is
``/static/app.js``. This module only builds the templates' contexts; the app's routes call ``render``.
"""
from __future__ import annotations

import html
import string
from pathlib import Path

from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, StrictUndefined

FILTERS = ("source", "split", "language", "label", "q")
# keys that toggle labels in the label queue: digits, then letters that are not commands
# (s skip, u undo, g take the model's guesses)
TOGGLE_KEYS = list("123456789") + [c for c in string.ascii_lowercase if c not in "sug"]
NAV = (("label", "/label", "Label"), ("review", "/review", "Review"), ("team", "/team", "Team"),
       ("model", "/model", "Model"), ("taxonomy", "/taxonomy", "Taxonomy"), ("docs", "/docs", "API"))
PAGE_PATHS = frozenset(href for _, href, _ in NAV)  # where a sign-in may move on to (``/login?next=``)
REVIEWERS_ONLY = ("review", "team")  # pages an annotator does not see (they show other people's labels)
ADMINS_ONLY = ("taxonomy",)  # pages that change the project's label set
TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"


def decoded(text) -> str:
    """A text with its HTML entities decoded (``&amp;`` -> ``&``): datasets scraped from the web carry
    them; autoescaping then shows the characters, never markup."""
    return html.unescape("" if text is None else str(text))


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES_DIR), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=False, lstrip_blocks=False)
    env.filters["decoded"] = decoded
    return env


templates = Jinja2Templates(env=_environment())


def _layout(title: str, active: str, user: dict | None) -> dict:
    """The base template's context: the menu the user may use (none before signing in) and who they are."""
    nav = [] if user is None else [n for n in NAV if not (user["role"] == "annotator" and n[0] in REVIEWERS_ONLY)
                                   and not (user["role"] != "admin" and n[0] in ADMINS_ONLY)]
    return {"title": title, "active": active, "user": user, "nav": nav, "filter_keys": FILTERS}


def render(request, name: str, title: str, active: str, user: dict | None, **context):
    """The ``name`` template as an HTML response, with the layout's context. ``user``: ``{"name", "role",
    "via"}`` (the header says who is signed in; a browser session gets a sign-out button)."""
    return templates.TemplateResponse(request, name, {**_layout(title, active, user), **context})


def landing(next_path: str | None) -> str:
    """Where a sign-in moves on to: ``next_path`` if it is one of the pages (never another site), else /label."""
    return next_path if next_path in PAGE_PATHS else "/label"


def sign_in_page(message: str, status: int = 401, next_path: str | None = None) -> HTMLResponse:
    """The sign-in page (``message`` says why; after signing in, on to ``next_path``, one of the pages),
    for the guard that has no ``Request`` yet."""
    next_path = next_path if next_path in PAGE_PATHS else None
    body = templates.env.get_template("sign_in.html").render(**_layout("Sign in", "sign-in", None), message=message,
                                                             next_path=next_path)
    return HTMLResponse(body, status_code=status)


def label_tree(taxonomy) -> list[dict]:
    """The label queue's toggles as a tree (``workflows.taxonomy_changes.label_tree``), each node with its
    ``key`` ('' past the last key; keys follow the tree's order) and ``ancestors`` (nearest first: choosing
    a label chooses them too)."""
    from ..workflows.taxonomy_changes import label_tree as tree_of

    tree = tree_of(taxonomy)
    order = [0]

    def keyed(nodes):
        for n in nodes:
            k = order[0]
            order[0] += 1
            n["key"] = TOGGLE_KEYS[k] if k < len(TOGGLE_KEYS) else ""
            n["ancestors"] = taxonomy.ancestors(n["name"])
            keyed(n["children"])
        return nodes

    return keyed(tree)


def guide(names: list[str], descriptions: dict, examples: dict) -> list[dict]:
    """The guidelines panel: each label with a description or examples in the taxonomy."""
    return [{"name": n, "description": descriptions.get(n, ""), "examples": list(examples.get(n, []))}
            for n in names if descriptions.get(n) or examples.get(n)]
