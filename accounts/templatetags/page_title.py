"""`{% filter page_title %}{% block title %}{% endblock %}{% endfilter %}`: "Sign in · Tenable Console".

Django templates cannot ask whether a child filled a block, so the base template filters the block's output.
"""

from __future__ import annotations

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString

register = template.Library()

SITE = "Tenable Console"


@register.filter(is_safe=True)
def page_title(value: str) -> SafeString:
    """The page's own title, a separator and the site name; the site name alone when the page has none."""
    if not str(value).strip():
        return format_html("{}", SITE)
    return format_html("{} · {}", value, SITE)  # the block's output is already safe; anything else is escaped
