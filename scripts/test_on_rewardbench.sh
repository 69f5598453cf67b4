#!/usr/bin/env bash
# RewardBench with an in-context reward model, as the original IC-RM's script ran it.
# Usage: bash scripts/test_on_rewardbench.sh [MODEL_NAME] [ENGINE] [extra flags...]
# With no MODEL_NAME the embedded SmolLM2-135M runs on CPU on the shared LLMBar data
# (near chance: it proves the pipeline); with one, the official hub split is used.
set -euo pipefail
cd "$(dirname "$0")/.."
model_name="${1:-}"
engine="${2:-}"
shift $(( $# > 2 ? 2 : $# ))
if [ -z "$model_name" ]; then
    source_flags=(--data ../shared/data/pairwise/llmbar.jsonl)
    model_flags=()
else
    source_flags=(--dataset allenai/reward-bench --split filtered)
    model_flags=(--model_name "$model_name" ${engine:+--engine "$engine"})
fi
for rm_type in pairwise individual; do
    python scripts/test_on_rewardbench.py "${source_flags[@]}" "${model_flags[@]}" \
        --rm_type "$rm_type" --num_shots 3 --shot_sampling_mode fixed --seed 42 \
        --results_dir results/rewardbench "$@"
done
