"""How ``icrm serve`` is configured: `ServiceOptions`, and the merge of flags, ``ICRM_*``
variables and an env file into them and into an `ICRMConfig`.

Precedence: a flag beats the environment, which beats the ``--env_file``, which beats
the default. Every `ICRMConfig` field on the ``env`` surface is an ``ICRM_<FIELD>``
variable here; so is every field of `ServiceOptions` (``ICRM_PORT``,
``ICRM_BEARER_KEY`` — the service's own bearer key, never a provider key).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..batch import DEFAULT_CONCURRENCY
from ..config import MAX_SECONDS, ICRMConfig, env_name, from_sources
from ..engines.base import DEFAULT_TIMEOUT_S
from ..errors import ConfigError

__all__ = ["ServiceOptions", "resolve_serve_options", "service_environ", "DEFAULT_MAX_QUEUE", "MAX_CONCURRENCY"]

logger = logging.getLogger(__name__)
MAX_CONCURRENCY = 4_096

# OpenRLHF >= 0.11 sends one sample per request, as many at once as it has rollouts in
# flight, and gives up on a sample after 5 tries 1 s apart. Waiting in the queue costs
# nothing but memory, so the default holds a trainer's whole rollout wave; size it to
# the trainer's concurrent samples (docs: Reward service, "OpenRLHF").
DEFAULT_MAX_QUEUE = 1024


class ServiceOptions(BaseModel):
    """How the service runs (the judge itself is an `ICRMConfig`). Every field is also
    an ``icrm serve`` flag and an ``ICRM_<FIELD>`` variable."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    host: str = "127.0.0.1"
    """Address to bind (loopback unless told otherwise)."""
    port: int = Field(3000, ge=0, le=65535)
    """Port to bind (0 = any free port)."""
    bearer_key: str | None = Field(None, repr=False)
    """The service's own key: when set, every request but ``GET /health`` (the docs
    included) needs ``Authorization: Bearer <key>``. Never a provider's key."""
    api_key: str | None = Field(None, repr=False)
    """Deprecated name of `bearer_key` (``--api_key`` / ``ICRM_API_KEY``), read when
    `bearer_key` is not set."""
    max_concurrency: int = Field(DEFAULT_CONCURRENCY, ge=1, le=MAX_CONCURRENCY)
    """Judgements running at once (a ``/v1/reward`` batch counts each item)."""
    max_queue: int = Field(DEFAULT_MAX_QUEUE, ge=0, le=1_000_000)
    """Judgements allowed to wait for a slot; beyond it a request is refused with 503 +
    Retry-After before any work."""
    max_body_mb: float = Field(8.0, gt=0, le=1024, allow_inf_nan=False)
    """Largest request body in MiB (413 beyond, declared or streamed)."""
    request_timeout_s: float = Field(DEFAULT_TIMEOUT_S, gt=0, le=MAX_SECONDS, allow_inf_nan=False)
    """Seconds a request may take (504 beyond)."""
    failure_reward: float = Field(0.0, allow_inf_nan=False)
    """``/get_reward`` and ``/slime/reward``: the reward of a sample whose answer held no
    verdict (flagged as ``icrm_failed``)."""
    unjudged: Literal["failure_reward", "fail"] = "failure_reward"
    """``/get_reward`` and ``/slime/reward``, a sample whose answer held no verdict:
    ``failure_reward`` (flagged), or ``fail`` the request (502) — the two choices those
    contracts allow, as neither can skip one sample."""
    env_file: str | None = None
    """A file of ``ICRM_<FLAG>=value`` lines (below the environment in precedence)."""

    @model_validator(mode="after")
    def _old_key_name(self) -> ServiceOptions:
        if self.api_key is not None and self.bearer_key is None:
            logger.warning("--api_key / ICRM_API_KEY is the old name of the service's bearer key: use --bearer_key / "
                           "ICRM_BEARER_KEY")
            object.__setattr__(self, "bearer_key", self.api_key)
        return self


def service_environ(flags: Mapping[str, Any]) -> dict[str, str]:
    """The variables the service reads: ``os.environ`` over the ``--env_file`` (the
    flag's, else ``ICRM_ENV_FILE``'s).

    Raises:
        ConfigError: an env file that does not exist.
    """
    from dotenv import dotenv_values

    env_file = flags.get("env_file") or os.environ.get(env_name("env_file")) or None
    file_values: dict[str, str] = {}
    if env_file is not None:
        if not os.path.isfile(env_file):
            raise ConfigError(f"env file {env_file}: no such file")
        file_values = {k: v for k, v in dotenv_values(env_file).items() if v is not None}
    return {**file_values, **os.environ}


def resolve_serve_options(flags: Mapping[str, Any]) -> tuple[ICRMConfig, ServiceOptions]:
    """The judge's `ICRMConfig` and the `ServiceOptions` from flags (None = not given),
    then ``ICRM_*`` variables, then the env file, then the defaults.

    Raises:
        ConfigError: an unreadable env file, or a bad value, naming its flag and
            variable (``num_shots (flag --num_shots or ICRM_NUM_SHOTS) must be ...``).
    """
    given = {k: v for k, v in flags.items() if v is not None}
    environ = service_environ(given)
    config_flags = {k: v for k, v in given.items() if k in ICRMConfig.model_fields and k not in ServiceOptions.model_fields}
    return (from_sources(ICRMConfig, config_flags, environ, "serve"),
            from_sources(ServiceOptions, {k: v for k, v in given.items() if k in ServiceOptions.model_fields}, environ))
