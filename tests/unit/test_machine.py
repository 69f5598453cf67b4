"""The vLLM CPU worker's dtype follows the CPU's flags (given here, not read from the
test machine): bfloat16 only with native bf16, float32 otherwise; worker_args win."""

import pytest

from icrm.engines.machine import cpu_flags, vllm_cpu_tuning

AVX2_EPYC = "fpu vme de pse tsc msr sse sse2 ssse3 fma cx16 sse4_1 sse4_2 movbe popcnt aes xsave avx f16c rdrand avx2 bmi2"
SAPPHIRE_RAPIDS = AVX2_EPYC + " avx512f avx512dq avx512_bf16 amx_bf16 amx_tile amx_int8"
ZEN4 = AVX2_EPYC + " avx512f avx512bw avx512_bf16"


@pytest.mark.parametrize("flags, dtype", [(AVX2_EPYC, "float32"), (SAPPHIRE_RAPIDS, "bfloat16"), (ZEN4, "bfloat16"),
                                          ("", "float32")])
def test_the_dtype_follows_the_cpus_flags(flags, dtype, tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n\nprocessor\t: 1\nflags\t\t: {flags}\n")
    tuning = vllm_cpu_tuning(cpu_flags(str(cpuinfo)))
    assert tuning.dtype == dtype and tuning.args == ("--enforce-eager", "--dtype", dtype, "--block-size", "32")
    assert ("no native bf16" in tuning.reason) == (dtype == "float32")


def test_worker_args_override_the_choice():
    assert vllm_cpu_tuning(AVX2_EPYC.split(), ["--dtype=bfloat16"]).dtype == "bfloat16"
    tuning = vllm_cpu_tuning(SAPPHIRE_RAPIDS.split(), ["--max-model-len", "4096", "--dtype", "float16"])
    assert tuning.dtype == "float16" and "--dtype" not in tuning.args
    tuning = vllm_cpu_tuning(AVX2_EPYC.split(), ["--block-size=128"])
    assert tuning.block_size == "128" and "--block-size" not in tuning.args and tuning.dtype == "float32"


def test_the_choice_is_in_the_runs_provenance(monkeypatch):
    from icrm.config import ICRMConfig
    from icrm.engines import machine
    from icrm.provenance import run_fields

    monkeypatch.setattr(machine, "vllm_is_cpu_build", lambda: True)
    monkeypatch.setattr(machine, "cpu_flags", lambda *a: frozenset(AVX2_EPYC.split()))
    fields = run_fields(ICRMConfig.build(engine="vllm", model_name="m"))
    assert fields["worker"]["dtype"] == "float32"
    assert run_fields(ICRMConfig.build(engine="vllm", model_name="m", base_url="http://x:1/v1"))["worker"] is None
