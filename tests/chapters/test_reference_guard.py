"""The reference guard covers every exercise: an answer that IS course_lib's reference (imported by name), CALLS it,
or is a COPY of it (rebuilt from its code object with globals of its own) fails every graded cell of that exercise
with the guard's message ("... switched off ...: this exercise asks you to write it yourself ...").

Exercises are discovered from nbgrader metadata (tests/support/notebook_utils.exercises); REFERENCES names the course_lib
twin of each name an answer cell defines. A new chapter's exercises fail `test_every_exercise_has_a_row` until
they get a row here (None where no course_lib function computes the answer), so none is left unguarded.

One kernel per chapter (tests/support/notebook_utils.graded_session); each case swaps one answer and runs its test cells.
"""
import pytest

from notebook_utils import chapters, exercises

pytestmark = pytest.mark.slow

# (chapter, name an answer cell defines) -> "module:attribute" of its course_lib reference, or None
REFERENCES = {
    ("ch01_background", "bigram_log_probs"): "course_lib.ngram:bigram_log_probs",
    ("ch01_background", "perplexity"): "course_lib.ngram:perplexity",
    ("ch01_background", "fit_bigram_logits"): "course_lib.ngram:fit_bigram_logits",
    ("ch01_background", "wordpiece_tokenize"): "course_lib.ngram:wordpiece_tokenize",
    ("ch01_background", "bert_param_count"): "course_lib.scale:bert_param_count",
    ("ch01_background", "adam_training_memory_bytes"): "course_lib.scale:adam_training_memory_bytes",
    ("ch02_attention", "attention_scores"): "course_lib.attention:attention_scores",
    ("ch02_attention", "softmax"): "course_lib.attention:softmax",
    ("ch02_attention", "score_variance"): None,   # an experiment: no course_lib function returns its numbers
    ("ch02_attention", "scaled_dot_product_attention"): "course_lib.attention:scaled_dot_product_attention",
    ("ch02_attention", "self_attention"): "course_lib.attention:self_attention",
    ("ch03_transformer", "split_heads"): "course_lib.attention:split_heads",
    ("ch03_transformer", "merge_heads"): "course_lib.attention:merge_heads",
    ("ch03_transformer", "padding_mask"): "course_lib.attention:padding_mask",
    ("ch03_transformer", "MultiHeadSelfAttention"): "course_lib.attention:MultiHeadSelfAttention",
    ("ch03_transformer", "equivariance_gap"): "course_lib.positions:equivariance_gap",
    ("ch03_transformer", "sinusoidal_positions"): "course_lib.positions:sinusoidal_positions",
    ("ch03_transformer", "layer_norm"): "course_lib.model:layer_norm",
    ("ch03_transformer", "gelu"): "course_lib.model:gelu",
    ("ch03_transformer", "EncoderLayer"): "course_lib.model:EncoderLayer",
    ("ch03_transformer", "BertEmbeddings"): "course_lib.model:BertEmbeddings",
    ("ch03_transformer", "BertEncoder"): "course_lib.model:BertEncoder",
    ("ch03_transformer", "BertModel"): "course_lib.model:BertModel",
    ("ch04_pretraining", "mask_tokens"): "course_lib.data:mask_tokens",
    ("ch04_pretraining", "mlm_loss"): "course_lib.losses:mlm_loss",
    ("ch04_pretraining", "make_nsp_pairs"): None,   # the pretraining loader pairs BERT's segments, not sentences
    ("ch04_pretraining", "pretraining_loss"): "course_lib.losses:pretraining_loss",
    ("ch04_pretraining", "MaskedLMHead"): "course_lib.model:MaskedLMHead",
    ("ch04_pretraining", "PreTrainingHeads"): None,   # course_lib's BertForPreTraining holds its two heads directly
    ("ch05_finetuning", "SequenceClassifier"): "course_lib.model:BertForSequenceClassification",
    ("ch05_finetuning", "freeze_encoder"): "course_lib.finetune:freeze_encoder",
    ("ch05_finetuning", "linear_warmup_decay"): "course_lib.train:linear_warmup_decay",
    ("ch05_finetuning", "accuracy"): "course_lib.train:accuracy",
    ("ch05_finetuning", "fine_tune_step"): "course_lib.finetune:fine_tune_step",
    ("ch06_decoder", "causal_mask"): "course_lib.attention:causal_mask",
    ("ch06_decoder", "influence_matrix"): None,   # autograd's jacobian computes it; the tests switch that off
    ("ch06_decoder", "shift_right"): "course_lib.number_translation:shift_right",
    ("ch06_decoder", "lm_loss"): None,   # its twin is the static method GPTLMHeadModel.next_token_loss, forbidden
    ("ch06_decoder", "cross_attention"): None,   # course_lib's is the module MultiHeadCrossAttention, forbidden
    ("ch06_decoder", "DecoderLayer"): "course_lib.seq2seq:DecoderLayer",
    ("ch06_decoder", "greedy_translate"): "course_lib.seq2seq:greedy_search",
    ("ch07_generation", "sample_next"): "course_lib.generation:sample_next",
    ("ch07_generation", "top_k_filter"): "course_lib.generation:top_k_filter",
    ("ch07_generation", "top_p_filter"): "course_lib.generation:top_p_filter",
    ("ch07_generation", "generate"): "course_lib.generation:generate",
    ("ch07_generation", "attend_with_cache"): None,   # course_lib's cache lives inside its attention module
    ("ch07_generation", "kv_cache_bytes"): "course_lib.generation:kv_cache_bytes",
    ("ch07_generation", "distinct_n"): "course_lib.generation:distinct_n",
}


def answer_source(solution: str, name: str, kind: str, reference: str) -> str:
    """The answer cell with `name` replaced by the reference: imported, called, or copied (rebuilt from its code)."""
    module, attr = reference.split(":")
    if kind == "imported":
        return f"{solution}\nfrom {module} import {attr} as {name}"
    if kind == "called":
        return (f"{solution}\nimport {module} as _course_module\n\n\ndef {name}(*args, **kwargs):\n"
                f"    return _course_module.{attr}(*args, **kwargs)")
    # copied: a function rebuilt from the reference's code object with globals of its own; a class with the
    # reference's methods in a namespace of its own
    return (f"{solution}\nimport types as _types\nimport {module} as _course_module\n_ref = _course_module.{attr}\n"
            f"if isinstance(_ref, type):\n"
            f"    {name} = type({name!r}, _ref.__bases__, {{k: v for k, v in vars(_ref).items() "
            f"if k not in ('__dict__', '__weakref__')}})\n"
            f"else:\n"
            f"    {name} = _types.FunctionType(_ref.__code__, dict(vars(_course_module)), {name!r}, _ref.__defaults__,"
            f" _ref.__closure__)\n"
            f"    {name}.__kwdefaults__ = _ref.__kwdefaults__")


CASES = [(ex.chapter, ex, name, kind) for ch in chapters() for ex in exercises(ch) for name in ex.names
         if REFERENCES.get((ch, name)) for kind in ("imported", "called", "copied")]


def test_every_exercise_has_a_row():
    missing = [(ch, name) for ch in chapters() for ex in exercises(ch) for name in ex.names
               if (ch, name) not in REFERENCES]
    assert not missing, f"add these to REFERENCES (its course_lib twin, or None): {missing}"


@pytest.mark.parametrize("chapter, exercise, name, kind", CASES,
                         ids=[f"{c}-{n}-{k}" for c, _, n, k in CASES])
def test_reference_as_the_answer_fails_with_the_guard_message(sessions, chapter, exercise, name, kind):
    session = sessions(chapter)
    answer_gid = next(gid for gid in exercise.answers
                      if name in __import__("notebook_utils").defined_names(session.nb.cells[session.index(gid)].source))
    solution = session.nb.cells[session.index(answer_gid)].source
    source = answer_source(solution, name, kind, REFERENCES[(chapter, name)])
    for test_gid in exercise.tests:
        r = session.try_answer(answer_gid, source, test_gid)
        assert not r.ok, f"{test_gid} passed with the course_lib reference {kind} as `{name}`"
        assert r.ename in ("ForbiddenCallError", "AssertionError") and "switched off" in (r.evalue or ""), \
            f"{test_gid}: `{name}` {kind} failed, but not with the guard's message: {r.error}"
        assert "yourself" in (r.evalue or ""), f"{test_gid}: the message should say what to do instead: {r.error}"
