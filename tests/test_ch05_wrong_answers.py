"""Chapter 5's grade cells reject typical wrong answers, fail on the stub and pass on the solution.

One kernel for the whole module: the setup cell runs once; then, for each exercise, the test runs a candidate answer
followed by the exercise's grade cell (visible and hidden tests) and looks at the error it raises.
"""
import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "solutions" / "ch05_finetuning" / "ch05_finetuning.ipynb"

pytestmark = pytest.mark.timeout(600) if hasattr(pytest.mark, "timeout") else []


def _cells():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    return {c.metadata.get("nbgrader", {}).get("grade_id"): c.source for c in nb.cells
            if c.metadata.get("nbgrader", {}).get("grade_id")}


def _stub(source: str) -> str:
    """What nbgrader's release leaves of an answer cell: the solution region becomes NotImplementedError."""
    def replace(match):
        indent = match.group(1)
        return f"{indent}# YOUR CODE HERE\n{indent}raise NotImplementedError()"
    return re.sub(r"( *)### BEGIN SOLUTION\n.*?### END SOLUTION", replace, source, flags=re.S)


class Kernel:
    def __init__(self):
        from jupyter_client.manager import start_new_kernel
        self.km, self.kc = start_new_kernel(kernel_name="python3", cwd=str(ROOT))

    def run(self, code: str):
        """Execute `code`; return None on success, else (ename, evalue)."""
        reply = self.kc.execute_interactive(code, timeout=300, output_hook=lambda msg: None)
        content = reply["content"]
        if content["status"] == "error":
            return content["ename"], content["evalue"]
        return None

    def close(self):
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


@pytest.fixture(scope="module")
def kernel():
    cells = _cells()
    k = Kernel()
    error = k.run(cells["setup"])
    if error:
        k.close()
        pytest.fail(f"the setup cell failed: {error}")
    yield k
    k.close()


@pytest.fixture(scope="module")
def cells():
    return _cells()


def _expect_rejected(kernel, cells, answer_id, test_id, code, *phrases):
    assert kernel.run(code) is None, "the wrong answer itself should define cleanly"
    error = kernel.run(cells[test_id])
    assert error is not None, f"{test_id} accepted a wrong answer:\n{code}"
    ename, evalue = error
    for phrase in phrases:
        assert phrase.lower() in evalue.lower(), f"{test_id}: expected a message mentioning {phrase!r}, got {ename}: {evalue}"
    return evalue


def _expect_passes(kernel, cells, answer_id, test_id, code=None):
    assert kernel.run(code if code is not None else cells[answer_id]) is None
    error = kernel.run(cells[test_id])
    assert error is None, f"{test_id} rejected a correct answer: {error}"


def _expect_stub_fails(kernel, cells, answer_id, test_id):
    assert kernel.run(_stub(cells[answer_id])) is None
    error = kernel.run(cells[test_id])
    assert error is not None and error[0] == "NotImplementedError", f"{test_id} on the stub gave {error}"


# ---------------------------------------------------------------------------------------------- exercise 1
CLASSIFIER = '''
class SequenceClassifier(nn.Module):
    def __init__(self, encoder, num_labels, dropout=0.1):
        super().__init__()
        self.bert = {bert}
        self.dropout = nn.Dropout({p})
        self.classifier = nn.Linear(encoder.config.hidden_size, num_labels)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        out = self.bert(input_ids, attention_mask={mask}, token_type_ids=token_type_ids)
        h = out.last_hidden_state
        m = (attention_mask if attention_mask is not None else torch.ones_like(input_ids)).unsqueeze(-1).float()
        pooled = {pooled}
        return self.classifier({drop})
'''


def classifier(bert="encoder", p="dropout", mask="attention_mask", pooled="out.pooler_output", drop="self.dropout(pooled)"):
    return CLASSIFIER.format(bert=bert, p=p, mask=mask, pooled=pooled, drop=drop)


def test_sequence_classifier(kernel, cells):
    ids = ("sequence_classifier", "test_sequence_classifier")
    _expect_stub_fails(kernel, cells, *ids)
    _expect_passes(kernel, cells, *ids)
    _expect_passes(kernel, cells, *ids, classifier())  # the template itself is a correct answer
    _expect_rejected(kernel, cells, *ids, classifier(pooled="h[:, -1]"), "last position", "pooler_output")
    _expect_rejected(kernel, cells, *ids, classifier(pooled="torch.tanh(self.bert.pooler(h[:, -1]))"), "last position")
    _expect_rejected(kernel, cells, *ids, classifier(pooled="(h * m).sum(1) / m.sum(1)"), "mean pooling")
    _expect_rejected(kernel, cells, *ids, classifier(pooled="h.mean(1)"), "average over every position")
    _expect_rejected(kernel, cells, *ids, classifier(pooled="h[:, 0]"), "before the pooler")
    _expect_rejected(kernel, cells, *ids, classifier(mask="None"), "attention_mask")
    _expect_rejected(kernel, cells, *ids, classifier(bert="BertModel(encoder.config)"), "self.bert")
    _expect_rejected(kernel, cells, *ids, classifier(p="encoder.config.hidden_dropout_prob"), "dropout")
    _expect_rejected(kernel, cells, *ids, classifier(drop="pooled"), "dropout")
    _expect_rejected(kernel, cells, *ids, classifier(drop="self.dropout(pooled)).softmax(-1"), "logits")


# ---------------------------------------------------------------------------------------------- exercise 2
FREEZE = '''
def freeze_encoder(model):
{body}
'''


def test_freeze_encoder(kernel, cells):
    ids = ("freeze_encoder", "test_freeze_encoder")
    _expect_stub_fails(kernel, cells, *ids)
    _expect_passes(kernel, cells, *ids)
    _expect_passes(kernel, cells, *ids, FREEZE.format(body='''
    for name, p in model.named_parameters():
        if name.startswith("bert."):
            p.requires_grad = False
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad))'''))
    _expect_rejected(kernel, cells, *ids, FREEZE.format(body='''
    for p in model.parameters():
        p.requires_grad = False
    return sum(p.numel() for p in model.parameters() if p.requires_grad)'''), "froze the classification head too")
    _expect_rejected(kernel, cells, *ids, FREEZE.format(body='''
    params = list(model.parameters())
    for p in params[:-2]:   # "everything but classifier.weight and classifier.bias"
        p.requires_grad = False
    return sum(p.numel() for p in model.parameters() if p.requires_grad)'''), "froze the classification head too")
    _expect_rejected(kernel, cells, *ids, FREEZE.format(body='''
    for p in model.bert.parameters():
        p.requires_grad = False
    return sum(p.numel() for p in model.parameters())'''), "number of all parameters")
    _expect_rejected(kernel, cells, *ids, FREEZE.format(body='''
    for p in model.bert.parameters():
        p.requires_grad = False
    return sum(p.numel() for p in model.bert.parameters())'''), "number of parameters you froze")
    _expect_rejected(kernel, cells, *ids, FREEZE.format(body='''
    for p in model.bert.parameters():
        p.requires_grad = False'''), "returned None")
    _expect_rejected(kernel, cells, *ids, FREEZE.format(body='''
    for p in model.bert.encoder.parameters():   # forgets the embeddings and the pooler
        p.requires_grad = False
    return sum(p.numel() for p in model.parameters() if p.requires_grad)'''), "still trainable")


# ---------------------------------------------------------------------------------------------- exercise 3
SCHEDULE = '''
def linear_warmup_decay(step, warmup_steps, total_steps):
{body}
'''


def test_linear_warmup_decay(kernel, cells):
    ids = ("linear_warmup_decay", "test_linear_warmup_decay")
    _expect_stub_fails(kernel, cells, *ids)
    _expect_passes(kernel, cells, *ids)
    _expect_passes(kernel, cells, *ids, SCHEDULE.format(body='''
    if step < warmup_steps:
        return float(step) / float(max(1, warmup_steps))
    return max(0.0, float(total_steps - step) / float(max(1, total_steps - warmup_steps)))'''))
    _expect_rejected(kernel, cells, *ids, SCHEDULE.format(body='''
    if step < warmup_steps:
        return (step + 1) / warmup_steps          # off by one
    return max(0.0, (total_steps - step) / (total_steps - warmup_steps))'''), "one step ahead")
    _expect_rejected(kernel, cells, *ids, SCHEDULE.format(body='''
    if step <= warmup_steps:
        return step / (warmup_steps + 1)          # off by one the other way
    return max(0.0, (total_steps - step) / (total_steps - warmup_steps))'''), "during the warm-up")
    _expect_rejected(kernel, cells, *ids, SCHEDULE.format(body='''
    if step < warmup_steps:
        return step / warmup_steps
    return (total_steps - step) / (total_steps - warmup_steps)   # goes negative'''), "never negative")
    _expect_rejected(kernel, cells, *ids, SCHEDULE.format(body='''
    if step < warmup_steps:
        return step / warmup_steps
    return max(0.0, (total_steps - step) / total_steps)          # wrong decay length'''), "during the decay")
    _expect_rejected(kernel, cells, *ids, SCHEDULE.format(body='''
    if step < warmup_steps:
        return torch.tensor(step / warmup_steps)
    return torch.tensor(max(0.0, (total_steps - step) / (total_steps - warmup_steps)))'''), "Python float")
    # correct for ordinary arguments, but divides by zero without a warm-up (a hidden case)
    error = _expect_rejected(kernel, cells, *ids, SCHEDULE.format(body='''
    if step <= warmup_steps:
        return step / warmup_steps
    return max(0.0, (total_steps - step) / (total_steps - warmup_steps))'''))
    assert "division" in error or "zero" in error


# ---------------------------------------------------------------------------------------------- exercise 4
ACCURACY = '''
def accuracy(logits, labels):
{body}
'''


def test_accuracy(kernel, cells):
    ids = ("accuracy", "test_accuracy")
    _expect_stub_fails(kernel, cells, *ids)
    _expect_passes(kernel, cells, *ids)
    _expect_passes(kernel, cells, *ids, ACCURACY.format(body='''
    correct = sum(int(torch.argmax(row)) == int(y) for row, y in zip(logits, labels))
    return correct / len(labels)'''))
    _expect_rejected(kernel, cells, *ids, ACCURACY.format(body='''
    last_max = logits.shape[-1] - 1 - logits.flip(-1).argmax(-1)   # ties go to the higher class
    return (last_max == labels).float().mean().item()'''), "lower class index")
    _expect_rejected(kernel, cells, *ids, ACCURACY.format(body='''
    return (logits.argmax(-1) == labels).float().mean()'''), "Python float")
    _expect_rejected(kernel, cells, *ids, ACCURACY.format(body='''
    return float((logits.argmax(-1) == labels).sum())'''), "number of correct rows")
    _expect_rejected(kernel, cells, *ids, ACCURACY.format(body='''
    return (logits.argmax(0) == labels).float().mean().item()'''))


# ---------------------------------------------------------------------------------------------- exercise 5
STEP = '''
def fine_tune_step(model, batch, optimizer, scheduler=None, max_grad_norm=1.0):
    inputs = {{k: v for k, v in batch.items() if k != "labels"}}
{body}
'''
FORWARD = '''
    {zero_first}logits = model(**inputs)
    loss = F.{loss}(logits, batch["labels"])
    loss.backward()'''


def step(*lines, zero_first="", loss="cross_entropy", ret="loss.item()"):
    body = FORWARD.format(zero_first=zero_first, loss=loss) + "".join("\n    " + line for line in lines)
    return STEP.format(body=body + f"\n    return {ret}")


CLIP = "torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)"
OPT = "optimizer.step()"
SCHED = "if scheduler is not None: scheduler.step()"
ZERO = "optimizer.zero_grad()"


def test_fine_tune_step(kernel, cells):
    ids = ("fine_tune_step", "test_fine_tune_step")
    _expect_stub_fails(kernel, cells, *ids)
    _expect_passes(kernel, cells, *ids)
    _expect_passes(kernel, cells, *ids, step(CLIP, OPT, SCHED, ZERO))
    _expect_passes(kernel, cells, *ids, step(CLIP, OPT, SCHED, "model.zero_grad(set_to_none=True)",
                                               zero_first="optimizer.zero_grad()\n    "))
    _expect_rejected(kernel, cells, *ids, step(CLIP, OPT, SCHED), "gradients are not zero")
    _expect_rejected(kernel, cells, *ids, step(CLIP, OPT, SCHED, zero_first="optimizer.zero_grad()\n    "),
                     "gradients are not zero")
    _expect_rejected(kernel, cells, *ids, step(OPT, CLIP, SCHED, ZERO), "was not clipped", "before optimizer.step()")
    _expect_rejected(kernel, cells, *ids, step(OPT, SCHED, ZERO), "was not clipped")
    _expect_rejected(kernel, cells, *ids, step(CLIP, OPT, ZERO), "scheduler")
    _expect_rejected(kernel, cells, *ids, step(CLIP, OPT, SCHED, SCHED, ZERO), "exactly once")
    _expect_rejected(kernel, cells, *ids, step(CLIP, SCHED, OPT, ZERO), "in that order")
    _expect_rejected(kernel, cells, *ids, step(CLIP, OPT, SCHED, ZERO, ret="loss"), "Python float")
    _expect_rejected(kernel, cells, *ids, step(CLIP, OPT, SCHED, ZERO, ret="loss.item() * len(batch['labels'])"),
                     "returned loss")


def test_solution_restored_last(kernel, cells):
    """Leave the kernel with every solution defined (and check the grade cells all pass together)."""
    for answer_id, test_id in [("sequence_classifier", "test_sequence_classifier"), ("freeze_encoder", "test_freeze_encoder"),
                               ("linear_warmup_decay", "test_linear_warmup_decay"), ("accuracy", "test_accuracy"),
                               ("fine_tune_step", "test_fine_tune_step")]:
        _expect_passes(kernel, cells, answer_id, test_id)
