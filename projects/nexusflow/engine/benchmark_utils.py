"""Cost measurements behind ``tools/benchmark.py``: parameter counts, wall-clock timing and peak memory.

Peak memory on the CPU: PyTorch's CPU allocator keeps no peak counter (``torch.cuda.max_memory_allocated`` has no
CPU twin), so the process's resident set size (RSS) stands in for it. On Linux the kernel's high-water mark
(``VmHWM`` in ``/proc/self/status``) can be reset by writing ``5`` to ``/proc/self/clear_refs``; a phase's peak is
then ``VmHWM`` after the phase minus the RSS at its start, exact to the page and free of sampling gaps. Before the
start RSS is read, freed heap pages are handed back to the OS (``malloc_trim``) so that memory freed earlier (data
loading, a previous phase) is neither counted in the baseline nor silently reused. The RSS also holds everything
the process ever imported or cached, which is why ``tools/benchmark.py`` measures every run in a fresh process:
only then are two runs' numbers comparable. Without ``clear_refs`` (non-Linux) the growth of the lifetime peak
(``getrusage``) over the phase is used, a lower bound; ``PeakMemory.method`` says which was used.
"""
import ctypes
import ctypes.util
import gc
import resource
import statistics
import sys
import time
from typing import Callable, Dict, List, Union

import torch
from torch import nn

MIB = 1024 ** 2
OWN_PARAMS = '(own)'  # parameters registered on the model itself rather than on a child module


def parameter_counts(model: nn.Module) -> Dict[str, object]:
    """Parameter totals of ``model`` and their split over its top-level children.

    Every parameter tensor is counted once (``named_parameters`` drops shared tensors after their first name) and
    charged to the child that first registers it, so ``sum(per_module.values()) == total`` always holds.

    Args:
        model (nn.Module): any module.

    Returns:
        dict: ``total`` (int, number of scalars), ``trainable`` (int, those with ``requires_grad``) and
        ``per_module`` (dict child name -> int, every child in registration order, zeros included, plus
        ``'(own)'`` when the model holds parameters directly).
    """
    per_module = {name: 0 for name, _ in model.named_children()}
    total = trainable = 0
    for name, param in model.named_parameters():
        owner = name.split('.', 1)[0] if '.' in name else OWN_PARAMS
        per_module[owner] = per_module.get(owner, 0) + param.numel()
        total += param.numel()
        trainable += param.numel() if param.requires_grad else 0
    return dict(total=total, trainable=trainable, per_module=per_module)


def time_calls(fn: Callable[[], object], iters: int, warmup: int, device: torch.device) -> List[float]:
    """Wall-clock seconds of ``iters`` calls of ``fn`` after ``warmup`` untimed ones.

    Args:
        fn (Callable): the call to time; its result is discarded.
        iters (int): timed calls, >= 1.
        warmup (int): untimed calls first, >= 0.
        device (torch.device): CUDA work is synchronised before and after every timed call.

    Returns:
        list[float]: ``iters`` durations in seconds, in call order.
    """
    if iters < 1 or warmup < 0:
        raise ValueError(f'need iters >= 1 and warmup >= 0, got iters={iters}, warmup={warmup}')
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        _synchronize(device)
        start = time.perf_counter()
        fn()
        _synchronize(device)
        times.append(time.perf_counter() - start)
    return times


def timing_summary(times: List[float]) -> Dict[str, float]:
    """``median``, ``min`` and ``max`` (seconds) of a list of durations."""
    if not times:
        raise ValueError('timing_summary needs at least one duration')
    return dict(median=statistics.median(times), min=min(times), max=max(times))


def _synchronize(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def release_freed_memory() -> None:
    """Collect garbage and return freed heap pages to the OS (glibc ``malloc_trim``; a no-op elsewhere)."""
    gc.collect()
    libc_name = ctypes.util.find_library('c')
    if sys.platform.startswith('linux') and libc_name:
        libc = ctypes.CDLL(libc_name)
        if hasattr(libc, 'malloc_trim'):
            libc.malloc_trim(0)


def _proc_status_mib(field: str, pid: Union[int, str] = 'self') -> float:
    """A ``kB`` field of ``/proc/<pid>/status`` (e.g. ``VmRSS``, ``VmHWM``) in MiB."""
    with open(f'/proc/{pid}/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1]) / 1024
    raise KeyError(f'{field} not found in /proc/{pid}/status')


def process_rss_mib(pid: int) -> float:
    """Resident set size of process ``pid`` in MiB (Linux ``/proc``); 0 once the process has ended."""
    try:
        return _proc_status_mib('VmRSS', pid)
    except (FileNotFoundError, ProcessLookupError, KeyError):
        return 0.0


def _lifetime_peak_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / MIB if sys.platform == 'darwin' else peak / 1024  # bytes on macOS, KiB on Linux


def _reset_rss_peak() -> bool:
    """Reset the kernel's RSS high-water mark of this process; ``False`` where that is not possible."""
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        return True
    except OSError:
        return False


class PeakMemory:
    """Context manager measuring the memory a phase adds on top of what is live when it starts.

    CPU: RSS high-water mark over the phase minus RSS at its start (see the module docstring). CUDA: peak and start
    of ``torch.cuda.memory_allocated`` (the peak counter is reset on entry).

    After the ``with`` block: ``start_mib`` (float, memory live at the start, MiB), ``peak_mib`` (float, the
    phase's peak increase over ``start_mib``, MiB, >= 0), ``total_peak_mib`` (``start_mib + peak_mib``) and
    ``method`` (str, how the peak was read).

    Args:
        device (torch.device): where the phase allocates.
    """

    def __init__(self, device: torch.device):
        self.device = torch.device(device)
        self.start_mib = self.peak_mib = self.total_peak_mib = float('nan')
        self.method = ''
        self._hwm_reset = False

    def __enter__(self) -> 'PeakMemory':
        release_freed_memory()
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.start_mib = torch.cuda.memory_allocated(self.device) / MIB
            self.method = 'torch.cuda.max_memory_allocated'
        elif _reset_rss_peak():
            self._hwm_reset = True
            self.start_mib = _proc_status_mib('VmRSS')
            self.method = 'RSS high-water mark (VmHWM after clear_refs)'
        else:
            self.start_mib = _lifetime_peak_mib()
            self.method = 'growth of the lifetime peak RSS (lower bound: no /proc/self/clear_refs)'
        return self

    def __exit__(self, *exc_info) -> None:
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)
            peak = torch.cuda.max_memory_allocated(self.device) / MIB
        elif self._hwm_reset:
            peak = _proc_status_mib('VmHWM')
        else:
            peak = _lifetime_peak_mib()
        self.total_peak_mib = max(peak, self.start_mib)
        self.peak_mib = self.total_peak_mib - self.start_mib

    def summary(self) -> Dict[str, object]:
        """``start_mib``, ``peak_mib``, ``total_peak_mib`` and ``method`` as a plain dict."""
        return dict(start_mib=self.start_mib, peak_mib=self.peak_mib, total_peak_mib=self.total_peak_mib,
                    method=self.method)
