"""Fine-tuning helpers and the shipped results table."""
import copy
import json

import pytest
import torch

from course_lib import BertConfig, BertForSequenceClassification
from course_lib.finetune import RESULTS_JSON, best_runs, fine_tune, fine_tune_step, freeze_encoder
from course_lib.model import set_dropout
from course_lib.train import train


def tiny_classifier():
    torch.manual_seed(0)
    return BertForSequenceClassification(BertConfig.preset("tiny", vocab_size=50), num_labels=2)


def test_freeze_encoder_leaves_only_the_head_trainable():
    model = tiny_classifier()
    left = freeze_encoder(model)
    assert left == sum(p.numel() for p in model.classifier.parameters()) == 128 * 2 + 2
    assert not any(p.requires_grad for p in model.bert.parameters())


def test_fine_tune_step_matches_a_hand_written_step():
    model = tiny_classifier()
    set_dropout(model, 0.0)
    oracle = copy.deepcopy(model)
    g = torch.Generator().manual_seed(0)
    batch = {"input_ids": torch.randint(5, 50, (4, 7), generator=g), "labels": torch.tensor([0, 1, 1, 0])}
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    oracle_opt = torch.optim.AdamW(oracle.parameters(), lr=1e-3)
    loss = fine_tune_step(model, batch, opt, max_grad_norm=0.5)
    expected = oracle(batch["input_ids"], labels=batch["labels"]).loss
    expected.backward()
    torch.nn.utils.clip_grad_norm_(oracle.parameters(), 0.5)
    oracle_opt.step()
    assert loss == pytest.approx(expected.item())
    for a, b in zip(model.parameters(), oracle.parameters()):
        assert torch.allclose(a, b, atol=1e-6)
        assert a.grad is None or not a.grad.any()


def test_fine_tune_trains_as_the_shared_training_loop_does():
    """`course finetune` runs fine_tune_step (chapter 5's exercise): its loop must give the weights that
    course_lib.train.train (steps planned by progress fraction, with accumulation) gives for the same run,
    dropout, warm-up and decay included, step for step."""
    g = torch.Generator().manual_seed(1)
    items = [{"input_ids": torch.randint(5, 50, (7,), generator=g), "labels": torch.tensor(i % 2)} for i in range(20)]
    loader = torch.utils.data.DataLoader(items, batch_size=4, shuffle=True, generator=torch.Generator().manual_seed(2))
    model = tiny_classifier()
    set_dropout(model, 0.1)
    oracle = copy.deepcopy(model)
    losses = fine_tune(model, loader, lr=3e-3, epochs=2, warmup=0.3, device="cpu", seed=5, progress=False)
    loader.generator.manual_seed(2)
    history = train(oracle, loader, lr=3e-3, epochs=2, warmup=0.3, device="cpu", seed=5, progress=False, log_every=1)
    assert len(losses) == len(history) == 10
    assert losses == pytest.approx([row["loss"] for row in history], abs=1e-6)
    for (name, a), b in zip(model.named_parameters(), oracle.parameters()):
        assert torch.allclose(a, b, atol=1e-6), f"{name} differs from train()'s"
    assert not model.training


def test_learning_rate_is_chosen_on_dev_with_the_first_seed():
    row = dict(task="mr", init="pretrained", freeze_encoder=False, train_fraction=1.0, epochs=3, wall_time_s=1.0)
    rows = [dict(row, seed=0, lr=1e-4, dev_accuracy=0.70, test_accuracy=0.90),
            dict(row, seed=0, lr=3e-4, dev_accuracy=0.75, test_accuracy=0.60),
            dict(row, seed=1, lr=3e-4, dev_accuracy=0.74, test_accuracy=0.61)]
    (runs,) = best_runs(rows).values()
    assert {r["lr"] for r in runs} == {3e-4} and len(runs) == 2  # test accuracy never picks the learning rate


def test_recorded_results_are_complete_when_present():
    if not RESULTS_JSON.exists():
        pytest.skip("no results recorded yet")
    results = json.loads(RESULTS_JSON.read_text())
    for row in results["finetuning"]:
        assert 0.0 <= row["test_accuracy"] <= 1.0 and row["command"].startswith("course finetune")


def test_the_shipped_table_is_what_the_recorded_results_say():
    from results_table import RESULTS_MD, render  # tools/ (pytest puts tools/ on the path)

    recorded = json.loads(RESULTS_JSON.read_text())
    assert render(recorded) == RESULTS_MD.read_text(), "RESULTS.md is stale: python tools/results_table.py"
    assert "## Reading the results\n\n- why a number is low\n" in render({**recorded, "notes": ["why a number is low"]})
    assert "target" not in render({**recorded, "notes": []}).lower(), "RESULTS.md reports measurements, not targets"


def test_finetune_records_runs_in_its_out_folder_and_merging_replaces_same_configurations(tmp_path):
    from course_lib.finetune import load_results, record
    from results_table import merge

    row = dict(task="mr", init="scratch", freeze_encoder=False, train_fraction=1.0, seed=0, lr=1e-4, epochs=1,
               dev_accuracy=0.5, test_accuracy=0.5, wall_time_s=1.0)
    record(row, "course finetune mr", tmp_path / "out" / "results.json")
    record({**row, "dev_accuracy": 0.6}, "course finetune mr", tmp_path / "out" / "results.json")
    (kept,) = load_results(tmp_path / "out" / "results.json")["finetuning"]
    assert kept["dev_accuracy"] == 0.6 and kept["command"] == "course finetune mr"
    merged = merge({"pretraining": None, "finetuning": [{**row, "command": "old"}, {**row, "seed": 1}]},
                   {"finetuning": [kept]})
    assert sorted((r["seed"], r["dev_accuracy"]) for r in merged["finetuning"]) == [(0, 0.6), (1, 0.5)]


def test_select_epoch_keeps_the_best_dev_epoch_and_reads_test_once_on_its_weights(monkeypatch):
    """Dev is scored after epochs 2, 3 and 4 (scripted here: epoch 3 is best); the weights tested are epoch 3's, and
    the test split is evaluated exactly once."""
    from course_lib import finetune as ft

    scripted = {2: 0.60, 3: 0.70, 4: 0.65}
    seen = {"dev": [], "test": []}  # (epoch, a digest of the weights) of each evaluation

    def fake_evaluate(model, loader, *args, **kwargs):
        digest = sum(float(p.double().sum()) for p in model.parameters())
        if loader.batch_size == 128 and len(seen["dev"]) < 3:  # finetune() scores dev after epochs 2, 3, 4
            epoch = 2 + len(seen["dev"])
            seen["dev"].append((epoch, digest))
            return {"accuracy": scripted[epoch]}
        seen["test"].append(digest)
        return {"accuracy": 0.5}

    monkeypatch.setattr(ft, "evaluate", fake_evaluate)
    row = ft.finetune("mr", init="scratch", train_fraction=0.01, epochs=4, select_epoch=True, device="cpu",
                      progress=False)
    assert row["epoch"] == 3 and row["dev_accuracy"] == 0.70 and row["dev_by_epoch"] == [0.60, 0.70, 0.65]
    assert [e for e, _ in seen["dev"]] == [2, 3, 4] and len(seen["test"]) == 1
    assert seen["test"][0] == dict(seen["dev"])[3] != dict(seen["dev"])[4]  # epoch 3's weights, restored exactly
    assert ft.run_key(row) != ft.run_key({**row, "select_epoch": False})


def test_a_new_protocol_replaces_the_shipped_fine_tuning_rows_instead_of_mixing_with_them():
    from results_table import combine

    old = dict(task="mr", init="pretrained", freeze_encoder=False, train_fraction=0.1, seed=0, lr=1e-3, epochs=3,
               dev_accuracy=0.9, test_accuracy=0.5, wall_time_s=1.0, command="course finetune mr")
    new = {**old, "epochs": 4, "select_epoch": True, "epoch": 3, "by_length": True, "dev_accuracy": 0.6}
    baseline = dict(task="mr", model="bag of words", train_fraction=0.1, seed=0, dev_accuracy=0.6, test_accuracy=0.6)
    shipped = {"pretraining": {"steps": 1}, "finetuning": [old], "baselines": [baseline]}
    mixed = combine(shipped, [{"finetuning": [new]}])
    assert len(mixed["finetuning"]) == 2  # merging keeps the old protocol's row next to the new one
    (kept,) = best_runs(mixed["finetuning"]).values()
    assert len(kept) == 2, "mixed, the two protocols' rows would count as two seeds of one setting"
    replaced = combine(shipped, [{"finetuning": [new]}], replace_finetuning=True)
    assert replaced["finetuning"] == [new] and replaced["baselines"] == [baseline] and replaced["pretraining"]
    from results_table import render

    assert "| 0.001 | 3 of 4 | 1 |" in render({"finetuning": [new]}), "the table names the epoch dev chose"
