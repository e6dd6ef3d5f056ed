"""course_lib's BERT against transformers' (random weights, no download): same numbers to 1e-5 in float32."""
import pytest
import torch
import transformers

from course_lib import BertConfig, BertForPreTraining, BertForSequenceClassification, BertModel, count_parameters
from course_lib.hf import (config_to_transformers, from_transformers, load_hf_directory, state_dict_to_transformers,
                          to_transformers)

CONFIGS = {
    "odd": BertConfig(vocab_size=331, hidden_size=96, num_layers=3, num_heads=3, intermediate_size=200,
                      max_position_embeddings=40),
    "tiny": BertConfig.preset("tiny", vocab_size=500, max_position_embeddings=64),
    "one-head": BertConfig(vocab_size=120, hidden_size=32, num_layers=1, num_heads=1, intermediate_size=64,
                           max_position_embeddings=16, type_vocab_size=3),
}
ATOL = 1e-5


def batch(config, seed=0, B=3, n=14):
    g = torch.Generator().manual_seed(seed)
    n = min(n, config.max_position_embeddings)
    ids = torch.randint(5, config.vocab_size, (B, n), generator=g)
    mask = torch.ones_like(ids)
    mask[1, n - 4:] = 0  # padding in two rows, of different lengths
    mask[2, n // 2:] = 0
    types = torch.zeros_like(ids)
    types[:, n // 2:] = config.type_vocab_size - 1
    labels = torch.full_like(ids, -100)
    labels[:, 2] = ids[:, 2]
    labels[0, 5] = 7
    return dict(input_ids=ids, attention_mask=mask, token_type_ids=types), labels, torch.tensor([0, 1, 0])


def hf_model(cls, config, **kwargs):
    torch.manual_seed(1)
    return cls(config_to_transformers(config, attn_implementation="eager", **kwargs)).eval()


def close(a, b, what):
    diff = (a - b).abs().max().item()
    assert diff <= ATOL, f"{what} differs from transformers by {diff:.2e}"


@pytest.mark.parametrize("name", CONFIGS)
def test_pretraining_parity(name):
    config = CONFIGS[name]
    theirs = hf_model(transformers.BertForPreTraining, config)
    ours = from_transformers(theirs)
    inputs, labels, nsp = batch(config)
    a = theirs(**inputs, output_attentions=True, output_hidden_states=True)
    for output_attentions in (True, False):  # explicit-softmax path and the fused fast path
        b = ours(**inputs, output_attentions=output_attentions, output_hidden_states=True)
        close(a.prediction_logits, b.mlm_logits, "MLM logits")
        close(a.seq_relationship_logits, b.nsp_logits, "NSP logits")
        for x, y in zip(a.hidden_states, b.hidden_states):
            close(x, y, "hidden states")
    b = ours(**inputs, output_attentions=True)
    for x, y in zip(a.attentions, b.attentions):
        close(x, y, "attention probabilities")
    pooled_theirs = theirs.bert(**inputs).pooler_output
    close(pooled_theirs, ours.bert(**inputs).pooler_output, "pooled output")

    # Losses (ours computes the MLM head only at masked positions) and gradients after one backward pass.
    theirs.zero_grad(), ours.zero_grad()
    loss_theirs = theirs(**inputs, labels=labels, next_sentence_label=nsp).loss
    out = ours(**inputs, labels=labels, next_sentence_label=nsp)
    close(loss_theirs, out.loss, "pretraining loss")
    assert out.mlm_logits.shape == (int((labels != -100).sum()), config.vocab_size)
    loss_theirs.backward()
    out.loss.backward()
    grads_theirs = dict(theirs.named_parameters())
    ours_grads = state_dict_to_transformers({k: p.grad for k, p in ours.named_parameters()})
    compared = 0
    for key, grad in ours_grads.items():
        if key in grads_theirs:
            close(grads_theirs[key].grad, grad, f"gradient of {key}")
            compared += 1
    assert compared == len(grads_theirs), "every transformers parameter should have a course_lib counterpart"


@pytest.mark.parametrize("name", ["odd", "tiny"])
def test_classification_and_base_model_parity(name):
    config = CONFIGS[name]
    inputs, _, _ = batch(config, seed=3)
    y = torch.tensor([1, 0, 2])
    theirs = hf_model(transformers.BertForSequenceClassification, config, num_labels=3)
    ours = from_transformers(theirs)
    a, b = theirs(**inputs, labels=y), ours(**inputs, labels=y)
    close(a.logits, b.logits, "classification logits")
    close(a.loss, b.loss, "classification loss")
    bare_theirs = hf_model(transformers.BertModel, config)
    bare_ours = from_transformers(bare_theirs)
    close(bare_theirs(**inputs).last_hidden_state, bare_ours(**inputs).last_hidden_state, "BertModel output")


@pytest.mark.parametrize("cls", [BertModel, BertForPreTraining, BertForSequenceClassification])
def test_conversion_round_trip_is_lossless(cls):
    torch.manual_seed(0)
    ours = cls(CONFIGS["odd"])
    back = from_transformers(to_transformers(ours))
    for (k, v), (k2, v2) in zip(ours.state_dict().items(), back.state_dict().items()):
        assert k == k2 and torch.equal(v, v2), k


def test_hf_directory_loads_offline_and_hub_names_fail_clearly(tmp_path):
    config = CONFIGS["tiny"]
    theirs = hf_model(transformers.BertForPreTraining, config)
    theirs.save_pretrained(tmp_path / "bert")
    ours = load_hf_directory(tmp_path / "bert")
    inputs, _, _ = batch(config)
    close(theirs(**inputs).prediction_logits, ours(**inputs).mlm_logits, "MLM logits after loading the folder")
    with pytest.raises(FileNotFoundError, match="never downloads"):
        load_hf_directory("bert-base-uncased")


def test_parameter_counts_of_bert_base():
    config = BertConfig.preset("base")
    assert count_parameters(BertModel(config)) == 109_482_240
    assert count_parameters(BertForPreTraining(config)) == 110_106_428  # tied decoder counted once


def test_config_validation_messages():
    with pytest.raises(ValueError, match="divisible by num_heads"):
        BertConfig(hidden_size=100, num_heads=3)
    with pytest.raises(ValueError, match="positive integer"):
        BertConfig(num_layers=0)
    with pytest.raises(ValueError, match="unknown preset"):
        BertConfig.preset("huge")


@pytest.mark.parametrize("bad, message", [
    (dict(input_ids=torch.tensor([[2, 999, 3]])), r"token ids must be in \[0, 500\)"),
    (dict(input_ids=torch.tensor([[2, -1, 3]])), r"token ids must be in"),
    (dict(input_ids=torch.ones(1, 65, dtype=torch.long)), "exceeds max_position_embeddings=64"),
    (dict(input_ids=torch.ones(1, 4, dtype=torch.long), attention_mask=torch.ones(1, 5, dtype=torch.long)),
     "attention_mask must have the same shape"),
    (dict(input_ids=torch.ones(1, 4)), "integer"),
    (dict(input_ids=torch.ones(4, dtype=torch.long)), "unsqueeze"),
    (dict(input_ids=torch.ones(1, 4, dtype=torch.long), token_type_ids=torch.full((1, 4), 2)),
     r"token_type_ids values must be in \[0, 2\)"),
])
def test_bad_input_raises_clear_value_errors(bad, message):
    model = BertForPreTraining(CONFIGS["tiny"]).eval()
    with pytest.raises(ValueError, match=message):
        model(**bad)


def test_padding_does_not_change_real_tokens():
    model = BertModel(CONFIGS["tiny"]).eval()
    ids = torch.tensor([[2, 10, 11, 12, 3]])
    padded = torch.cat([ids, torch.zeros(1, 3, dtype=torch.long)], dim=1)
    mask = torch.tensor([[1] * 5 + [0] * 3])
    for output_attentions in (True, False):
        a = model(ids, output_attentions=output_attentions).last_hidden_state
        b = model(padded, mask, output_attentions=output_attentions).last_hidden_state[:, :5]
        close(a, b, "hidden states with and without padding")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_bf16_fast_path_matches_float32():
    config = CONFIGS["tiny"]
    model = BertForPreTraining(config).eval().cuda()
    inputs, _, _ = batch(config)
    inputs = {k: v.cuda() for k, v in inputs.items()}
    reference = model(**inputs).mlm_logits.float()
    with torch.autocast("cuda", dtype=torch.bfloat16):
        fast = model(**inputs).mlm_logits.float()
    assert (fast - reference).abs().max() < 0.1
