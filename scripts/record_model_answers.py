"""Record the embedded model's raw answers as parser fixtures (tests/unit/recorded/).

Usage: python scripts/record_model_answers.py [OUT_DIR]

Four answers to examples/: completion mode without constraints (the model runs on),
chat mode with the JSON schema (individual and pairwise), and chat mode without it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from icrm import ICRM
from icrm.engines import GenerationRequest

ROOT = Path(__file__).resolve().parent.parent


def main(out_dir: str = str(ROOT / "tests" / "unit" / "recorded")) -> None:
    out = Path(out_dir)
    individual = json.loads((ROOT / "examples" / "test_individual.json").read_text())
    pairwise = json.loads((ROOT / "examples" / "test_pairwise.json").read_text())
    with ICRM(completion=True) as icrm:
        (out / "completion_individual_runon.txt").write_text(icrm.rm(**individual, max_tokens=400, stop=[]))
    with ICRM() as icrm:
        (out / "chat_individual_constrained.txt").write_text(icrm.rm(**individual))
        prompt = icrm.render_prompt(**individual)
        request = GenerationRequest(messages=[{"role": "user", "content": prompt}], kwargs={"temperature": 0.0, "max_tokens": 300})
        (out / "chat_unconstrained_prose.txt").write_text(icrm.run_sync(icrm.engine.generate(request)).text)
    with ICRM(rm_type="pairwise") as icrm:
        (out / "chat_pairwise_constrained.txt").write_text(icrm.rm(**pairwise))


if __name__ == "__main__":
    main(*sys.argv[1:])
