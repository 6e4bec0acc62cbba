"""Strided copy with a dtype cast: how inputs the kernels cannot read in place are staged.

Device inputs with gaps (``x[:, ::2]``), zero strides (broadcast), negative strides, softmax
axes that are not adjacent in memory, or a dtype other than the result's are copied once,
on the device, into a dense buffer in the result's layout; an ``out`` whose memory is not
dense is filled from a dense result the same way. Both sides are flat 1-D views starting at
their lowest address, with element strides (possibly negative or zero) per dimension.
"""

import numpy as np

from ._runtime import cuda


def strided_copy(ndim):
    """Kernel ``(src, dst, shape, src_strides, dst_strides, src_at0, dst_at0, size)``, ndim-d.

    ``src_at0`` / ``dst_at0``: flat index of element ``[0, ..., 0]`` (not the lowest address
    when a stride is negative).
    """

    def kernel(src, dst, shape, src_strides, dst_strides, src_at0, dst_at0, size):
        i = cuda.grid(1)
        step = cuda.gridsize(1)
        while i < size:
            rest = i
            src_at = src_at0
            dst_at = dst_at0
            for d in range(ndim - 1, -1, -1):
                extent = shape[d]
                index = rest % extent
                rest //= extent
                src_at += index * src_strides[d]
                dst_at += index * dst_strides[d]
            # Through float64: exact from every float and bool, one rounding to the target.
            dst[dst_at] = np.float64(src[src_at])
            i += step

    kernel.__qualname__ = kernel.__name__ = f"strided_copy_{ndim}d"
    return kernel
