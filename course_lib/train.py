"""The training loop every chapter and command shares.

AdamW with a linear warm-up / decay schedule, gradient clipping and accumulation, bf16 autocast on CUDA,
a `tqdm.auto` progress bar, periodic evaluation and a history the plots read. A run is planned either in
steps or in wall-clock seconds: with `time_budget_s` the schedule follows the fraction of the budget used,
so a two-minute live demo warms up, decays and stops on time on any machine. Under `torchrun` the same
loop trains data-parallel with DistributedDataParallel (NCCL on GPUs, gloo on CPUs).
"""
import json
import math
import os
import time
from pathlib import Path

import torch
import torch.distributed as dist
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from .runtime import device as best_device
from .runtime import set_seed
from .gpt import CausalLMOutput
from .model import ClassifierOutput, PreTrainingOutput


def linear_warmup_decay(step, warmup_steps, total_steps) -> float:
    """Learning-rate multiplier: 0 -> 1 linearly over the warm-up, then 1 -> 0 at `total_steps`, 0 afterwards.

    Same values as transformers' `get_linear_schedule_with_warmup`; also works with fractions of a run
    (step=0.3, warmup_steps=0.06, total_steps=1.0).
    """
    if step < warmup_steps:
        return step / warmup_steps
    if total_steps <= warmup_steps:
        return 0.0
    return max(0.0, (total_steps - step) / (total_steps - warmup_steps))


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of rows whose highest logit is the label."""
    return (logits.argmax(dim=-1) == labels.view(-1).to(logits.device)).float().mean().item()


def make_optimizer(model, lr: float, weight_decay: float = 0.01, betas=(0.9, 0.98), eps: float = 1e-6):
    """torch's AdamW, without weight decay on biases and LayerNorm weights (as BERT does)."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (no_decay if param.dim() < 2 else decay).append(param)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=eps)


def to_device(batch: dict, dev) -> dict:
    """The tensors of a batch dict moved to `dev` (other values as they are)."""
    return {k: v.to(dev, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def _autocast(dev):
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=dev.type == "cuda")


@torch.no_grad()
def evaluate(model, loader, device=None, max_batches: int | None = None) -> dict:
    """Loss and accuracies over `loader`, weighted by what each metric counts (masked tokens, sentences).

    Pretraining models give loss, mlm_loss, mlm_accuracy, nsp_loss, nsp_accuracy; classifiers loss, accuracy;
    causal language models loss (per predicted token) and perplexity = exp(loss).
    """
    dev = torch.device(device) if device is not None else next(model.parameters()).device
    was_training = model.training
    model.eval()
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    causal_lm = False

    def add(name, value, count):
        sums[name] = sums.get(name, 0.0) + float(value) * count
        counts[name] = counts.get(name, 0) + count

    for i, batch in enumerate(loader):
        if max_batches is not None and i >= max_batches:
            break
        batch = to_device(batch, dev)
        with _autocast(dev):
            out = model(**batch)
        if isinstance(out, PreTrainingOutput):
            labels = batch.get("labels")
            if labels is not None:
                masked = labels[labels != -100]
                if masked.numel():
                    add("mlm_loss", out.mlm_loss, masked.numel())
                    add("mlm_accuracy", accuracy(out.mlm_logits, masked), masked.numel())
            if batch.get("next_sentence_label") is not None:
                n = batch["next_sentence_label"].numel()
                add("nsp_loss", out.nsp_loss, n)
                add("nsp_accuracy", accuracy(out.nsp_logits, batch["next_sentence_label"]), n)
        elif isinstance(out, ClassifierOutput) and batch.get("labels") is not None:
            n = batch["labels"].numel()
            add("loss", out.loss, n)
            add("accuracy", accuracy(out.logits, batch["labels"]), n)
        elif isinstance(out, CausalLMOutput) and batch.get("labels") is not None:
            causal_lm = True
            add("loss", out.loss, _predicted_tokens(batch["labels"], batch.get("attention_mask")))
    model.train(was_training)
    metrics = {name: sums[name] / counts[name] for name in sums}
    if "mlm_loss" in metrics or "nsp_loss" in metrics:
        metrics["loss"] = metrics.get("mlm_loss", 0.0) + metrics.get("nsp_loss", 0.0)
    if causal_lm and "loss" in metrics:
        metrics["perplexity"] = math.exp(metrics["loss"])
    return metrics


def _predicted_tokens(labels: torch.Tensor, attention_mask: torch.Tensor | None) -> int:
    """How many next-token predictions a causal LM's mean loss averaged (as `GPTLMHeadModel.next_token_loss`)."""
    counted = labels[:, 1:] != -100
    if attention_mask is not None:
        mask = attention_mask[:, -labels.shape[1]:].bool()
        counted &= mask[:, 1:] & mask[:, :-1]
    return int(counted.sum())


def _distributed() -> bool:
    """Start the process group when launched by torchrun (WORLD_SIZE > 1)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return True


def _all_true(flag: bool, dev) -> bool:
    """Every process agrees to stop when one of them has run out of time."""
    if not dist.is_initialized():
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=dev)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def train(model, train_loader, eval_loader=None, *, lr: float = 1e-3, weight_decay: float = 0.01,
          warmup: float = 0.06, max_steps: int | None = None, epochs: int | None = None,
          time_budget_s: float | None = None, eval_every: int | None = None, eval_batches: int | None = None,
          max_grad_norm: float | None = 1.0, grad_accum_steps: int = 1, log_every: int = 10, device=None,
          seed: int = 0, progress: bool = True, checkpoint_dir=None, checkpoint_every_s: float = 600,
          optimizer=None, description: str = "training") -> list[dict]:
    """Train `model` (any course_lib model: batches are dicts passed as `model(**batch)`, which returns `.loss`).

    Length: `max_steps`, or `epochs` over `train_loader`, or `time_budget_s` seconds (whichever ends first; at
    least one must be given). `warmup` is the fraction of the run spent warming up. Returns the history: one
    dict per `log_every` optimizer steps (step, loss, lr, tokens_per_s, elapsed_s, and mlm_loss / nsp_loss for
    pretraining) and one per evaluation (step, elapsed_s, eval_*). With `checkpoint_dir`, the run saves its state
    there every `checkpoint_every_s` seconds and at the end, and a later call with the same directory resumes.
    """
    if max_steps is None and epochs is None and time_budget_s is None:
        raise ValueError("say how long to train: give max_steps, epochs or time_budget_s")
    if epochs is not None and max_steps is None:
        # an epoch ends with a step on its leftover batches (see below), so it has ceil(len / accum) steps
        max_steps = math.ceil(epochs * math.ceil(len(train_loader) / grad_accum_steps))
    distributed = _distributed()
    rank = dist.get_rank() if distributed else 0
    if device is None:
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0))) if distributed and torch.cuda.is_available() \
            else best_device()
    else:
        dev = torch.device(device)
    set_seed(seed)
    model.to(dev).train()
    optimizer = optimizer or make_optimizer(model, lr, weight_decay)
    for group in optimizer.param_groups:
        group.setdefault("initial_lr", group["lr"])
    step, elapsed_before, history = 0, 0.0, []
    if checkpoint_dir is not None and (Path(checkpoint_dir) / "trainer_state.json").exists():
        step, elapsed_before, history = load_training_state(checkpoint_dir, model, optimizer, train_loader)
        set_seed(seed + step)  # dropout masks after a resume are seeded too
    wrapped = torch.nn.parallel.DistributedDataParallel(model) if distributed else model

    def progress_fraction(elapsed):
        fractions = []
        if max_steps is not None:
            fractions.append(step / max_steps)
        if time_budget_s is not None:
            fractions.append(elapsed / time_budget_s)
        return max(fractions)

    by_time = max_steps is None
    bar = tqdm(total=int(time_budget_s) if by_time else max_steps, initial=int(elapsed_before) if by_time else step,
               desc=description, disable=not progress or rank != 0,
               unit="step", dynamic_ncols=True,
               bar_format="{l_bar}{bar}| {n}/{total} s [{elapsed}<{remaining}{postfix}]" if by_time else None)
    start = time.perf_counter() - elapsed_before
    last_log, last_save, window = time.perf_counter(), time.perf_counter(), {"loss": 0.0, "n": 0, "tokens": 0}
    extra_losses = {}

    def optimizer_step(n_batches: int) -> bool:
        """One update from the `n_batches` accumulated batches; returns whether the run is over."""
        nonlocal step, window, extra_losses, last_log, last_save
        if n_batches < grad_accum_steps:  # a short group at the end of an epoch: make it their mean gradient
            for param in model.parameters():
                if param.grad is not None:
                    param.grad.mul_(grad_accum_steps / n_batches)
        elapsed = time.perf_counter() - start
        multiplier = linear_warmup_decay(progress_fraction(elapsed), warmup, 1.0)
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"] * multiplier
        if max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        window["n"] += 1
        elapsed = time.perf_counter() - start
        if not by_time:
            bar.update(1)
        else:
            bar.update(min(int(elapsed), bar.total) - bar.n)
        if step % log_every == 0:
            now = time.perf_counter()
            row = {"step": step, "loss": window["loss"] / window["n"], "lr": optimizer.param_groups[0]["lr"],
                   "tokens_per_s": window["tokens"] * (dist.get_world_size() if distributed else 1)
                   / max(now - last_log, 1e-9), "elapsed_s": elapsed}
            row.update({k: total / count for k, (total, count) in extra_losses.items()})
            history.append(row)
            bar.set_postfix(loss=f"{row['loss']:.3f}", lr=f"{row['lr']:.2e}")
            window, extra_losses, last_log = {"loss": 0.0, "n": 0, "tokens": 0}, {}, now
        if eval_loader is not None and eval_every and step % eval_every == 0:
            history.append(_eval_row(model, eval_loader, dev, eval_batches, step, elapsed))
        if checkpoint_dir is not None and rank == 0 and time.perf_counter() - last_save > checkpoint_every_s:
            save_training_state(checkpoint_dir, model, optimizer, step, elapsed, history, train_loader)
            last_save = time.perf_counter()
        return _all_true(progress_fraction(elapsed) >= 1.0, dev)

    done = progress_fraction(elapsed_before) >= 1.0
    while not done:
        pending, pending_loss = 0, 0.0  # batches (and their summed loss) accumulated since the last step
        for batch in train_loader:
            batch = to_device(batch, dev)
            with _autocast(dev):
                out = wrapped(**batch)
            (out.loss / grad_accum_steps).backward()
            pending, pending_loss = pending + 1, pending_loss + out.loss.item()
            window["tokens"] += int(batch["attention_mask"].sum()) if "attention_mask" in batch \
                else batch["input_ids"].numel()
            for name in ("mlm_loss", "nsp_loss"):  # averaged over the batches that have them (MLM-only ones lack NSP)
                value = getattr(out, name, None)
                if value is not None:
                    total, count = extra_losses.get(name, (0.0, 0))
                    extra_losses[name] = (total + value.item(), count + 1)
            if pending < grad_accum_steps:
                continue
            window["loss"] += pending_loss / pending
            done = optimizer_step(pending)
            pending, pending_loss = 0, 0.0
            if done:
                break
        if pending and not done:
            # The epoch ended `pending` batches short of a full accumulation. Step on them (as their mean
            # gradient), as transformers' Trainer does, rather than zero them: every example then counts once
            # per epoch (with few batches per epoch a dropped tail would be a real share of the data), and no
            # gradient crosses into the next epoch, whose first step would otherwise average more batches
            # than `grad_accum_steps`, some of them from the epoch before.
            window["loss"] += pending_loss / pending
            done = optimizer_step(pending)
    model.zero_grad(set_to_none=True)  # a run stopped mid-accumulation leaves nothing for the next one
    bar.close()
    elapsed = time.perf_counter() - start
    if eval_loader is not None and (not history or "eval_loss" not in history[-1]):
        history.append(_eval_row(model, eval_loader, dev, eval_batches, step, elapsed))
    if checkpoint_dir is not None and rank == 0:
        save_training_state(checkpoint_dir, model, optimizer, step, elapsed, history, train_loader)
    model.eval()
    return history


def _eval_row(model, loader, dev, max_batches, step, elapsed) -> dict:
    metrics = evaluate(model, loader, dev, max_batches)
    return {"step": step, "elapsed_s": elapsed, **{f"eval_{k}": v for k, v in metrics.items()}}


def save_training_state(directory, model, optimizer, step: int, elapsed_s: float, history: list,
                        loader=None) -> None:
    """Model, optimizer moments and progress (and the data loader's position, when it can tell it) as
    safetensors + JSON (no pickle), written atomically."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {f"model.{k}": v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    state = optimizer.state_dict()
    for index, param_state in state["state"].items():
        for key, value in param_state.items():
            tensors[f"optimizer.{index}.{key}"] = torch.as_tensor(value).detach().contiguous().cpu()
    save_file(tensors, directory / "trainer_state.safetensors.tmp")
    os.replace(directory / "trainer_state.safetensors.tmp", directory / "trainer_state.safetensors")
    meta = {"step": step, "elapsed_s": elapsed_s, "history": history,
            "loader": loader.state_dict() if hasattr(loader, "state_dict") else None,
            "param_groups": [{k: v for k, v in g.items() if k != "params"} | {"params": g["params"]}
                             for g in state["param_groups"]]}
    (directory / "trainer_state.json.tmp").write_text(json.dumps(meta))
    os.replace(directory / "trainer_state.json.tmp", directory / "trainer_state.json")


def load_training_state(directory, model, optimizer, loader=None):
    """Restore what `save_training_state` wrote; returns (step, elapsed_s, history)."""
    directory = Path(directory)
    meta = json.loads((directory / "trainer_state.json").read_text())
    tensors = load_file(directory / "trainer_state.safetensors")
    model.load_state_dict({k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")})
    optimizer_state: dict = {}
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, index, name = key.split(".", 2)
            optimizer_state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": optimizer_state, "param_groups": meta["param_groups"]})
    if meta.get("loader") is not None and hasattr(loader, "load_state_dict"):
        loader.load_state_dict(meta["loader"])
    return meta["step"], meta["elapsed_s"], meta["history"]
