"""The training loop: it learns, it is reproducible, it resumes, and it trains data-parallel."""
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from course_lib import BertConfig, BertForPreTraining
from course_lib.checkpoint import load_checkpoint, save_checkpoint
from course_lib.runtime import set_seed
from course_lib.train import evaluate, linear_warmup_decay, train

from ddp_worker import make_model_and_batch  # tests/support/ is on sys.path (pyproject.toml)


def pretraining_batch(seed=0, vocab=64):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, vocab, (4, 16), generator=g)
    labels = torch.full_like(ids, -100)
    labels[:, 3:6] = ids[:, 3:6]
    masked = ids.clone()
    masked[:, 3:6] = 4
    return dict(input_ids=masked, attention_mask=torch.ones_like(ids), labels=labels,
                next_sentence_label=torch.tensor([0, 1, 0, 1]))


def tiny(**overrides):
    torch.manual_seed(0)
    return BertForPreTraining(BertConfig.preset("tiny", vocab_size=64, **overrides))


def test_tiny_model_overfits_a_small_batch():
    batch = pretraining_batch()
    model = tiny(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    before = evaluate(model, [batch])["loss"]
    train(model, [batch], lr=3e-3, max_steps=150, progress=False, warmup=0.1)
    after = evaluate(model, [batch])
    assert after["loss"] < 0.1 * before, f"loss only fell from {before:.3f} to {after['loss']:.3f}"
    assert after["mlm_accuracy"] == 1.0 and after["nsp_accuracy"] == 1.0


def test_seeded_runs_give_identical_histories():
    batches = [pretraining_batch(0), pretraining_batch(1)]
    histories = []
    for _ in range(2):
        model = tiny()  # dropout on: the seed must also fix the dropout masks
        h = train(model, batches, batches, lr=1e-3, max_steps=20, eval_every=10, log_every=5, progress=False, seed=3)
        histories.append([{k: v for k, v in row.items() if k not in ("tokens_per_s", "elapsed_s")} for row in h])
    assert histories[0] == histories[1]


def test_schedule_and_history_contents():
    model = tiny()
    h = train(model, [pretraining_batch()], lr=1e-3, max_steps=10, log_every=1, progress=False, warmup=0.5)
    lrs = [row["lr"] for row in h]
    assert lrs[0] == 0.0 and max(lrs) == pytest.approx(1e-3) and lrs[-1] < lrs[len(lrs) // 2]
    assert {"step", "loss", "lr", "tokens_per_s", "mlm_loss", "nsp_loss"} <= set(h[0])
    assert linear_warmup_decay(0, 10, 100) == 0.0 and linear_warmup_decay(10, 10, 100) == 1.0
    assert linear_warmup_decay(55, 10, 100) == pytest.approx(0.5) and linear_warmup_decay(150, 10, 100) == 0.0


class RecordingSGD(torch.optim.SGD):
    """SGD that records, at every step, the gradient it was given (all parameters, flattened)."""

    def __init__(self, params, **kwargs):
        super().__init__(params, **kwargs)
        self.seen = []

    def step(self, closure=None):
        self.seen.append(torch.cat([p.grad.flatten() for g in self.param_groups for p in g["params"]
                                    if p.grad is not None]).clone())
        return super().step(closure)


def test_gradient_accumulation_never_carries_gradients_into_the_next_epoch():
    # 3 batches an epoch, 2 per step: each epoch is a full step (batches 0 and 1) and a step on the leftover
    # batch 2 alone. With lr=0 the weights stay put, so every step's gradient must be the mean gradient of
    # exactly its own batches; a leftover that leaked would show up in the first step of epoch 2.
    batches = [pretraining_batch(s) for s in range(3)]
    model = tiny(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    per_batch = []
    for b in batches:
        model.zero_grad(set_to_none=True)
        model(**b).loss.backward()
        per_batch.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]))
    model.zero_grad(set_to_none=True)
    optimizer = RecordingSGD(model.parameters(), lr=0.0)
    train(model, batches, epochs=2, grad_accum_steps=2, optimizer=optimizer, max_grad_norm=None, warmup=0.0,
          log_every=1, progress=False, device="cpu")
    expected = [(per_batch[0] + per_batch[1]) / 2, per_batch[2]] * 2
    assert len(optimizer.seen) == len(expected), f"{len(optimizer.seen)} optimizer steps in 2 epochs, expected 4"
    for k, (seen, want) in enumerate(zip(optimizer.seen, expected)):
        assert torch.allclose(seen, want, atol=1e-6, rtol=1e-4), f"step {k + 1} stepped on the wrong gradient"
    assert all(p.grad is None for p in model.parameters()), "gradients left over after the last step"


def test_set_seed_seeds_python_torch_and_numpy():
    draws = []
    for seed in (3, 3, 4):
        set_seed(seed)
        draws.append((random.random(), torch.rand(1).item(), np.random.rand()))
    assert draws[0] == draws[1], "the same seed gave different draws"
    assert all(a != b for a, b in zip(draws[0], draws[2])), "a different seed gave the same draw"


def test_time_budget_stops_the_run():
    model = tiny()
    h = train(model, [pretraining_batch()], lr=1e-3, time_budget_s=1.0, log_every=1, progress=False)
    assert h[-1]["elapsed_s"] < 3.0 and h[-1]["lr"] < 1e-4  # decayed to ~0 at the end of the budget


def test_checkpoint_round_trip_gives_identical_outputs(tmp_path):
    model = tiny().eval()
    batch = pretraining_batch()
    save_checkpoint(model, tmp_path)
    again = load_checkpoint(tmp_path)
    assert torch.equal(model(**batch).loss, again(**batch).loss)
    assert not list(tmp_path.glob("*.bin")) and not list(tmp_path.glob("*.pt"))


def test_checkpoint_errors_name_the_problem(tmp_path):
    save_checkpoint(tiny(), tmp_path)
    (tmp_path / "config.json").write_text((tmp_path / "config.json").read_text().replace('"hidden_size": 128',
                                                                                         '"hidden_size": 64'))
    with pytest.raises(ValueError, match="expects"):
        load_checkpoint(tmp_path)
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        load_checkpoint(tmp_path)


def test_resuming_continues_from_the_saved_step(tmp_path):
    batches = [pretraining_batch(0)]
    model = tiny()
    first = train(model, batches, lr=1e-3, max_steps=6, log_every=2, progress=False, checkpoint_dir=tmp_path)
    resumed_model = tiny()
    more = train(resumed_model, batches, lr=1e-3, max_steps=12, log_every=2, progress=False, checkpoint_dir=tmp_path)
    assert [row["step"] for row in more] == [2, 4, 6, 8, 10, 12]
    assert more[:3] == first


def test_classifier_evaluation_metrics():
    model, batch = make_model_and_batch()
    metrics = evaluate(model, [batch])
    assert set(metrics) == {"loss", "accuracy"} and 0.0 <= metrics["accuracy"] <= 1.0


def test_data_parallel_equals_single_process_on_the_combined_batch(tmp_path):
    out = tmp_path / "ddp.safetensors"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          str(Path(__file__).parents[1] / "support" / "ddp_worker.py"), str(out)],
                         capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    model, batch = make_model_and_batch()
    train(model, [batch], lr=1e-3, max_steps=5, progress=False, device="cpu", warmup=0.2)
    ddp = load_file(out)
    for key, value in model.state_dict().items():
        assert (value - ddp[key]).abs().max() <= 1e-5, f"{key} differs between DDP and single-process training"
