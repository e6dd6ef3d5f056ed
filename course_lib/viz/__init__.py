"""Figures and the attention explorer (plotly + ipywidgets; everything offline).

Plot helpers (each returns a `plotly.graph_objects.Figure` and raises `ValueError` on bad input):
`attention_heatmap`, `training_history`, `softmax_saturation_figure` (+ `softmax_saturation_stats`),
`positional_encoding_heatmap`, `embedding_projection` (+ `pca_project`), `confusion_matrix_figure`
(+ `confusion_counts`), `learning_curves`.

Widgets: `attention_explorer(model, tokenizer, text=..., text_pair=None)` (see `course_lib.viz.explorer`) and
`next_token_explorer(model, tokenizer, prompt=...)` for a GPT (see `course_lib.viz.next_token`).
"""
from .plots import (
    attention_heatmap,
    confusion_counts,
    confusion_matrix_figure,
    embedding_projection,
    learning_curves,
    pca_project,
    positional_encoding_heatmap,
    softmax_saturation_figure,
    softmax_saturation_stats,
    training_history,
)


def attention_explorer(model, tokenizer, text: str = "the cat sat on the mat because it was tired .",
                       text_pair: str | None = None, **kwargs):
    """Interactive attention explorer; see `course_lib.viz.explorer.AttentionExplorer`."""
    from .explorer import AttentionExplorer  # ipywidgets only when the widget is used

    return AttentionExplorer(model, tokenizer, text=text, text_pair=text_pair, **kwargs)


def next_token_explorer(model, tokenizer, prompt: str = "The old man walked", **kwargs):
    """Interactive next-token explorer for a GPT; see `course_lib.viz.next_token.NextTokenExplorer`."""
    from .next_token import NextTokenExplorer  # ipywidgets only when the widget is used

    return NextTokenExplorer(model, tokenizer, prompt=prompt, **kwargs)


def attention_data(model, tokenizer, text: str, text_pair: str | None = None, max_length: int | None = None):
    """Tokens, attention probabilities and q·k/√d_k scores of every layer and head (no widget)."""
    from .explorer import compute_attention

    return compute_attention(model, tokenizer, text, text_pair, max_length=max_length)


__all__ = [
    "attention_explorer",
    "attention_data",
    "attention_heatmap",
    "confusion_counts",
    "confusion_matrix_figure",
    "embedding_projection",
    "learning_curves",
    "next_token_explorer",
    "pca_project",
    "positional_encoding_heatmap",
    "softmax_saturation_figure",
    "softmax_saturation_stats",
    "training_history",
]
