"""The reward service (``icrm serve``): rewards over HTTP for pipelines and RL trainers.

`create_app` builds the FastAPI app (`icrm.service.app`); `serve` runs it. The request
bodies are in `icrm.service.contracts`, admission and the body cap in
`icrm.service.limits`, the options in `icrm.service.options`.
"""

from __future__ import annotations

import errno
import socket

from ..config import ICRMConfig
from ..errors import ConfigError
from ..integrations.openrlhf import split_query
from .app import create_app, score_to_reward
from .options import ServiceOptions, resolve_serve_options, service_environ

__all__ = ["create_app", "serve", "score_to_reward", "split_query", "ServiceOptions", "resolve_serve_options", "service_environ"]

GRACEFUL_SHUTDOWN_S = 30


def serve(config: ICRMConfig, options: ServiceOptions) -> None:
    """Run the service in the foreground until Ctrl-C / SIGTERM; in-flight requests
    finish (up to 30 s) before the workers stop.

    The port is bound before the judge starts, so a port in use costs no worker launch.

    Raises:
        ConfigError: the address cannot be bound (in use, not local, no permission).
        EngineError: the judge could not start.
    """
    import uvicorn

    from ..reward_model import ICRM

    sock = _bind(options.host, options.port)
    try:
        icrm = ICRM.from_config(config)  # before uvicorn: a bad config is one clean error
    except BaseException:
        sock.close()
        raise
    app = create_app(lambda: icrm, options)
    server = uvicorn.Server(uvicorn.Config(app, log_level="info", timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S))
    server.run(sockets=[sock])


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        reason = "is in use: pass another --port" if e.errno == errno.EADDRINUSE else f"cannot be bound ({e.strerror})"
        raise ConfigError(f"{host}:{port} {reason}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock
