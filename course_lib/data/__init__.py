"""Data for the course, one module per job:

``corpus``        the pretraining corpus (WikiText-2 + 39 Gutenberg books): reading, cleaning, sentences,
                  documents, the train / held-out split
``cache``         the on-disk cache of derived data and its key (``CORPUS_VERSION`` + the raw data manifest)
``pretraining``   MLM masking, token ids, BERT's segment-pair (NSP) examples, dataset, collator, loaders,
                  the held-out evaluation set
``tasks``         the MR and SUBJ sentence classification tasks
``language_modeling``  the GPT's data: byte-level BPE token stream, fixed-length windows, loader, held-out windows

Main entry points (all importable from ``course_lib.data``)
-----------------
``load_corpus(split)``                 documents (lists of sentences) of WikiText-2 + 39 Gutenberg books
``mask_tokens(...)``                   BERT's 15 % / 80-10-10 masking (the chapter-4 reference)
``pretraining_loader(...)``            a DataLoader of ready ``BertForPreTraining(**batch)`` batches
``build_eval_set(...)``                a fixed, seeded held-out MLM/NSP evaluation set
``load_task(name)`` / ``task_loader(...)``   the MR and SUBJ sentence classification tasks
``unlabelled_task_sentences()``        MR/SUBJ training sentences safe for task-adaptive pretraining
``lm_loader(...)`` / ``heldout_lm_batches(...)``   causal-LM windows for the GPT (training / fixed held-out)

The shipped files are remade by the maintainers' ``tools/build_assets.py`` (see ``tools/README.md``).
"""

from .cache import ASSETS_DIR, CORPUS_VERSION, DATA_DIR, cache_dir, corpus_key
from .corpus import (HELDOUT_FRACTION, HELDOUT_SEED, MAX_DOCUMENT_WORDS, MIN_DOCUMENT_SENTENCES, SHORT_LINE_CHARS,
                     SPLITS, Document, build_documents, corpus_documents, detokenize_wikitext, gutenberg_documents,
                     gutenberg_files, gutenberg_paragraphs, load_corpus, parse_wikitext, read_text, split_sentences,
                     strip_gutenberg, wikitext_files)
from .pretraining import (InterleavedLoader, MLMCollator, PretrainingCollator, PretrainingDataset, PretrainingLoader,
                          TokenizedCorpus, build_eval_set, create_pretraining_examples, eval_batches, mask_tokens,
                          mlm_loader, pretraining_loader, tokenize_documents, tokenized_corpus)
from .language_modeling import (LMLoader, document_texts, heldout_lm_batches, lm_loader, lm_token_stream,
                                lm_windows)
from .tasks import (TASK_SPLIT_SEED, TASK_SPLITS, TASKS, TaskCollator, clean_task_text, dedup_key, load_task,
                    stratified_subset, task_examples, task_split_digest, unlabelled_task_sentences, task_loader)

__all__ = [
    "ASSETS_DIR", "CORPUS_VERSION", "DATA_DIR", "cache_dir", "corpus_key",
    "HELDOUT_FRACTION", "HELDOUT_SEED", "MAX_DOCUMENT_WORDS", "MIN_DOCUMENT_SENTENCES", "SHORT_LINE_CHARS", "SPLITS",
    "Document", "build_documents", "corpus_documents", "detokenize_wikitext", "gutenberg_documents", "gutenberg_files",
    "gutenberg_paragraphs", "load_corpus", "parse_wikitext", "read_text", "split_sentences", "strip_gutenberg",
    "wikitext_files",
    "InterleavedLoader", "MLMCollator", "PretrainingCollator", "PretrainingDataset", "PretrainingLoader",
    "TokenizedCorpus", "build_eval_set", "create_pretraining_examples", "eval_batches", "mask_tokens",
    "mlm_loader", "pretraining_loader", "tokenize_documents", "tokenized_corpus",
    "LMLoader", "document_texts", "heldout_lm_batches", "lm_loader", "lm_token_stream", "lm_windows",
    "TASK_SPLIT_SEED", "TASK_SPLITS", "TASKS", "TaskCollator", "clean_task_text", "dedup_key", "load_task",
    "stratified_subset", "task_examples", "task_split_digest", "unlabelled_task_sentences", "task_loader",
]
