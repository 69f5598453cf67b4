"""How ``icrm serve`` is configured: `ServiceOptions`, and the merge of flags, ``ICRM_*``
variables and an env file into them and into an `ICRMConfig`.

Precedence: a flag beats the environment, which beats the ``--env_file``, which beats
the default. Every `ICRMConfig` field on the ``env`` surface is an ``ICRM_<FIELD>``
variable here; so is every field of `ServiceOptions` (``ICRM_PORT``,
``ICRM_API_KEY`` — the service's own bearer key, never a provider key).
"""

from __future__ import annotations

import os
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..config import ICRMConfig, config_error, env_name, option_surfaces
from ..errors import ConfigError

__all__ = ["ServiceOptions", "resolve_serve_options", "DEFAULT_MAX_QUEUE"]

# OpenRLHF >= 0.11 sends one sample per request, as many at once as it has rollouts in
# flight, and gives up on a sample after 5 tries 1 s apart. Waiting in the queue costs
# nothing but memory, so the default holds a trainer's whole rollout wave; size it to
# the trainer's concurrent samples (README, "OpenRLHF").
DEFAULT_MAX_QUEUE = 1024


class ServiceOptions(BaseModel):
    """How the service runs (the judge itself is an `ICRMConfig`). Every field is also
    an ``icrm serve`` flag and an ``ICRM_<FIELD>`` variable."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    host: str = "127.0.0.1"
    """Address to bind (loopback unless told otherwise)."""
    port: int = Field(3000, ge=0, le=65535)
    """Port to bind (0 = any free port)."""
    api_key: str | None = Field(None, repr=False)
    """When set, every request but ``GET /health`` (the docs included) needs
    ``Authorization: Bearer <key>``."""
    max_concurrency: int = Field(8, ge=1)
    """Judgements running at once (a ``/v1/reward`` batch counts each item)."""
    max_queue: int = Field(DEFAULT_MAX_QUEUE, ge=0)
    """Judgements allowed to wait for a slot; beyond it a request is refused with 503 +
    Retry-After before any work."""
    max_body_mb: float = Field(8.0, gt=0, allow_inf_nan=False)
    """Largest request body in MiB (413 beyond, declared or streamed)."""
    request_timeout_s: float = Field(600.0, gt=0, allow_inf_nan=False)
    """Seconds a request may take (504 beyond)."""
    failure_reward: float = Field(0.0, allow_inf_nan=False)
    """``/get_reward``: the reward of a sample whose answer held no verdict (it is
    flagged in ``extra_logs.icrm_failed``)."""
    env_file: str | None = None
    """A file of ``ICRM_<FLAG>=value`` lines (below the environment in precedence)."""


def resolve_serve_options(flags: dict[str, Any]) -> tuple[ICRMConfig, ServiceOptions]:
    """Merge flags (None = not given) over ``ICRM_*`` variables over the env file.

    Returns:
        The judge's `ICRMConfig` and the `ServiceOptions`.

    Raises:
        ConfigError: an unreadable env file, or a bad value, naming its flag and
            variable (``num_shots (flag --num_shots or ICRM_NUM_SHOTS) must be ...``).
    """
    from dotenv import dotenv_values

    env_file = flags.get("env_file") or os.environ.get(env_name("env_file")) or None
    file_values: dict[str, Any] = {}
    if env_file is not None:
        if not os.path.isfile(env_file):
            raise ConfigError(f"env file {env_file}: no such file")
        file_values = {k: v for k, v in dotenv_values(env_file).items() if v is not None}
    environment = {**file_values, **os.environ}

    def value_of(name: str) -> Any:
        if flags.get(name) is not None:
            return flags[name]
        value = environment.get(env_name(name))
        return None if value in (None, "") else value

    config_names = [n for n in ICRMConfig.model_fields if "env" in option_surfaces(n) or "serve" in option_surfaces(n)]
    icrm_values = {n: v for n in config_names if (v := value_of(n)) is not None}
    service_values = {n: v for n in ServiceOptions.model_fields if (v := value_of(n)) is not None}
    service_values["env_file"] = env_file
    try:
        config = ICRMConfig(**icrm_values)
        options = ServiceOptions(**service_values)
    except ValidationError as e:
        name = str(e.errors()[0]["loc"][0])
        raise config_error(e, f" (flag --{name} or {env_name(name)})") from None
    except ConfigError as e:  # a boolean that is not one, named by its field
        raise ConfigError(f"{e} (flag or {env_name(str(e).split()[0])})") from None
    return config, options
