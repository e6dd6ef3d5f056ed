"""The shipped checkpoint: it loads offline, is what results.json says, and reproduces its recorded metrics."""
import json

import pytest
import torch

from course_lib import BertForPreTraining, BertForSequenceClassification, load_pretrained
from course_lib.checkpoint import SHIPPED_CHECKPOINT, read_checkpoint_info
from course_lib.finetune import RESULTS_JSON
from course_lib.pretrain import SUBSET_BATCHES, heldout_eval_batches
from course_lib.train import evaluate


def test_shipped_checkpoint_loads_with_its_tokenizer():
    model, tokenizer = load_pretrained()
    assert isinstance(model, BertForPreTraining) and not model.training
    assert model.config.vocab_size == tokenizer.vocab_size
    assert (SHIPPED_CHECKPOINT / "model.safetensors").stat().st_size < 25 * 2**20
    assert not list(SHIPPED_CHECKPOINT.glob("*.bin")) and not list(SHIPPED_CHECKPOINT.glob("*.pt"))
    classifier, _ = load_pretrained(BertForSequenceClassification, num_labels=2)
    assert torch.equal(classifier.bert.embeddings.word_embeddings.weight, model.bert.embeddings.word_embeddings.weight)


def test_shipped_checkpoint_reproduces_its_recorded_heldout_metrics():
    recorded = json.loads(RESULTS_JSON.read_text())["pretraining"]
    info = read_checkpoint_info(SHIPPED_CHECKPOINT)["metadata"]
    assert info["steps"] == recorded["steps"], "results.json describes a different checkpoint than the shipped one"
    model, tokenizer = load_pretrained()
    batches = heldout_eval_batches(tokenizer, recorded["max_length"])[:SUBSET_BATCHES]
    with torch.no_grad():
        metrics = evaluate(model, batches)
    for name in ("mlm_accuracy", "mlm_loss", "nsp_accuracy", "nsp_loss"):
        assert metrics[name] == pytest.approx(recorded["heldout_subset"][name], abs=2e-3), name
