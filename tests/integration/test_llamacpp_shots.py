"""``max_shot_tokens`` against a real llama.cpp server with the embedded model: shots are
counted by the server's own tokenizer (its ``/extras/tokenize/count`` route), which
agrees with the model's vocabulary, and the shots shown are the longest head that fits."""

import pytest

from icrm import ICRM
from icrm.engines.local import _count_prompt_tokens, embedded_model_path

pytestmark = pytest.mark.llamacpp

TEXTS = ["", "Hello, world!", "naïve café — 日本語のテキスト 🙂", "## Example 1\n\nQuery:\nWhat is 2+2?\n" * 20]


def turns(prompt, answer):
    return [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]


def test_the_servers_tokenizer_counts_shots_and_the_budget_keeps_what_fits(tmp_path):
    import json

    shots = [{"id": f"s{i}", "conversation": turns(f"Question {i}: " + "why " * (5 + 7 * i), f"Answer {i}."),
              "feedback": {"score": 3 + i}} for i in range(4)]
    pool = tmp_path / "pool.jsonl"
    pool.write_text("".join(json.dumps(s) + "\n" for s in shots))
    with ICRM(method="verdict", shots_pool_path=pool, num_shots=4) as unlimited:
        counted = [unlimited._sync(unlimited.engine.count_tokens(t)) for t in TEXTS]
        assert counted == [_count_prompt_tokens(str(embedded_model_path()), t) for t in TEXTS]
        builder = unlimited.builder(unlimited.method)
        sizes = [unlimited._sync(unlimited.engine.count_tokens(builder.shot_text(s)))
                 for s in unlimited.shots_pool.shots]
        address = (str(unlimited.engine.clients[0].base_url).rstrip("/"),)
        for budget, shown in ((sizes[0] + sizes[1], 2), (sizes[0] + sizes[1] - 1, 1), (sum(sizes), 4), (1, 0)):
            config = unlimited.config.updated(max_shot_tokens=budget, worker_addrs=address)
            with ICRM.from_config(config) as judge:
                feedback = judge.judge_item({"conversation": turns("What is 2+2?", "4")})
            assert feedback.shot_ids == [f"s{i}" for i in range(shown)], (budget, sizes)
            assert feedback.ok or feedback.parse_error_reason  # a verdict, or a reasoned parse error
