"""A toy translation task for the encoder-decoder: numbers written as digits -> the same numbers in English words.

"4 0 7" -> "four hundred seven", "1 2 0 5" -> "one thousand two hundred five". Self-made and deterministic (no
download): every number from 0 to `max_number` is one sentence pair, and a seeded shuffle holds some out. The
alignment is obvious to a reader (each word comes from one or two digits), so the trained model's cross-attention
can be checked by eye. Sources are single digits, targets are words; both vocabularies start with the same three
special tokens, so `pad`, `bos` and `eos` have the same ids on both sides.
"""
import random

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

SPECIALS = ["<pad>", "<bos>", "<eos>"]
PAD_ID, BOS_ID, EOS_ID = 0, 1, 2
_ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
         "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
SOURCE_VOCAB = SPECIALS + [str(d) for d in range(10)]
TARGET_VOCAB = SPECIALS + _ONES + _TENS[2:] + ["hundred", "thousand"]


def number_to_words(n: int) -> list[str]:
    """0 <= n <= 9999 in English words, without "and" or hyphens: 407 -> ["four", "hundred", "seven"]."""
    if not 0 <= n <= 9999:
        raise ValueError(f"number_to_words covers 0 .. 9999, got {n}")
    if n < 20:
        return [_ONES[n]]
    words = []
    thousands, rest = divmod(n, 1000)
    hundreds, rest = divmod(rest, 100)
    if thousands:
        words += [_ONES[thousands], "thousand"]
    if hundreds:
        words += [_ONES[hundreds], "hundred"]
    if rest >= 20:
        words.append(_TENS[rest // 10])
        rest %= 10
    if rest:
        words.append(_ONES[rest])
    return words


def translation_pairs(max_number: int = 9999) -> list[tuple[list[str], list[str]]]:
    """(source digits, target words) for every number 0 .. max_number, in order."""
    return [(list(str(n)), number_to_words(n)) for n in range(max_number + 1)]


def split_pairs(pairs, heldout_fraction: float = 0.1, seed: int = 0):
    """A seeded shuffle cut into (train, heldout): the held-out numbers are never seen in training."""
    order = list(range(len(pairs)))
    random.Random(seed).shuffle(order)
    cut = round(len(pairs) * heldout_fraction)
    return [pairs[i] for i in order[cut:]], [pairs[i] for i in order[:cut]]


def encode(tokens, vocab) -> list[int]:
    index = {t: i for i, t in enumerate(vocab)}
    return [index[t] for t in tokens]


def decode(ids, vocab) -> list[str]:
    """Ids -> tokens, stopping at the first EOS and leaving out BOS and padding."""
    out = []
    for i in ids:
        i = int(i)
        if i == EOS_ID:
            break
        if i not in (PAD_ID, BOS_ID):
            out.append(vocab[i])
    return out


def shift_right(target_ids: torch.Tensor, start_id: int) -> torch.Tensor:
    """Teacher forcing's decoder input: (B, n) targets -> [start, y1, .., y_{n-1}] per row."""
    start = target_ids.new_full((target_ids.shape[0], 1), start_id)
    return torch.cat([start, target_ids[:, :-1]], dim=1)


def make_batch(pairs, device=None) -> dict:
    """Right-padded tensors of a list of pairs: src_ids, src_mask (B, m); labels = words + EOS, the decoder's input
    tgt_ids = BOS + words (labels shifted right) and tgt_mask (B, n), all with padding 0."""
    sources = [encode(s, SOURCE_VOCAB) for s, _ in pairs]
    targets = [encode(t, TARGET_VOCAB) + [EOS_ID] for _, t in pairs]

    def pad(rows):
        width = max(len(r) for r in rows)
        return torch.tensor([r + [PAD_ID] * (width - len(r)) for r in rows], dtype=torch.long, device=device)

    src_ids, labels = pad(sources), pad(targets)
    return {"src_ids": src_ids, "src_mask": (src_ids != PAD_ID).long(), "tgt_ids": shift_right(labels, BOS_ID),
            "tgt_mask": (labels != PAD_ID).long(), "labels": labels}


def train_translator(model, pairs, steps: int, batch_size: int = 64, lr: float = 1e-3, seed: int = 0,
                     device=None, progress: bool = True) -> list[float]:
    """Teacher-forced training with AdamW and a linear warm-up over the first 10% of the steps; returns the loss of
    every step. The whole target is trained in one pass: the causal mask keeps each position from its future.
    ``progress=False`` hides the progress bar."""
    rng = random.Random(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.98), weight_decay=0.01)
    warmup = max(1, steps // 10)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / warmup))
    model.train()
    losses = []
    for _ in tqdm(range(steps), desc="training the translator", disable=not progress):
        batch = make_batch(rng.sample(pairs, min(batch_size, len(pairs))), device)
        logits = model(batch["src_ids"], batch["tgt_ids"], batch["src_mask"], batch["tgt_mask"]).logits
        loss = F.cross_entropy(logits.transpose(1, 2), batch["labels"], ignore_index=PAD_ID)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
    model.eval()
    return losses


__all__ = ["BOS_ID", "EOS_ID", "PAD_ID", "SOURCE_VOCAB", "TARGET_VOCAB", "decode", "encode", "make_batch",
           "number_to_words", "shift_right", "split_pairs", "train_translator", "translation_pairs"]
