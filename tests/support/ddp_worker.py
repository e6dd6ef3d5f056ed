"""Run by tests/library/test_train.py under `torchrun --nproc_per_node 2`: each process trains on its half of the batch."""
import sys

import torch
from safetensors.torch import save_file

from course_lib import BertConfig, BertForSequenceClassification
from course_lib.train import train


def make_model_and_batch():
    torch.manual_seed(0)
    config = BertConfig.preset("tiny", vocab_size=64, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    model = BertForSequenceClassification(config)
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(5, 64, (8, 10), generator=g)
    batch = dict(input_ids=ids, attention_mask=torch.ones_like(ids), labels=torch.randint(0, 2, (8,), generator=g))
    return model, batch


if __name__ == "__main__":
    import torch.distributed as dist
    model, batch = make_model_and_batch()
    # train() starts the process group itself; the rank is known from torchrun's environment.
    import os
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    shard = {k: v[rank::world] for k, v in batch.items()}
    train(model, [shard], lr=1e-3, max_steps=5, progress=False, device="cpu", warmup=0.2)
    if rank == 0:
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, sys.argv[1])
    # Both processes leave together: a rank that tears gloo down while the other is still saving can abort
    # ("terminate called without an active exception").
    dist.barrier()
    dist.destroy_process_group()
