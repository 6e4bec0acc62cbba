"""Reading the compiler's output for the static check: ptxas -v, SASS and PTX, occupancy.

Everything here works on text (``ptxas -v`` messages, ``nvdisasm -c`` listings, PTX) and on
numbers, so it is tested without a toolkit. ``nbsoftmax.cuda.verify`` compiles the kernels
and calls these.

Global memory instructions are counted by width and path: ``LDG.E`` is a 32-bit load,
``LDG.E.64`` / ``.128`` vector loads, ``.U16`` a half, ``.CONSTANT`` the read-only
(``ld.global.nc``) path; PTX ``ld.global[.nc][.v2|.v4].<type>`` likewise when no SASS is
at hand.
"""

import os
import re
import shutil

# Per SM: registers, resident threads, shared memory (bytes), resident blocks
# (CUDA occupancy calculator, compute capability 8.0 / 9.0); 1 KB of shared memory is
# reserved per block from sm_80 on.
SM_LIMITS = {
    "sm_80": (65_536, 2048, 164 * 1024, 32),
    "sm_90": (65_536, 2048, 228 * 1024, 32),
}
SMEM_RESERVED_PER_BLOCK = 1024
REGISTER_FILE = 65_536  # per block and per SM, sm_70 .. sm_90
REGISTER_UNIT = 256  # registers are allocated per warp in units of 256
SUB_PARTITIONS = 4
MAX_REGISTERS = 255


def find_tool(name):
    """Path of CUDA binary utility ``name`` (ptxas, nvdisasm) or None.

    Looks in the NVIDIA toolkit wheels (cuda-pathfinder), ``CUDA_HOME``/``CUDA_PATH`` and
    ``PATH``.

    Examples
    --------
    >>> find_tool("no-such-tool") is None
    True
    """
    try:
        from cuda.pathfinder import find_nvidia_binary_utility

        found = find_nvidia_binary_utility(name)
        if found:
            return found
    except Exception:  # noqa: BLE001 - an older cuda-pathfinder: look on the usual paths
        pass
    for root in (os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH")):
        if root and os.path.exists(os.path.join(root, "bin", name)):
            return os.path.join(root, "bin", name)
    return shutil.which(name)


def _warp_registers(registers):
    return -(-max(registers, 1) * 32 // REGISTER_UNIT) * REGISTER_UNIT


def max_launchable_threads(registers, maxntid=1024):
    """Most threads per block (a warp multiple) a kernel of ``registers`` per thread takes.

    Warps are allocated to the 4 SM sub-partitions at once (as ``cuda_occupancy.h``
    models the launch check). 0 when not even one warp fits.

    Examples
    --------
    >>> max_launchable_threads(64), max_launchable_threads(74), max_launchable_threads(96)
    (1024, 768, 640)
    """
    per_warp = _warp_registers(registers)
    warps = 0
    for w in range(1, 33):
        if -(-w // SUB_PARTITIONS) * SUB_PARTITIONS * per_warp <= REGISTER_FILE:
            warps = w
    if registers > MAX_REGISTERS:
        warps = 0
    return min(warps * 32, maxntid // 32 * 32, 1024)


def occupancy(registers, threads, shared, arch="sm_90"):
    """(resident blocks per SM, theoretical occupancy) of blocks of ``threads`` threads using
    ``registers`` per thread and ``shared`` bytes of shared memory on ``arch``.

    Examples
    --------
    >>> occupancy(64, 1024, 256)
    (1, 0.5)
    >>> occupancy(32, 512, 256)
    (4, 1.0)
    >>> occupancy(40, 128, 0)
    (12, 0.75)
    """
    regs, max_threads, smem, max_blocks = SM_LIMITS[arch]
    warps = -(-threads // 32)
    per_warp = _warp_registers(registers)
    # registers: each sub-partition holds a quarter of the file and whole warps
    warps_by_regs = (regs // SUB_PARTITIONS // per_warp) * SUB_PARTITIONS
    blocks = min(max_blocks, max_threads // (warps * 32), warps_by_regs // warps,
                 smem // (shared + SMEM_RESERVED_PER_BLOCK))
    return blocks, round(blocks * warps * 32 / max_threads, 3)


_PTXAS_REGS = re.compile(r"Used (\d+) registers")
_PTXAS_SMEM = re.compile(r"(\d+) bytes smem")
_PTXAS_SPILL = re.compile(r"(\d+) bytes spill stores, (\d+) bytes spill loads")
_PTXAS_STACK = re.compile(r"(\d+) bytes stack frame")


def parse_ptxas(text):
    """Registers, static shared memory, spill and stack bytes from ``ptxas -v`` output.

    Examples
    --------
    >>> parse_ptxas("Used 40 registers, used 1 barriers, 256 bytes smem")["registers"]
    40
    """
    regs = _PTXAS_REGS.search(text)
    smem = _PTXAS_SMEM.search(text)
    spill = _PTXAS_SPILL.search(text)
    stack = _PTXAS_STACK.search(text)
    if regs is None:
        raise RuntimeError(f"ptxas -v printed no register count:\n{text}")
    return {"registers": int(regs.group(1)), "shared": int(smem.group(1)) if smem else 0,
            "spill_stores": int(spill.group(1)) if spill else 0,
            "spill_loads": int(spill.group(2)) if spill else 0,
            "stack": int(stack.group(1)) if stack else 0}


_SASS = re.compile(r"/\*([0-9a-f]{4,})\*/\s+(@!?U?P\w+\s+)?([A-Z][A-Z0-9_.]*)([^;]*);")
_LABEL = re.compile(r"^(\.L_x_\d+):")
_TARGET = re.compile(r"\((\.L_x_\d+)\)")
_WIDTHS = {"U8": 8, "S8": 8, "U16": 16, "S16": 16, "64": 64, "128": 128}


def _sass_access(opcode):
    """('load' | 'store', bits, read-only path) of a global memory SASS opcode, else None."""
    parts = opcode.split(".")
    if parts[0] not in ("LDG", "STG"):
        return None
    bits = next((_WIDTHS[p] for p in parts[1:] if p in _WIDTHS), 32)
    return ("load" if parts[0] == "LDG" else "store", bits, "CONSTANT" in parts[1:])


def _memory(ops):
    """Counts of global accesses by kind: {'load.32': 8, 'load.32.nc': 0, 'store.32': 8, ...}."""
    counts = {}
    for opcode in ops:
        access = _sass_access(opcode)
        if access:
            kind, bits, nc = access
            name = f"{kind}.{bits}{'.nc' if nc else ''}"
            counts[name] = counts.get(name, 0) + 1
    return counts


def sass_profile(text):
    """Instructions and global memory accesses of ``nvdisasm -c`` output.

    Returns a dict: ``total`` instructions (NOPs and the trailing self-branch left out),
    ``loops`` the instructions of the innermost loops that load from global memory,
    ``memory`` the global loads/stores of the whole kernel by width (see ``_memory``) and
    ``loop_memory`` those inside the loading loops.

    Examples
    --------
    >>> text = '''
    ... /*0000*/ LDG.E R2, desc[UR4][R2.64] ;
    ... /*0010*/ LDG.E.64.CONSTANT R4, desc[UR4][R6.64] ;
    ... /*0020*/ STG.E desc[UR4][R8.64], R2 ;
    ... /*0030*/ EXIT ;'''
    >>> p = sass_profile(text)
    >>> p["total"], p["memory"]
    (4, {'load.32': 1, 'load.64.nc': 1, 'store.32': 1})
    """
    body = []
    labels = {}
    for line in text.splitlines():
        label = _LABEL.match(line.strip())
        if label:
            labels[label.group(1)] = len(body)
            continue
        m = _SASS.search(line)
        if m and m.group(3) != "NOP":
            body.append((m.group(3), m.group(4)))
    # the trailing `BRA self` after EXIT is padding, not code
    while body and body[-1][0] == "BRA" and body[-1][1].strip().startswith("`(.L_x"):
        target = _TARGET.search(body[-1][1])
        if target is None or labels.get(target.group(1)) != len(body) - 1:
            break
        body.pop()
    loops = []
    for i, (opcode, rest) in enumerate(body):
        target = _TARGET.search(rest) if opcode.startswith("BRA") else None
        if target and labels.get(target.group(1), i + 1) <= i:
            loops.append((labels[target.group(1)], i))
    innermost = [(a, b) for a, b in loops
                 if not any(a <= c and d <= b and (c, d) != (a, b) for c, d in loops)]
    loading = [(a, b) for a, b in innermost
               if any(op.startswith("LDG") for op, _ in body[a:b + 1])]
    return {"total": len(body), "loops": sum(b - a + 1 for a, b in loading),
            "memory": _memory(op for op, _ in body),
            "loop_memory": _memory(op for a, b in loading for op, _ in body[a:b + 1])}


_PTX_ACCESS = re.compile(r"\b(ld|st)\.global((?:\.\w+)*)\s")
_PTX_BITS = {"b8": 8, "u8": 8, "s8": 8, "b16": 16, "u16": 16, "s16": 16, "f16": 16,
             "b32": 32, "u32": 32, "s32": 32, "f32": 32, "b64": 64, "u64": 64, "s64": 64,
             "f64": 64}


def ptx_memory(ptx):
    """Global loads/stores of PTX text by width, as ``_memory`` counts SASS (used where no
    nvdisasm is at hand; PTX is before ptxas's scheduling, so counts may differ).

    Examples
    --------
    >>> ptx_memory("ld.global.nc.v2.f32 {%f1, %f2}, [%rd1];\\n st.global.f32 [%rd2], %f1;")
    {'load.64.nc': 1, 'store.32': 1}
    """
    counts = {}
    for kind, suffix in _PTX_ACCESS.findall(ptx):
        parts = suffix.strip(".").split(".")
        lanes = 4 if "v4" in parts else 2 if "v2" in parts else 1
        bits = lanes * next((_PTX_BITS[p] for p in parts if p in _PTX_BITS), 32)
        name = f"{'load' if kind == 'ld' else 'store'}.{bits}{'.nc' if 'nc' in parts else ''}"
        counts[name] = counts.get(name, 0) + 1
    return counts


def access_bits(counts, kind):
    """Total bits moved per execution by the accesses of ``kind`` ('load'/'store') in counts.

    Examples
    --------
    >>> access_bits({'load.32': 2, 'load.64.nc': 1, 'store.32': 1}, 'load')
    128
    """
    return sum(int(name.split(".")[1]) * n for name, n in counts.items()
               if name.split(".")[0] == kind)


def widths(counts):
    """A short text of the access counts: ``ld 8x32 2x64nc / st 8x32``.

    Examples
    --------
    >>> widths({'load.32': 8, 'load.64.nc': 2, 'store.32': 8})
    'ld 8x32 2x64nc / st 8x32'
    """
    def side(kind):
        parts = [f"{n}x{name.split('.', 1)[1].replace('.', '')}"
                 for name, n in sorted(counts.items()) if name.startswith(kind)]
        return " ".join(parts) or "-"

    return f"ld {side('load')} / st {side('store')}"
