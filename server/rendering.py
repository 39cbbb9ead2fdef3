"""The Jinja2 templates of the e-mails and pages (``server/templates/``), loaded once.

HTML templates (``.html``) are autoescaped: members' words (listing titles,
usernames) and URLs go in as text, never as markup. Plain-text templates
(``.txt``) are not escaped. An unknown variable is an error, not an empty string.
"""

from __future__ import annotations

import functools

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape


@functools.cache
def templates() -> Environment:
    return Environment(
        loader=PackageLoader("parley.server", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
