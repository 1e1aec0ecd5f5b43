"""`_()` in templates prints exactly what Jinja's own newstyle gettext printed, in both languages.

The reference is a second environment with only Jinja's i18n extension (newstyle, autoescaped) over
the same catalogs. Every message the templates use is rendered through both, with and without
variables, and with text that must be escaped.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from jinja2 import Environment
from litestar.plugins.jinja import JinjaTemplateEngine

from saas.core import i18n
from saas.core.web import render

TEMPLATES = Path(render.ROOT) / "templates"
# The literal argument of every _("...") / _('...') call in the templates.
CALL = re.compile(r"""\b_\(\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')\s*[,)]""")


def messages() -> list[str]:
    found: set[str] = set()
    for path in TEMPLATES.rglob("*.html"):
        for double, single in CALL.findall(path.read_text(encoding="utf-8")):
            found.add(double or single)
    return sorted(found)


def reference() -> Environment:
    env = Environment(autoescape=True, extensions=["jinja2.ext.i18n"])
    env.install_gettext_callables(  # type: ignore[attr-defined]
        lambda s: i18n.translations(i18n.get_locale()).gettext(s),
        lambda s, p, n: i18n.translations(i18n.get_locale()).ngettext(s, p, n), newstyle=True)
    return env


def ours() -> Environment:
    engine = JinjaTemplateEngine(directory=TEMPLATES)
    render.configure_engine(engine)
    return engine.engine


@pytest.fixture(autouse=True)
def _restore_locale():
    before = i18n.get_locale()
    yield
    i18n.set_locale(before)


@pytest.mark.parametrize("locale", i18n.LOCALES)
def test_every_template_message_prints_as_jinja_printed_it(locale: str) -> None:
    i18n.set_locale(locale)
    found = messages()
    assert len(found) > 300  # the scan found the templates' messages, not a handful
    # the variables a message names get a value that needs escaping
    calls = [(m, {k: f"<{k}>" for k in re.findall(r"%\((\w+)\)", m)}) for m in found]
    source = "{% for m, kw in calls %}[{{ _(m, **kw) }}]{% endfor %}"
    # twice: the second pass is served from the kept results
    for _ in range(2):
        assert ours().from_string(source).render(calls=calls) == reference().from_string(source).render(calls=calls)


@pytest.mark.parametrize("locale", i18n.LOCALES)
def test_variables_escaping_and_percent_signs(locale: str) -> None:
    i18n.set_locale(locale)
    source = ('{{ _("%(num)s clients", num=n) }}|{{ _("Hello, %(name)s", name=who) }}|{{ _("100%% sure") }}|'
              '{{ _("<b>bold</b> & more") }}|{{ _(lazy) }}')
    values = {"n": 12, "who": "<script>x</script>", "lazy": "Clients"}
    assert ours().from_string(source).render(**values) == reference().from_string(source).render(**values)


def test_each_language_keeps_its_own_results() -> None:
    i18n.set_locale("ru")
    russian = ours().from_string('{{ _("Clients") }}').render()
    i18n.set_locale("en")
    english = ours().from_string('{{ _("Clients") }}').render()
    assert (russian, english) == ("Клиенты", "Clients")
