"""Model scale in numbers: parameters, training memory, training compute, and published model sizes.

The chapter-1 references for "模型规模巨大" (huge model size):

``bert_param_count(...)``            exact parameters of a BERT encoder (embeddings, layers, pooler) from its sizes
``adam_training_memory_bytes(...)``  weights + gradients + Adam's two moment buffers
``training_flops(N, D)``             the usual 6·N·D estimate of training compute
``LANDMARK_MODELS``                  published language models with their size, date, training tokens and source
"""
from __future__ import annotations

from dataclasses import dataclass


def bert_param_count(vocab_size: int, hidden_size: int, num_layers: int, intermediate_size: int,
                     max_position_embeddings: int = 512, type_vocab_size: int = 2) -> int:
    """Parameters of a BERT encoder with its pooler (no pretraining or task heads).

    embeddings: (vocab + positions + segments) · h, plus LayerNorm (2h)
    each layer: Q, K, V and output projections 4·(h² + h); FFN h·i + i + i·h + h; two LayerNorms 4h
    pooler:     h² + h
    """
    h, i = hidden_size, intermediate_size
    embeddings = (vocab_size + max_position_embeddings + type_vocab_size) * h + 2 * h
    layer = 4 * (h * h + h) + (h * i + i) + (i * h + h) + 2 * 2 * h
    pooler = h * h + h
    return embeddings + num_layers * layer + pooler


def adam_training_memory_bytes(num_params: int, bytes_per_value: int = 4) -> int:
    """Bytes for weights, gradients and Adam's first and second moments: four values per parameter.

    Activations (which grow with batch size and sequence length) come on top of this."""
    return 4 * int(num_params) * int(bytes_per_value)


def training_flops(num_params: float, num_tokens: float) -> float:
    """≈ 6·N·D floating-point operations to train N parameters on D tokens (2·N·D forward, 4·N·D backward)."""
    return 6.0 * num_params * num_tokens


@dataclass(frozen=True)
class PublishedModel:
    name: str
    params: float            # parameters (for mixture-of-experts models: all experts together)
    date: str                # first public release of the paper / report, "YYYY-MM"
    tokens: float | None     # training tokens, where the source states them
    kind: str                # "encoder", "decoder", "encoder-decoder"; "+MoE" for mixture of experts
    source: str              # where the numbers come from
    note: str = ""


LANDMARK_MODELS: tuple[PublishedModel, ...] = (
    PublishedModel("Transformer (big)", 213e6, "2017-06", None, "encoder-decoder",
                   "Vaswani et al. 2017, Attention Is All You Need, arXiv:1706.03762, Table 3",
                   "a translation model, not a general language model: the architecture everything after builds on"),
    PublishedModel("GPT", 117e6, "2018-06", None, "decoder",
                   "Radford et al. 2018, Improving Language Understanding by Generative Pre-Training; size as given "
                   "in Radford et al. 2019, Table 2 (smallest GPT-2 = original GPT)"),
    PublishedModel("BERT-base", 110e6, "2018-10", 128_000 * 1_000_000, "encoder",
                   "Devlin et al. 2018, BERT, arXiv:1810.04805, Section 3 and Appendix A.2",
                   "tokens: 128,000 tokens per batch × 1,000,000 steps (an upper bound: 90 % of the steps used "
                   "sequences of 128)"),
    PublishedModel("BERT-large", 340e6, "2018-10", 128_000 * 1_000_000, "encoder",
                   "Devlin et al. 2018, BERT, arXiv:1810.04805, Section 3 and Appendix A.2", "tokens as BERT-base"),
    PublishedModel("GPT-2", 1.542e9, "2019-02", None, "decoder",
                   "Radford et al. 2019, Language Models are Unsupervised Multitask Learners, Table 2"),
    PublishedModel("Megatron-LM", 8.3e9, "2019-09", None, "decoder",
                   "Shoeybi et al. 2019, Megatron-LM, arXiv:1909.08053"),
    PublishedModel("T5-11B", 11e9, "2019-10", None, "encoder-decoder",
                   "Raffel et al. 2019, Exploring the Limits of Transfer Learning with a Unified Text-to-Text "
                   "Transformer, arXiv:1910.10683"),
    PublishedModel("GPT-3", 175e9, "2020-05", 300e9, "decoder",
                   "Brown et al. 2020, Language Models are Few-Shot Learners, arXiv:2005.14165, Table 2.1 (size), "
                   "Section 2.2 (tokens), Table D.1 (compute)",
                   "the paper reports 3.14e23 FLOPs of training compute"),
    PublishedModel("Switch-C", 1.571e12, "2021-01", None, "encoder-decoder+MoE",
                   "Fedus et al. 2021, Switch Transformers: Scaling to Trillion Parameter Models with Simple and Efficient "
                   "Sparsity, arXiv:2101.03961",
                   "mixture of experts: each token uses only one expert per layer, a small fraction of the weights"),
    PublishedModel("Gopher", 280e9, "2021-12", 300e9, "decoder",
                   "Rae et al. 2021, Scaling Language Models: Methods, Analysis & Insights from Training Gopher, "
                   "arXiv:2112.11446"),
    PublishedModel("MT-NLG", 530e9, "2022-01", 270e9, "decoder",
                   "Smith et al. 2022, Using DeepSpeed and Megatron to Train Megatron-Turing NLG 530B, "
                   "arXiv:2201.11990"),
    PublishedModel("Chinchilla", 70e9, "2022-03", 1.4e12, "decoder",
                   "Hoffmann et al. 2022, Training Compute-Optimal Large Language Models, arXiv:2203.15556",
                   "a quarter of Gopher's size on 4.7x the tokens, same compute budget, better results"),
    PublishedModel("PaLM", 540e9, "2022-04", 780e9, "decoder",
                   "Chowdhery et al. 2022, PaLM: Scaling Language Modeling with Pathways, arXiv:2204.02311"),
    PublishedModel("GLM-130B", 130e9, "2022-10", 400e9, "decoder",
                   "Zeng et al. 2022, GLM-130B: An Open Bilingual Pre-trained Model, arXiv:2210.02414",
                   "bilingual Chinese-English, about 200B tokens of each"),
    PublishedModel("LLaMA-65B", 65e9, "2023-02", 1.4e12, "decoder",
                   "Touvron et al. 2023, LLaMA: Open and Efficient Foundation Language Models, arXiv:2302.13971"),
    PublishedModel("Llama 2 70B", 70e9, "2023-07", 2e12, "decoder",
                   "Touvron et al. 2023, Llama 2: Open Foundation and Fine-Tuned Chat Models, arXiv:2307.09288"),
    PublishedModel("Llama 3 405B", 405e9, "2024-07", 15.6e12, "decoder",
                   "Llama Team (Grattafiori et al.) 2024, The Llama 3 Herd of Models, arXiv:2407.21783",
                   "the paper reports 3.8e25 FLOPs of training compute"),
    PublishedModel("DeepSeek-V3", 671e9, "2024-12", 14.8e12, "decoder+MoE",
                   "DeepSeek-AI 2024, DeepSeek-V3 Technical Report, arXiv:2412.19437",
                   "mixture of experts: 37B of the 671B parameters are used for each token"),
)


def decimal_year(date: str) -> float:
    """"2018-10" -> 2018.75 (the middle of the month), for plotting."""
    year, month = (int(x) for x in date.split("-"))
    return year + (month - 0.5) / 12


__all__ = ["LANDMARK_MODELS", "PublishedModel", "adam_training_memory_bytes", "bert_param_count", "decimal_year",
           "training_flops"]
