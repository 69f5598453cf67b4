"""What a Ray actor reserves: an actor that calls endpoints waits on HTTP and reserves no
CPU (reserving one each left none for reading the input on a 2-CPU cluster, and Ray Data
waited forever); one that launches its own worker reserves one."""

import pytest

from icrm.config import ICRMConfig
from icrm.errors import ConfigError
from icrm.integrations.ray import RayBackend


@pytest.mark.parametrize("fields, cpus, launches", [
    ({"engine": "mock", "base_url": "http://127.0.0.1:9/v1"}, 0.0, False),
    ({"engine": "vllm", "model_name": "m", "worker_addrs": ["http://10.0.0.1:8000/v1"]}, 0.0, False),
    ({}, 1.0, True),  # the embedded model: each actor starts a llama.cpp worker
    ({"engine": "vllm", "model_name": "m"}, 1.0, True),
])
def test_actors_reserve_a_cpu_only_for_their_own_worker(fields, cpus, launches):
    backend = RayBackend(ICRMConfig.build(**fields))
    assert backend.launches_workers is launches and backend.actor_cpus == cpus
    assert RayBackend(ICRMConfig.build(**fields), cpus_per_actor=0.5).actor_cpus == 0.5


@pytest.mark.parametrize("field, value", [("num_actors", 0), ("concurrency", True), ("gpus_per_actor", -1),
                                          ("cpus_per_actor", "two")])
def test_bad_backend_settings_name_the_field(field, value):
    with pytest.raises(ConfigError, match=field):
        RayBackend(ICRMConfig.build(), **{field: value})


def test_an_address_nobody_answers_is_a_clear_error_at_once():
    pytest.importorskip("ray")
    from icrm.engines.worker import free_port

    backend = RayBackend(ICRMConfig.build(engine="mock", base_url="http://127.0.0.1:9/v1"),
                         address=f"127.0.0.1:{free_port()}")
    with pytest.raises(ConfigError, match="no Ray cluster answers at --ray_address 127.0.0.1:"):
        backend.connect()
