"""Every `ICRMConfig` option is defined once and shows on every surface it names, with
the same default: a flag of `icrm test` / `score` / `eval` / `serve`, and an ``ICRM_*``
variable of the reward service."""

import inspect
import typing

import pytest

from icrm.cli import COMMANDS, _commands
from icrm.config import ICRMConfig, env_name, option_default, option_surfaces
from icrm.service import ServiceOptions, resolve_serve_options

FLAG_COMMANDS = {"test": COMMANDS["test"], "score": COMMANDS["score"], "eval": COMMANDS["eval"]["rewardbench"]}


@pytest.mark.parametrize("name", list(ICRMConfig.model_fields))
def test_each_option_is_a_flag_where_its_surfaces_say_with_the_same_default(name):
    for surface, command in FLAG_COMMANDS.items():
        params = inspect.signature(command).parameters
        if surface in option_surfaces(name):
            assert name in params, f"--{name} missing from icrm {surface}"
            assert params[name].default == option_default(name, surface), f"icrm {surface} --{name}"
        else:
            assert name not in params, f"--{name} on icrm {surface} but not on its surfaces"


@pytest.mark.parametrize("name", list(ICRMConfig.model_fields))
def test_each_option_is_a_serve_flag_and_a_variable_where_its_surfaces_say(name, monkeypatch):
    serve = inspect.signature(_commands()["serve"]).parameters
    if name not in ServiceOptions.model_fields:  # api_key: the service's own bearer key is a flag of its own
        assert (name in serve) == ("serve" in option_surfaces(name))
    default = ICRMConfig.model_fields[name].default
    config, _ = resolve_serve_options({})
    assert getattr(config, name) == default  # nothing given: the one default
    if "env" in option_surfaces(name):
        sample = sample_value(name)
        monkeypatch.setenv(env_name(name), sample)
        config, _ = resolve_serve_options({})
        assert getattr(config, name) == getattr(ICRMConfig.build(**{name: sample}), name) != default


def sample_value(name):
    """A valid value of option `name`, as an environment variable would hold it, other
    than its default."""
    field = ICRMConfig.model_fields[name]
    literal = [a for a in typing.get_args(field.annotation) if isinstance(a, str)]
    if literal:
        return next(a for a in reversed(literal) if a != field.default)
    if isinstance(field.default, bool) or name in ("completion", "constrain_output"):
        return "false" if field.default else "true"
    if isinstance(field.default, (int, float)) or name == "max_retries":
        return "7"
    return "judge-x"


def test_adding_an_option_needs_no_other_edit(monkeypatch):
    # A field added to the config appears as a flag and a variable with nothing else changed.
    from pydantic import Field, create_model

    import icrm.cli as cli

    extended = create_model("Extended", __base__=ICRMConfig,
                            judge_note=(str, Field("none", json_schema_extra={"surfaces": ["test", "serve", "env"]})))
    monkeypatch.setattr(cli, "ICRMConfig", extended)
    import icrm.config as config_module
    monkeypatch.setattr(config_module, "ICRMConfig", extended)
    command = cli._command("test", ("file",), (cli.GenerationFlags,), lambda *a: None, "doc")
    assert inspect.signature(command).parameters["judge_note"].default == "none"
