"""`course pretrain`: a run into a folder resumes there, and the checkpoint records every call that made it."""
import json

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
