"""How a command's flags are made and read: generated from the models that define them,
resolved flag > ``ICRM_<FIELD>`` variable > default, and the command line checked whole
before anything runs.

fire runs a command first and complains about the words it could not use afterwards;
`check_argv` refuses them before: an unknown command or flag, a positional argument too
many or missing, a flag without its value, a value that looks like a flag
(``--model_name -x``: write ``--model_name=-x`` if it is one), ``None`` for a flag that
cannot be None. What fire still refuses is one ``icrm: error:`` line (`one_line_errors`),
never its usage dump.
"""

from __future__ import annotations

import difflib
import inspect
import os
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from ..config import ICRMConfig, from_sources, option_default, option_surfaces
from ..errors import ConfigError

__all__ = ["command", "check_argv", "one_line_errors", "Default", "flag_kinds"]

_NUMBER = re.compile(r"^-?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


class Default:
    """A flag's default in a generated signature: shown as the value, and told apart
    from a value given on the command line."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __repr__(self) -> str:
        return repr(self.value)


def command(name: str, positional: Sequence[str], models: Sequence[type[BaseModel]], run: Callable[..., None],
            doc: str, surface: str | None = None, env_models: Sequence[type[BaseModel]] = (),
            environ: Callable[[Mapping[str, Any]], Mapping[str, str]] | None = None) -> Callable[..., None]:
    """A fire command: its `positional` arguments, a flag for every `ICRMConfig` field
    on its `surface` (default: `name`) and for every field of `models`; `run` gets the
    positional values, the resolved `ICRMConfig`, then one parsed instance per model.

    `ICRMConfig` fields (and the fields of `env_models`) not given as flags come from
    their ``ICRM_<FIELD>`` variables, then the surface's defaults (`from_sources`).
    `environ` gives the variables from the flags given (default: ``os.environ``; the
    service merges its ``--env_file`` under it).
    """
    surface = surface or name
    config_fields = [f for f in ICRMConfig.model_fields if surface in option_surfaces(f, ICRMConfig)]
    fields = [(f, ICRMConfig.model_fields[f], option_default(f, surface, ICRMConfig)) for f in config_fields]
    fields += [(f, field, field.default) for model in models for f, field in model.model_fields.items()
               if f not in config_fields]
    params = [inspect.Parameter(p, inspect.Parameter.POSITIONAL_OR_KEYWORD) for p in positional]
    params += [inspect.Parameter(f, inspect.Parameter.KEYWORD_ONLY, default=Default(d)) for f, _, d in fields]
    signature = inspect.Signature(params)
    kinds = {f: _kind(field.annotation, d) for f, field, d in fields}

    def run_command(*args: Any, **kwargs: Any) -> None:
        bound = signature.bind(*args, **kwargs)
        given = {k: v for k, v in bound.arguments.items() if k not in positional and not isinstance(v, Default)}
        variables = environ(given) if environ is not None else os.environ
        config = from_sources(ICRMConfig, {k: v for k, v in given.items() if k in config_fields}, variables, surface)
        parsed = [from_sources(model, {k: v for k, v in given.items() if k in model.model_fields}, variables,
                               env_fields=None if model in env_models else ()) for model in models]
        run(*(bound.arguments.get(p) for p in positional), config, *parsed)

    run_command.__signature__ = signature  # type: ignore[attr-defined]
    run_command.__name__ = run_command.__qualname__ = name
    run_command.__doc__ = f"{doc}\n\nFlags:\n" + "\n".join(
        f"  --{f}: {' '.join((field.description or '').split())}" + ("" if d in (None, "") else f" (default {d})")
        for f, field, d in fields)
    run_command.flag_kinds = kinds  # type: ignore[attr-defined]
    return run_command


def _kind(annotation: Any, default: Any) -> tuple[bool, bool]:
    """(boolean, may be None) of a flag, from its annotation and default."""
    text = str(annotation)
    return "bool" in text, default is None or "None" in text


def flag_kinds(function: Callable[..., Any]) -> dict[str, tuple[bool, bool]]:
    """(boolean, may be None) per flag: a generated command's, or a plain function's
    from its defaults."""
    kinds = getattr(function, "flag_kinds", None)
    if kinds is not None:
        return kinds
    out = {}
    for name, param in inspect.signature(function).parameters.items():
        default = None if param.default is inspect.Parameter.empty else param.default
        out[name] = (isinstance(default, bool) or "bool" in str(param.annotation), param.default is None)
    return out


def check_argv(argv: Sequence[str], commands: Mapping[str, Any], others: Sequence[str] = ()) -> None:
    """Refuse a command line fire would run and then reject (see the module docstring).

    Args:
        argv: the words after ``icrm``.
        commands: the command table.
        others: command names not in the table (loaded only when called).

    Raises:
        ConfigError: naming the word at fault and the fix.
    """
    if not argv or argv[0] in ("-h", "--help") or "--" in argv[:1]:
        return
    if argv[0] not in commands:
        names = [*commands, *(n for n in others if n not in commands)]
        raise ConfigError(f"unknown command {argv[0]!r}{_close(argv[0], names)}; commands: {', '.join(names)}")
    name, target, rest = argv[0], commands[argv[0]], list(argv[1:])
    if isinstance(target, Mapping):  # a group, e.g. `icrm eval rewardbench`
        if not rest or rest[0] in ("-h", "--help"):
            if not rest:
                raise ConfigError(f"'icrm {name}' needs one of: {', '.join(target)} (icrm {name} NAME ...)")
            return
        if rest[0] not in target:
            raise ConfigError(f"unknown {name} {rest[0]!r}{_close(rest[0], target)}; choose one of {', '.join(target)}")
        name, target, rest = f"{name} {rest[0]}", target[rest[0]], rest[1:]
    if any(token in ("-h", "--help") for token in rest):
        return
    parameters = inspect.signature(target).parameters
    kinds = flag_kinds(target)
    positional = [p for p in parameters.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    variadic = any(p.kind is p.VAR_POSITIONAL for p in parameters.values())
    given_positional: list[str] = []
    given_flags: set[str] = set()
    index = 0
    while index < len(rest):
        token = rest[index]
        if token == "--":  # fire's own flags follow
            break
        if token.startswith("--"):
            flag, eq, value = token[2:].partition("=")
            flag = flag.replace("-", "_")
            if flag not in parameters:
                if flag.startswith("no") and kinds.get(flag[2:], (False,))[0]:
                    index += 1
                    continue
                raise ConfigError(f"unknown flag --{flag} for 'icrm {name}'{_close(flag, parameters, '--')}; known "
                                  "flags: " + ", ".join(f"--{p}" for p in parameters))
            boolean, nullable = kinds.get(flag, (False, True))
            if not eq:
                following = rest[index + 1] if index + 1 < len(rest) else None
                if following is None or following.startswith("--"):
                    if not boolean:
                        raise ConfigError(f"--{flag} needs a value: --{flag} VALUE")
                    given_flags.add(flag)
                    index += 1
                    continue
                value = following
                index += 1
            if value.startswith("-") and not _NUMBER.match(value) and not eq:
                raise ConfigError(f"--{flag}: the value {value!r} looks like a flag; write --{flag}={value} if it is "
                                  "the value")
            if value.strip().lower() == "none" and not nullable:
                raise ConfigError(f"--{flag} cannot be None: give a value, or leave the flag out for its default")
            given_flags.add(flag)
        elif token.startswith("-") and not _NUMBER.match(token):
            raise ConfigError(f"unknown flag {token} for 'icrm {name}': flags start with --")
        else:
            given_positional.append(token)
        index += 1
    open_slots = [p for p in positional if p.name not in given_flags]
    if len(given_positional) > len(open_slots) and not variadic:
        extra = given_positional[len(open_slots)]
        raise ConfigError(f"unexpected argument {extra!r} for 'icrm {name}' (it takes "
                          f"{' '.join(p.name.upper() for p in positional) or 'no argument'} and --flags)")
    missing = [p.name for p in open_slots[len(given_positional):] if p.default is inspect.Parameter.empty]
    if missing:
        raise ConfigError(f"'icrm {name}' needs {' '.join(m.upper() for m in missing)}: icrm {name} "
                          f"{' '.join(p.name.upper() for p in positional)} [--flags]")


def _close(word: str, choices: Any, prefix: str = "") -> str:
    found = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {prefix}{found[0]}?)" if found else ""


def one_line_errors() -> None:
    """Make fire's own refusals one `ConfigError` line instead of its usage dump (its
    help, asked for with ``--help``, is still shown)."""
    import fire.core

    shown = fire.core._DisplayError  # noqa: SLF001 - the only hook fire offers

    def display(trace: Any) -> None:
        if any(flag in trace.elements[-1].args for flag in ("-h", "--help")):
            shown(trace)
            return
        raise ConfigError(trace.elements[-1].ErrorAsStr().splitlines()[0] + ": see icrm --help")

    if getattr(shown, "__name__", "") != "display":
        fire.core._DisplayError = display  # noqa: SLF001
