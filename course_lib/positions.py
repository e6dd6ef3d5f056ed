"""Position information for a Transformer: why it is needed, and the sinusoidal encodings of "Attention Is All You Need".

Self-attention is permutation-equivariant: shuffling the tokens shuffles the outputs and changes nothing
else (`equivariance_gap` measures it). BERT therefore adds learned position embeddings
(`BertEmbeddings.position_embeddings`); the original Transformer (Vaswani et al., 2017) added a fixed table
instead (`sinusoidal_positions`). Chapter 3 asks the learner to write both; these are the references its
later cells use.
"""
import torch


def sinusoidal_positions(num_positions: int, dim: int, base: float = 10000.0) -> torch.Tensor:
    """The (num_positions, dim) float32 table PE with, for pair index i = 0 .. dim/2 - 1,

        PE[pos, 2i]     = sin(pos / base^(2i / dim))
        PE[pos, 2i + 1] = cos(pos / base^(2i / dim))

    i.e. sine on even and cosine on odd dimensions, both members of a pair sharing one frequency.
    """
    if num_positions < 0:
        raise ValueError(f"num_positions must be >= 0, got {num_positions}")
    if dim <= 0 or dim % 2:
        raise ValueError(f"dim must be a positive even number (sin/cos come in pairs), got {dim}")
    position = torch.arange(num_positions, dtype=torch.float64)[:, None]       # (P, 1)
    pair = torch.arange(0, dim, 2, dtype=torch.float64)                         # 2i = 0, 2, 4, ...
    angle = position / base ** (pair / dim)                                     # (P, dim/2)
    pe = torch.empty(num_positions, dim, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(angle)
    pe[:, 1::2] = torch.cos(angle)
    return pe.float()


def equivariance_gap(f, x: torch.Tensor, perm: torch.Tensor) -> float:
    """max |f(x[:, perm]) - f(x)[:, perm]|: 0 (up to rounding) when f, mapping (B, n, h) -> (B, n, h), treats the
    tokens (dimension 1) as a set, i.e. is permutation-equivariant."""
    with torch.no_grad():
        return (f(x[:, perm]) - f(x)[:, perm]).abs().max().item()


__all__ = ["equivariance_gap", "sinusoidal_positions"]
