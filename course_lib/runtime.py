"""Where the course's tensors live, and how runs are made repeatable."""
import os
import random

import numpy as np
import torch


def device(prefer: str | None = None) -> torch.device:
    """The best available device: CUDA, then Apple's MPS, then the CPU.

    `prefer` (or the COURSE_DEVICE environment variable) forces one, e.g. "cpu" to compare timings.
    """
    name = prefer or os.environ.get("COURSE_DEVICE")
    if name:
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def set_seed(seed: int) -> None:
    """Seed Python's, numpy's (the global `np.random` one) and torch's (CPU and every GPU) random generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # numpy takes 0 <= seed < 2**32; torch and Python take any int
    torch.manual_seed(seed)
