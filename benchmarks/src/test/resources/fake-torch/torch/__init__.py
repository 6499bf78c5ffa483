"""A stand-in for the few torch calls benchmarks/gpu/torch_kd.py makes, for TorchKdScriptTest on machines without torch
or a GPU: tensors are sizes only, device memory is counted (FAKE_TORCH_MEMORY bytes, out of memory past it), CUDA
events time 1 ms, and FAKE_TORCH_FAIL_VOCAB=V makes log_softmax raise a RuntimeError on rows of V classes (with
FAKE_TORCH_STICKY=1 the error spoils the context as CUDA's does: every later torch.cuda call raises it). It tests
the script's flow (rotation, memory measured, failures recorded, rows written), not torch."""
import os

__version__ = "0.0-fake"
_LIMIT = int(os.environ.get("FAKE_TORCH_MEMORY", str(1 << 30)))
_FAIL_VOCAB = int(os.environ.get("FAKE_TORCH_FAIL_VOCAB", "-1"))
_STICKY = os.environ.get("FAKE_TORCH_STICKY") == "1"
_spoiled = []
_live = [0]


class dtype:
    def __init__(self, size):
        self.size = size


float32 = dtype(4)
bfloat16 = dtype(2)


class OutOfMemoryError(RuntimeError):
    pass


class Tensor:
    def __init__(self, shape, dt, leaf=None):
        self.shape = tuple(shape)
        self.dtype = dt
        self.grad = None
        self._leaf = leaf
        numel = 1
        for d in self.shape:
            numel *= d
        self._bytes = numel * dt.size
        if _live[0] + self._bytes > _LIMIT:
            self._bytes = 0
            raise OutOfMemoryError("CUDA out of memory. Tried to allocate %d bytes" % (numel * dt.size))
        _live[0] += self._bytes

    def __del__(self):
        _live[0] -= self._bytes

    def element_size(self):
        return self.dtype.size

    def _like(self, other=None):
        leaf = self._leaf or (other._leaf if isinstance(other, Tensor) else None)
        return Tensor(self.shape, self.dtype, leaf)

    __mul__ = __rmul__ = __sub__ = __truediv__ = _like

    def to(self, dt):
        return Tensor(self.shape, dt, self._leaf)

    def requires_grad_(self):
        self._leaf = self
        return self

    def backward(self):
        leaf = self._leaf
        leaf.grad = Tensor(leaf.shape, leaf.dtype)


def tensor(data, dtype):
    return Tensor((len(data),), dtype)


def rand(*shape, device=None, generator=None):
    return Tensor(shape, float32)


class Generator:
    def __init__(self, device=None):
        pass

    def manual_seed(self, seed):
        return self


from . import cuda  # noqa: E402
from . import nn  # noqa: E402
