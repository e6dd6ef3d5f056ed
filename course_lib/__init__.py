"""course_lib: the shared library of the course "How large language models work".

The chapters import what they have just learned from here: attention (chapter 2), the BERT model
(chapter 3), data and pretraining (chapter 4), fine-tuning (chapter 5), and the plots and widgets.
Names are imported on first use, so that `import course_lib` (and every `course` command) starts
without loading torch.
"""
import importlib

_WHERE = {
    "BertConfig": "model", "BertModel": "model", "BertForPreTraining": "model",
    "BertForSequenceClassification": "model", "count_parameters": "model",
    "device": "runtime", "set_seed": "runtime",
    "load_pretrained": "checkpoint", "load_tokenizer": "tokenizer",
    "load_pretrained_gpt": "checkpoint", "load_gpt_tokenizer": "tokenizer",
    "GPTConfig": "gpt", "GPTModel": "gpt", "GPTLMHeadModel": "gpt", "generate": "generation",
    "Seq2SeqConfig": "seq2seq", "Seq2SeqTransformer": "seq2seq",
}
__all__ = sorted(_WHERE)


def __getattr__(name):
    if name not in _WHERE:
        raise AttributeError(f"module 'course_lib' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_WHERE))
