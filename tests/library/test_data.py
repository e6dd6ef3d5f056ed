"""course_lib.data: corpus cleaning and splits, MLM masking, NSP pairs, pretraining batches, the MR/SUBJ
tasks and bad input. Statistics are checked over many draws, never particular positions."""
from __future__ import annotations

import gzip
import hashlib
import json
import random
import re
import time

import numpy as np
import pytest
import torch

from course_lib import data
from course_lib.data import (DATA_DIR, InterleavedLoader, TokenizedCorpus, build_eval_set, clean_task_text,
                             create_pretraining_examples, dedup_key, eval_batches, load_corpus, load_task,
                             mask_tokens, mlm_loader, pretraining_loader, split_sentences, task_loader,
                             unlabelled_task_sentences)
from course_lib.tokenizer import load_tokenizer

# Recorded once; a change here means the corpus or its held-out split changed (update DATA_READY / docs).
HELDOUT_DOCS = 120
HELDOUT_IDS_SHA256 = "8e72ebca5c166bbebf75819ffb115134bc1c64dd02a760f86e8b2cf568034663"
TRAIN_DOCS = 3182


@pytest.fixture(scope="module")
def tok():
    return load_tokenizer()


# ------------------------------------------------------------------ reading and cleaning
def test_read_text_handles_bom_crlf_and_gzip(tmp_path):
    p = tmp_path / "x.txt.gz"
    p.write_bytes(gzip.compress("\ufeffline one\r\nline two\r\n".encode("utf-8")))
    assert data.read_text(p) == "line one\nline two\n"


GUTENBERG = """\ufeffThe Project Gutenberg EBook of Test, by Someone\r
\r
*** START OF THIS PROJECT GUTENBERG EBOOK\r
A TEST BOOK ***\r
\r
Produced by a volunteer\r
\r
CHAPTER I. The Beginning\r
\r
It was a _dark_ and stormy night. Mr. Smith\r
walked home; he was tired.\r
\r
"Is it late?" he asked. It was.\r
\r
CHAPTER II\r
\r
The next day came. The sun rose over the hills\r
and the birds sang. Nobody knew why.\r
\r
*** END OF THIS PROJECT GUTENBERG EBOOK A TEST BOOK ***\r
\r
Project Gutenberg license text follows.\r
"""


def test_gutenberg_cleaning_synthetic():
    text = GUTENBERG.replace("\r\n", "\n").lstrip("\ufeff")
    body = data.strip_gutenberg(text)
    assert "START OF" not in body and "END OF" not in body and "A TEST BOOK" not in body
    assert "license" not in body
    docs = data.gutenberg_documents(text)
    assert docs == [
        ["It was a dark and stormy night. Mr. Smith walked home; he was tired.", '"Is it late?" he asked. It was.'],
        ["The next day came. The sun rose over the hills and the birds sang. Nobody knew why."],
    ]
    with pytest.raises(ValueError, match="START OF"):
        data.strip_gutenberg("no markers here")


def test_wikitext_parsing_synthetic():
    raw = (" \n = Lobster = \n \n The lobster , a @-@ crustacean , weighs 1 @,@ 000 g ( 2 @.@ 2 lb ) . It is n't red . \n"
           " \n = = Biology = = \n \n Lobsters live long . \n x \n = 1 rad / s = \n y \n \n = Crab = \n \n Crabs walk . \n")
    arts = data.parse_wikitext(raw)
    assert [t for t, _ in arts] == ["Lobster", "Crab"]
    lob = arts[0][1]
    assert lob[0] == "The lobster, a-crustacean, weighs 1,000 g (2.2 lb). It isn't red."
    assert "Biology" not in " ".join(lob)  # sub-headings dropped
    assert "= 1 rad / s =" in " ".join(lob)  # a formula line between text lines is not a title


def test_split_sentences():
    text = "Mr. Holmes sat down. \u201cWhat is it?\u201d he asked!  J. Smith replied: no. 3 cats came. The end"
    assert split_sentences(text) == ["Mr. Holmes sat down.", "\u201cWhat is it?\u201d he asked!",
                                     "J. Smith replied: no. 3 cats came.", "The end"]
    assert split_sentences("") == [] and split_sentences("   \n ") == []
    assert split_sentences("one sentence without a stop") == ["one sentence without a stop"]
    with pytest.raises(TypeError):
        split_sentences(None)


@pytest.fixture(scope="module")
def all_docs():
    return data.corpus_documents("all")


def test_corpus_is_clean(all_docs):
    assert all_docs, "empty corpus"
    bad = re.compile(r"project gutenberg|\*\*\*|\ufeff|[\x80-\x9f]|_|\r|^chapter [ivxlc\d]+\b|@[-,.]@", re.I)
    for d in all_docs:
        assert len(d.sentences) >= data.MIN_DOCUMENT_SENTENCES, d.id
        for s in d.sentences:
            assert s and s == s.strip() and "  " not in s, (d.id, s)
            assert not bad.search(s), (d.id, s)
    books = {d.id.split(":")[0] for d in all_docs if d.source == "gutenberg"}
    assert len(books) == 39
    assert sum(d.source == "wikitext" for d in all_docs) == 120


def test_corpus_split_by_document_stable_and_disjoint():
    train, held = data.corpus_documents("train"), data.corpus_documents("heldout")
    ids_train, ids_held = {d.id for d in train}, {d.id for d in held}
    assert not ids_train & ids_held
    assert len(train) == TRAIN_DOCS and len(held) == HELDOUT_DOCS
    digest = hashlib.sha256("\n".join(sorted(ids_held)).encode()).hexdigest()
    assert digest == HELDOUT_IDS_SHA256, "the held-out split changed"
    assert {d.source for d in held} == {"wikitext", "gutenberg"}
    assert load_corpus("heldout") == [d.sentences for d in held]
    with pytest.raises(ValueError, match="unknown corpus split"):
        load_corpus("validation")
    with pytest.raises(ValueError, match="unknown source"):
        load_corpus("train", source="books")


def test_load_corpus_fast_and_copies():
    t = time.perf_counter()
    docs = load_corpus("train")
    assert time.perf_counter() - t < 3.0
    docs[0].append("changed")
    assert load_corpus("train")[0][-1] != "changed"


def test_shipped_raw_files_match_manifest():
    for line in (DATA_DIR / "MANIFEST.sha256").read_text().splitlines():
        digest, rel = line.split("  ", 1)
        raw = gzip.decompress((DATA_DIR / (rel + ".gz")).read_bytes())
        assert hashlib.sha256(raw).hexdigest() == digest, rel


# ------------------------------------------------------------------ MLM masking
def test_mask_tokens_statistics():
    g = torch.Generator().manual_seed(0)
    V, mask_id = 1000, 4
    ids = torch.randint(5, V, (64, 256), generator=g)
    special = torch.zeros_like(ids, dtype=torch.bool)
    special[:, 0] = special[:, -40:] = True  # [CLS] and padding
    ids[special] = 0
    original = ids.clone()
    sel = msk = rnd = keep = total = 0
    for _ in range(20):
        inputs, labels = mask_tokens(ids, special, mask_id, V, generator=g)
        assert torch.equal(ids, original), "input_ids modified in place"
        selected = labels != -100
        assert not selected[special].any(), "a special/padding position was selected"
        assert torch.equal(labels[selected], ids[selected])
        assert torch.equal(inputs[~selected], ids[~selected]), "an unselected position changed"
        assert inputs.min() >= 0 and inputs.max() < V
        total += (~special).sum().item()
        sel += selected.sum().item()
        msk += (inputs[selected] == mask_id).sum().item()
        same = inputs[selected] == ids[selected]
        keep += same.sum().item()
        rnd += ((inputs[selected] != mask_id) & ~same).sum().item()
    assert abs(sel / total - 0.15) < 0.005
    assert abs(msk / sel - 0.8) < 0.01
    assert abs(rnd / sel - 0.1) < 0.01
    assert abs(keep / sel - 0.1) < 0.01


def test_mask_tokens_shapes_probability_and_errors():
    ids = torch.arange(5, 29).reshape(2, 3, 4)
    special = torch.zeros(2, 3, 4, dtype=torch.bool)
    inputs, labels = mask_tokens(ids, special, 4, 100, mlm_probability=0.0)
    assert torch.equal(inputs, ids) and labels.eq(-100).all()
    inputs, labels = mask_tokens(ids, special, 4, 100, mlm_probability=1.0)
    assert torch.equal(labels, ids)
    a = mask_tokens(ids, special, 4, 100, generator=torch.Generator().manual_seed(3))
    b = mask_tokens(ids, special, 4, 100, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    with pytest.raises(ValueError, match="shape"):
        mask_tokens(ids, special[0], 4, 100)
    with pytest.raises(ValueError, match="mlm_probability"):
        mask_tokens(ids, special, 4, 100, mlm_probability=1.5)
    with pytest.raises(TypeError):
        mask_tokens(ids.float(), special, 4, 100)


# ------------------------------------------------------------------ pretraining examples, collator, loader
def _synthetic_corpus(n_docs=60, seed=0) -> TokenizedCorpus:
    """Document d uses token ids 1000*d + k only, so every token tells its document."""
    rng = random.Random(seed)
    docs = [[[1000 * (d + 1) + rng.randrange(1000) for _ in range(rng.randint(3, 40))] for _ in range(rng.randint(1, 15))]
            for d in range(n_docs)]
    ids = np.array([t for doc in docs for s in doc for t in s], dtype=np.int32)
    lens = [len(s) for doc in docs for s in doc]
    so = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
    do = np.concatenate([[0], np.cumsum([len(d) for d in docs])]).astype(np.int64)
    return TokenizedCorpus(ids, so, do)


@pytest.mark.parametrize("max_length", [128, 64])
def test_pretraining_examples_nsp_and_lengths(max_length):
    corpus = _synthetic_corpus()
    labels = []
    for seed in range(40):
        for a, b, y in create_pretraining_examples(corpus, max_length, random.Random(seed)):
            assert len(a) >= 1 and len(b) >= 1 and len(a) + len(b) + 3 <= max_length
            da, db = set(a // 1000), set(b // 1000)
            assert len(da) == 1 and len(db) == 1
            assert (da == db) == (y == 0), "label 0 must be the same document, label 1 another one"
            labels.append(y)
    assert abs(np.mean(labels) - 0.5) < 0.04


def test_pretraining_examples_bad_input():
    one_doc = TokenizedCorpus(np.arange(10, 20, dtype=np.int32), np.array([0, 5, 10]), np.array([0, 2]))
    with pytest.raises(ValueError, match="two documents"):
        create_pretraining_examples(one_doc, 128)
    with pytest.raises(ValueError, match="max_length"):
        create_pretraining_examples(_synthetic_corpus(), 4)


def _original(batch):
    return torch.where(batch["labels"] != -100, batch["labels"], batch["input_ids"])


@pytest.mark.parametrize("max_length", [128, 64])
def test_pretraining_loader_batches(tok, max_length):
    loader = pretraining_loader("heldout", tok, batch_size=16, max_length=max_length, seed=1)
    assert len(loader) > 10
    nsp = []
    for i, batch in enumerate(loader):
        assert list(batch) == ["input_ids", "token_type_ids", "attention_mask", "labels", "next_sentence_label"]
        ids, tt, am, lab = batch["input_ids"], batch["token_type_ids"], batch["attention_mask"], batch["labels"]
        B, L = ids.shape
        assert B == 16 and L <= max_length and all(t.dtype == torch.long for t in batch.values())
        orig = _original(batch)
        assert orig[:, 0].eq(tok.cls_token_id).all()
        for r in range(B):
            n = int(am[r].sum())
            assert am[r, :n].eq(1).all() and am[r, n:].eq(0).all()
            assert orig[r, n:].eq(tok.pad_token_id).all() and lab[r, n:].eq(-100).all()
            seps = (orig[r, :n] == tok.sep_token_id).nonzero().flatten().tolist()
            assert seps[-1] == n - 1 and len(seps) == 2, "expected [CLS] A [SEP] B [SEP]"
            assert tt[r, : seps[0] + 1].eq(0).all() and tt[r, seps[0] + 1: n].eq(1).all() and tt[r, n:].eq(0).all()
            assert lab[r, 0] == -100 and lab[r, seps[0]] == -100 and lab[r, seps[1]] == -100
        nsp += batch["next_sentence_label"].tolist()
        if i == 20:
            break
    rate = (lab != -100).sum().item() / ((am == 1).sum().item() - 3 * B)
    assert 0.08 < rate < 0.22
    assert 0.35 < np.mean(nsp) < 0.65


def test_pretraining_loader_reproducible_epochs_and_resume(tok):
    def first(loader, k=3):
        out = []
        for i, b in enumerate(loader):
            out.append(b)
            if len(out) == k:
                break
        return out

    l1 = pretraining_loader("heldout", tok, batch_size=8, seed=3)
    l2 = pretraining_loader("heldout", tok, batch_size=8, seed=3)
    a, b = first(l1), first(l2)
    assert all(torch.equal(x["input_ids"], y["input_ids"]) and torch.equal(x["labels"], y["labels"]) for x, y in zip(a, b))
    # a full epoch, then the next epoch re-draws pairs and masks
    l3 = pretraining_loader("heldout", tok, batch_size=64, seed=3)
    n = sum(1 for _ in l3)
    assert n == len(l3) or l3.epoch == 1
    assert l3.epoch == 1
    e2 = next(iter(l3))
    e1 = next(iter(pretraining_loader("heldout", tok, batch_size=64, seed=3)))
    assert not torch.equal(e1["input_ids"][:, :32], e2["input_ids"][:, :32])
    # resume: state after 2 batches continues with batch 3 of the same run
    l4 = pretraining_loader("heldout", tok, batch_size=8, seed=3)
    it = iter(l4)
    next(it), next(it)
    state = l4.state_dict()
    assert state == {"epoch": 0, "batches_done": 2}
    l5 = pretraining_loader("heldout", tok, batch_size=8, seed=3)
    l5.load_state_dict(state)
    resumed = next(iter(l5))
    assert torch.equal(resumed["input_ids"], a[2]["input_ids"]) and torch.equal(resumed["labels"], a[2]["labels"])
    other = next(iter(pretraining_loader("heldout", tok, batch_size=8, seed=4)))
    assert not torch.equal(other["input_ids"], a[0]["input_ids"])


def test_pretraining_loader_own_documents_and_bad_input(tok):
    docs = [["The cat sat on the mat.", "It was happy.", "Then it slept."],
            ["Rain fell all day.", "The river rose."], ["One sentence only."]]
    loader = pretraining_loader(tokenizer=tok, documents=docs, batch_size=2, max_length=32, drop_last=False)
    batches = list(loader)
    assert batches and all(b["input_ids"].shape[1] <= 32 for b in batches)
    with pytest.raises(ValueError, match="two documents"):
        pretraining_loader(tokenizer=tok, documents=[["Only one document.", "With two sentences."]])
    with pytest.raises(ValueError, match="batch_size"):
        pretraining_loader(tokenizer=tok, documents=docs, batch_size=0)
    # a text far longer than max_length is trimmed, never an error
    long_docs = [[" ".join(["word"] * 2000)], ["short text here.", "and more."]]
    for b in pretraining_loader(tokenizer=tok, documents=long_docs, batch_size=1, max_length=16, drop_last=False):
        assert b["input_ids"].shape[1] <= 16


def test_eval_set_fixed(tok):
    e1 = build_eval_set(tok, num_examples=64, max_length=64)
    e2 = build_eval_set(tok, num_examples=64, max_length=64)
    assert all(torch.equal(e1[k], e2[k]) for k in e1)
    assert e1["input_ids"].shape[0] == 64 and e1["input_ids"].shape[1] <= 64
    assert 0.3 < e1["next_sentence_label"].float().mean() < 0.7
    rows = sum(b["input_ids"].shape[0] for b in eval_batches(e1, batch_size=10))
    assert rows == 64
    full = build_eval_set(tok, num_examples=None)
    assert 1000 < full["input_ids"].shape[0] < 4000


def test_mlm_loader(tok):
    texts = unlabelled_task_sentences("mr")[:200]
    batches = list(mlm_loader(texts, tok, batch_size=4, max_length=64))
    assert batches
    for b in batches:
        assert set(b) == {"input_ids", "token_type_ids", "attention_mask", "labels"}
        assert b["input_ids"].shape[1] <= 64 and b["token_type_ids"].eq(0).all()
        assert _original(b)[:, 0].eq(tok.cls_token_id).all()
    with pytest.raises(ValueError, match="no"):
        mlm_loader(["", "  "], tok)


def test_interleaved_loader_mixes_in_the_given_fraction_and_resumes(tok):
    def make():
        main = pretraining_loader("heldout", tok, batch_size=4, max_length=48, seed=0)
        extra = mlm_loader(unlabelled_task_sentences("mr")[:40], tok, batch_size=4, max_length=48, seed=0)
        return InterleavedLoader(main, extra, 0.25)

    loader = make()
    batches = [b for _, b in zip(range(40), loader)]
    kinds = ["main" if "next_sentence_label" in b else "extra" for b in batches]
    assert kinds.count("extra") == 10, "a quarter of the batches are the MLM-only ones"
    assert kinds[:4] == ["main", "main", "main", "extra"], "spread evenly, not bunched at the start"
    assert len(loader.extra) < 10, "the small extra text wraps around into its next epoch"

    resumed = make()
    part = make()
    first = [b for _, b in zip(range(17), part)]
    resumed.load_state_dict(part.state_dict())
    rest = [b for _, b in zip(range(23), resumed)]
    for a, b in zip(batches, first + rest):
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), "a resumed run sees the same batches"
    with pytest.raises(ValueError, match="between 0 and 1"):
        InterleavedLoader(loader.main, loader.extra, 1.0)


# ------------------------------------------------------------------ tasks
def test_clean_task_text():
    assert clean_task_text("it\x92s a \x91gem\x92 \x97 really \x96 good\x85 ") == "it's a 'gem' -- really - good"
    assert clean_task_text("a\x80b\x9fc\x07") == "abc"
    assert dedup_key("Marshall ' s  film!") == dedup_key("marshall's film")


@pytest.mark.parametrize("name", ["mr", "subj"])
def test_task_splits(name):
    recorded = json.loads((DATA_DIR / "splits.json").read_text())[name]
    assert data.task_split_digest(name) == recorded, "the task split changed"
    splits = load_task(name)
    assert list(splits) == ["train", "dev", "test"]
    total = sum(len(t) for t, _ in splits.values())
    keys = {}
    for s, (texts, labels) in splits.items():
        assert len(texts) == len(labels) and set(labels) == {0, 1}
        assert abs(np.mean(labels) - 0.5) < 0.01  # balanced
        assert abs(len(texts) / total - (0.8 if s == "train" else 0.1)) < 0.005
        for t in texts:
            assert t and not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", t)
            k = dedup_key(t)
            assert k not in keys, f"duplicate {t!r} in {s} and {keys.get(k)}"
            keys[k] = s
    assert load_task(name.upper())["dev"] == splits["dev"]


def test_task_sizes():
    mr, subj = load_task("mr"), load_task("subj")
    assert [len(mr[s][0]) for s in ("train", "dev", "test")] == [8528, 1066, 1066]
    assert [len(subj[s][0]) for s in ("train", "dev", "test")] == [7998, 1000, 1000]


def test_unknown_task():
    with pytest.raises(ValueError, match="unknown task 'sst2'.*mr.*subj"):
        load_task("sst2")
    with pytest.raises(ValueError, match="unknown task"):
        task_loader("imdb", "train")
    with pytest.raises(ValueError, match="unknown split"):
        task_loader("mr", "validation")


def test_task_loader(tok):
    loader = task_loader("mr", "dev", tok, batch_size=32, max_length=16)
    n = 0
    for b in loader:
        assert set(b) == {"input_ids", "token_type_ids", "attention_mask", "labels"}
        assert b["input_ids"].shape[1] <= 16 and b["input_ids"][:, 0].eq(tok.cls_token_id).all()
        assert b["token_type_ids"].eq(0).all()
        assert torch.equal(b["attention_mask"].bool(), b["input_ids"] != tok.pad_token_id)
        n += b["labels"].shape[0]
    assert n == 1066
    labels = [y for b in task_loader("mr", "dev", tok) for y in b["labels"].tolist()]
    assert labels == load_task("mr")["dev"][1]  # no shuffle: split order
    s1 = [b["labels"].tolist() for b in task_loader("subj", "train", tok, shuffle=True, seed=1)][:3]
    s2 = [b["labels"].tolist() for b in task_loader("subj", "train", tok, shuffle=True, seed=1)][:3]
    assert s1 == s2


def test_task_loader_by_length_holds_the_same_examples_shortest_first(tok):
    def examples(loader):
        return [(tuple(ids[ids != tok.pad_token_id].tolist()), y) for b in loader
                for ids, y in zip(b["input_ids"], b["labels"].tolist())]

    plain = examples(task_loader("subj", "dev", tok, batch_size=64))
    ordered = examples(task_loader("subj", "dev", tok, batch_size=64, by_length=True))
    assert sorted(ordered) == sorted(plain) and ordered != plain
    assert [len(ids) for ids, _ in ordered] == sorted(len(ids) for ids, _ in plain)


def test_length_grouped_batches_cover_every_example_once_in_random_batches_of_similar_length():
    from course_lib.data.tasks import LengthGroupedBatches

    lengths = [random.Random(i).randint(1, 60) for i in range(1000)]
    sampler = LengthGroupedBatches(lengths, 32, torch.Generator().manual_seed(0), group=5)
    first, second = list(sampler), list(sampler)

    def mean_spread(batches):
        return sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches) / len(batches)

    random_batches = [list(range(i, min(i + 32, 1000))) for i in range(0, 1000, 32)]   # lengths are random already
    for epoch in (first, second):
        assert sorted(i for batch in epoch for i in batch) == list(range(1000)) and len(epoch) == len(sampler) == 32
        assert mean_spread(epoch) < 0.3 * mean_spread(random_batches), "a batch should hold texts of similar length"
    assert first != second, "each epoch draws new batches"
    again = list(LengthGroupedBatches(lengths, 32, torch.Generator().manual_seed(0), group=5))
    assert again == first, "the same seed gives the same batches"
    assert [len(b) for b in first].count(1000 % 32) == 1  # one short batch, anywhere in the epoch
    dropped = list(LengthGroupedBatches(lengths, 32, torch.Generator().manual_seed(0), drop_last=True, group=5))
    assert all(len(b) == 32 for b in dropped) and len(dropped) == 31


def test_task_loader_by_length_with_shuffle_pads_less(tok):
    def padded_tokens(loader):
        return sum(b["input_ids"].numel() for b in loader), sorted(y for b in loader for y in b["labels"].tolist())

    plain, plain_labels = padded_tokens(task_loader("mr", "train", tok, shuffle=True, seed=3))
    grouped, grouped_labels = padded_tokens(task_loader("mr", "train", tok, shuffle=True, seed=3, by_length=True))
    assert grouped_labels == plain_labels and grouped < 0.7 * plain


def test_task_loader_fraction(tok):
    sub = task_loader("mr", "train", tok, fraction=0.1, seed=0)
    labels = [y for b in sub for y in b["labels"].tolist()]
    assert len(labels) == 852 and labels.count(0) == labels.count(1) == 426
    again = [y for b in task_loader("mr", "train", tok, fraction=0.1, seed=0) for y in b["labels"].tolist()]
    assert again == labels
    ids0 = data.stratified_subset(load_task("mr")["train"][1], 0.1, seed=0)
    ids1 = data.stratified_subset(load_task("mr")["train"][1], 0.1, seed=1)
    assert ids0 != ids1
    with pytest.raises(ValueError, match="fraction"):
        task_loader("mr", "train", tok, fraction=0.0)


def test_unlabelled_task_sentences_exclude_every_dev_test_sentence():
    held = {dedup_key(t) for name in ("mr", "subj") for s in ("dev", "test") for t in load_task(name)[s][0]}
    sents = unlabelled_task_sentences()
    keys = [dedup_key(t) for t in sents]
    assert len(keys) == len(set(keys))
    assert not set(keys) & held
    train_keys = {dedup_key(t) for name in ("mr", "subj") for t in load_task(name)["train"][0]}
    assert set(keys) <= train_keys
    assert len(sents) > 12000
    assert len(unlabelled_task_sentences("mr")) < len(load_task("mr")["train"][0])  # leaked SUBJ dev/test removed


def test_corpus_tokenization_ignores_the_tokenizers_last_padding_setting():
    from course_lib import data as D
    from course_lib.data.cache import tokenizer_key
    from course_lib.tokenizer import load_tokenizer
    tok = load_tokenizer()
    docs = [["the cat sat .", "a dog ran ."], ["x y z ."]]
    clean = D.tokenize_documents(docs, tok).ids.tolist()
    key = tokenizer_key(tok)
    tok(["a b", "c d e f"], padding="max_length", max_length=50, truncation=True)  # leaves padding on the backend
    assert D.tokenize_documents(docs, tok).ids.tolist() == clean and 0 not in clean
    assert tokenizer_key(tok) == key


def test_cache_key_is_the_corpus_version_and_the_raw_data_manifest(tmp_path, monkeypatch):
    from course_lib.data import cache

    shipped = cache.corpus_key()
    manifest = tmp_path / "MANIFEST.sha256"
    manifest.write_bytes(cache.MANIFEST.read_bytes())
    monkeypatch.setattr(cache, "MANIFEST", manifest)
    try:
        cache.corpus_key.cache_clear()
        assert cache.corpus_key() == shipped, "the key depends on something besides the version and the manifest"
        manifest.write_bytes(manifest.read_bytes().replace(b"wiki.test.raw", b"wiki.other.raw"))
        cache.corpus_key.cache_clear()
        assert cache.corpus_key() != shipped, "new raw data must change the cache key"
        manifest.write_bytes(cache.DATA_DIR.joinpath("MANIFEST.sha256").read_bytes())
        monkeypatch.setattr(cache, "CORPUS_VERSION", cache.CORPUS_VERSION + 1)
        cache.corpus_key.cache_clear()
        assert cache.corpus_key() != shipped, "a new CORPUS_VERSION must change the cache key"
    finally:
        cache.corpus_key.cache_clear()
