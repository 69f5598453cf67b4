"""What the trainer hooks share.

`shared_judge`: one judge per process for the hooks a framework loads by name (verl's
``compute_score``, slime's ``--custom-rm-path``, AReaL's process pool): the `ICRM` of a
configuration, started on first use, shared by every call with the same settings,
closed at exit. A forked worker starts its own (the parent's loop and clients do not
survive a fork). `prompt_response_turns`: a framework's prompt and response as a
conversation."""

from __future__ import annotations

import atexit
import os
import threading
from typing import Any

from ..config import ICRMConfig
from ..trajectory import judgeable_turns
from .openrlhf import split_query

__all__ = ["shared_judge", "prompt_response_turns"]

_SHARED: dict[tuple[int, str], Any] = {}
_LOCK = threading.Lock()


def shared_judge(config: ICRMConfig) -> Any:
    """The process's `icrm.ICRM` for `config`."""
    key = (os.getpid(), config.model_dump_json())
    with _LOCK:
        if key not in _SHARED:
            from ..reward_model import ICRM

            _SHARED[key] = icrm = ICRM.from_config(config)
            atexit.register(icrm.close)
        return _SHARED[key]


def prompt_response_turns(prompt: Any, response: Any, where: str = "sample") -> list[dict[str, Any]]:
    """A sample's prompt and response as a conversation: a prompt rendered by a chat
    template is split into its turns (`icrm.integrations.openrlhf.split_query`), plain
    text is the user's turn, chat messages are taken as they are.

    Raises:
        InputError: a prompt or response of another shape, naming `where`.
    """
    if isinstance(prompt, str) and isinstance(response, str) and prompt:
        return split_query(prompt + response, prompt)
    return judgeable_turns(prompt, response, where)
