"""The GPT's data (course_lib.data.language_modeling): the token stream is the documents, losslessly, with
`<|endoftext|>` after each; windows tile the stream; the loader visits every window once per epoch in a seeded
order and resumes exactly; the held-out windows are fixed and come from held-out documents only.
Tests read the held-out split (4 % of the corpus) so that they stay fast with a cold cache."""
from __future__ import annotations

import pytest
import torch

from course_lib.data import LMLoader, corpus_documents, document_texts, heldout_lm_batches, lm_token_stream, lm_windows
from course_lib.tokenizer import GPT_EOS_ID, load_gpt_tokenizer


@pytest.fixture(scope="module")
def tok():
    return load_gpt_tokenizer()


@pytest.fixture(scope="module")
def stream(tok):
    return lm_token_stream("heldout", tok)


def test_stream_is_the_documents_each_followed_by_end_of_text(tok, stream):
    texts = document_texts("heldout")
    assert texts == [" ".join(d.sentences) for d in corpus_documents("heldout")]
    ids = torch.as_tensor(stream.astype("int64"))
    ends = (ids == GPT_EOS_ID).nonzero().flatten().tolist()
    assert len(ends) == len(texts) and ends[-1] == len(ids) - 1, "one <|endoftext|> after every document"
    starts = [0] + [e + 1 for e in ends[:-1]]
    for k in (0, len(texts) // 2, len(texts) - 1):
        assert tok.decode(ids[starts[k]: ends[k]]) == texts[k], f"document {k} does not decode to its text"


def test_windows_tile_the_stream(stream):
    windows = lm_windows("heldout", block_size=64)
    assert windows.dtype == torch.int64 and windows.shape == (len(stream) // 64, 64)
    assert torch.equal(windows.flatten(), torch.as_tensor(stream[: windows.numel()].astype("int64")))
    with pytest.raises(ValueError, match="at least 2"):
        lm_windows("heldout", block_size=1)


def _window_order(loader) -> torch.Tensor:
    """The index of each window of one epoch, in the order the loader gave them (window k holds 8k ... 8k + 7)."""
    return torch.cat([batch["input_ids"] for batch in loader])[:, 0] // 8


def test_loader_visits_each_window_once_per_epoch_in_a_seeded_order():
    windows = torch.arange(50 * 8).view(50, 8)
    loader = LMLoader(windows, batch_size=4, seed=3)
    assert len(loader) == 12
    assert all(torch.equal(b["input_ids"], b["labels"]) for b in LMLoader(windows, 4, 3))
    rows = _window_order(loader)
    assert len(set(rows.tolist())) == 48, "an epoch must not repeat a window"
    assert not torch.equal(rows, _window_order(loader)), "every epoch must draw a new order"
    assert torch.equal(_window_order(LMLoader(windows, batch_size=4, seed=3)), rows), \
        "the same seed must give the same order"
    assert not torch.equal(_window_order(LMLoader(windows, batch_size=4, seed=4)), rows)


def test_loader_resumes_where_it_stopped():
    windows = torch.arange(40 * 4).view(40, 4)
    whole = LMLoader(windows, batch_size=3, seed=0)
    expected = [b["input_ids"] for _ in range(2) for b in whole]
    interrupted = LMLoader(windows, batch_size=3, seed=0)
    seen = []
    for i, batch in enumerate(interrupted):
        seen.append(batch["input_ids"])
        if i == 6:
            break
    resumed = LMLoader(windows, batch_size=3, seed=0)
    resumed.load_state_dict(interrupted.state_dict())
    assert len(resumed) == 13 - 7
    seen += [b["input_ids"] for b in resumed] + [b["input_ids"] for b in resumed]
    assert len(seen) == len(expected) and all(torch.equal(a, b) for a, b in zip(seen, expected))


def test_heldout_batches_are_fixed_and_held_out(tok):
    batches = heldout_lm_batches(block_size=128, batch_size=8, max_windows=20, tokenizer=tok)
    assert [len(b["input_ids"]) for b in batches] == [8, 8, 4]
    assert all(torch.equal(a["input_ids"], b["input_ids"])
               for a, b in zip(batches, heldout_lm_batches(block_size=128, batch_size=8, max_windows=20)))
    # a window of the held-out stream is text of a held-out document, never of a training one
    text = tok.decode(batches[0]["input_ids"][1][:40])
    assert any(text in t for t in document_texts("heldout"))
