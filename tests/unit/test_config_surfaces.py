"""Every `ICRMConfig` option is defined once and reaches every surface it names with the
same default: a flag of `icrm test` / `score` / `eval` / `serve`, and an ``ICRM_*``
variable of every command (flag > variable > the command's default > the field's)."""

import inspect

import pytest

from icrm.cli import COMMANDS, GenerationFlags, command_options, commands
from icrm.cli.flags import command
from icrm.config import ICRMConfig, env_name, option_default, option_surfaces
from icrm.service import ServiceOptions, resolve_serve_options

FLAG_COMMANDS = {"test": COMMANDS["test"], "score": COMMANDS["score"], "eval": COMMANDS["eval"]["rewardbench"]}


@pytest.mark.parametrize("name", list(ICRMConfig.model_fields))
def test_each_option_is_a_flag_where_its_surfaces_say_with_the_same_default(name):
    for surface, function in FLAG_COMMANDS.items():
        params = command_options(function)
        if surface in option_surfaces(name):
            assert name in params, f"--{name} missing from icrm {surface}"
            assert params[name] == option_default(name, surface), f"icrm {surface} --{name}"
        else:
            assert name not in params, f"--{name} on icrm {surface} but not on its surfaces"


def sample_value(name):
    """A valid value of option `name`, as an environment variable would hold it, other
    than its default."""
    field = ICRMConfig.model_fields[name]
    choices = {"rm_type": "pairwise", "method": "verdict", "engine": "mock", "position": "both",
               "shot_sampling_mode": "random", "shot_order": "shuffled", "group_strategy": "circular", "inconsistent_pairs": "abstain"}
    if name in choices:
        return choices[name]
    if isinstance(field.default, bool) or name in ("completion", "constrain_output"):
        return "false" if field.default else "true"
    if isinstance(field.default, (int, float)) or name in ("max_retries", "max_criteria", "max_shot_tokens"):
        return "7"
    return "judge-x"


def resolved(surface, monkeypatch, env, **flags):
    """The `ICRMConfig` a generated command of `surface` resolves from `flags` and `env`."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    seen = []
    function = command(surface, (), (GenerationFlags,), lambda config, _: seen.append(config), "doc",
                       surface=surface)
    function(**flags)
    return seen[0]


@pytest.mark.parametrize("surface", ["test", "score", "eval"])
@pytest.mark.parametrize("name", [n for n in ICRMConfig.model_fields if "env" in option_surfaces(n)])
def test_each_option_is_a_variable_of_every_command_below_its_flag(name, surface, monkeypatch):
    sample = sample_value(name)
    expected = getattr(ICRMConfig.build(**{name: sample}), name)
    assert getattr(resolved(surface, monkeypatch, {env_name(name): sample}), name) == expected
    if surface in option_surfaces(name):  # the flag beats the variable
        flag_value = getattr(resolved(surface, monkeypatch, {env_name(name): sample},
                                      **{name: option_default(name, surface)}), name)
        assert flag_value == getattr(ICRMConfig.build(**{name: option_default(name, surface)}), name)


def test_nothing_given_is_the_commands_own_default(monkeypatch):
    assert resolved("eval", monkeypatch, {}).rm_type == "pairwise"  # eval's own default
    assert resolved("eval", monkeypatch, {"ICRM_RM_TYPE": "individual"}).rm_type == "individual"
    assert resolved("test", monkeypatch, {}).rm_type == "individual"


@pytest.mark.parametrize("name", list(ICRMConfig.model_fields))
def test_each_option_is_a_serve_flag_and_a_variable_where_its_surfaces_say(name, monkeypatch):
    serve = inspect.signature(commands(serve=True)["serve"]).parameters
    if name not in ServiceOptions.model_fields:  # api_key on serve is the old name of the bearer key
        assert (name in serve) == ("serve" in option_surfaces(name))
    default = ICRMConfig.model_fields[name].default
    config, _ = resolve_serve_options({})
    assert getattr(config, name) == default  # nothing given: the one default
    if "env" in option_surfaces(name):
        sample = sample_value(name)
        monkeypatch.setenv(env_name(name), sample)
        config, _ = resolve_serve_options({})
        assert getattr(config, name) == getattr(ICRMConfig.build(**{name: sample}), name) != default


def test_the_services_key_has_its_own_name_and_the_old_one_still_works(monkeypatch, caplog):
    _, options = resolve_serve_options({"bearer_key": "k1"})
    assert options.bearer_key == "k1"
    monkeypatch.setenv("ICRM_API_KEY", "old")
    _, options = resolve_serve_options({})
    assert options.bearer_key == "old" and "old name" in caplog.text
    assert "api_key" not in [n for n in ICRMConfig.model_fields if "env" in option_surfaces(n)]  # vendor variables


def test_adding_an_option_needs_no_other_edit(monkeypatch):
    # A field added to the config appears as a flag and a variable with nothing else changed.
    from pydantic import Field, create_model

    import icrm.cli.flags as flags
    import icrm.config as config_module

    extended = create_model("Extended", __base__=ICRMConfig,
                            judge_note=(str, Field("none", json_schema_extra={"surfaces": ["test", "serve", "env"]})))
    monkeypatch.setattr(flags, "ICRMConfig", extended)
    monkeypatch.setattr(config_module, "ICRMConfig", extended)
    seen = []
    function = flags.command("test", ("file",), (GenerationFlags,), lambda f, config, _: seen.append(config), "doc")
    assert command_options(function)["judge_note"] == "none"
    monkeypatch.setenv("ICRM_JUDGE_NOTE", "from the environment")
    function("x.json")
    assert seen[0].judge_note == "from the environment"
