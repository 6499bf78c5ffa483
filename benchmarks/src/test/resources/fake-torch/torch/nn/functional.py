"""torch.nn.functional as the fake torch has it (see torch/__init__)."""
import torch


def log_softmax(x, dim=-1):
    if x.shape[-1] == torch._FAIL_VOCAB:
        if torch._STICKY:
            torch._spoiled.append(x.shape[-1])
        raise RuntimeError("CUDA error: an illegal memory access was encountered, rows of %d" % x.shape[-1])
    return x._like()


def kl_div(a, b, log_target=False, reduction="mean"):
    return torch.Tensor((), torch.float32, a._leaf or b._leaf)
