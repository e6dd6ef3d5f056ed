"""`course pretrain`: a run into a folder resumes there, and the checkpoint records every call that made it."""
import json

import pytest

from course_lib.checkpoint import load_checkpoint, read_checkpoint_info
from course_lib.pretrain import pretrain

TINY = dict(preset="tiny", batch_size=4, max_length=32, eval_every=1000, progress=False)


def test_a_resumed_run_records_every_call(tmp_path):
    first = pretrain(tmp_path, steps=2, command="course pretrain --steps 2", **TINY)
    assert first["steps"] == 2 and first["commands"] == ["course pretrain --steps 2"]
    second = pretrain(tmp_path, steps=3, command="course pretrain --steps 3", **TINY)
    assert second["steps"] == 3, "a larger budget on the same folder trains on from where the first call stopped"
    assert second["commands"] == ["course pretrain --steps 2", "course pretrain --steps 3"]
    again = pretrain(tmp_path, steps=3, command="course pretrain --steps 3", **TINY)
    assert again["steps"] == 3 and again["commands"] == second["commands"], "repeating the last call is a resume"
    info = read_checkpoint_info(tmp_path / "checkpoint")
    assert info["metadata"]["commands"] == second["commands"]
    assert set(info["metadata"]["heldout"]) >= {"mlm_accuracy", "mlm_loss", "nsp_accuracy", "nsp_loss"}
    assert json.loads((tmp_path / "commands.json").read_text()) == second["commands"]
    load_checkpoint(tmp_path / "checkpoint")


def test_a_continued_run_records_its_lineage_and_mixes_in_task_text(tmp_path):
    # The base's curve ends at its last evaluation (step 2), before its last step (3): the continued curve must
    # count from the steps the base trained, not from where its curve stops.
    pretrain(tmp_path / "base", steps=3, command="course pretrain --steps 3", **{**TINY, "eval_every": 2})
    info = pretrain(tmp_path / "tapt", steps=4, command="course pretrain --init-from base --task-text mr",
                    init_from=tmp_path / "base" / "checkpoint", task_text=("mr",), task_fraction=0.5,
                    **{**TINY, "preset": "mini"})
    assert info["preset"] == "tiny", "the architecture comes from the checkpoint, not from --preset"
    assert info["commands"] == ["course pretrain --steps 3", "course pretrain --init-from base --task-text mr"]
    assert info["steps"] == 7 and info["base"]["steps"] == 3 and info["continued"]["steps"] == 4
    assert info["continued"]["task_text"] == ["mr"]
    history = json.loads((tmp_path / "tapt" / "checkpoint" / "history.json").read_text())
    assert [row["step"] for row in history] == [2, 7], "the continued curve follows the base run's"
    assert load_checkpoint(tmp_path / "tapt" / "checkpoint").config.num_layers == 2


def test_a_refused_continued_run_leaves_no_folder(tmp_path):
    pretrain(tmp_path / "base", steps=1, **TINY)
    with pytest.raises(ValueError, match="between 0 and 1"):
        pretrain(tmp_path / "tapt", steps=1, init_from=tmp_path / "base" / "checkpoint", task_text=("mr",),
                 task_fraction=1.5, command="course pretrain --task-fraction 1.5", **TINY)
    assert not (tmp_path / "tapt").exists(), "a call refused for bad input must not leave a run folder"


def test_export_keeps_only_the_results_the_new_weights_cannot_change(tmp_path):
    from export_checkpoint import export  # tools/ (the maintainers' export; pytest puts tools/ on the path)

    def export_into_tmp(run):
        return export(run, shipped=tmp_path / "shipped", results_json=tmp_path / "results.json",
                      results_md=tmp_path / "RESULTS.md", grid_record=tmp_path / "grid.json")

    def finetuning_rows():
        return [{"task": "mr", "init": init, "freeze_encoder": False, "train_fraction": 1.0, "seed": 0, "lr": 1e-4,
                 "epochs": 1, "dev_accuracy": 0.6, "test_accuracy": 0.6, "wall_time_s": 1.0, "command": "course finetune"}
                for init in ("scratch", "pretrained")]

    baseline = {"task": "mr", "model": "bag of words", "train_fraction": 1.0, "seed": 0, "test_accuracy": 0.7}

    def export_after_recording(run):
        results = json.loads((tmp_path / "results.json").read_text())
        (tmp_path / "results.json").write_text(json.dumps({**results, "finetuning": finetuning_rows(),
                                                           "notes": ["read on the previous weights"]}))
        (tmp_path / "grid.json").write_text(json.dumps({"finetuning": finetuning_rows(), "baselines": [baseline]}))
        export_into_tmp(run)
        grid = json.loads((tmp_path / "grid.json").read_text())
        results = json.loads((tmp_path / "results.json").read_text())
        assert grid["finetuning"] == results["finetuning"], "the grid's record must drop the same runs, so it reruns them"
        assert grid["baselines"] == [baseline], "the bag of words never reads the weights"
        return results

    pretrain(tmp_path / "a", steps=1, **TINY)
    export_into_tmp(tmp_path / "a")
    results = export_after_recording(tmp_path / "a")  # the same weights again: still a new export
    assert [r["init"] for r in results["finetuning"]] == ["scratch"], "pretrained rows were measured on other weights"
    assert "notes" not in results, "notes reading the previous weights' results are stale"
    pretrain(tmp_path / "b", steps=1, init_from=tmp_path / "a" / "checkpoint", **TINY)
    results = export_after_recording(tmp_path / "b")
    assert [r["init"] for r in results["finetuning"]] == ["scratch"], "same architecture: from-scratch rows still hold"
    assert results["pretraining"]["steps"] == 2 and "MR" in (tmp_path / "RESULTS.md").read_text()
    pretrain(tmp_path / "c", steps=1, **{**TINY, "max_length": 16})
    results = export_after_recording(tmp_path / "c")
    assert results["finetuning"] == [], "another architecture: every fine-tuning row is stale"
