"""Where training runs: the device, and the ranks of a torchrun job.

`tinyfake train` is one process by default. Started by torchrun
(`torchrun --nproc_per_node N -m tinyfake train ...`), each process is one
rank of a DistributedDataParallel job: gloo on the CPU, NCCL on CUDA. The
training loop (tinyfake.train.loop.fit) asks `Ranks` which slice of each
batch is its own and whether it is the one that writes (rank 0).

Equivalence, which tests/test_distributed.py checks: N ranks with
`--batch-size B` train the same weights (to float rounding) as one process
with `--batch-size N*B` on the same seed -- the same global batches in the
same order, the same augmentation, gradients averaged, and BatchNorm
statistics over the global batch (`SyncBatchNorm2d`, which unlike
torch.nn.SyncBatchNorm also runs on the CPU), and dropout masks drawn for
the global batch (`ShardedDropout2d`).
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from tinyfake.errors import UserError

DEVICES = "auto, cpu, cuda or cuda:N"


def resolve_device(option: str, local_rank: int = 0) -> torch.device:
    """The device `--device` names (auto = CUDA when there is one). Under
    torchrun on CUDA each rank takes the GPU of its local rank."""
    option = (option or "auto").strip()
    if option == "auto":
        option = "cuda" if torch.cuda.is_available() else "cpu"
    if option == "cpu":
        return torch.device("cpu")
    if option == "cuda" or option.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise UserError(f"--device {option}: this machine has no CUDA GPU that PyTorch can use; "
                            "use --device cpu (or auto)")
        index = local_rank if option == "cuda" else option.split(":", 1)[1]
        if not str(index).isdigit() or int(index) >= torch.cuda.device_count():
            raise UserError(f"--device {option}: there are {torch.cuda.device_count()} CUDA devices "
                            f"(cuda:0 to cuda:{torch.cuda.device_count() - 1})")
        return torch.device("cuda", int(index))
    raise UserError(f"--device must be {DEVICES}, got {option!r}")


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    local_world: int = 1

    @property
    def main(self) -> bool:
        """The rank that writes the run directory, logs and progress bars."""
        return self.rank == 0

    def shard(self, batch):
        """This rank's slice of a global batch (interleaved: equal sizes to within one)."""
        return batch[self.rank::self.world]


def current_ranks() -> Ranks:
    """The ranks of the running job (one process when torch.distributed is not initialized)."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return Ranks()
    return Ranks(torch.distributed.get_rank(), torch.distributed.get_world_size(),
                 int(os.environ.get("LOCAL_RANK", 0)), int(os.environ.get("LOCAL_WORLD_SIZE", 1)))


@contextmanager
def job(device_option: str):
    """The process group for the life of one `tinyfake train` when torchrun
    started it (WORLD_SIZE > 1): NCCL when the ranks train on CUDA, else
    gloo. Yields the Ranks."""
    world = int(os.environ.get("WORLD_SIZE", 1))
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    device = resolve_device(device_option, local_rank)
    if world <= 1 or torch.distributed.is_initialized():
        yield current_ranks()
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
    torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        yield current_ranks()
    finally:
        torch.distributed.destroy_process_group()


class _SumOverRanks(torch.autograd.Function):
    """all_reduce(SUM) whose gradient is the all_reduce(SUM) of the gradients:
    each rank's loss reaches every rank's inputs through the global statistics."""

    @staticmethod
    def forward(ctx, x):
        x = x.clone()
        torch.distributed.all_reduce(x)
        return x

    @staticmethod
    def backward(ctx, grad):
        grad = grad.clone()
        torch.distributed.all_reduce(grad)
        return grad


class _GatherShards(torch.autograd.Function):
    """The global batch's rows from every rank's interleaved shard (Ranks.shard),
    in their original order; the gradient of a loss every rank computes in
    full goes back, summed over ranks, to the rank that holds each row."""

    @staticmethod
    def forward(ctx, x, n: int):
        world, rank = torch.distributed.get_world_size(), torch.distributed.get_rank()
        m = -(-n // world)  # rows per rank, padded
        ctx.n, ctx.m, ctx.rank, ctx.rows = n, m, rank, x.shape[0]
        padded = torch.zeros((m, *x.shape[1:]), dtype=x.dtype, device=x.device)
        padded[:x.shape[0]] = x
        parts = [torch.empty_like(padded) for _ in range(world)]
        torch.distributed.all_gather(parts, padded)
        return torch.stack(parts, 1).reshape(m * world, *x.shape[1:])[:n]

    @staticmethod
    def backward(ctx, grad):
        world = torch.distributed.get_world_size()
        full = torch.zeros((ctx.m * world, *grad.shape[1:]), dtype=grad.dtype, device=grad.device)
        full[:ctx.n] = grad
        full = full.reshape(ctx.m, world, *grad.shape[1:]).transpose(0, 1).contiguous()
        torch.distributed.all_reduce(full)
        return full[ctx.rank, :ctx.rows], None


def gather_shards(x: torch.Tensor, n: int, ranks: Ranks) -> torch.Tensor:
    """The (n, ...) global batch from this rank's shard `x` (identity in one process)."""
    return x if ranks.world == 1 else _GatherShards.apply(x, n)


def average_gradients(params, ranks: Ranks) -> None:
    """What DistributedDataParallel does after backward, for a loop that cannot
    use it (two forward passes per step): every gradient averaged over ranks."""
    grads = [p.grad for p in params if p.grad is not None]
    if ranks.world == 1 or not grads:
        return
    flat = torch.cat([g.flatten() for g in grads])
    torch.distributed.all_reduce(flat)
    flat /= ranks.world
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


class GlobalBatch:
    """The size of the global batch the running step's shards come from
    (set by the training loop before each step)."""
    size: int = 0


def _batch_norm_sync(bn: nn.modules.batchnorm._BatchNorm, x: torch.Tensor) -> torch.Tensor:
    """Training-mode batch norm with mean and variance over every rank's samples."""
    dims = [0] + list(range(2, x.dim()))
    shape = [1, -1] + [1] * (x.dim() - 2)
    count = torch.tensor(float(bn.global_batch.size * (x.numel() // (x.shape[0] * x.shape[1]))),
                         dtype=x.dtype, device=x.device)
    mean = _SumOverRanks.apply(x.sum(dims)) / count
    centred = x - mean.reshape(shape)
    var = _SumOverRanks.apply((centred * centred).sum(dims)) / count  # two passes, as one process does
    if bn.track_running_stats:
        with torch.no_grad():
            bn.num_batches_tracked.add_(1)
            m = bn.momentum if bn.momentum is not None else 1.0 / float(bn.num_batches_tracked)
            bn.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
            bn.running_var.mul_(1 - m).add_(var.detach() * count / (count - 1).clamp(min=1), alpha=m)
    y = centred * torch.rsqrt(var + bn.eps).reshape(shape)
    if bn.affine:
        y = y * bn.weight.reshape(shape) + bn.bias.reshape(shape)
    return y


def _dropout_shard(drop: nn.Module, x: torch.Tensor, ranks: Ranks, per_channel: bool) -> torch.Tensor:
    """Dropout with the mask one process would draw for the whole global batch
    (every rank holds the same RNG state), of which this rank keeps its rows."""
    keep = 1 - drop.p
    shape = (drop.global_batch.size, *x.shape[1:2], *([1] * (x.dim() - 2))) if per_channel \
        else (drop.global_batch.size, *x.shape[1:])
    mask = x.new_empty(shape).bernoulli_(keep).div_(keep)
    return x * ranks.shard(mask)


class SyncBatchNorm1d(nn.BatchNorm1d):
    def forward(self, x):
        return _batch_norm_sync(self, x) if self.training else super().forward(x)


class SyncBatchNorm2d(nn.BatchNorm2d):
    def forward(self, x):
        return _batch_norm_sync(self, x) if self.training else super().forward(x)


class ShardedDropout(nn.Dropout):
    def forward(self, x):
        return _dropout_shard(self, x, current_ranks(), False) if self.training and self.p > 0 else \
            super().forward(x)


class ShardedDropout2d(nn.Dropout2d):
    def forward(self, x):
        return _dropout_shard(self, x, current_ranks(), True) if self.training and self.p > 0 else \
            super().forward(x)


_GLOBAL = {nn.BatchNorm1d: SyncBatchNorm1d, nn.BatchNorm2d: SyncBatchNorm2d,
           nn.Dropout: ShardedDropout, nn.Dropout2d: ShardedDropout2d}


@contextmanager
def global_batch_layers(model: nn.Module, ranks: Ranks):
    """Within the block (a torchrun job), the model's BatchNorm layers normalize
    over the global batch and its dropout layers drop what one process would
    drop: N ranks train as one. The layers keep their parameters and buffers
    (only their class is swapped), so the optimizer, state dicts and export
    see the same model. Yields the GlobalBatch to set before each step."""
    batch, swapped = GlobalBatch(), []
    if ranks.world > 1:
        for m in model.modules():
            if type(m) in _GLOBAL:
                swapped.append((m, type(m)))
                m.__class__, m.global_batch = _GLOBAL[type(m)], batch
    try:
        yield batch
    finally:
        for m, cls in swapped:
            m.__class__ = cls
            del m.global_batch


def autocast(device: torch.device):
    """Mixed precision on CUDA (bf16 where the GPU has it, else fp16); off on the CPU."""
    if device.type != "cuda":
        return torch.autocast("cpu", enabled=False)
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast("cuda", dtype=dtype)


def grad_scaler(device: torch.device) -> torch.amp.GradScaler:
    """fp16 needs loss scaling; bf16 and fp32 do not (the scaler is then a no-op)."""
    fp16 = device.type == "cuda" and not torch.cuda.is_bf16_supported()
    return torch.amp.GradScaler("cuda" if device.type == "cuda" else "cpu", enabled=fp16)
