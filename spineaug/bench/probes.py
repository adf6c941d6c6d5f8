"""Dispatch-mode probes: count aten ops, host synchronisations and full-size passes of one call."""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import Tensor
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.weak import WeakTensorKeyDictionary

SYNC_OPS = {
    "_local_scalar_dense", "item", "is_nonzero", "nonzero", "nonzero_static", "_unique", "_unique2", "unique_dim",
    "unique_consecutive", "masked_select", "equal", "allclose",
}
"""aten ops that force the host to wait for the device when their input lives there."""


_MASK_INDEX_OPS = {"index", "index_put", "index_put_", "_index_put_impl_"}
"""Indexing ops that synchronise when an index is a boolean mask (the output size depends on the data)."""


def _has_bool_index(args: tuple) -> bool:
    indices = args[1] if len(args) > 1 else ()
    return any(isinstance(i, Tensor) and i.dtype == torch.bool for i in (indices or ()))


class SyncCounter(TorchDispatchMode):
    """Count host synchronisations on tensors derived from the data, and all aten ops, inside a ``with`` block.

    The data tensors passed to :meth:`track` are "device" tensors; every op output computed from one is too (taint
    propagation). Parameters drawn from the CPU generator never touch the data, so reading them on the host is not a
    sync. A sync is one of :data:`SYNC_OPS` applied to a tainted tensor: on a GPU each would stall the host.

    Attributes:
        syncs: Number of synchronising ops on data-derived tensors.
        sync_ops: Their names, in order.
        ops: Number of aten ops dispatched (all tensors).
    """

    def __init__(self) -> None:
        super().__init__()
        self.syncs = 0
        self.sync_ops: list[str] = []
        self.ops = 0
        self._tainted = WeakTensorKeyDictionary()

    def track(self, *tensors: Tensor | None) -> None:
        """Mark tensors as living on the device."""
        for t in tensors:
            if isinstance(t, Tensor):
                self._tainted[t] = True

    def _is_tainted(self, value: Any) -> bool:
        if isinstance(value, Tensor):
            return value in self._tainted
        if isinstance(value, (list, tuple)):
            return any(self._is_tainted(v) for v in value)
        if isinstance(value, dict):
            return any(self._is_tainted(v) for v in value.values())
        return False

    def _mark(self, value: Any) -> None:
        if isinstance(value, Tensor):
            self._tainted[value] = True
        elif isinstance(value, (list, tuple)):
            for v in value:
                self._mark(v)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        self.ops += 1
        tainted = self._is_tainted(args) or self._is_tainted(kwargs)
        name = func.overloadpacket.__name__
        if tainted and (name in SYNC_OPS or (name in _MASK_INDEX_OPS and _has_bool_index(args))):
            self.syncs += 1
            self.sync_ops.append(name)
        out = func(*args, **kwargs)
        if tainted:
            self._mark(out)
            # In-place and out= ops taint their destination too.
            if func._schema.is_mutable:
                self._mark(args[0] if args else None)
        return out


def count_syncs(fn: Callable[[Tensor, Tensor], Any], image: Tensor, label: Tensor | None) -> tuple[int, list[str], int]:
    """Run ``fn(image, label)`` once under :class:`SyncCounter`; return ``(syncs, sync op names, aten ops)``.

    On CUDA it also runs under ``torch.cuda.set_sync_debug_mode("error")``, so a real sync raises.
    """
    counter = SyncCounter()
    with counter:
        counter.track(image, label)
        if image.is_cuda:
            previous = torch.cuda.get_sync_debug_mode()
            torch.cuda.set_sync_debug_mode("error")
            try:
                fn(image, label)
            finally:
                torch.cuda.set_sync_debug_mode(previous)
        else:
            fn(image, label)
    return counter.syncs, counter.sync_ops, counter.ops


_NO_DATA_OPS = {"empty", "empty_like", "empty_strided", "new_empty", "new_empty_strided", "resize_", "set_"}
"""aten ops that allocate or re-point storage without reading or writing its elements."""


def _numels(value: Any) -> list[int]:
    if isinstance(value, Tensor):
        return [value.numel()]
    if isinstance(value, (list, tuple)):
        return [n for v in value for n in _numels(v)]
    return []


class PassCounter(TorchDispatchMode):
    """Count the passes over the data of a call, in units of the whole batch, inside a ``with`` block.

    Every aten op that moves data (not a view, not a bare allocation) and touches a tensor at least as large as one
    sample of the batch counts ``largest tensor / batch`` passes: an elementwise ``x * c`` over the batch is one
    pass, the same op on one of two samples half a pass. This is the load-independent side of a transform's ratio
    to the floor pass (a ratio of 17 with 17 passes is the op count, not a slow kernel).

    Attributes:
        passes: Passes over the batch so far.
        ops: Number of ops that counted.
    """

    def __init__(self, batch_numel: int, sample_numel: int) -> None:
        super().__init__()
        self.passes = 0.0
        self.ops = 0
        self._batch, self._sample = batch_numel, sample_numel

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if not func.is_view and func.overloadpacket.__name__ not in _NO_DATA_OPS:
            largest = max(_numels(args) + _numels(list(kwargs.values())) + _numels(out) + [0])
            if largest >= self._sample:
                self.passes += largest / self._batch
                self.ops += 1
        return out


def count_passes(fn: Callable[[Tensor, Tensor], Any], image: Tensor, label: Tensor | None) -> float:
    """Passes over the batch of one call ``fn(image, label)`` (see :class:`PassCounter`)."""
    counter = PassCounter(image.numel(), image[:1].numel())
    with counter:
        fn(image, label)
    return counter.passes
