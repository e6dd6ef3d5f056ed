"""course_lib: the shared library of the course "How large language models work".

The chapters import what they have just learned from here: attention (chapter 2), the BERT model
(chapter 3), data and pretraining (chapter 4), fine-tuning (chapter 5), and the plots and widgets.
Heavy modules are imported on first use so that `import course_lib` stays quick.
"""
from .device import device, set_seed
from .model import BertConfig, BertForPreTraining, BertForSequenceClassification, BertModel, count_parameters

__all__ = ["BertConfig", "BertForPreTraining", "BertForSequenceClassification", "BertModel", "count_parameters",
           "device", "load_pretrained", "load_tokenizer", "set_seed"]


def load_pretrained(*args, **kwargs):
    """The shipped pretrained BERT and its tokenizer: see `course_lib.checkpoint.load_pretrained`."""
    from .checkpoint import load_pretrained as _load_pretrained
    return _load_pretrained(*args, **kwargs)


def load_tokenizer(*args, **kwargs):
    """The course's WordPiece tokenizer: see `course_lib.tokenizer.load_tokenizer`."""
    from .tokenizer import load_tokenizer as _load_tokenizer
    return _load_tokenizer(*args, **kwargs)
