"""torch.cuda as the fake torch has it (see __init__)."""
import torch


class _Props:
    L2_cache_size = 50 << 20


OutOfMemoryError = torch.OutOfMemoryError


def get_device_properties(i):
    return _Props()


def get_device_name(i):
    return "fake device"


def synchronize():
    pass


def empty_cache():
    pass


def mem_get_info():
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
