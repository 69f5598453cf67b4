"""mkdocs hooks (mkdocs.yml ``hooks:``): the docs' generated sections, written from the
code they document, so they cannot drift from it.

- ``<!-- generated: configuration -->``: every `icrm.ICRMConfig` option — type, default,
  flag surfaces, variable, meaning;
- ``<!-- generated: errors -->``: the error tree of `icrm.errors` and each class's meaning;
- ``<!-- generated: parse_reasons -->``: `icrm.errors.PARSE_REASONS` with their meanings;
- ``<!-- generated: policies -->``: `icrm.rewards.POLICIES`, each surface's judge-down policy.
"""

from __future__ import annotations

import inspect
import re
from typing import Any


def on_page_markdown(markdown: str, **_: Any) -> str:
    for name, render in (("configuration", _configuration), ("errors", _errors), ("parse_reasons", _parse_reasons),
                         ("policies", _policies)):
        marker = f"<!-- generated: {name} -->"
        if marker in markdown:
            markdown = markdown.replace(marker, render())
    return markdown


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _configuration() -> str:
    from icrm.config import ICRMConfig, env_name, option_default, option_surfaces

    rows = ["| option | default | flag of | variable | meaning |", "| --- | --- | --- | --- | --- |"]
    for name, field in ICRMConfig.model_fields.items():
        surfaces = option_surfaces(name)
        flags = ", ".join(f"`{s}`" for s in surfaces if s != "env") or "Python only"
        variable = f"`{env_name(name)}`" if "env" in surfaces else "—"
        defaults = {s: option_default(name, s) for s in surfaces if option_default(name, s) != field.default}
        default = f"`{field.default!r}`" + "".join(f" (`{s}`: `{v!r}`)" for s, v in defaults.items())
        rows.append(f"| `{name}` | {default} | {flags} | {variable} | {_cell(field.description or '')} |")
    return "\n".join(rows)


def _errors() -> str:
    import icrm.errors as errors

    tree = inspect.getdoc(errors) or ""
    block = re.search(r"```\n(.*?)```", tree, re.S)
    lines = ["```", block.group(1).rstrip() if block else "", "```", "",
             "| error | kind | meaning |", "| --- | --- | --- |"]
    for name in errors.__all__:
        cls = getattr(errors, name)
        if inspect.isclass(cls) and issubclass(cls, Exception):
            lines.append(f"| `{name}` | `{cls.kind}` | {_cell((inspect.getdoc(cls) or '').split(chr(10) + chr(10))[0])} |")
    return "\n".join(lines)


def _parse_reasons() -> str:
    import icrm.errors as errors

    source = inspect.getsource(errors)
    meanings = dict(re.findall(r"^# (\w+): (.+)$", source, re.M))
    lines = ["| reason | meaning |", "| --- | --- |"]
    lines += [f"| `{reason}` | {_cell(meanings.get(reason, ''))} |" for reason in errors.PARSE_REASONS]
    return "\n".join(lines)


def _policies() -> str:
    from icrm.rewards import POLICIES

    lines = ["| surface | fails the request / call when the judge could not answer | why |", "| --- | --- | --- |"]
    lines += [f"| `{name}` | {'any' if p.fail_when == 'any' else 'every'} judgement of it | {_cell(p.why)} |"
              for name, p in POLICIES.items()]
    return "\n".join(lines)
