"""A tiny, safe Markdown subset for consent texts: paragraphs, headings, lists, emphasis.

Everything is HTML-escaped first, so a consent text can never inject markup.
"""

import re

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

_BOLD = re.compile(r"\*\*(.+?)\*\*")
_BULLET = re.compile(r"^\s*[-*] ")
_ITALIC = re.compile(r"(?<!\*)\*(?!\*)(.+?)(?<!\*)\*(?!\*)")


def _inline(text: str) -> str:
    text = escape(text)
    text = _BOLD.sub(r"<strong>\1</strong>", text)
    return _ITALIC.sub(r"<em>\1</em>", text)


def render_markdown(source: str) -> SafeString:
    """Render ``#`` headings, ``-``/``*`` lists, ``**bold**``, ``*italic*`` and paragraphs."""
    html = []
    for block in re.split(r"\n\s*\n", source.strip().replace("\r\n", "\n")):
        lines = [line.rstrip() for line in block.split("\n") if line.strip()]
        if not lines:
            continue
        if all(_BULLET.match(line) for line in lines):
            items = "".join(f"<li>{_inline(_BULLET.sub('', x))}</li>" for x in lines)
            html.append(f"<ul>{items}</ul>")
        elif len(lines) == 1 and (m := re.match(r"^(#{1,3}) (.+)$", lines[0])):
            level = len(m.group(1)) + 1  # the page title is the h1
            html.append(f"<h{level}>{_inline(m.group(2))}</h{level}>")
        else:
            html.append("<p>" + "<br>".join(_inline(line) for line in lines) + "</p>")
    return mark_safe("".join(html))  # noqa: S308 - every piece of text went through escape()
