"""The shipped GPT: it loads offline as float32 in eval mode, is the model results.json describes, reproduces its
recorded held-out perplexity (recomputed here from its logits, independently of `course_lib.train.evaluate`), and
the README's example generates text from a prompt in one call."""
from __future__ import annotations

import json
import math
import re
import socket
import textwrap

import pytest
import torch
import torch.nn.functional as F

from course_lib import GPTLMHeadModel, generate, load_gpt_tokenizer, load_pretrained_gpt
from course_lib.checkpoint import SHIPPED_GPT, read_checkpoint_info
from course_lib.data import heldout_lm_batches
from course_lib.finetune import RESULTS_JSON
from course_lib.pretrain import GPT_SUBSET_WINDOWS
from course_lib.train import evaluate
from notebook_utils import REPO


@pytest.fixture(scope="module")
def recorded():
    return json.loads(RESULTS_JSON.read_text())["gpt"]


@pytest.fixture(scope="module")
def model():
    return load_pretrained_gpt()


def test_loads_offline_as_float32_in_eval_mode(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("the network was used")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    model = load_pretrained_gpt()
    assert isinstance(model, GPTLMHeadModel) and not model.training
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert model.config.vocab_size == len(load_gpt_tokenizer())
    assert (SHIPPED_GPT / "model.safetensors").stat().st_size <= 25 * 10**6
    assert not list(SHIPPED_GPT.glob("*.bin")) and not list(SHIPPED_GPT.glob("*.pt"))


def test_results_describe_the_shipped_weights(recorded):
    info = read_checkpoint_info(SHIPPED_GPT)["metadata"]
    assert (info["steps"], info["heldout"]) == (recorded["steps"], recorded["heldout"]), \
        "results.json describes another GPT than the shipped one: rerun tools/export_gpt.py"
    history = json.loads((SHIPPED_GPT / "history.json").read_text())
    assert history[-1]["step"] == info["steps"] and any("eval_perplexity" in row for row in history)


def test_reproduces_its_recorded_heldout_perplexity(model, recorded):
    """Float32 on a CPU; what may differ between machines is only the order of the sums inside matrix products
    (BLAS kernels, thread counts), a relative 1e-6 or so on each logit: 1e-3 on the mean loss is far above that
    and far below any real change of the weights or the data (one training step moves it by more)."""
    subset = recorded["heldout_subset"]
    assert subset["windows"] == GPT_SUBSET_WINDOWS
    batches = heldout_lm_batches(block_size=recorded["block_size"], max_windows=subset["windows"])
    assert sum(len(b["input_ids"]) for b in batches) == subset["windows"]
    # The oracle: the mean cross-entropy of every next token, from the logits.
    total, count = 0.0, 0
    with torch.no_grad():
        for batch in batches:
            logits = model(batch["input_ids"]).logits[:, :-1]
            targets = batch["input_ids"][:, 1:]
            total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="sum").item()
            count += targets.numel()
    assert total / count == pytest.approx(subset["loss"], abs=1e-3)
    assert math.exp(total / count) == pytest.approx(subset["perplexity"], rel=1e-3)
    metrics = evaluate(model, batches)
    assert metrics["loss"] == pytest.approx(total / count, abs=1e-5)
    assert metrics["perplexity"] == pytest.approx(math.exp(total / count), rel=1e-5)


def test_learned_more_than_token_frequencies(recorded):
    # the unigram model is what a GPT that only learned how often each token occurs would score
    assert recorded["heldout"]["perplexity"] < recorded["baselines"]["unigram_add_one"]


def test_generates_text_from_a_prompt_in_one_call(model):
    tok = load_gpt_tokenizer()
    prompt = torch.tensor([tok.encode("The history of the city")])
    greedy = generate(model, prompt, max_new_tokens=20)
    assert greedy.shape == (1, prompt.shape[1] + 20) and torch.equal(greedy[:, :prompt.shape[1]], prompt)
    assert torch.equal(generate(model, prompt, max_new_tokens=20), greedy), "greedy decoding is deterministic"
    sampled = [generate(model, prompt, max_new_tokens=20, do_sample=True, top_p=0.9,
                        generator=torch.Generator().manual_seed(0)) for _ in range(2)]
    assert torch.equal(*sampled), "the same seed must give the same sample"
    text = tok.decode(greedy[0])
    assert text.startswith("The history of the city") and len(text) > len("The history of the city") + 20


def test_the_readme_example_runs():
    readme = (REPO / "README.md").read_text()
    blocks = [b for b in re.findall(r"```python\n(.*?)```", readme, flags=re.S) if "load_pretrained_gpt" in b]
    assert len(blocks) == 1, "README.md should have one Python example of the shipped GPT"
    namespace: dict = {}
    exec(compile(textwrap.dedent(blocks[0]), "README.md", "exec"), namespace)
    assert isinstance(namespace["text"], str) and namespace["text"].startswith(namespace["prompt"])
