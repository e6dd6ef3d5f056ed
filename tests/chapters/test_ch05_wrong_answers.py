"""Chapter 5 (fine-tuning): the grade cells reject typical wrong answers with a plain-words message, fail on
the release stubs and accept correct variants written differently from the solution.

One kernel for the whole module (tests/support/notebook_utils.NotebookSession): it runs the setup cell once; each check
then swaps in a variant of one exercise's answer, runs that exercise's grade cell (visible AND hidden tests, from the
instructor source) and restores the solution. The live fine-tuning run and the rest of the chapter are not executed.
"""
import pytest

from notebook_utils import assert_accepted, assert_rejected, chapter_path, prepared_session

pytestmark = pytest.mark.slow

NOTEBOOK = chapter_path("ch05_finetuning")
EXERCISES = {"sequence_classifier": "test_sequence_classifier", "freeze_encoder": "test_freeze_encoder",
             "linear_warmup_decay": "test_linear_warmup_decay", "accuracy": "test_accuracy",
             "fine_tune_step": "test_fine_tune_step"}


@pytest.fixture(scope="module")
def session():
    yield from prepared_session(NOTEBOOK, ["setup", *EXERCISES])


def _rejected(session, answer_id, source, *phrases):
    """The grade cell of `answer_id` fails with `source` in place of the solution, saying each of `phrases`."""
    return assert_rejected(session, answer_id, source, EXERCISES[answer_id], *phrases)


def _accepted(session, answer_id, source):
    assert_accepted(session, answer_id, source, EXERCISES[answer_id])


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


def test_sequence_classifier(session):
    ids = (session, "sequence_classifier")
    _accepted(*ids, classifier())  # the template itself is a correct answer
    _rejected(*ids, classifier(pooled="h[:, -1]"), "last position", "pooler_output")
    _rejected(*ids, classifier(pooled="torch.tanh(self.bert.pooler(h[:, -1]))"), "last position")
    _rejected(*ids, classifier(pooled="(h * m).sum(1) / m.sum(1)"), "mean pooling")
    _rejected(*ids, classifier(pooled="h.mean(1)"), "average over every position")
    _rejected(*ids, classifier(pooled="h[:, 0]"), "before the pooler")
    _rejected(*ids, classifier(mask="None"), "attention_mask")
    _rejected(*ids, classifier(bert="BertModel(encoder.config)"), "self.bert")
    _rejected(*ids, classifier(p="encoder.config.hidden_dropout_prob"), "dropout")
    _rejected(*ids, classifier(drop="pooled"), "dropout")
    _rejected(*ids, classifier(drop="self.dropout(pooled)).softmax(-1"), "logits")


# ---------------------------------------------------------------------------------------------- exercise 2
FREEZE = '''
def freeze_encoder(model):
{body}
'''


def test_freeze_encoder(session):
    ids = (session, "freeze_encoder")
    _accepted(*ids, FREEZE.format(body='''
    for name, p in model.named_parameters():
        if name.startswith("bert."):
            p.requires_grad = False
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad))'''))
    _rejected(*ids, FREEZE.format(body='''
    for p in model.parameters():
        p.requires_grad = False
    return sum(p.numel() for p in model.parameters() if p.requires_grad)'''), "froze the classification head too")
    _rejected(*ids, FREEZE.format(body='''
    params = list(model.parameters())
    for p in params[:-2]:   # "everything but classifier.weight and classifier.bias"
        p.requires_grad = False
    return sum(p.numel() for p in model.parameters() if p.requires_grad)'''), "froze the classification head too")
    _rejected(*ids, FREEZE.format(body='''
    for p in model.bert.parameters():
        p.requires_grad = False
    return sum(p.numel() for p in model.parameters())'''), "number of all parameters")
    _rejected(*ids, FREEZE.format(body='''
    for p in model.bert.parameters():
        p.requires_grad = False
    return sum(p.numel() for p in model.bert.parameters())'''), "number of parameters you froze")
    _rejected(*ids, FREEZE.format(body='''
    for p in model.bert.parameters():
        p.requires_grad = False'''), "returned None")
    _rejected(*ids, FREEZE.format(body='''
    for p in model.bert.encoder.parameters():   # forgets the embeddings and the pooler
        p.requires_grad = False
    return sum(p.numel() for p in model.parameters() if p.requires_grad)'''), "still trainable")


# ---------------------------------------------------------------------------------------------- exercise 3
SCHEDULE = '''
def linear_warmup_decay(step, warmup_steps, total_steps):
{body}
'''


def test_linear_warmup_decay(session):
    ids = (session, "linear_warmup_decay")
    _accepted(*ids, SCHEDULE.format(body='''
    if step < warmup_steps:
        return float(step) / float(max(1, warmup_steps))
    return max(0.0, float(total_steps - step) / float(max(1, total_steps - warmup_steps)))'''))
    _rejected(*ids, SCHEDULE.format(body='''
    if step < warmup_steps:
        return (step + 1) / warmup_steps          # off by one
    return max(0.0, (total_steps - step) / (total_steps - warmup_steps))'''), "one step ahead")
    _rejected(*ids, SCHEDULE.format(body='''
    if step <= warmup_steps:
        return step / (warmup_steps + 1)          # off by one the other way
    return max(0.0, (total_steps - step) / (total_steps - warmup_steps))'''), "during the warm-up")
    _rejected(*ids, SCHEDULE.format(body='''
    if step < warmup_steps:
        return step / warmup_steps
    return (total_steps - step) / (total_steps - warmup_steps)   # goes negative'''), "never negative")
    _rejected(*ids, SCHEDULE.format(body='''
    if step < warmup_steps:
        return step / warmup_steps
    return max(0.0, (total_steps - step) / total_steps)          # wrong decay length'''), "during the decay")
    _rejected(*ids, SCHEDULE.format(body='''
    if step < warmup_steps:
        return torch.tensor(step / warmup_steps)
    return torch.tensor(max(0.0, (total_steps - step) / (total_steps - warmup_steps)))'''), "Python float")
    # correct for ordinary arguments, but divides by zero without a warm-up (a hidden case)
    error = _rejected(*ids, SCHEDULE.format(body='''
    if step <= warmup_steps:
        return step / warmup_steps
    return max(0.0, (total_steps - step) / (total_steps - warmup_steps))'''))
    assert "division" in error or "zero" in error


# ---------------------------------------------------------------------------------------------- exercise 4
ACCURACY = '''
def accuracy(logits, labels):
{body}
'''


def test_accuracy(session):
    ids = (session, "accuracy")
    _accepted(*ids, ACCURACY.format(body='''
    correct = sum(int(torch.argmax(row)) == int(y) for row, y in zip(logits, labels))
    return correct / len(labels)'''))
    _rejected(*ids, ACCURACY.format(body='''
    last_max = logits.shape[-1] - 1 - logits.flip(-1).argmax(-1)   # ties go to the higher class
    return (last_max == labels).float().mean().item()'''), "lower class index")
    _rejected(*ids, ACCURACY.format(body='''
    return (logits.argmax(-1) == labels).float().mean()'''), "Python float")
    _rejected(*ids, ACCURACY.format(body='''
    return float((logits.argmax(-1) == labels).sum())'''), "number of correct rows")
    _rejected(*ids, ACCURACY.format(body='''
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


def test_fine_tune_step(session):
    ids = (session, "fine_tune_step")
    _accepted(*ids, step(CLIP, OPT, SCHED, ZERO))
    _accepted(*ids, step(CLIP, OPT, SCHED, "model.zero_grad(set_to_none=True)",
                                               zero_first="optimizer.zero_grad()\n    "))
    _rejected(*ids, step(CLIP, OPT, SCHED), "gradients are not zero")
    _rejected(*ids, step(CLIP, OPT, SCHED, zero_first="optimizer.zero_grad()\n    "),
                     "gradients are not zero")
    _rejected(*ids, step(OPT, CLIP, SCHED, ZERO), "was not clipped", "before optimizer.step()")
    _rejected(*ids, step(OPT, SCHED, ZERO), "was not clipped")
    _rejected(*ids, step(CLIP, OPT, ZERO), "scheduler")
    _rejected(*ids, step(CLIP, OPT, SCHED, SCHED, ZERO), "exactly once")
    _rejected(*ids, step(CLIP, SCHED, OPT, ZERO), "in that order")
    _rejected(*ids, step(CLIP, OPT, SCHED, ZERO, ret="loss"), "Python float")
    _rejected(*ids, step(CLIP, OPT, SCHED, ZERO, ret="loss.item() * len(batch['labels'])"),
                     "returned loss")
