"""torch.cuda as the fake torch has it (see __init__)."""
import torch


class _Props:
    L2_cache_size = 50 << 20


OutOfMemoryError = torch.OutOfMemoryError


def get_device_properties(i):
    return _Props()


def get_device_name(i):
    return "fake device"


def _check():
    if torch._spoiled:
        raise RuntimeError("CUDA error: an illegal memory access was encountered (sticky, since rows of %d)" % torch._spoiled[0])


def synchronize():
    _check()


def empty_cache():
    _check()


def mem_get_info():
    _check()
    return torch._LIMIT - torch._live[0], torch._LIMIT


def _sleep(cycles):
    pass


class Event:
    def __init__(self, enable_timing=False):
        pass

    def record(self):
        pass

    def synchronize(self):
        pass

    def elapsed_time(self, end):
        return 1.0
