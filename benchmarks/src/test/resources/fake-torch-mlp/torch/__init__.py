"""A stand-in for the torch calls benchmarks/gpu/torch_mlp_step.py makes, for TorchMlpStepScriptTest on machines without
torch or a GPU: tensors are shapes only, every step takes 1 ms on the events, and the loss goes down with the optimizer's
steps. FAKE_TORCH_OOM_BATCH=N makes a batch of N rows run out of memory; FAKE_TORCH_FAULT_BATCH=N makes one raise an
illegal memory access that spoils the context as CUDA does (every later synchronize raises it too);
FAKE_TORCH_NO_COMPILE=1 takes torch.compile away (torch < 2.0). It tests the script's flow, not torch."""
import contextlib
import os
import sys
import types

__version__ = "0.0-fake-mlp"
_OOM_BATCH = int(os.environ.get("FAKE_TORCH_OOM_BATCH", "-1"))
_FAULT_BATCH = int(os.environ.get("FAKE_TORCH_FAULT_BATCH", "-1"))
_spoiled = []
_steps = [0]


class OutOfMemoryError(RuntimeError):
    pass


class dtype:
    pass


float32 = dtype()
bfloat16 = dtype()


class device:
    def __init__(self, kind, index=None):
        if ":" in kind:
            kind, index = kind.split(":")[0], int(kind.split(":")[1])
        self.type = kind
        self.index = index


class Tensor:
    def __init__(self, shape, value=0.0):
        self.shape = tuple(shape)
        self._value = value

    def _same(self, *args, **kwargs):
        return self

    roll = cpu = pin_memory = to = detach = clone = _same
    __mul__ = __rmul__ = __add__ = __radd__ = __truediv__ = _same

    def item(self):
        _check()
        return self._value

    def backward(self):
        pass


def _check():
    if _spoiled:
        raise RuntimeError("CUDA error: an illegal memory access was encountered (sticky: " + _spoiled[0] + ")")


def manual_seed(seed):
    pass


class Generator:
    def __init__(self, device=None):
        pass

    def manual_seed(self, seed):
        return self


def rand(n, d, device=None, generator=None):
    _check()
    if n == _OOM_BATCH:
        raise OutOfMemoryError("CUDA out of memory. Tried to allocate %d bytes" % (n * d * 4))
    if n == _FAULT_BATCH:
        _spoiled.append("batch %d" % n)
        raise RuntimeError("CUDA error: an illegal memory access was encountered")
    return Tensor((n, d))


def randint(low, high, shape, device=None, generator=None):
    return Tensor(shape)


no_grad = contextlib.nullcontext


def autocast(device_type=None, dtype=None):
    return contextlib.nullcontext()


if os.environ.get("FAKE_TORCH_NO_COMPILE") != "1":
    def compile(fn, dynamic=None, mode=None):
        return fn

_dynamo = types.ModuleType("torch._dynamo")
_dynamo.reset = lambda: None
backends = types.SimpleNamespace(cuda=types.SimpleNamespace(matmul=types.SimpleNamespace(allow_tf32=True)),
                                 cudnn=types.SimpleNamespace(allow_tf32=True))

cuda = types.ModuleType("torch.cuda")


class _Event:
    def __init__(self, enable_timing=False):
        pass

    def record(self):
        pass

    def synchronize(self):
        _check()

    def elapsed_time(self, end):
        return 1.0


def _synchronize(dev=None):
    _check()


cuda.is_available = lambda: True
cuda.current_device = lambda: 0
cuda.get_device_name = lambda dev=None: "fake mlp device"
cuda.synchronize = _synchronize
cuda.empty_cache = lambda: None
cuda.reset_peak_memory_stats = lambda dev=None: None
cuda.max_memory_allocated = lambda dev=None: 12345
cuda.Event = _Event

nn = types.ModuleType("torch.nn")


class Module:
    def to(self, dev):
        return self

    def eval(self):
        return self

    def train(self):
        return self

    def requires_grad_(self, flag=True):
        return self

    def parameters(self):
        return []


class Linear(Module):
    def __init__(self, i, o):
        self.out = o
        self.weight = Tensor((o, i))
        self.bias = Tensor((o,))

    def __call__(self, x):
        return Tensor((x.shape[0], self.out))


class ReLU(Module):
    def __call__(self, x):
        return x


class Sequential(Module):
    def __init__(self, *layers):
        self.layers = layers

    def __call__(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


nn.Module, nn.Linear, nn.ReLU, nn.Sequential = Module, Linear, ReLU, Sequential
nn.init = types.SimpleNamespace(kaiming_normal_=lambda w, nonlinearity=None: w, xavier_normal_=lambda w: w, zeros_=lambda b: b)
functional = types.ModuleType("torch.nn.functional")
functional.cross_entropy = lambda s, y: Tensor((), 1.0 / (1 + _steps[0]))
functional.kl_div = lambda a, b, log_target=False, reduction="mean": Tensor(())
functional.log_softmax = lambda x, dim=-1: x
nn.functional = functional

optim = types.ModuleType("torch.optim")


class Adam:
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, foreach=None, fused=None):
        pass

    def step(self):
        _steps[0] += 1

    def zero_grad(self, set_to_none=True):
        pass


class AdamW(Adam):
    pass


optim.Adam, optim.AdamW = Adam, AdamW

for _name, _module in {"torch.cuda": cuda, "torch.nn": nn, "torch.nn.functional": functional, "torch.optim": optim,
                       "torch._dynamo": _dynamo}.items():
    sys.modules[_name] = _module
