"""An offline attention explorer for course_lib's BERT: ipywidgets controls + plotly FigureWidgets.

    from course_lib import load_pretrained
    from course_lib.viz import attention_explorer
    model, tok = load_pretrained()
    attention_explorer(model, tok, "the cat sat on the mat .", "it was tired .")

Three views of the same forward pass:
- head view: one layer/head as a heatmap (query tokens down, key tokens across; hover shows both and the weight);
- model view: every layer × head as small multiples; clicking one opens it in the head view;
- query/key view: for one query token, its scaled score q·k/√d_k against every key next to the softmax weight.
The query/key scores are recomputed from the layer's input `out.hidden_states[l]` through the layer's own
`attention.query` / `attention.key` Linear layers, so softmax(scores) is the model's attention (checked in tests).

The model runs only when the text changes (results are cached); selector changes only restyle the figures
in place (`fig.batch_update()`). Nothing is fetched from the internet: plotly's JavaScript ships with the
plotly Python package (anywidget) and the widgets with ipywidgets.
"""
from __future__ import annotations

import base64
import html
import math
import time
from collections import OrderedDict
from dataclasses import dataclass

import ipywidgets as w
import numpy as np
import plotly.graph_objects as go
import torch
from plotly.colors import sample_colorscale
from plotly.subplots import make_subplots

from .plots import ATTENTION_COLORSCALE, unique_labels

__all__ = ["AttentionData", "AttentionExplorer", "as_array", "compute_attention", "mosaic", "typed_array"]

MAX_TILE = 40  # the model view pools longer inputs to at most this many rows/columns per head


# ----------------------------------------------------------------------------------------------
# the model side: tokens, attention probabilities, q·k/√d_k
# ----------------------------------------------------------------------------------------------
@dataclass
class AttentionData:
    """Everything the explorer draws for one input. Arrays are float32 numpy, indexed [layer, head, query, key]."""

    text: str
    text_pair: str | None
    tokens: list[str]
    input_ids: list[int]
    token_type_ids: list[int]
    special: np.ndarray  # (n,) bool: [CLS], [SEP], [PAD] ...
    attentions: np.ndarray  # (L, H, n, n) the model's attention probabilities
    scores: np.ndarray  # (L, H, n, n) q·k/√d_k before the mask and softmax
    mask: np.ndarray  # (n,) bool: key may be attended to (padding mask)
    num_tokens_before_truncation: int
    max_length: int
    seconds: float = 0.0

    @property
    def truncated(self) -> bool:
        return self.num_tokens_before_truncation > len(self.tokens)

    @property
    def num_layers(self) -> int:
        return self.attentions.shape[0]

    @property
    def num_heads(self) -> int:
        return self.attentions.shape[1]

    def softmax_of_scores(self) -> np.ndarray:
        """softmax over keys of the masked scores: equals `attentions` (what the query/key view shows)."""
        s = torch.from_numpy(self.scores).double()
        s = s.masked_fill(~torch.from_numpy(self.mask)[None, None, None, :], float("-inf"))
        return torch.softmax(s, dim=-1).float().numpy()


def _encoder_parts(model):
    """(bert, layers, query/key getters, num_heads, max_length) for course_lib or transformers BERTs."""
    bert = getattr(model, "bert", model)
    encoder = getattr(bert, "encoder", None)
    layers = getattr(encoder, "layers", None) if encoder is not None else None
    if layers is None and encoder is not None:
        layers = getattr(encoder, "layer", None)  # transformers' BertEncoder
    config = getattr(bert, "config", None) or getattr(model, "config", None)
    if layers is None or config is None:
        raise TypeError(f"attention_explorer needs a course_lib BertModel / BertForPreTraining / "
                        f"BertForSequenceClassification (something with .bert.encoder.layers), got "
                        f"{type(model).__name__}")
    heads = getattr(config, "num_heads", None) or getattr(config, "num_attention_heads")

    def projections(layer):
        att = layer.attention
        att = getattr(att, "self", att)  # transformers: layer.attention.self.query
        return att.query, att.key

    return bert, list(layers), projections, int(heads), int(config.max_position_embeddings)


@torch.no_grad()
def compute_attention(model, tokenizer, text: str, text_pair: str | None = None,
                      max_length: int | None = None) -> AttentionData:
    """Run `model` on one input; return tokens, attention probabilities and q·k/√d_k of every layer/head.

    Inputs longer than the model's maximum length (or `max_length`) are truncated; the result records
    how many tokens there were before truncation. Raises ValueError for empty text.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError("the text is empty: type a sentence to see its attention")
    pair = text_pair if isinstance(text_pair, str) and text_pair.strip() else None
    bert, layers, projections, num_heads, model_max = _encoder_parts(model)
    limit = model_max if max_length is None else min(int(max_length), model_max)
    start = time.perf_counter()
    full = tokenizer(text, pair, add_special_tokens=True, verbose=False)["input_ids"]
    if len(full) > limit:
        enc = tokenizer(text, pair, truncation=True, max_length=limit, return_tensors="pt")
    else:
        enc = tokenizer(text, pair, return_tensors="pt")
    param = next(bert.parameters())
    inputs = {k: enc[k].to(param.device) for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc}
    was_training = bert.training
    bert.eval()  # no dropout: softmax(q·k/√d_k) must equal the drawn probabilities
    try:
        out = bert(**inputs, output_attentions=True, output_hidden_states=True)
    finally:
        bert.train(was_training)
    if not out.attentions or any(a is None for a in out.attentions) or not out.hidden_states:
        raise ValueError("the model returned no attention weights; a transformers model must be loaded with "
                         "attn_implementation='eager' to return them")
    attentions = torch.stack([a[0] for a in out.attentions]).float()  # (L, H, n, n)
    scores = []
    for layer, hidden in zip(layers, out.hidden_states):
        wq, wk = projections(layer)
        q, k = wq(hidden), wk(hidden)  # (1, n, hidden)
        n, d_model = q.shape[1], q.shape[2]
        q = q.view(1, n, num_heads, d_model // num_heads).transpose(1, 2)  # split_heads
        k = k.view(1, n, num_heads, d_model // num_heads).transpose(1, 2)
        scores.append((q @ k.transpose(-2, -1))[0] / math.sqrt(d_model // num_heads))
    scores = torch.stack(scores).float()
    ids = enc["input_ids"][0].tolist()
    mask = enc["attention_mask"][0].bool() if "attention_mask" in enc else torch.ones(len(ids), dtype=torch.bool)
    special_ids = set(getattr(tokenizer, "all_special_ids", []) or [])
    tokens = tokenizer.convert_ids_to_tokens(ids)
    types = enc["token_type_ids"][0].tolist() if "token_type_ids" in enc else [0] * len(ids)
    return AttentionData(
        text=text, text_pair=pair, tokens=list(tokens), input_ids=ids, token_type_ids=types,
        special=np.array([i in special_ids for i in ids], dtype=bool),
        attentions=attentions.cpu().numpy(), scores=scores.cpu().numpy(), mask=mask.cpu().numpy(),
        num_tokens_before_truncation=len(full), max_length=limit, seconds=time.perf_counter() - start,
    )


def typed_array(a, dtype: str = "float32") -> dict:
    """A plotly.js typed-array spec ({dtype, bdata (base64), shape}) of `a`.

    Plotly passes it to the browser as one base64 string: no per-number validation, list conversion or JSON
    of thousands of floats, which keeps a redraw fast; float32 values arrive bit-exact.
    """
    a = np.ascontiguousarray(a, dtype=dtype)
    spec = {"dtype": {"float32": "f4", "float64": "f8"}[dtype], "bdata": base64.b64encode(a.tobytes()).decode("ascii")}
    if a.ndim > 1:
        spec["shape"] = ", ".join(str(s) for s in a.shape)
    return spec


def as_array(value) -> np.ndarray:
    """The numbers of a figure property: decodes a typed-array spec, or converts a list / array."""
    if isinstance(value, dict) and "bdata" in value:
        dtype = {"f4": np.float32, "f8": np.float64, "float32": np.float32, "float64": np.float64}[value["dtype"]]
        a = np.frombuffer(base64.b64decode(value["bdata"]), dtype=dtype)
        if value.get("shape"):
            a = a.reshape([int(s) for s in str(value["shape"]).split(",")])
        return a
    return np.asarray(value)


def _pool(a: np.ndarray, bins: int) -> np.ndarray:
    """Average the last two axes of `a` down to (bins, bins) (nearly equal contiguous blocks)."""
    n = a.shape[-1]
    if n <= bins:
        return a
    starts = np.linspace(0, n, bins + 1).astype(int)[:-1]
    counts = np.diff(np.append(starts, n))
    a = np.add.reduceat(a, starts, axis=-1) / counts
    return np.add.reduceat(a, starts, axis=-2) / counts[:, None]


def tile_size(n: int, num_heads: int, plot_px: int = 400, px_per_cell: float = 3.0, max_tile: int = MAX_TILE) -> int:
    """Rows/columns per model-view tile: no finer than about `px_per_cell` screen pixels per cell."""
    return max(1, min(n, max_tile, max(4, int(plot_px / num_heads / px_per_cell))))


def mosaic(weights: np.ndarray, tile: int | None = None) -> tuple[np.ndarray, int]:
    """Tile (L, H, n, n) weights into one (L·b, H·b) grid: row block = layer, column block = head.

    Inputs longer than the tile size b (default `tile_size(n, H)`) are average-pooled to b × b blocks.
    """
    L, H, n, m = weights.shape
    b = tile_size(n, H) if tile is None else max(1, min(int(tile), n))
    tiles = _pool(weights.astype(np.float64), b)
    grid = tiles.transpose(0, 2, 1, 3).reshape(L * b, H * b)
    return grid, b


# ----------------------------------------------------------------------------------------------
# the widget
# ----------------------------------------------------------------------------------------------
def _safe(method):
    """Run a widget callback; any exception becomes a message in the widget instead of a traceback."""

    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - shown to the learner, never raised into the frontend
            self._show_error(f"{type(exc).__name__}: {exc}")
            return None

    wrapper.__name__ = method.__name__
    wrapper.__doc__ = method.__doc__
    return wrapper


def _label(tok: str, i: int) -> str:
    return f"{i}: {tok}"


_CSS = """
<style>
.ce-title {font-size: 15px; font-weight: 600; margin: 2px 0 0 0;}
.ce-sub {color: #555; font-size: 12px;}
</style>
"""
_MSG = "padding: 6px 10px; border-radius: 4px; margin: 2px 0; font-size: 13px; line-height: 1.4;"
_ERROR = "background: #fdecea; border-left: 4px solid #d62728; color: #611a15;"
_NOTICE = "background: #fff4e5; border-left: 4px solid #ff9800; color: #663c00;"


class AttentionExplorer(w.VBox):
    """The attention explorer: an ipywidgets VBox (show it as a cell's last expression or with `display`).

    Programmatic control (what the UI does): `set_text(text, text_pair=None)`, `select(layer=, head=,
    query=)`, `open_cell(layer, head)` (a click in the model view), `set_options(hide_special=, average=)`.
    Bad values are reported in the widget's message area (`message_text`), never raised.
    Figures: `head_fig`, `model_fig`, `qk_fig` (plotly FigureWidgets); `data` is the current AttentionData.
    """

    def __init__(self, model, tokenizer, text: str = "the cat sat on the mat because it was tired .",
                 text_pair: str | None = None, layer: int = 0, head: int = 0, query: int | None = None,
                 max_length: int | None = None, hide_special: bool = False, average: bool = False,
                 cache_size: int = 16):
        super().__init__(layout=w.Layout(width="990px"))
        self.model, self.tokenizer, self.max_length = model, tokenizer, max_length
        _, layers, _, self.num_heads, model_max = _encoder_parts(model)
        self.num_layers = len(layers)
        self.model_max_length = model_max if max_length is None else min(max_length, model_max)
        self._cache: OrderedDict = OrderedDict()
        self._cache_size = cache_size
        self._busy = False  # True while the explorer itself sets widget values
        self._error = ""
        self.data: AttentionData | None = None
        self._visible: np.ndarray = np.zeros(0, dtype=int)
        self._tile = 1
        self.last_update_seconds = 0.0

        d_k = None
        try:
            cfg = getattr(getattr(model, "bert", model), "config")
            d_k = cfg.hidden_size // self.num_heads
        except Exception:  # noqa: BLE001
            pass
        # ---- controls
        self.title = w.HTML(
            _CSS + f"<div class='ce-title'>Attention explorer</div><div class='ce-sub'>{self.num_layers} layers × "
            f"{self.num_heads} heads" + (f", d_k = {d_k}" if d_k else "") +
            f", at most {self.model_max_length} tokens. Edit a sentence and press Enter; click a cell of the model "
            "view to open that head.</div>")
        wide = w.Layout(width="470px")
        self.text_box = w.Text(value=text or "", description="Sentence A", continuous_update=False,
                               placeholder="type a sentence and press Enter", layout=wide)
        self.pair_box = w.Text(value=text_pair or "", description="Sentence B", continuous_update=False,
                               placeholder="(optional) a second sentence", layout=wide)
        self.layer_slider = w.IntSlider(value=0, min=0, max=max(0, self.num_layers - 1), description="layer",
                                        continuous_update=True, layout=w.Layout(width="300px"))
        self.head_slider = w.IntSlider(value=0, min=0, max=max(0, self.num_heads - 1), description="head",
                                       continuous_update=True, layout=w.Layout(width="300px"))
        self.query_dropdown = w.Dropdown(options=[], description="query token", layout=w.Layout(width="300px"))
        self.average_box = w.Checkbox(value=average, description="average over heads", indent=False,
                                      layout=w.Layout(width="180px"))
        self.hide_box = w.Checkbox(value=hide_special, description="hide [CLS]/[SEP]", indent=False,
                                   layout=w.Layout(width="180px"))
        self.message = w.HTML("")
        self.status = w.HTML("")

        # ---- figures (trace data is replaced in place later)
        self.head_fig = go.FigureWidget(
            data=[go.Heatmap(z=[[0.0]], x=[""], y=[""], colorscale=ATTENTION_COLORSCALE, zmin=0.0, zmax=1.0, zauto=False,
                             colorbar=dict(title=dict(text="weight"), thickness=10, len=0.8),
                             hovertemplate="query: %{y}<br>key: %{x}<br>weight: %{z:.3f}<extra></extra>")],
            layout=dict(template="plotly_white", width=480, height=480, margin=dict(l=90, r=10, t=46, b=90),
                        title=dict(text="head view", font=dict(size=14)),
                        xaxis=dict(title=dict(text="key token (attended to)"), type="category", tickangle=-60,
                                   automargin=True),
                        yaxis=dict(title=dict(text="query token (attending)"), type="category",
                                   autorange="reversed", automargin=True)))
        self.model_fig = go.FigureWidget(
            data=[go.Heatmap(z=[[0.0]], x=["."], y=["."], colorscale=ATTENTION_COLORSCALE, zmin=0.0, showscale=False,
                             hovertemplate="%{y}<br>%{x}<br>weight: %{z:.3f}<extra>click to open</extra>")],
            layout=dict(template="plotly_white", width=480, height=480, margin=dict(l=70, r=10, t=46, b=40),
                        title=dict(text="model view", font=dict(size=14)),
                        xaxis=dict(type="category", showgrid=False, side="top", tickangle=0, title=dict(text="")),
                        yaxis=dict(type="category", showgrid=False, autorange="reversed", title=dict(text="")),
                        plot_bgcolor="white"))
        qk = make_subplots(rows=1, cols=2, horizontal_spacing=0.1, subplot_titles=(
            "scaled score q·k/√d_k", "attention weight softmax(q·k/√d_k)"))
        qk.add_trace(go.Bar(x=[""], y=[0.0], marker=dict(color=["#5b7083"]), name="score",
                            hovertemplate="key: %{x}<br>q·k/√d_k = %{y:.3f}<extra></extra>"), row=1, col=1)
        qk.add_trace(go.Bar(x=[""], y=[0.0], marker=dict(color=["#6baed6"], line=dict(color="#08306b", width=0.5)),
                            name="weight", hovertemplate="key: %{x}<br>weight = %{y:.3f}<extra></extra>"),
                     row=1, col=2)
        qk.update_xaxes(title_text="key token", type="category", tickangle=-60, automargin=True)
        qk.update_yaxes(title_text="score (unitless)", row=1, col=1)
        qk.update_yaxes(title_text="weight (the row sums to 1)", rangemode="tozero", row=1, col=2)
        qk.update_layout(template="plotly_white", width=970, height=360, showlegend=False,
                         margin=dict(l=60, r=10, t=80, b=90), title=dict(text="query/key view", font=dict(size=14)))
        self.qk_fig = go.FigureWidget(qk)
        self.model_fig.data[0].on_click(self._on_model_click)
        # a click selects, a drag does nothing (no accidental zoom); no toolbar over the small figures
        self.model_fig.layout.dragmode = False
        for fig in (self.head_fig, self.model_fig, self.qk_fig):
            fig._config = {"displayModeBar": False, "displaylogo": False}

        row = w.Layout(align_items="center", flex_flow="row wrap")
        self.children = [
            self.title,
            w.HBox([self.text_box, self.pair_box], layout=row),
            w.HBox([self.layer_slider, self.head_slider, self.query_dropdown], layout=row),
            w.HBox([self.average_box, self.hide_box, self.status], layout=row),
            self.message,
            w.HBox([self.head_fig, self.model_fig], layout=row),
            self.qk_fig,
        ]

        for box in (self.text_box, self.pair_box):
            box.observe(self._on_text, names="value")
        self.layer_slider.observe(self._on_select, names="value")
        self.head_slider.observe(self._on_select, names="value")
        self.query_dropdown.observe(self._on_query, names="value")
        self.average_box.observe(self._on_options, names="value")
        self.hide_box.observe(self._on_options, names="value")

        self._run(first=True)
        if layer or head or query is not None:
            self.select(layer=layer, head=head, query=query)

    # ---- state -----------------------------------------------------------------------------
    @property
    def layer(self) -> int:
        return int(self.layer_slider.value)

    @property
    def head(self) -> int:
        return int(self.head_slider.value)

    @property
    def query(self) -> int | None:
        """Position (in the full token sequence, specials included) of the query token."""
        v = self.query_dropdown.value
        return None if v is None else int(v)

    @property
    def tokens(self) -> list[str]:
        """All tokens of the current input (including [CLS]/[SEP])."""
        return [] if self.data is None else list(self.data.tokens)

    @property
    def visible_positions(self) -> list[int]:
        """Token positions currently drawn (all, or all but [CLS]/[SEP] when hidden)."""
        return self._visible.tolist()

    @property
    def message_text(self) -> str:
        """The message area as plain text ('' when there is nothing to say)."""
        import re

        return html.unescape(re.sub(r"<[^>]+>", " ", self.message.value)).strip()

    # ---- programmatic control ---------------------------------------------------------------
    def set_text(self, text: str, text_pair: str | None = None):
        """Replace the sentence(s), as typing them would (re-runs the model unless cached)."""
        self._busy = True
        try:
            self.text_box.value = "" if text is None else str(text)
            self.pair_box.value = "" if text_pair is None else str(text_pair)
        finally:
            self._busy = False
        self._run()

    def select(self, layer: int | None = None, head: int | None = None, query: int | None = None) -> bool:
        """Choose the layer, head and/or query token position. Out-of-range values leave the view as it
        was and show a message; returns whether the selection was applied."""
        problems = []
        if layer is not None and not self._valid(layer, self.num_layers):
            problems.append(f"layer {layer!r} does not exist: choose 0 to {self.num_layers - 1}")
        if head is not None and not self._valid(head, self.num_heads):
            problems.append(f"head {head!r} does not exist: choose 0 to {self.num_heads - 1}")
        if query is not None:
            n = len(self.tokens)
            if not self._valid(query, n):
                problems.append(f"query token {query!r} does not exist: this input has positions 0 to {n - 1}")
            elif int(query) not in set(self.visible_positions):
                problems.append(f"query token {query} ({self.tokens[int(query)]}) is hidden: untick 'hide [CLS]/[SEP]'")
        if problems:
            self._show_error("; ".join(problems) + ".")
            return False
        self._busy = True
        try:
            if layer is not None:
                self.layer_slider.value = int(layer)
            if head is not None:
                self.head_slider.value = int(head)
            if query is not None:
                self.query_dropdown.value = int(query)
        finally:
            self._busy = False
        self._clear_error()
        self._redraw(model_view=False)
        return True

    def open_cell(self, layer: int, head: int) -> bool:
        """What a click on the model view does: show that layer/head (a single head) in the head view."""
        if self.average_box.value and self._valid(layer, self.num_layers) and self._valid(head, self.num_heads):
            self._busy = True
            self.average_box.value = False
            self._busy = False
        return self.select(layer=layer, head=head)

    def set_options(self, hide_special: bool | None = None, average: bool | None = None):
        """Tick/untick 'hide [CLS]/[SEP]' and 'average over heads'."""
        self._busy = True
        try:
            if hide_special is not None:
                self.hide_box.value = bool(hide_special)
            if average is not None:
                self.average_box.value = bool(average)
        finally:
            self._busy = False
        self._on_options(None)

    # ---- callbacks ---------------------------------------------------------------------------
    @_safe
    def _on_text(self, change):
        if not self._busy:
            self._run()

    @_safe
    def _on_select(self, change):
        if not self._busy:
            self._clear_error()
            self._redraw(model_view=False)

    @_safe
    def _on_query(self, change):
        if not self._busy:
            self._redraw(model_view=False)

    @_safe
    def _on_options(self, change):
        if self._busy or self.data is None:
            return
        self._clear_error()
        self._set_visible()
        self._redraw(model_view=True)

    @_safe
    def _on_model_click(self, trace, points, state):
        if not points.point_inds and not points.xs:
            return  # plotly dispatches every click to every trace
        row = col = None
        if points.point_inds and isinstance(points.point_inds[0], (list, tuple)):
            row, col = points.point_inds[0][0], points.point_inds[0][1]
        elif points.xs and points.ys:
            xs, ys = list(trace.x), list(trace.y)
            if points.xs[0] in xs and points.ys[0] in ys:
                row, col = ys.index(points.ys[0]), xs.index(points.xs[0])
        if row is None:
            return
        self.open_cell(int(row) // self._tile, int(col) // self._tile)

    # ---- internals ---------------------------------------------------------------------------
    @staticmethod
    def _valid(i, n) -> bool:
        return isinstance(i, (int, np.integer)) and not isinstance(i, bool) and 0 <= int(i) < n

    def _show_error(self, text: str):
        self._error = text
        self._render_message()

    def _clear_error(self):
        if self._error:
            self._error = ""
            self._render_message()

    def _render_message(self):
        parts = []
        if self._error:
            parts.append(f"<div style='{_MSG}{_ERROR}'>⚠ {html.escape(self._error)}</div>")
        d = self.data
        if d is not None and d.truncated:
            parts.append(f"<div style='{_MSG}{_NOTICE}'>The input has {d.num_tokens_before_truncation} tokens; the "
                         f"model reads at most {d.max_length}, so it was truncated to the first {len(d.tokens)} "
                         "(the tokens after that are not shown).</div>")
        self.message.value = "".join(parts)

    @_safe
    def _run(self, first: bool = False):
        """Text changed: tokenise + run the model (or use the cache), then redraw everything."""
        start = time.perf_counter()
        text, pair = self.text_box.value, self.pair_box.value.strip() or None
        if not text.strip():
            self._show_error("The sentence is empty: type some text in 'Sentence A' and press Enter"
                             + (" (still showing the previous input)." if self.data is not None else "."))
            return
        key = (text, pair)
        data = self._cache.get(key)
        if data is None:
            data = compute_attention(self.model, self.tokenizer, text, pair, max_length=self.max_length)
            self._cache[key] = data
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        self.data = data
        self._error = ""
        self._set_visible()
        self._redraw(model_view=True)
        self._render_message()
        self.last_update_seconds = time.perf_counter() - start

    def _set_visible(self):
        d = self.data
        keep = np.arange(len(d.tokens))
        keep = keep[d.mask]  # never draw padding
        if self.hide_box.value:
            keep = keep[~d.special[keep]]
            if keep.size == 0:
                keep = np.arange(len(d.tokens))[d.mask]
                self._show_error("Every token is [CLS]/[SEP]: nothing left to show with them hidden.")
        self._visible = keep
        # query token options: the visible tokens; keep the current query if it is still there
        options = [(_label(d.tokens[i], int(i)), int(i)) for i in keep]
        current = self.query_dropdown.value
        default = next((int(i) for i in keep if not d.special[i]), int(keep[0]))
        value = current if current in set(keep.tolist()) else default
        self._busy = True
        try:
            self.query_dropdown.options = options
            self.query_dropdown.value = value
        finally:
            self._busy = False

    def _redraw(self, model_view: bool = True):
        d = self.data
        if d is None:
            return
        start = time.perf_counter()
        keep = self._visible
        sub = np.ix_(keep, keep)
        labels = unique_labels([d.tokens[i] for i in keep])
        L, H, q = self.layer, self.head, self.query
        A = d.attentions[L]
        avg = bool(self.average_box.value)
        head_z = A.mean(0)[sub] if avg else A[H][sub]
        q_row = int(np.flatnonzero(keep == q)[0]) if q in set(keep.tolist()) else 0
        n = len(keep)
        which = f"layer {L}, average of {self.num_heads} heads" if avg else f"layer {L}, head {H}"
        with self.head_fig.batch_update():
            t = self.head_fig.data[0]
            t.z, t.x, t.y = typed_array(head_z), labels, labels
            t.zmax = float(max(head_z.max(), 1e-6))  # colour scale from 0 to this head's largest weight
            self.head_fig.layout.title.text = f"head view: {which}"
            self.head_fig.layout.shapes = [dict(type="rect", xref="x", yref="y", x0=-0.5, x1=n - 0.5,
                                                y0=q_row - 0.5, y1=q_row + 0.5, line=dict(color="#ff7f0e", width=2))]
        # query/key view: always a single head (the one selected), because scores differ per head
        scores = d.scores[L, H, q, keep]
        masked = ~d.mask[keep]
        weights = d.attentions[L, H, q, keep]
        with self.qk_fig.batch_update():
            s, p = self.qk_fig.data
            s.x, s.y = labels, np.where(masked, 0.0, scores)
            top = int(np.argmax(np.where(masked, -np.inf, scores))) if len(scores) else 0
            s.marker.color = ["#ff7f0e" if j == top else "#5b7083" for j in range(len(scores))]
            p.x, p.y = labels, weights
            # colours of the head view's scale (0 .. this row's largest weight), computed here so the
            # browser only receives plain colour strings
            top_w = float(max(1e-6, weights.max()))
            p.marker.color = sample_colorscale(ATTENTION_COLORSCALE, np.clip(0.15 + 0.85 * weights / top_w, 0, 1).tolist())
            hidden = (f"; [CLS]/[SEP] hidden, so the shown weights sum to {weights.sum():.3f}"
                      if self.hide_box.value else "")
            self.qk_fig.layout.title.text = (f"query/key view: layer {L}, head {H}, query token "
                                             f"{html.escape(repr(d.tokens[q]))} (position {q}){hidden}")
        self._draw_model_view(rebuild=model_view)
        self.status.value = (f"<span class='ce-sub'>{len(d.tokens)} tokens · model {1000 * d.seconds:.0f} ms · "
                             f"draw {1000 * (time.perf_counter() - start):.0f} ms</span>")

    def _draw_model_view(self, rebuild: bool):
        d = self.data
        keep = self._visible
        L_all, H_all = self.num_layers, self.num_heads
        with self.model_fig.batch_update():
            if rebuild:
                W = d.attentions[:, :, keep][:, :, :, keep]
                z, b = mosaic(W)
                self._tile = b
                n = len(keep)
                if b == n:
                    ktxt = [f"key {keep[j]}: {d.tokens[keep[j]]}" for j in range(n)]
                    qtxt = [f"query {keep[i]}: {d.tokens[keep[i]]}" for i in range(n)]
                else:  # pooled: each cell is the mean over a block of queries x keys
                    edges = np.linspace(0, n, b + 1).astype(int)
                    ktxt = [f"keys {keep[edges[j]]}-{keep[edges[j + 1] - 1]}" for j in range(b)]
                    qtxt = [f"queries {keep[edges[j]]}-{keep[edges[j + 1] - 1]}" for j in range(b)]
                xs = [f"head {h} · {t}" for h in range(H_all) for t in ktxt]
                ys = [f"layer {lay} · {t}" for lay in range(L_all) for t in qtxt]
                t = self.model_fig.data[0]
                t.z, t.x, t.y = typed_array(z), xs, ys
                centre = (b - 1) // 2
                xa, ya = self.model_fig.layout.xaxis, self.model_fig.layout.yaxis
                xa.tickvals = [xs[h * b + centre] for h in range(H_all)]
                xa.ticktext = [f"head {h}" for h in range(H_all)]
                ya.tickvals = [ys[lay * b + centre] for lay in range(L_all)]
                ya.ticktext = [f"layer {lay}" for lay in range(L_all)]
                sub = f"<br><sup>{n} tokens pooled to {b}×{b} blocks</sup>" if b < n else ""
                self.model_fig.layout.title.text = f"model view: click a head{sub}"
            b = self._tile
            L, H = self.layer, self.head
            # white lines between the tiles, then an orange frame around the selected layer/head
            sep = dict(type="line", xref="x", yref="y", line=dict(color="white", width=4), layer="above")
            shapes = [dict(sep, x0=k * b - 0.5, x1=k * b - 0.5, y0=-0.5, y1=L_all * b - 0.5) for k in range(1, H_all)]
            shapes += [dict(sep, y0=k * b - 0.5, y1=k * b - 0.5, x0=-0.5, x1=H_all * b - 0.5) for k in range(1, L_all)]
            x0, x1 = (-0.5, H_all * b - 0.5) if self.average_box.value else (H * b - 0.5, (H + 1) * b - 0.5)
            shapes.append(dict(type="rect", xref="x", yref="y", x0=x0, x1=x1, y0=L * b - 0.5, y1=(L + 1) * b - 0.5,
                               line=dict(color="#ff7f0e", width=3), layer="above"))
            self.model_fig.layout.shapes = shapes

def attention_explorer(model, tokenizer, text: str = "the cat sat on the mat because it was tired .",
                       text_pair: str | None = None, **kwargs) -> AttentionExplorer:
    """See `AttentionExplorer`."""
    return AttentionExplorer(model, tokenizer, text=text, text_pair=text_pair, **kwargs)
