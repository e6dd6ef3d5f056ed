"""course_lib.viz: the plot helpers and the attention explorer's logic (no browser; see test_browser.py)."""
import math

import numpy as np
import plotly.graph_objects as go
import pytest
import torch

from course_lib import BertConfig, BertForPreTraining, BertForSequenceClassification, BertModel
from course_lib.attention import split_heads
from course_lib import viz
from course_lib.viz.explorer import AttentionExplorer, as_array, compute_attention, mosaic

torch.set_num_threads(1)

WORDS = "the cat sat on mat because it was tired . a dog ran and bird flew over house then went to sleep".split()


def _small_tokenizer(directory):
    from transformers import BertTokenizerFast

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS + ["##s", "##ed"]
    path = directory / "vocab.txt"
    path.write_text("\n".join(vocab) + "\n")
    return BertTokenizerFast(str(path), do_lower_case=True)


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    """The course tokenizer when it is shipped, else a tiny WordPiece vocabulary."""
    try:
        from course_lib import load_tokenizer

        return load_tokenizer()
    except Exception:  # noqa: BLE001 - the data helper's files may not exist yet
        return _small_tokenizer(tmp_path_factory.mktemp("tok"))


def _model(tok, cls=BertForPreTraining, **overrides):
    torch.manual_seed(0)
    cfg = BertConfig.preset("tiny", **{"vocab_size": len(tok), **overrides})
    return cls(cfg).eval()


@pytest.fixture(scope="module")
def model(tok):
    # 32 positions so that truncation is cheap to exercise
    return _model(tok, max_position_embeddings=32)


def _attentions(model, tok, text, pair=None):
    bert = getattr(model, "bert", model)
    enc = tok(text, pair, return_tensors="pt")
    with torch.no_grad():
        out = bert(**enc, output_attentions=True, output_hidden_states=True)
    return enc, out


def _z(fig, i=0):
    return as_array(fig.data[i].z).astype(np.float64)


def _clean(labels):
    return [str(s).replace("\u200b", "") for s in labels]


# ----------------------------------------------------------------------------------------------
# attention explorer
# ----------------------------------------------------------------------------------------------
TEXT, PAIR = "the cat sat on the mat", "it was tired ."


def test_explorer_starts_on_the_models_attention(model, tok):
    ex = viz.attention_explorer(model, tok, TEXT, PAIR)
    enc, out = _attentions(model, tok, TEXT, PAIR)
    tokens = tok.convert_ids_to_tokens(enc["input_ids"][0].tolist())
    assert ex.tokens == tokens
    assert ex.message_text == ""
    np.testing.assert_allclose(_z(ex.head_fig), out.attentions[0][0, 0].numpy(), rtol=0, atol=1e-7)
    assert _clean(ex.head_fig.data[0].x) == tokens and _clean(ex.head_fig.data[0].y) == tokens
    # duplicate tokens ("the" twice) stay separate rows of the categorical axis
    assert len(set(ex.head_fig.data[0].x)) == len(tokens)
    assert "key token" in ex.head_fig.layout.xaxis.title.text
    assert "query token" in ex.head_fig.layout.yaxis.title.text
    assert "weight" in ex.head_fig.data[0].hovertemplate and "query" in ex.head_fig.data[0].hovertemplate
    # every control is there
    assert ex.layer_slider.max == model.config.num_layers - 1
    assert ex.head_slider.max == model.config.num_heads - 1
    assert [v for _, v in ex.query_dropdown.options] == list(range(len(tokens)))
    assert ex.query == 1  # the first real token


def test_selectors_update_figures_to_the_models_probabilities(model, tok):
    ex = viz.attention_explorer(model, tok, TEXT, PAIR)
    _, out = _attentions(model, tok, TEXT, PAIR)
    # through the widgets, as a learner would
    ex.layer_slider.value = 1
    ex.head_slider.value = 1
    ex.query_dropdown.value = 4
    np.testing.assert_allclose(_z(ex.head_fig), out.attentions[1][0, 1].numpy(), rtol=0, atol=1e-7)
    np.testing.assert_allclose(np.asarray(ex.qk_fig.data[1].y), out.attentions[1][0, 1, 4].numpy(), rtol=0, atol=1e-7)
    assert "layer 1, head 1" in ex.head_fig.layout.title.text
    # through the API
    assert ex.select(layer=0, head=1, query=2)
    np.testing.assert_allclose(_z(ex.head_fig), out.attentions[0][0, 1].numpy(), rtol=0, atol=1e-7)
    np.testing.assert_allclose(np.asarray(ex.qk_fig.data[1].y), out.attentions[0][0, 1, 2].numpy(), rtol=0, atol=1e-7)
    # the query row is outlined in the head view
    shape = ex.head_fig.layout.shapes[0]
    assert shape.y0 == pytest.approx(1.5) and shape.y1 == pytest.approx(2.5)


def test_query_key_view_scores_softmax_to_the_attention(model, tok):
    ex = viz.attention_explorer(model, tok, TEXT, PAIR)
    enc, out = _attentions(model, tok, TEXT, PAIR)
    layer, head, query = 1, 0, 3
    ex.select(layer=layer, head=head, query=query)
    scores = torch.tensor(np.asarray(ex.qk_fig.data[0].y), dtype=torch.float64)
    weights = torch.tensor(np.asarray(ex.qk_fig.data[1].y), dtype=torch.float64)
    # softmax of the drawn scores is the drawn weight and the model's probability
    torch.testing.assert_close(torch.softmax(scores, -1), weights, atol=1e-6, rtol=0)
    torch.testing.assert_close(weights.float(), out.attentions[layer][0, head, query], atol=1e-6, rtol=0)
    # and the scores are q·k/√d_k of the layer's own query/key projections
    att = model.bert.encoder.layers[layer].attention
    h = out.hidden_states[layer]
    with torch.no_grad():
        q = split_heads(att.query(h), model.config.num_heads)[0, head]
        k = split_heads(att.key(h), model.config.num_heads)[0, head]
    d_k = model.config.hidden_size // model.config.num_heads
    torch.testing.assert_close(scores.float(), q[query] @ k.T / math.sqrt(d_k), atol=1e-5, rtol=1e-5)
    assert "q·k/√d_k" in ex.qk_fig.layout.annotations[0].text
    assert ex.qk_fig.layout.xaxis.title.text == "key token"


def test_scores_with_padding_mask_softmax_to_the_attention(model, tok):
    data = compute_attention(model, tok, TEXT, PAIR)
    np.testing.assert_allclose(data.softmax_of_scores(), data.attentions, rtol=0, atol=1e-6)
    # a padded key must get zero weight once the mask is applied to the scores
    data.mask[-1] = False
    p = data.softmax_of_scores()
    assert np.all(p[..., -1] == 0) and np.allclose(p.sum(-1), 1, atol=1e-6)


def test_text_change_reruns_the_model_only_when_the_text_changes(model, tok):
    new, pair = "a dog ran over the house", "then it went to sleep"
    _, out_new = _attentions(model, tok, new)
    _, out_old = _attentions(model, tok, TEXT)
    calls = []
    hook = model.bert.register_forward_hook(lambda *a: calls.append(1))
    try:
        ex = viz.attention_explorer(model, tok, TEXT)
        assert len(calls) == 1
        for layer in (1, 0):
            ex.layer_slider.value = layer
        ex.head_slider.value = 1
        ex.query_dropdown.value = 2
        ex.average_box.value = True
        ex.hide_box.value = True
        assert len(calls) == 1, "changing the view must not re-run the model"
        ex.hide_box.value = False
        ex.average_box.value = False
        ex.text_box.value = new  # what typing + Enter does
        assert len(calls) == 2
        assert ex.tokens == tok.convert_ids_to_tokens(tok(new)["input_ids"])
        np.testing.assert_allclose(_z(ex.head_fig), out_new.attentions[ex.layer][0, ex.head].numpy(), rtol=0, atol=1e-7)
        ex.pair_box.value = pair
        assert len(calls) == 3 and ex.tokens.count("[SEP]") == 2
        ex.set_text(TEXT)  # seen before: served from the cache
        assert len(calls) == 3
        np.testing.assert_allclose(_z(ex.head_fig), out_old.attentions[ex.layer][0, ex.head].numpy(), rtol=0, atol=1e-7)
    finally:
        hook.remove()


def test_average_over_heads_and_hiding_special_tokens(model, tok):
    ex = viz.attention_explorer(model, tok, TEXT, PAIR)
    enc, out = _attentions(model, tok, TEXT, PAIR)
    tokens = tok.convert_ids_to_tokens(enc["input_ids"][0].tolist())
    ex.layer_slider.value = 1
    ex.average_box.value = True
    np.testing.assert_allclose(_z(ex.head_fig), out.attentions[1][0].mean(0).numpy(), rtol=0, atol=1e-6)
    assert "average" in ex.head_fig.layout.title.text
    ex.average_box.value = False
    ex.hide_box.value = True
    keep = [i for i, t in enumerate(tokens) if t not in ("[CLS]", "[SEP]")]
    assert _clean(ex.head_fig.data[0].x) == [tokens[i] for i in keep]
    np.testing.assert_allclose(_z(ex.head_fig), out.attentions[1][0, 0][keep][:, keep].numpy(), rtol=0, atol=1e-7)
    assert [v for _, v in ex.query_dropdown.options] == keep
    assert _clean(ex.qk_fig.data[1].x) == [tokens[i] for i in keep]
    assert "hidden" in ex.qk_fig.layout.title.text
    assert not ex.select(query=0)  # [CLS] is hidden
    assert "hidden" in ex.message_text


def test_model_view_grid_and_click_opens_the_head(model, tok):
    ex = viz.attention_explorer(model, tok, TEXT, PAIR)
    _, out = _attentions(model, tok, TEXT, PAIR)
    L, H = model.config.num_layers, model.config.num_heads
    n = len(ex.tokens)
    grid = _z(ex.model_fig)
    assert grid.shape == (L * n, H * n)  # n <= tile size: not pooled
    for layer in range(L):
        for head in range(H):
            tile = grid[layer * n: (layer + 1) * n, head * n: (head + 1) * n]
            np.testing.assert_allclose(tile, out.attentions[layer][0, head].numpy(), atol=1e-4)
    assert list(ex.model_fig.layout.xaxis.ticktext) == [f"head {h}" for h in range(H)]
    assert list(ex.model_fig.layout.yaxis.ticktext) == [f"layer {lay}" for lay in range(L)]
    # a click as the browser reports it (plotly's widget message): layer 1, head 1, some cell
    ex.average_box.value = True
    row, col = n + 2, n + 3
    ex.model_fig._js2py_pointsCallback = {
        "event_type": "plotly_click",
        "points": {"trace_indexes": [0], "point_indexes": [[row, col]],
                   "xs": [ex.model_fig.data[0].x[col]], "ys": [ex.model_fig.data[0].y[row]]},
        "device_state": {"alt": False, "ctrl": False, "meta": False, "shift": False, "button": 0, "buttons": 1},
        "selector": None,
    }
    assert (ex.layer, ex.head) == (1, 1) and not ex.average_box.value
    np.testing.assert_allclose(_z(ex.head_fig), out.attentions[1][0, 1].numpy(), rtol=0, atol=1e-7)
    outline = ex.model_fig.layout.shapes[-1]  # the frame around the selected tile
    assert outline.type == "rect" and outline.x0 == pytest.approx(n - 0.5) and outline.y0 == pytest.approx(n - 0.5)
    assert ex.open_cell(0, 0) and (ex.layer, ex.head) == (0, 0)


def test_invalid_indices_and_empty_text_give_messages_not_tracebacks(model, tok):
    ex = viz.attention_explorer(model, tok, TEXT)
    before = _z(ex.head_fig).copy()
    for kwargs, words in [({"layer": 7}, "layer 7"), ({"head": -1}, "head -1"), ({"query": 999}, "query token 999"),
                          ({"layer": "x"}, "layer 'x'"), ({"layer": 1.5}, "layer 1.5")]:
        assert ex.select(**kwargs) is False
        assert words in ex.message_text and "does not exist" in ex.message_text
        np.testing.assert_array_equal(_z(ex.head_fig), before)
    assert ex.select(layer=1)  # a valid choice clears the message
    assert ex.message_text == ""
    assert ex.open_cell(9, 0) is False and "layer 9" in ex.message_text
    ex.text_box.value = "   "
    assert "empty" in ex.message_text
    assert ex.tokens[1:3] == tok.tokenize(TEXT)[:2]  # still showing the previous input
    ex.text_box.value = "a dog ran"
    assert ex.message_text == ""
    # an empty first text also gives a widget with a message
    ex2 = viz.attention_explorer(model, tok, "")
    assert "empty" in ex2.message_text and ex2.data is None


def test_model_errors_are_shown_in_the_widget(tok):
    # a model whose vocabulary is smaller than the tokenizer's: the model raises, the widget explains
    bad = _model(tok, vocab_size=5)
    ex = viz.attention_explorer(bad, tok, TEXT)
    assert "ValueError" in ex.message_text and "token ids" in ex.message_text


def test_long_input_is_truncated_with_a_notice(model, tok):
    long_text = " ".join(WORDS * 4)
    ex = viz.attention_explorer(model, tok, long_text)
    n_full = len(tok(long_text)["input_ids"])
    assert n_full > 32 and len(ex.tokens) == 32 and ex.tokens[-1] == "[SEP]"
    assert f"{n_full} tokens" in ex.message_text and "truncated" in ex.message_text and "32" in ex.message_text
    ex.set_text("the cat")  # short again: the notice goes away
    assert ex.message_text == ""
    # the model view pools long inputs to at most MAX_TILE rows per tile
    ex3 = viz.attention_explorer(model, tok, long_text, max_length=30)
    assert len(ex3.tokens) == 30 and "30" in ex3.message_text
    z, b = mosaic(ex3.data.attentions, tile=10)  # 30 tokens -> 10 blocks of 3
    assert b == 10 and z.shape == (model.config.num_layers * 10, model.config.num_heads * 10)
    # pooling averages blocks: the mean weight of each tile is kept
    np.testing.assert_allclose(z.reshape(model.config.num_layers, 10, model.config.num_heads, 10).mean((1, 3)),
                               ex3.data.attentions.mean((2, 3)), atol=1e-3)


def test_explorer_accepts_bert_model_and_classifier(tok):
    for cls in (BertModel, BertForSequenceClassification):
        m = _model(tok, cls=cls)
        ex = viz.attention_explorer(m, tok, TEXT)
        _, out = _attentions(m, tok, TEXT)
        ex.select(layer=1, head=1)
        np.testing.assert_allclose(_z(ex.head_fig), out.attentions[1][0, 1].numpy(), rtol=0, atol=1e-7)
    with pytest.raises(TypeError, match="BertModel"):
        viz.attention_explorer(torch.nn.Linear(2, 2), tok, TEXT)


def test_explorer_accepts_a_transformers_bert(tok):
    transformers = pytest.importorskip("transformers")
    cfg = transformers.BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                  intermediate_size=64, attn_implementation="eager")
    torch.manual_seed(0)
    m = transformers.BertModel(cfg).eval()
    ex = viz.attention_explorer(m, tok, TEXT)
    assert ex.message_text == ""
    _, out = _attentions(m, tok, TEXT)
    ex.select(layer=1, head=1)
    np.testing.assert_allclose(_z(ex.head_fig), out.attentions[1][0, 1].numpy(), rtol=0, atol=1e-7)
    np.testing.assert_allclose(ex.data.softmax_of_scores(), ex.data.attentions, atol=1e-6)


def test_explorer_leaves_training_mode_alone(tok):
    m = _model(tok)
    m.train()
    ex = viz.attention_explorer(m, tok, TEXT)
    assert m.training and m.bert.training
    np.testing.assert_allclose(ex.data.softmax_of_scores(), ex.data.attentions, atol=1e-6)


def test_explorer_is_a_widget(model, tok):
    import ipywidgets

    ex = viz.attention_explorer(model, tok, TEXT)
    assert isinstance(ex, ipywidgets.VBox) and isinstance(ex, AttentionExplorer)
    figs = [c for c in _walk(ex) if isinstance(c, go.FigureWidget)]
    assert len(figs) == 3


def _walk(widget):
    yield widget
    for child in getattr(widget, "children", ()):
        yield from _walk(child)


# ----------------------------------------------------------------------------------------------
# plot helpers
# ----------------------------------------------------------------------------------------------
def test_attention_heatmap():
    w = torch.softmax(torch.randn(4, 4, generator=torch.Generator().manual_seed(0)), -1)
    fig = viz.attention_heatmap(w, ["[CLS]", "the", "the", "[SEP]"], title="layer 0")
    assert isinstance(fig, go.Figure) and fig.data[0].type == "heatmap"
    np.testing.assert_allclose(fig.data[0].z, w.numpy(), atol=1e-7)
    assert _clean(fig.data[0].x) == ["[CLS]", "the", "the", "[SEP]"] and len(set(fig.data[0].y)) == 4
    assert fig.layout.xaxis.title.text.startswith("key token") and fig.layout.yaxis.title.text.startswith("query token")
    assert fig.layout.title.text == "layer 0"
    with pytest.raises(ValueError, match="2-D"):
        viz.attention_heatmap(torch.ones(2, 3, 3))
    with pytest.raises(ValueError, match="NaN"):
        viz.attention_heatmap(torch.tensor([[0.5, float("nan")], [0.5, 0.5]]))
    with pytest.raises(ValueError, match="3 labels for 2"):
        viz.attention_heatmap(torch.ones(2, 2) / 2, ["a", "b", "c"])


def test_training_history():
    history = [
        {"step": 10, "loss": 5.0, "lr": 1e-4, "tokens_per_s": 6000.0},
        {"step": 20, "loss": 4.0, "lr": 2e-4, "tokens_per_s": 6100.0},
        {"step": 20, "eval_loss": 4.2, "eval_mlm_accuracy": 0.1, "eval_nsp_accuracy": 0.6},
        {"step": 30, "loss": 3.5, "lr": 1.5e-4, "tokens_per_s": 6050.0, "note": "text is ignored"},
        {"step": 30, "eval_loss": 3.9, "eval_mlm_accuracy": 0.12, "eval_nsp_accuracy": 0.65, "eval_accuracy": 0.7},
    ]
    fig = viz.training_history(history)
    names = {t.name: t for t in fig.data}
    assert set(names) == {"loss", "eval_loss", "lr", "tokens_per_s", "eval_mlm_accuracy", "eval_nsp_accuracy",
                          "eval_accuracy"}
    assert list(names["loss"].x) == [10, 20, 30] and list(names["loss"].y) == [5.0, 4.0, 3.5]
    assert list(names["eval_loss"].x) == [20, 30] and names["eval_loss"].line.dash == "dash"
    assert names["loss"].line.dash == "solid" and names["loss"].line.color == names["eval_loss"].line.color
    titles = {a.text for a in fig.layout.annotations}
    assert {"loss", "accuracy", "learning rate", "throughput"} <= titles
    ytitles = {fig.layout[k].title.text for k in fig.layout if k.startswith("yaxis")}
    assert {"loss (nats)", "accuracy", "learning rate", "throughput (per second)"} <= ytitles
    assert all(fig.layout[k].title.text == "step" for k in fig.layout if k.startswith("xaxis"))
    # a dict of lists and a History-like object work too; only-training histories are fine
    fig2 = viz.training_history({"step": [1, 2, 3], "loss": [3.0, 2.0, 1.5]})
    assert [t.name for t in fig2.data] == ["loss"]

    class History:
        records = [{"loss": 2.0}, {"loss": 1.0}]

    fig3 = viz.training_history(History())
    assert list(fig3.data[0].x) == [0, 1] and fig3.layout.xaxis.title.text == "log entry"
    for bad, words in [([], "empty"), ([{"step": 1, "loss": float("nan")}], "NaN"), ([1, 2], "entry 0"),
                       ([{"step": 1, "note": "x"}], "no numeric"), (None, "None")]:
        with pytest.raises(ValueError, match=words):
            viz.training_history(bad)


def test_softmax_saturation_figure():
    stats = viz.softmax_saturation_stats(d_ks=(4, 64, 1024), num_keys=8, num_samples=400, seed=0)
    assert stats["d_k"] == [4, 64, 1024]
    for d, v_raw, v_s in zip(stats["d_k"], stats["var_raw"], stats["var_scaled"]):
        assert v_raw == pytest.approx(d, rel=0.25) and v_s == pytest.approx(1.0, rel=0.25)
    assert stats["max_weight_raw"][-1] > 0.9 > stats["max_weight_scaled"][-1]
    assert stats["grad_raw"][-1] < stats["grad_scaled"][-1]
    fig = viz.softmax_saturation_figure(stats=stats)
    assert len(fig.data) == 6 and {t.name for t in fig.data} == {"q·k (unscaled)", "q·k / √d_k (scaled)"}
    assert list(fig.data[0].x) == [4, 64, 1024]
    assert fig.layout.xaxis.title.text.startswith("d_k") and fig.layout.xaxis.type == "log"
    assert fig.layout.yaxis.title.text == "variance"
    fig2 = viz.softmax_saturation_figure(d_ks=(2, 8), num_samples=50)
    assert list(fig2.data[0].x) == [2, 8]
    with pytest.raises(ValueError, match="positive"):
        viz.softmax_saturation_figure(d_ks=(0, 8))
    with pytest.raises(ValueError, match="NaN"):
        viz.softmax_saturation_figure(stats={**stats, "var_raw": [1.0, float("nan"), 2.0]})
    with pytest.raises(ValueError, match="missing"):
        viz.softmax_saturation_figure(stats={"d_k": [1]})


def test_positional_encoding_heatmap():
    pos = torch.arange(16.0)[:, None]
    i = torch.arange(0, 8, 2.0)
    pe = torch.zeros(16, 8)
    pe[:, 0::2] = torch.sin(pos / 10000 ** (i / 8))
    pe[:, 1::2] = torch.cos(pos / 10000 ** (i / 8))
    fig = viz.positional_encoding_heatmap(pe)
    np.testing.assert_allclose(fig.data[0].z, pe.numpy(), atol=1e-7)
    assert fig.layout.xaxis.title.text.startswith("embedding dimension")
    assert fig.layout.yaxis.title.text.startswith("position")
    assert "16 positions" in fig.layout.title.text
    with pytest.raises(ValueError, match="2-D"):
        viz.positional_encoding_heatmap(torch.zeros(8))
    with pytest.raises(ValueError, match="NaN"):
        viz.positional_encoding_heatmap(torch.full((2, 2), float("nan")))


def test_embedding_projection():
    # points on a line in 5-D: PC1 explains everything
    t = torch.linspace(-1, 1, 6)[:, None]
    x = t * torch.tensor([[1.0, 2.0, 0.0, 0.0, -1.0]]) + 3.0
    fig = viz.embedding_projection(x, list("abcdef"))
    tr = fig.data[0]
    assert list(tr.text) == list("abcdef") and "text" in tr.mode
    np.testing.assert_allclose(np.abs(tr.x), np.abs(t[:, 0].numpy()) * math.sqrt(6), atol=1e-6)
    np.testing.assert_allclose(tr.y, 0, atol=1e-6)
    assert fig.layout.xaxis.title.text == "PC1 (100.0% of variance)"
    assert fig.layout.yaxis.title.text.startswith("PC2")
    coords, ratio = viz.pca_project(torch.randn(20, 4, generator=torch.Generator().manual_seed(0)))
    assert coords.shape == (20, 2) and ratio[0] >= ratio[1] and ratio.sum() <= 1 + 1e-9
    fig2 = viz.embedding_projection(torch.randn(4, 3), ["a", "b", "c", "d"], groups=["x", "x", "y", "y"])
    assert [t.name for t in fig2.data] == ["x", "y"]
    with pytest.raises(ValueError, match="3 labels for 4"):
        viz.embedding_projection(torch.randn(4, 3), ["a", "b", "c"])
    with pytest.raises(ValueError, match="NaN"):
        viz.embedding_projection(torch.tensor([[1.0, float("nan")], [0.0, 1.0]]), ["a", "b"])
    with pytest.raises(ValueError, match="2-D"):
        viz.embedding_projection(torch.randn(4), list("abcd"))


def test_confusion_matrix_figure():
    y_true = [0, 0, 0, 1, 1, 2]
    y_pred = [0, 1, 0, 1, 1, 0]
    m = viz.confusion_counts(y_true, y_pred)
    np.testing.assert_array_equal(m, [[2, 1, 0], [0, 2, 0], [1, 0, 0]])
    fig = viz.confusion_matrix_figure(torch.tensor(y_true), np.array(y_pred), class_names=["neg", "pos", "obj"])
    np.testing.assert_array_equal(fig.data[0].z, m)
    assert list(fig.data[0].x) == ["neg", "pos", "obj"]
    assert fig.layout.xaxis.title.text == "predicted class" and fig.layout.yaxis.title.text == "true class"
    assert "accuracy 66.7%" in fig.layout.title.text
    assert fig.data[0].text[0][1].startswith("1")
    fig_n = viz.confusion_matrix_figure(y_true, y_pred, normalize=True)
    np.testing.assert_allclose(np.asarray(fig_n.data[0].z).sum(1), [1, 1, 1])
    with pytest.raises(ValueError, match="same length"):
        viz.confusion_matrix_figure([0, 1], [0])
    with pytest.raises(ValueError, match="integer"):
        viz.confusion_matrix_figure([0, 0.5], [0, 1])
    with pytest.raises(ValueError, match="out of range"):
        viz.confusion_matrix_figure([0, 2], [0, 1], class_names=["a", "b"])
    with pytest.raises(ValueError, match="NaN"):
        viz.confusion_matrix_figure([0, float("nan")], [0, 1])


def test_learning_curves():
    results = {"pretrained": {0.1: [0.70, 0.74], 1.0: [0.80, 0.80]},
               "from scratch": {1.0: [0.75, 0.77, 0.76], 0.1: [0.60]}}
    fig = viz.learning_curves(results)
    pre, scratch = fig.data
    assert pre.name == "pretrained" and list(pre.x) == [0.1, 1.0]
    np.testing.assert_allclose(pre.y, [0.72, 0.80])
    np.testing.assert_allclose(pre.error_y.array, [np.std([0.70, 0.74], ddof=1), 0.0], atol=1e-12)
    assert list(scratch.x) == [0.1, 1.0] and scratch.error_y.array[0] == 0.0
    assert fig.layout.xaxis.title.text.startswith("fraction of labelled") and fig.layout.xaxis.type == "log"
    assert fig.layout.yaxis.title.text == "accuracy"
    rows = [{"regime": "probe", "fraction": 0.5, "accuracy": a} for a in (0.6, 0.7)]
    fig2 = viz.learning_curves(rows)
    assert fig2.data[0].name == "probe" and fig2.data[0].y[0] == pytest.approx(0.65)
    for bad, words in [({}, "empty"), ({"a": {0.0: [0.5]}}, "fractions"), ({"a": {0.5: [float("nan")]}}, "NaN"),
                       ([{"regime": "a"}], "keys"), ({"a": [0.5]}, "expected a non-empty dict")]:
        with pytest.raises(ValueError, match=words):
            viz.learning_curves(bad)
