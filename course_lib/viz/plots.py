"""Plotly figures used across the chapters.

Every helper takes plain data (torch tensors, numpy arrays or lists), checks it, and returns a
`plotly.graph_objects.Figure` with labelled axes. Bad input (wrong shape, NaN, empty) raises a
`ValueError` that says what was expected, so a learner sees the mistake instead of an empty plot.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from numbers import Number

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

__all__ = [
    "attention_heatmap",
    "training_history",
    "softmax_saturation_stats",
    "softmax_saturation_figure",
    "positional_encoding_heatmap",
    "pca_project",
    "embedding_projection",
    "confusion_counts",
    "confusion_matrix_figure",
    "learning_curves",
    "unique_labels",
    "ATTENTION_COLORSCALE",
]

TEMPLATE = "plotly_white"
ATTENTION_COLORSCALE = "Blues"
# Train vs eval: the same colour for the same quantity, solid for training and dashed + markers for eval.
_PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]


# ----------------------------------------------------------------------------------------------
# input checking
# ----------------------------------------------------------------------------------------------
def _to_numpy(x, what: str, ndim: int | tuple[int, ...] | None = None) -> np.ndarray:
    """`x` (tensor / array / nested list) as a float64 numpy array, checked for shape and finiteness."""
    if x is None:
        raise ValueError(f"{what}: got None, expected an array of numbers")
    try:
        import torch

        if isinstance(x, torch.Tensor):
            x = x.detach().to("cpu", torch.float64).numpy()
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what}: could not read it as an array of numbers ({exc})") from None
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else ndim
        if arr.ndim not in allowed:
            want = " or ".join(f"{d}-D" for d in allowed)
            raise ValueError(f"{what}: expected a {want} array, got shape {tuple(arr.shape)}")
    if arr.size == 0:
        raise ValueError(f"{what}: is empty (shape {tuple(arr.shape)})")
    bad = ~np.isfinite(arr)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        kind = "NaN" if np.isnan(arr[where]) else "infinite"
        raise ValueError(f"{what}: contains {int(bad.sum())} NaN/infinite value(s), the first ({kind}) at index {where}")
    return arr


def _check_labels(labels, n: int, what: str) -> list[str] | None:
    if labels is None:
        return None
    labels = [str(t) for t in labels]
    if len(labels) != n:
        raise ValueError(f"{what}: got {len(labels)} labels for {n} rows/columns")
    return labels


def unique_labels(tokens: Sequence[str]) -> list[str]:
    """Tokens made unique for a categorical plotly axis by appending invisible zero-width spaces.

    Plotly merges equal category names, so "the ... the" would collapse into one row; the zero-width
    spaces keep both rows while the axis still reads "the".
    """
    seen: dict[str, int] = {}
    out = []
    for t in tokens:
        t = str(t)
        k = seen.get(t, 0)
        seen[t] = k + 1
        out.append(t + "\u200b" * k)
    return out


# ----------------------------------------------------------------------------------------------
# attention heatmap
# ----------------------------------------------------------------------------------------------
def attention_heatmap(weights, query_tokens=None, key_tokens=None, title: str | None = None,
                      zmax: float | None = 1.0) -> go.Figure:
    """Heatmap of one attention matrix: query tokens down the rows, key tokens along the columns.

    weights: (n_queries, n_keys) attention probabilities (e.g. `out.attentions[layer][0, head]`).
    query_tokens / key_tokens: labels for the rows / columns (default: positions 0, 1, ...);
    `key_tokens` defaults to `query_tokens` for a square matrix.
    zmax: top of the colour scale (1.0 so that different heads are comparable; None = data maximum).
    """
    w = _to_numpy(weights, "attention weights", ndim=2)
    n, m = w.shape
    if key_tokens is None and query_tokens is not None and n == m:
        key_tokens = query_tokens
    q = _check_labels(query_tokens, n, "query_tokens") or [str(i) for i in range(n)]
    k = _check_labels(key_tokens, m, "key_tokens") or [str(j) for j in range(m)]
    fig = go.Figure(go.Heatmap(
        z=w, x=unique_labels(k), y=unique_labels(q), colorscale=ATTENTION_COLORSCALE, zmin=0.0,
        zmax=zmax, colorbar=dict(title=dict(text="weight"), thickness=12),
        hovertemplate="query: %{y}<br>key: %{x}<br>weight: %{z:.3f}<extra></extra>",
    ))
    side = min(900, max(320, 26 * max(n, m) + 160))
    fig.update_layout(
        template=TEMPLATE, title=title or "Attention weights (each row sums to 1)",
        width=side + 60, height=side, margin=dict(l=70, r=20, t=60, b=70),
    )
    fig.update_xaxes(title_text="key token (attended to)", tickangle=-45, side="bottom", type="category")
    fig.update_yaxes(title_text="query token (attending)", autorange="reversed", type="category")
    return fig


# ----------------------------------------------------------------------------------------------
# training history
# ----------------------------------------------------------------------------------------------
def _history_records(history) -> list[dict]:
    """A list of dicts from a list of dicts, a `History`-like object or a dict of lists."""
    if history is None:
        raise ValueError("history: got None, expected a list of dicts such as {'step': 10, 'loss': 3.2}")
    for attr in ("records", "rows", "history", "log"):
        if not isinstance(history, (list, tuple, Mapping)) and hasattr(history, attr):
            history = getattr(history, attr)
            break
    if not isinstance(history, (list, tuple, Mapping)) and hasattr(history, "to_list"):
        history = history.to_list()
    if isinstance(history, Mapping):  # dict of equal-length lists
        keys = list(history)
        lengths = {len(history[k]) for k in keys}
        if len(lengths) != 1:
            raise ValueError(f"history: a dict of lists needs lists of one length, got lengths {sorted(lengths)}")
        history = [{k: history[k][i] for k in keys} for i in range(lengths.pop())]
    try:
        records = list(history)
    except TypeError:
        raise ValueError(f"history: expected a list of dicts, got {type(history).__name__}") from None
    if not records:
        raise ValueError("history: is empty; train for a few steps (or log more often) before plotting")
    for i, r in enumerate(records):
        if not isinstance(r, Mapping):
            raise ValueError(f"history: entry {i} is a {type(r).__name__}, expected a dict like {{'step': 10, 'loss': 3.2}}")
    return [dict(r) for r in records]


def _is_number(v) -> bool:
    if isinstance(v, bool):
        return False
    if isinstance(v, Number):
        return True
    try:
        import torch

        return isinstance(v, torch.Tensor) and v.numel() == 1
    except ImportError:  # pragma: no cover
        return False


_X_KEYS = ("step", "global_step", "iteration", "tokens", "epoch")
_SKIP_KEYS = {"time", "elapsed", "elapsed_s", "wall_time", "timestamp", "seed"}


def _history_group(key: str) -> str:
    base = key[5:] if key.startswith("eval_") else key[4:] if key.startswith("val_") else key
    base = base[6:] if base.startswith("train_") else base
    low = base.lower()
    if "loss" in low or "perplexity" in low or low == "ppl":
        return "loss"
    if "acc" in low or low in ("f1", "precision", "recall"):
        return "accuracy"
    if low in ("lr", "learning_rate") or low.endswith("_lr"):
        return "learning rate"
    if "per_s" in low or "per_sec" in low or "throughput" in low:
        return "throughput"
    if "grad" in low and "norm" in low:
        return "gradient norm"
    return "other"


_GROUP_AXIS = {
    "loss": "loss (nats)",
    "accuracy": "accuracy",
    "learning rate": "learning rate",
    "throughput": "throughput (per second)",
    "gradient norm": "gradient norm",
    "other": "value",
}
_GROUP_ORDER = ["loss", "accuracy", "learning rate", "throughput", "gradient norm", "other"]


def training_history(history, x: str | None = None, title: str | None = None) -> go.Figure:
    """Curves of a training run: one panel per kind of quantity, training solid, evaluation dashed.

    history: the trainer's history, a list of dicts such as
        {"step": 100, "loss": 4.1, "lr": 1e-3, "tokens_per_s": 6000}
        {"step": 100, "eval_loss": 4.3, "eval_mlm_accuracy": 0.11, "eval_nsp_accuracy": 0.7}
    (a `History` object with `.records`, or a dict of equal-length lists, also works). Every numeric
    key is plotted; keys starting with "eval_" / "val_" are evaluation curves. Panels: loss,
    accuracy, learning rate, throughput, gradient norm, other. Entries may hold different keys
    (evaluation is usually logged less often).
    x: the key for the x axis (default: the first of step / global_step / iteration / tokens / epoch
    present, else the entry's index).
    """
    records = _history_records(history)
    if x is None:
        x = next((k for k in _X_KEYS if any(k in r for r in records)), None)
    elif not any(x in r for r in records):
        raise ValueError(f"history: no entry has the x key {x!r}; keys present: {sorted({k for r in records for k in r})}")
    series: dict[str, tuple[list, list]] = {}
    for i, r in enumerate(records):
        xv = r.get(x, None) if x else i
        if x and xv is None:
            continue
        if x and not _is_number(xv):
            raise ValueError(f"history: entry {i} has a non-numeric {x!r}: {xv!r}")
        for k, v in r.items():
            if k == x or k in _SKIP_KEYS or not _is_number(v):
                continue
            v = float(v)
            if not math.isfinite(v):
                raise ValueError(f"history: {k!r} is {'NaN' if math.isnan(v) else v} at {x or 'entry'} {xv} (entry {i}); "
                                 "the run diverged or a metric divided by zero, fix it before plotting")
            xs, ys = series.setdefault(k, ([], []))
            xs.append(float(xv))
            ys.append(v)
    if not series:
        raise ValueError("history: no numeric values to plot; expected entries like {'step': 10, 'loss': 3.2}")
    groups: dict[str, list[str]] = {}
    for k in series:
        groups.setdefault(_history_group(k), []).append(k)
    names = [g for g in _GROUP_ORDER if g in groups]
    cols = 1 if len(names) == 1 else 2
    rows = math.ceil(len(names) / cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=names, horizontal_spacing=0.12,
                        vertical_spacing=0.18 if rows > 1 else 0.1)
    colour_of: dict[str, str] = {}
    for gi, g in enumerate(names):
        row, col = gi // cols + 1, gi % cols + 1
        for k in sorted(groups[g], key=lambda s: (s.startswith(("eval_", "val_")), s)):
            xs, ys = series[k]
            is_eval = k.startswith(("eval_", "val_"))
            base = k.split("_", 1)[1] if is_eval else k
            base = base[6:] if base.startswith("train_") else base
            colour = colour_of.setdefault(base, _PALETTE[len(colour_of) % len(_PALETTE)])
            fig.add_trace(go.Scatter(
                x=xs, y=ys, name=k, legendgroup=base,
                mode="lines+markers" if is_eval or len(xs) < 3 else "lines",
                line=dict(color=colour, dash="dash" if is_eval else "solid"),
                hovertemplate=f"{k}<br>{x or 'entry'} %{{x}}: %{{y:.4g}}<extra></extra>",
            ), row=row, col=col)
        fig.update_xaxes(title_text=(x or "log entry").replace("_", " "), row=row, col=col)
        fig.update_yaxes(title_text=_GROUP_AXIS[g], row=row, col=col)
        if g == "learning rate":
            fig.update_yaxes(exponentformat="e", row=row, col=col)
        if g == "accuracy":
            fig.update_yaxes(tickformat=".0%", row=row, col=col)
    fig.update_layout(template=TEMPLATE, title=title or "Training history (solid: training, dashed: evaluation)",
                      height=320 * rows + 80, width=980 if cols == 2 else 640,
                      legend=dict(orientation="h", y=-0.12 if rows == 1 else -0.06))
    return fig


# ----------------------------------------------------------------------------------------------
# softmax saturation and the sqrt(d_k) scaling
# ----------------------------------------------------------------------------------------------
def _check_dks(d_ks) -> list[int]:
    try:
        d_ks = [int(d) for d in d_ks]
    except (TypeError, ValueError):
        raise ValueError(f"d_ks: expected a list of positive integers, got {d_ks!r}") from None
    if not d_ks or any(d <= 0 for d in d_ks):
        raise ValueError(f"d_ks: expected a non-empty list of positive integers, got {d_ks!r}")
    return sorted(set(d_ks))


def softmax_saturation_stats(d_ks=(4, 16, 64, 256, 1024), num_keys: int = 16, num_samples: int = 2000,
                             seed: int = 0) -> dict[str, list[float]]:
    """The numbers behind `softmax_saturation_figure`, measured with random q and k ~ N(0, 1).

    For each d_k: the variance of the raw dot products q·k (about d_k) and of q·k/√d_k (about 1);
    the mean largest softmax weight over `num_keys` keys (near 1 = saturated, one key takes all);
    and the mean gradient norm of the softmax (near 0 when saturated: learning stalls).
    Returns a dict of lists keyed "d_k", "var_raw", "var_scaled", "max_weight_raw",
    "max_weight_scaled", "grad_raw", "grad_scaled".
    """
    import torch

    d_ks = _check_dks(d_ks)
    if int(num_keys) < 2 or int(num_samples) < 2:
        raise ValueError(f"num_keys and num_samples must be at least 2, got {num_keys} and {num_samples}")
    g = torch.Generator().manual_seed(int(seed))
    out: dict[str, list[float]] = {k: [] for k in ("d_k", "var_raw", "var_scaled", "max_weight_raw",
                                                   "max_weight_scaled", "grad_raw", "grad_scaled")}
    for d in d_ks:
        q = torch.randn(num_samples, 1, d, generator=g, dtype=torch.float64)
        k = torch.randn(num_samples, num_keys, d, generator=g, dtype=torch.float64)
        raw = (q * k).sum(-1)  # (samples, keys)
        out["d_k"].append(d)
        for name, s in (("raw", raw), ("scaled", raw / math.sqrt(d))):
            p = torch.softmax(s, dim=-1)
            # Jacobian of softmax: diag(p) - p p^T; its Frobenius norm measures how much gradient flows.
            jac = torch.diag_embed(p) - p.unsqueeze(-1) * p.unsqueeze(-2)
            out[f"var_{name}"].append(float(s.var()))
            out[f"max_weight_{name}"].append(float(p.max(-1).values.mean()))
            out[f"grad_{name}"].append(float(torch.linalg.matrix_norm(jac).mean()))
    return out


def softmax_saturation_figure(d_ks=(4, 16, 64, 256, 1024), num_keys: int = 16, num_samples: int = 2000,
                              seed: int = 0, stats: Mapping | None = None) -> go.Figure:
    """Why attention divides by √d_k: three panels against d_k (log scale), unscaled vs scaled.

    1. variance of the scores q·k (grows like d_k) vs q·k/√d_k (stays near 1);
    2. mean largest softmax weight (unscaled scores saturate towards 1: one key takes all);
    3. mean norm of the softmax Jacobian (saturation kills the gradient).
    `stats`: a dict as returned by `softmax_saturation_stats` (e.g. measured by the learner); computed
    from the other arguments when omitted.
    """
    s = dict(stats) if stats is not None else softmax_saturation_stats(d_ks, num_keys, num_samples, seed)
    need = ("d_k", "var_raw", "var_scaled", "max_weight_raw", "max_weight_scaled", "grad_raw", "grad_scaled")
    missing = [k for k in need if k not in s]
    if missing:
        raise ValueError(f"stats: missing keys {missing}; use softmax_saturation_stats() to make them")
    d = _to_numpy(s["d_k"], "stats['d_k']", ndim=1)
    if (d <= 0).any():
        raise ValueError(f"stats['d_k']: d_k must be positive, got {d.tolist()}")
    for k in need[1:]:
        v = _to_numpy(s[k], f"stats[{k!r}]", ndim=1)
        if v.shape != d.shape:
            raise ValueError(f"stats[{k!r}]: has {v.size} values for {d.size} values of d_k")
    fig = make_subplots(rows=1, cols=3, horizontal_spacing=0.09, subplot_titles=(
        "variance of the scores", "largest softmax weight", "softmax gradient (Jacobian norm)"))
    styles = {"raw": ("q·k (unscaled)", "#d62728"), "scaled": ("q·k / √d_k (scaled)", "#1f77b4")}
    for col, (key, axis) in enumerate((("var", "variance"), ("max_weight", "mean max weight"),
                                       ("grad", "mean ‖∂softmax/∂score‖")), start=1):
        for name, (label, colour) in styles.items():
            fig.add_trace(go.Scatter(
                x=d, y=s[f"{key}_{name}"], name=label, legendgroup=name, showlegend=col == 1,
                mode="lines+markers", line=dict(color=colour),
                hovertemplate=f"{label}<br>d_k %{{x}}: %{{y:.3g}}<extra></extra>"), row=1, col=col)
        fig.update_xaxes(title_text="d_k (dimensions per head)", type="log", row=1, col=col)
        fig.update_yaxes(title_text=axis, row=1, col=col)
    fig.update_yaxes(type="log", row=1, col=1)
    fig.update_yaxes(range=[0, 1.05], row=1, col=2)
    fig.update_layout(template=TEMPLATE, width=1100, height=400,
                      title="Softmax saturation: why attention divides the scores by √d_k",
                      legend=dict(orientation="h", y=-0.22))
    return fig


# ----------------------------------------------------------------------------------------------
# positions and embeddings
# ----------------------------------------------------------------------------------------------
def positional_encoding_heatmap(pe, title: str | None = None) -> go.Figure:
    """Heatmap of positional encodings: positions down the rows, embedding dimensions along the columns.

    pe: (positions, dim), e.g. `model.bert.embeddings.position_embeddings.weight[:64]` or a sinusoidal table.
    """
    arr = _to_numpy(pe, "positional encodings", ndim=2)
    lim = float(np.abs(arr).max()) or 1.0
    fig = go.Figure(go.Heatmap(
        z=arr, colorscale="RdBu", zmid=0.0, zmin=-lim, zmax=lim,
        colorbar=dict(title=dict(text="value"), thickness=12),
        hovertemplate="position %{y}<br>dimension %{x}<br>value %{z:.3f}<extra></extra>",
    ))
    fig.update_layout(template=TEMPLATE, title=title or f"Positional encodings ({arr.shape[0]} positions × {arr.shape[1]} dimensions)",
                      width=820, height=480)
    fig.update_xaxes(title_text="embedding dimension (index)")
    fig.update_yaxes(title_text="position (token index)", autorange="reversed")
    return fig


def pca_project(embeddings, k: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Project rows onto their top-k principal components.

    Returns (coords (n, k), explained_variance_ratio (k,)). Uses an exact SVD of the centred matrix
    (deterministic; the sign of each component is fixed so that its largest loading is positive).
    """
    import torch

    x = torch.as_tensor(_to_numpy(embeddings, "embeddings", ndim=2))
    n, d = x.shape
    if n < 2:
        raise ValueError(f"embeddings: need at least 2 rows to project, got {n}")
    if not 1 <= k <= min(n, d):
        raise ValueError(f"k: must be between 1 and min(rows, columns) = {min(n, d)}, got {k}")
    xc = x - x.mean(0, keepdim=True)
    u, s, vh = torch.linalg.svd(xc, full_matrices=False)
    comps = vh[:k]
    signs = torch.sign(comps.gather(1, comps.abs().argmax(1, keepdim=True)))
    signs[signs == 0] = 1
    comps = comps * signs
    coords = xc @ comps.T
    var = s ** 2
    total = float(var.sum())
    ratio = (var[:k] / total) if total > 0 else torch.zeros(k, dtype=var.dtype)
    return coords.numpy(), ratio.numpy()


def embedding_projection(embeddings, labels, groups=None, title: str | None = None) -> go.Figure:
    """2-D PCA projection of embedding vectors, each point labelled with its token.

    embeddings: (n, dim), e.g. `model.bert.embeddings.word_embeddings.weight[ids]`.
    labels: n strings (the tokens). groups: optional n group names (one colour per group).
    """
    arr = _to_numpy(embeddings, "embeddings", ndim=2)
    labels = _check_labels(labels, arr.shape[0], "labels")
    if labels is None:
        raise ValueError("labels: give one label (token) per embedding row")
    if groups is not None:
        groups = _check_labels(groups, arr.shape[0], "groups")
    coords, ratio = pca_project(arr, k=2 if min(arr.shape) >= 2 else 1)
    if coords.shape[1] == 1:
        coords = np.concatenate([coords, np.zeros_like(coords)], axis=1)
        ratio = np.concatenate([ratio, [0.0]])
    fig = go.Figure()
    if groups is None:
        fig.add_trace(go.Scatter(x=coords[:, 0], y=coords[:, 1], mode="markers+text", text=labels,
                                 textposition="top center", marker=dict(size=8, color=_PALETTE[0]),
                                 name="tokens", hovertemplate="%{text}<br>PC1 %{x:.3f}<br>PC2 %{y:.3f}<extra></extra>"))
    else:
        for gi, g in enumerate(dict.fromkeys(groups)):
            idx = [i for i, gg in enumerate(groups) if gg == g]
            fig.add_trace(go.Scatter(x=coords[idx, 0], y=coords[idx, 1], mode="markers+text",
                                     text=[labels[i] for i in idx], textposition="top center", name=g,
                                     marker=dict(size=8, color=_PALETTE[gi % len(_PALETTE)]),
                                     hovertemplate=f"%{{text}} ({g})<br>PC1 %{{x:.3f}}<br>PC2 %{{y:.3f}}<extra></extra>"))
    fig.update_layout(template=TEMPLATE, width=760, height=560,
                      title=title or f"PCA projection of {arr.shape[0]} embeddings ({arr.shape[1]} dimensions)")
    fig.update_xaxes(title_text=f"PC1 ({100 * ratio[0]:.1f}% of variance)")
    fig.update_yaxes(title_text=f"PC2 ({100 * ratio[1]:.1f}% of variance)")
    return fig


# ----------------------------------------------------------------------------------------------
# classification results
# ----------------------------------------------------------------------------------------------
def _as_int_labels(y, what: str) -> np.ndarray:
    arr = _to_numpy(y, what, ndim=1)
    if not np.all(arr == np.round(arr)) or (arr < 0).any():
        raise ValueError(f"{what}: expected non-negative integer class ids, got values like {arr[:5].tolist()}")
    return arr.astype(np.int64)


def confusion_counts(y_true, y_pred, num_classes: int | None = None) -> np.ndarray:
    """(num_classes, num_classes) counts: row = true class, column = predicted class."""
    t = _as_int_labels(y_true, "y_true")
    p = _as_int_labels(y_pred, "y_pred")
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred: need the same length, got {t.size} and {p.size}")
    c = int(max(t.max(), p.max())) + 1 if num_classes is None else int(num_classes)
    if max(t.max(), p.max()) >= c:
        raise ValueError(f"class id {int(max(t.max(), p.max()))} is out of range for {c} classes")
    m = np.zeros((c, c), dtype=np.int64)
    np.add.at(m, (t, p), 1)
    return m


def confusion_matrix_figure(y_true, y_pred, class_names=None, normalize: bool = False,
                            title: str | None = None) -> go.Figure:
    """Confusion matrix heatmap with the count (and row percentage) written in each cell.

    y_true, y_pred: integer class ids (tensors, arrays or lists). class_names: one name per class.
    normalize: colour by the fraction of each true class (rows sum to 1) instead of raw counts.
    """
    num = len(class_names) if class_names is not None else None
    m = confusion_counts(y_true, y_pred, num)
    c = m.shape[0]
    names = _check_labels(class_names, c, "class_names") or [str(i) for i in range(c)]
    row = m.sum(1, keepdims=True)
    frac = np.divide(m, row, out=np.zeros_like(m, dtype=np.float64), where=row > 0)
    text = [[f"{m[i, j]}<br>({100 * frac[i, j]:.0f}%)" for j in range(c)] for i in range(c)]
    acc = float(np.trace(m)) / max(1, int(m.sum()))
    fig = go.Figure(go.Heatmap(
        z=frac if normalize else m, x=names, y=names, text=text, texttemplate="%{text}",
        colorscale="Blues", zmin=0, colorbar=dict(title=dict(text="fraction of row" if normalize else "count")),
        hovertemplate="true %{y}<br>predicted %{x}<br>%{text}<extra></extra>",
    ))
    fig.update_layout(template=TEMPLATE, width=520 + 20 * c, height=460 + 20 * c,
                      title=title or f"Confusion matrix (accuracy {100 * acc:.1f}%, n = {int(m.sum())})")
    fig.update_xaxes(title_text="predicted class", type="category")
    fig.update_yaxes(title_text="true class", autorange="reversed", type="category")
    return fig


def _learning_curve_table(results) -> dict[str, dict[float, list[float]]]:
    table: dict[str, dict[float, list[float]]] = {}
    if isinstance(results, Mapping):
        if not results:
            raise ValueError("results: is empty")
        for regime, curve in results.items():
            if not isinstance(curve, Mapping) or not curve:
                raise ValueError(f"results[{regime!r}]: expected a non-empty dict {{fraction: [accuracy per seed, ...]}}, "
                                 f"got {type(curve).__name__}")
            for frac, accs in curve.items():
                vals = [accs] if _is_number(accs) else list(accs)
                table.setdefault(str(regime), {}).setdefault(float(frac), []).extend(vals)
    else:
        try:
            rows = list(results)
        except TypeError:
            raise ValueError(f"results: expected a dict or a list of dicts, got {type(results).__name__}") from None
        if not rows:
            raise ValueError("results: is empty")
        for i, r in enumerate(rows):
            if not isinstance(r, Mapping) or not {"regime", "fraction", "accuracy"} <= set(r):
                raise ValueError(f"results: entry {i} must be a dict with keys 'regime', 'fraction', 'accuracy', got {r!r}")
            table.setdefault(str(r["regime"]), {}).setdefault(float(r["fraction"]), []).append(r["accuracy"])
    return table


def learning_curves(results, title: str | None = None, metric: str = "accuracy", log_x: bool = True) -> go.Figure:
    """Accuracy against the fraction of labelled training data, one line per training regime.

    results: either {regime: {fraction: [accuracy of each seed, ...]}}, e.g.
        {"pretrained": {0.01: [0.61, 0.64], 0.1: [0.72, 0.70], 1.0: [0.77, 0.78]},
         "from scratch": {...}, "frozen encoder (linear probe)": {...}}
    or a list of dicts {"regime": ..., "fraction": ..., "accuracy": ...} (one per run).
    Points are means over runs; error bars are ± one (sample) standard deviation.
    """
    table = _learning_curve_table(results)
    fig = go.Figure()
    for ri, (regime, curve) in enumerate(table.items()):
        fracs = sorted(curve)
        if any(not (0 < f <= 1) for f in fracs):
            raise ValueError(f"results[{regime!r}]: fractions must lie in (0, 1], got {fracs}")
        means, stds, counts = [], [], []
        for f in fracs:
            a = _to_numpy(curve[f], f"results[{regime!r}][{f}]", ndim=1)
            means.append(float(a.mean()))
            stds.append(float(a.std(ddof=1)) if a.size > 1 else 0.0)
            counts.append(int(a.size))
        fig.add_trace(go.Scatter(
            x=fracs, y=means, name=regime, mode="lines+markers",
            error_y=dict(type="data", array=stds, visible=True, thickness=1.5, width=5),
            line=dict(color=_PALETTE[ri % len(_PALETTE)]), customdata=np.stack([stds, counts], axis=1),
            hovertemplate=f"{regime}<br>fraction %{{x:.3g}}<br>{metric} %{{y:.3f}} ± %{{customdata[0]:.3f}}"
                          "<br>runs: %{customdata[1]}<extra></extra>",
        ))
    fig.update_layout(template=TEMPLATE, width=760, height=480,
                      title=title or f"Learning curves: {metric} vs labelled data (mean ± std over runs)")
    fig.update_xaxes(title_text="fraction of labelled training examples used", type="log" if log_x else "linear",
                     tickformat=".0%" if not log_x else None)
    fig.update_yaxes(title_text=metric, tickformat=".0%" if metric == "accuracy" else None)
    return fig
