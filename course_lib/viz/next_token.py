"""An offline next-token explorer for course_lib's GPT: type a prompt, see what the model would write next.

    from course_lib.checkpoint import load_pretrained_gpt
    from course_lib.tokenizer import load_gpt_tokenizer
    from course_lib.viz import next_token_explorer
    next_token_explorer(load_pretrained_gpt(), load_gpt_tokenizer(), "The old man walked")

One bar chart: the most likely next tokens and their probabilities under the current temperature, top-k and
top-p (course_lib.generation.next_token_distribution, the distribution `generate` samples from). A token that
the filters cut is drawn grey at the probability it had before them, so what top-k / top-p remove is visible.
Clicking a bar, or one of the token buttons under the chart, appends that token to the prompt and goes on.

The model runs only when the prompt changes (the last position's logits are cached); moving a slider only
recomputes the filters and restyles the figure in place. Nothing is fetched from the internet.
"""
from __future__ import annotations

import html
import math
import time
from collections import OrderedDict
from dataclasses import dataclass

import ipywidgets as w
import numpy as np
import plotly.graph_objects as go
import torch
import torch.nn.functional as F

from ..generation import next_token_distribution
from .explorer import _safe

__all__ = ["NextTokenData", "NextTokenExplorer", "next_token_data", "token_label"]

KEPT_COLOR, CUT_COLOR = "#1f77b4", "#c7c7c7"


def token_label(tokenizer, token_id: int) -> str:
    """How a token reads on an axis: its text with a leading space shown as '␣' and a newline as '⏎'."""
    text = tokenizer.decode([int(token_id)])
    return text.replace(" ", "␣").replace("\n", "⏎") or f"<{int(token_id)}>"


@dataclass
class NextTokenData:
    """The next-token distribution after one prompt, under one setting of the filters."""

    prompt: str
    num_prompt_tokens: int
    token_ids: list[int]    # the shown tokens, most likely first (by probability before the filters)
    labels: list[str]
    before: np.ndarray      # their probabilities at this temperature, before top-k / top-p
    after: np.ndarray       # their probabilities to sample from (0 where a filter cut them)
    num_kept: int           # how many tokens of the whole vocabulary the filters keep
    entropy_bits: float     # entropy of the distribution to sample from
    seconds: float = 0.0


@torch.no_grad()
def _last_logits(model, tokenizer, prompt: str, max_tokens: int) -> tuple[torch.Tensor, int]:
    ids = tokenizer(prompt, return_tensors="pt")["input_ids"][:, -max_tokens:]
    if ids.shape[1] == 0:
        raise ValueError("the prompt is empty: type some text")
    device = next(model.parameters()).device
    # the LM head on the last position only: the logits of the other positions are not shown, and on a CPU the
    # (n x V) head costs more than the layers below it
    last_hidden = model.transformer(ids.to(device)).last_hidden_state[0, -1]
    return F.linear(last_hidden, model.transformer.token_embeddings.weight).float().cpu(), ids.shape[1]


def next_token_data(model, tokenizer, prompt: str, temperature: float = 1.0, top_k: int | None = None,
                    top_p: float | None = None, num_shown: int = 15, logits: torch.Tensor | None = None) -> NextTokenData:
    """The `num_shown` most likely next tokens after `prompt`, with their probabilities before and after the
    filters. `logits` (V,): the last position's logits if already computed (the explorer's cache)."""
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    start = time.perf_counter()
    n = None
    if logits is None:
        logits, n = _last_logits(model, tokenizer, prompt, model.config.max_position_embeddings)
    before = next_token_distribution(logits, temperature)
    after = next_token_distribution(logits, temperature, top_k, top_p)
    shown = torch.topk(before, min(num_shown, before.numel())).indices
    nonzero = after[after > 0]
    entropy = float(-(nonzero * nonzero.log2()).sum())
    return NextTokenData(prompt=prompt, num_prompt_tokens=n if n is not None else -1, token_ids=shown.tolist(),
                         labels=[token_label(tokenizer, i) for i in shown.tolist()], before=before[shown].numpy(),
                         after=after[shown].numpy(), num_kept=int((after > 0).sum()), entropy_bits=entropy,
                         seconds=time.perf_counter() - start)


_MSG = "padding: 6px 10px; border-radius: 4px; margin: 2px 0; font-size: 13px;"
_ERROR = "background: #fdecea; border-left: 4px solid #d62728; color: #611a15;"


class NextTokenExplorer(w.VBox):
    """The next-token explorer: an ipywidgets VBox (show it as a cell's last expression or with `display`).

    Programmatic control (what the UI does): `set_prompt(text)`, `set_filters(temperature=, top_k=, top_p=)`
    (top_k 0 and top_p 1 mean off), `append(i)` (a click on the i-th bar or button). Bad values are reported in
    the widget's message area (`message_text`), never raised. `fig` is the plotly FigureWidget, `data` the
    current NextTokenData, `last_update_seconds` the time the last update took.
    """

    def __init__(self, model, tokenizer, prompt: str = "The old man walked", temperature: float = 1.0,
                 top_k: int = 0, top_p: float = 1.0, num_shown: int = 15, cache_size: int = 32):
        super().__init__(layout=w.Layout(width="900px"))
        self.model, self.tokenizer, self.num_shown = model, tokenizer, num_shown
        self._cache: OrderedDict = OrderedDict()
        self._cache_size = cache_size
        self._busy = False   # True while the explorer itself sets widget values
        self._error = ""
        self.data: NextTokenData | None = None
        self.last_update_seconds = 0.0
        vocab = model.config.vocab_size

        self.title = w.HTML(
            "<div style='font-size: 15px; font-weight: 600'>Next-token explorer</div><div style='color: #555; "
            f"font-size: 12px'>A vocabulary of {vocab:,} tokens. Edit the prompt and press Enter; move the sliders; "
            "click a bar or a button to append that token. Grey bars: cut by top-k / top-p (drawn at their "
            "probability before the filters).</div>")
        self.prompt_box = w.Textarea(value=prompt, description="prompt", continuous_update=False,
                                     layout=w.Layout(width="860px", height="60px"))
        self.run_button = w.Button(description="predict", tooltip="run the model on the prompt (or press Enter)",
                                   layout=w.Layout(width="90px"))
        self.temperature_slider = w.FloatLogSlider(value=temperature, base=10, min=-1.5, max=1, step=0.05,
                                                   description="temperature", readout_format=".2f",
                                                   continuous_update=True, layout=w.Layout(width="320px"))
        self.top_k_slider = w.IntSlider(value=top_k, min=0, max=min(vocab, 100), description="top-k (0 off)",
                                        continuous_update=True, layout=w.Layout(width="280px"),
                                        style={"description_width": "90px"})
        self.top_p_slider = w.FloatSlider(value=top_p, min=0.05, max=1.0, step=0.05, description="top-p (1 off)",
                                          readout_format=".2f", continuous_update=True,
                                          layout=w.Layout(width="280px"), style={"description_width": "90px"})
        self.message = w.HTML("")
        self.status = w.HTML("")
        self.buttons = [w.Button(layout=w.Layout(width="auto")) for _ in range(min(8, num_shown))]
        self.fig = go.FigureWidget(
            data=[go.Bar(x=[0.0], y=[""], orientation="h", marker=dict(color=[KEPT_COLOR]),
                         customdata=[[0.0, 0.0]],
                         hovertemplate="%{y}<br>to sample from: %{customdata[0]:.4f}<br>before the filters: "
                                       "%{customdata[1]:.4f}<extra>click to append</extra>")],
            layout=dict(template="plotly_white", width=860, height=460, margin=dict(l=120, r=20, t=50, b=50),
                        title=dict(text="next token", font=dict(size=14)),
                        xaxis=dict(title=dict(text="probability"), rangemode="tozero"),
                        yaxis=dict(type="category", autorange="reversed", automargin=True)))
        self.fig.layout.dragmode = False
        self.fig._config = {"displayModeBar": False, "displaylogo": False}
        self.fig.data[0].on_click(self._on_bar_click)

        row = w.Layout(align_items="center", flex_flow="row wrap")
        self.children = [self.title, w.HBox([self.prompt_box], layout=row),
                         w.HBox([self.temperature_slider, self.top_k_slider, self.top_p_slider, self.run_button],
                                layout=row),
                         self.message, self.fig, w.HBox(self.buttons, layout=row), self.status]
        self.prompt_box.observe(self._on_prompt, names="value")
        self.run_button.on_click(lambda _: self._update())
        for slider in (self.temperature_slider, self.top_k_slider, self.top_p_slider):
            slider.observe(self._on_filters, names="value")
        for i, button in enumerate(self.buttons):
            button.on_click(lambda _, i=i: self.append(i))
        self._update()

    # ---- state ----------------------------------------------------------------------------
    @property
    def message_text(self) -> str:
        return self._error

    @property
    def filters(self) -> tuple[float, int | None, float | None]:
        k, p = self.top_k_slider.value, self.top_p_slider.value
        return self.temperature_slider.value, (k or None), (p if p < 1.0 else None)

    # ---- programmatic control (what the UI does) ------------------------------------------
    def set_prompt(self, text: str):
        self.prompt_box.value = text  # the observer updates the chart

    def set_filters(self, temperature: float | None = None, top_k: int | None = None, top_p: float | None = None):
        self._busy = True
        try:
            if temperature is not None:
                self.temperature_slider.value = temperature
            if top_k is not None:
                self.top_k_slider.value = top_k
            if top_p is not None:
                self.top_p_slider.value = top_p
        finally:
            self._busy = False
        self._update()

    @_safe
    def append(self, i: int):
        """Append the i-th shown token (0 = the most likely) to the prompt and predict again."""
        d = self.data
        if d is None or not 0 <= int(i) < len(d.token_ids):
            raise ValueError(f"there is no token {i} to append")
        self.prompt_box.value = d.prompt + self.tokenizer.decode([d.token_ids[int(i)]])

    # ---- callbacks ------------------------------------------------------------------------
    def _on_prompt(self, change):
        if not self._busy:
            self._update()

    def _on_filters(self, change):
        if not self._busy:
            self._update()

    def _on_bar_click(self, trace, points, state):
        if points.point_inds:
            self.append(points.point_inds[0])

    def _show_error(self, text: str):
        self._error = text
        self.message.value = f"<div style='{_MSG}{_ERROR}'>⚠ {html.escape(text)}</div>"

    @_safe
    def _update(self):
        """Prompt or filters changed: the logits (cached per prompt), the filters, then the chart in place."""
        start = time.perf_counter()
        prompt = self.prompt_box.value
        if not prompt.strip():
            self._show_error("The prompt is empty: type some text and press Enter"
                             + (" (still showing the previous prompt)." if self.data is not None else "."))
            return
        cached = self._cache.get(prompt)
        if cached is None:
            cached = _last_logits(self.model, self.tokenizer, prompt, self.model.config.max_position_embeddings)
            self._cache[prompt] = cached
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(prompt)
        logits, n = cached
        temperature, top_k, top_p = self.filters
        d = next_token_data(self.model, self.tokenizer, prompt, temperature, top_k, top_p, self.num_shown,
                            logits=logits)
        d.num_prompt_tokens = n
        self.data = d
        kept = d.after > 0
        with self.fig.batch_update():
            bar = self.fig.data[0]
            # plain lists of Python floats: the widget sends them as JSON (float32 arrays did not reach the browser)
            bar.x = np.where(kept, d.after, d.before).astype(float).tolist()
            bar.y = [f"{i + 1}. {label}" for i, label in enumerate(d.labels)]
            bar.marker.color = [KEPT_COLOR if k else CUT_COLOR for k in kept]
            bar.customdata = np.stack([d.after, d.before], axis=1).astype(float).tolist()
            self.fig.layout.title.text = (
                f"next token after {n} prompt tokens: T = {temperature:.2f}, top-k {top_k or 'off'}, top-p "
                f"{top_p if top_p is not None else 'off'}; {d.num_kept:,} tokens kept, entropy "
                f"{d.entropy_bits:.2f} bits")
        for button, label, p in zip(self.buttons, d.labels, d.after):
            button.description = f"+ {label}"
            button.tooltip = f"append this token (probability {p:.3f})"
            button.disabled = not p > 0
        self._error = ""
        self.message.value = ""
        self.last_update_seconds = time.perf_counter() - start
        self.status.value = (f"<span style='color: #555; font-size: 12px'>updated in "
                             f"{1000 * self.last_update_seconds:.0f} ms; perplexity of the shown distribution "
                             f"{math.pow(2, d.entropy_bits):.1f}</span>")
