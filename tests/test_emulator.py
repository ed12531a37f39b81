"""The CPU emulator of the Ascend C API: hand-written kernels in tests/emulator_kernels/ compiled
against it with g++ and run; results checked against numpy, limits checked to fail loudly.

Each group of kernels is one executable (compiled once per session, in parallel, and cached by
content under .cache/emulator/), run with a kernel name and files.
"""
from __future__ import annotations

import struct
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from autofuse.emulator import (
    CompileError,
    KernelRunError,
    build,
    include_dir,
    run,
    target_for,
)
from autofuse.emulator.build import EXIT_CODE

KERNELS = Path(__file__).parent / "emulator_kernels"
CACHE = Path(__file__).parent.parent / ".cache" / "emulator"
A2 = target_for("ascend910b")
UB = A2.ub_bytes

_BUILDS = {
    "vector": ["add_custom.cpp", "vector_kernels.cpp", "vector_main.cpp"],
    "limits": ["limits_kernels.cpp", "limits_main.cpp"],
    "matmul": ["matmul_kernels.cpp", "matmul_main.cpp"],
}


@pytest.fixture(scope="module")
def exes() -> dict[str, Path]:
    """Every test executable, built in parallel (cached by content across sessions)."""
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = {name: pool.submit(build, [KERNELS / f for f in files], A2, cache_dir=CACHE, name=name)
                   for name, files in _BUILDS.items()}
        return {name: future.result() for name, future in futures.items()}


def tiling(n: int = 0, rows: int = 0, mode: int = 0, scalar: float = 0.0) -> bytes:
    """The TestTiling struct of vector_kernels.cpp / limits_kernels.cpp."""
    return struct.pack("<IIIf", n, rows, mode, scalar)


class Out:
    """An output argument: `count` elements of `dtype`, zero-filled GM, read back after the run."""

    def __init__(self, dtype, count: int) -> None:
        self.dtype, self.count = np.dtype(dtype), count


class Kernel:
    """Runs one kernel of a test executable. Positional GM arguments: a numpy array (input), an
    Out (output), an int (a zeroed workspace of that many bytes), a str (passed through) or None."""

    def __init__(self, exe: Path, tmp: Path) -> None:
        self.exe, self.tmp = exe, tmp

    def __call__(self, kernel: str, td: bytes, gm_args=(), *, blocks: int = 1, mode: str = "aiv"):
        (self.tmp / "tiling.bin").write_bytes(td)
        args: list = [kernel, blocks, mode, self.tmp / "tiling.bin"]
        outs = []
        for i, arg in enumerate(gm_args):
            path = self.tmp / f"arg{i}.bin"
            if isinstance(arg, np.ndarray):
                np.ascontiguousarray(arg).tofile(path)
                args.append(f"in:{path}")
            elif isinstance(arg, Out):
                args.append(f"out:{arg.dtype.itemsize * arg.count}:{path}")
                outs.append((path, arg.dtype))
            elif isinstance(arg, int):
                args.append(f"ws:{arg}")
            else:
                args.append(arg or "null")
        result = run(self.exe, args, timeout=60)
        if not result.ok:
            return None, result
        return [np.fromfile(path, dtype=dtype) for path, dtype in outs], result


@pytest.fixture
def vector(exes, tmp_path) -> Kernel:
    return Kernel(exes["vector"], tmp_path)


@pytest.fixture
def limits(exes, tmp_path) -> Kernel:
    return Kernel(exes["limits"], tmp_path)


def _add_tiling(total: int, block: int, tile: int) -> bytes:
    return struct.pack("<III", total, block, tile)


# -- the classic double-buffered Add ---------------------------------------------------------------


@pytest.mark.parametrize("dtype,kernel", [(np.float32, "add_custom_float"), (np.float16, "add_custom_half")])
def test_add_kernel_uneven_split_matches_numpy(vector, dtype, kernel):
    rng = np.random.default_rng(0)
    total, blocks, tile = 2992, 7, 128  # 7 blocks of 432 elements, the last takes 400; short last tiles
    block = 432
    x = rng.standard_normal(total).astype(dtype)
    y = rng.standard_normal(total).astype(dtype)
    (z,), result = vector(kernel, _add_tiling(total, block, tile), [x, y, Out(dtype, total), None],
                          blocks=blocks)
    assert result.ok, result.stderr
    np.testing.assert_array_equal(z, x + y)  # one rounding per element: exactly numpy's
    (launch,) = result.launches
    assert (launch.kernel, launch.blocks, launch.mode) == (kernel, blocks, "AIV_MODE")
    item = np.dtype(dtype).itemsize
    assert (launch.gm_bytes_read, launch.gm_bytes_written) == (2 * total * item, total * item)
    assert result.warnings == []


# -- numerics: one rounding per instruction --------------------------------------------------------


def test_fp16_chain_rounds_to_half_after_every_instruction(vector):
    rng = np.random.default_rng(1)
    n, h = 256, np.float16
    a = rng.uniform(-2, 2, n).astype(h)
    b = rng.uniform(0.5, 2, n).astype(h)
    (out,), result = vector("chain_half", tiling(n, scalar=0.3), [a, b, Out(h, 6 * n), None])
    assert result.ok, result.stderr
    f64 = np.float64

    def exact(fn, x):  # an instruction: exact result, rounded once to half
        return fn(x.astype(f64)).astype(h)

    s1 = ((a + b) * a) / b  # numpy float16 arithmetic rounds every step to half
    s2 = exact(np.exp, s1 * h(0.3))
    s3 = exact(np.sqrt, np.maximum(s2 - a, h(0)))
    t = np.minimum(a + h(-1.5), b)
    s4 = np.maximum(np.where(t >= 0, t, t * h(0.1)), h(-0.2))
    s5 = exact(np.log, exact(lambda v: 1 / v, b))
    s6 = exact(lambda v: 1 / np.sqrt(v), np.abs(a) + h(0.5))
    for k, want in enumerate([s1, s2, s3, s4, s5, s6]):
        np.testing.assert_array_equal(out[k * n:(k + 1) * n], want, err_msg=f"step {k + 1}")
    # Rounding once at the end instead would give other halves: the per-step rounding is observable.
    once = (((a.astype(f64) + b) * a) / b).astype(h)
    assert np.count_nonzero(once != out[:n]) > 0


def _tree_sum_f32(values: np.ndarray, lanes: int = 64) -> np.float32:
    """The documented A2 ReduceSum order: a pairwise tree inside each 256-byte repeat (every
    addition rounded to float32), then the repeat results added in sequence."""
    total = None
    for start in range(0, len(values), lanes):
        chunk = np.zeros(lanes, np.float32)
        part = values[start:start + lanes]
        chunk[:len(part)] = part
        while len(chunk) > 1:
            chunk = (chunk[0::2] + chunk[1::2]).astype(np.float32)
        total = chunk[0] if total is None else np.float32(total + chunk[0])
    return total


def test_row_reductions_follow_the_documented_order(vector):
    rng = np.random.default_rng(2)
    rows, n = 8, 200  # 200 floats: 3 full repeats and a partial one
    x = rng.standard_normal((rows, n)).astype(np.float32)
    (whole, sums, maxes), result = vector("reduce_rows", tiling(n, rows),
                                          [x, Out(np.float32, rows * 8), Out(np.float32, rows),
                                           Out(np.float32, 2 * rows)])
    assert result.ok, result.stderr
    np.testing.assert_array_equal(sums, [_tree_sum_f32(r) for r in x])
    np.testing.assert_allclose(sums, x.astype(np.float64).sum(axis=1), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(maxes[0::2], x.max(axis=1))
    np.testing.assert_array_equal(maxes[1::2], x.argmax(axis=1))
    # WholeReduceSum, one repeat (the first 64 columns) per row, dstRepStride 8.
    per_row = whole.reshape(rows, 8)
    np.testing.assert_array_equal(per_row[:, 0], [_tree_sum_f32(r[:64]) for r in x])
    # WholeReduceMax (ORDER_VALUE_INDEX, dstRepStride in pairs): value, then the index's bits.
    np.testing.assert_array_equal(per_row[:, 2], x[:, :64].max(axis=1))
    np.testing.assert_array_equal(per_row[:, 3].view(np.uint32), x[:, :64].argmax(axis=1))
    assert not per_row[:, [1, 4, 5, 6, 7]].any()


def test_whole_reduce_sum_half_saturates_at_65504(vector):
    x = np.zeros(128, np.float16)
    x[:4] = [60000, 60000, -30000, 100]
    x[4:] = 1000  # masked off by SetVectorMask
    (out,), result = vector("whole_reduce_half", tiling(), [x, Out(np.float16, 16)])
    assert result.ok, result.stderr
    # Documented: 60000 + 60000 saturates to 65504, then 65504 + (-29900) = 35604 (within half's 32 spacing)
    assert np.isfinite(out[0]) and abs(float(out[0]) - 35604) <= 32
    assert not out[1:].any()


_MODES = {"CAST_NONE": 0, "CAST_RINT": 1, "CAST_FLOOR": 2, "CAST_CEIL": 3, "CAST_ROUND": 4, "CAST_TRUNC": 5,
          "CAST_ODD": 6}
_TIES = np.array([1 + 2**-11, 1 + 3 * 2**-11, -(1 + 2**-11), 0.1, -0.1, 2.5, -2.5, 3.7, -3.7, 65519.0, 1e-8,
                  -1e-8, 0.0, 1 / 3, -7.5, 100.25], dtype=np.float32)


def _half_reference(x: np.ndarray, mode: str) -> np.ndarray:
    """Directed rounding to float16 from the neighbouring halves (numpy only)."""
    near = x.astype(np.float16)
    with np.errstate(over="ignore"):  # 65519 rounds up to inf
        lo = np.where(near.astype(np.float64) > x, np.nextafter(near, np.float16(-np.inf)), near)
        hi = np.where(near.astype(np.float64) < x, np.nextafter(near, np.float16(np.inf)), near)
    exact = lo == hi
    if mode in ("CAST_RINT", "CAST_NONE"):
        return near
    if mode == "CAST_FLOOR":
        return lo
    if mode == "CAST_CEIL":
        return hi
    if mode == "CAST_TRUNC":
        return np.where(x > 0, lo, hi)
    if mode == "CAST_ROUND":
        tie = (x - lo.astype(np.float64)) == (hi.astype(np.float64) - x)
        return np.where(tie & ~exact, np.where(x > 0, hi, lo), near)
    odd_lo = (lo.view(np.uint16) & 1) == 1
    return np.where(exact, lo, np.where(odd_lo, lo, hi))  # CAST_ODD


@pytest.mark.parametrize("mode", list(_MODES))
def test_cast_float_to_half_round_modes(vector, mode):
    (y,), result = vector("cast_modes", tiling(16, 0, _MODES[mode]), [_TIES, Out(np.float16, 16)])
    assert result.ok, result.stderr
    np.testing.assert_array_equal(y.view(np.uint16), _half_reference(_TIES, mode).view(np.uint16))


def test_cast_half_ties_by_hand(vector):
    """1 + 2^-11 lies halfway between the halves 1 and 1 + 2^-10."""
    want = {"CAST_RINT": 1.0, "CAST_ROUND": 1 + 2**-10, "CAST_FLOOR": 1.0, "CAST_CEIL": 1 + 2**-10,
            "CAST_TRUNC": 1.0, "CAST_ODD": 1 + 2**-10}
    for mode, value in want.items():
        (y,), result = vector("cast_modes", tiling(16, 0, _MODES[mode]), [_TIES, Out(np.float16, 16)])
        assert result.ok and float(y[0]) == value, mode


@pytest.mark.parametrize("mode,ref", [
    ("CAST_RINT", np.rint), ("CAST_FLOOR", np.floor), ("CAST_CEIL", np.ceil), ("CAST_TRUNC", np.trunc),
    ("CAST_ROUND", lambda v: np.sign(v) * np.floor(np.abs(v) + 0.5))])
def test_cast_float_to_int32_and_float_round_modes(vector, mode, ref):
    x = _TIES[:-6].copy()  # finite values inside int32
    x = np.concatenate([x, np.array([5.5, -5.5, 6.5, -6.5, 1e9, -1e9], np.float32)])
    (i32,), result = vector("cast_modes", tiling(16, 1, _MODES[mode]), [x, Out(np.int32, 16)])
    assert result.ok, result.stderr
    np.testing.assert_array_equal(i32, ref(x.astype(np.float64)).astype(np.int32))
    (f32,), result = vector("cast_modes", tiling(16, 3, _MODES[mode]), [x, Out(np.float32, 16)])
    np.testing.assert_array_equal(f32, ref(x.astype(np.float64)).astype(np.float32))


def test_cast_float_to_bf16_rint_matches_torch(vector):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    x = np.concatenate([_TIES, rng.standard_normal(48).astype(np.float32)])
    (y,), result = vector("cast_modes", tiling(64, 2, _MODES["CAST_RINT"]), [x, Out(np.uint16, 64)])
    assert result.ok, result.stderr
    want = torch.from_numpy(x).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
    np.testing.assert_array_equal(y, want)


def test_cast_float_to_bf16_needs_a_round_mode(vector):
    _, result = vector("cast_modes", tiling(16, 2, _MODES["CAST_NONE"]), [_TIES, Out(np.uint16, 16)])
    assert result.returncode == EXIT_CODE
    assert "Cast float -> bfloat16_t does not accept RoundMode::CAST_NONE" in result.errors[0]


def test_cast_round_trips_through_half_and_int32(vector):
    x = np.linspace(-40, 40, 32, dtype=np.float32) + np.float32(0.3)
    (via_half, via_int), result = vector("cast_modes", tiling(32, 4), [x, Out(np.float32, 32), Out(np.float32, 32)])
    assert result.ok, result.stderr
    np.testing.assert_array_equal(via_half, x.astype(np.float16).astype(np.float32))
    np.testing.assert_array_equal(via_int, np.trunc(via_half))


def test_compare_and_select(vector):
    rng = np.random.default_rng(4)
    n, s = 512, 0.25
    a = rng.standard_normal(n).astype(np.float32)
    b = rng.standard_normal(n).astype(np.float32)
    b[:5] = a[:5]  # ties: LT is false, Select takes b
    (low, clamp), result = vector("compare_select", tiling(n, scalar=s),
                                  [a, b, Out(np.float32, n), Out(np.float32, n + n // 32)])
    assert result.ok, result.stderr
    np.testing.assert_array_equal(low, np.where(a < b, a, b))
    np.testing.assert_array_equal(clamp[:n], np.where(a > s, a, np.float32(s)))
    np.testing.assert_array_equal(clamp[n:].view(np.uint8), np.packbits(a > s, bitorder="little"))


def test_activations_against_float64_references(vector):
    import math
    x = np.linspace(-6, 6, 512, dtype=np.float32)
    (sig, gelu, erf), result = vector("activations", tiling(512),
                                      [x, Out(np.float32, 512), Out(np.float32, 512), Out(np.float32, 512)])
    assert result.ok, result.stderr
    v = x.astype(np.float64)
    np.testing.assert_allclose(sig, 1 / (1 + np.exp(-v)), rtol=1e-6, atol=1e-7)
    tanh_gelu = 0.5 * v * (1 + np.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v**3)))
    np.testing.assert_allclose(gelu, tanh_gelu, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(erf, [math.erf(t) for t in v], rtol=1e-6, atol=1e-7)


def test_mask_repeat_form_broadcast_and_counter_mode(vector):
    rng = np.random.default_rng(7)
    rows, count = 4, 100
    x = rng.standard_normal((rows, 64)).astype(np.float32)
    g = rng.standard_normal(64).astype(np.float32)
    (prod, total), result = vector("repeat_forms", tiling(count, rows),
                                   [x, g, Out(np.float32, rows * 64), Out(np.float32, rows * 64)])
    assert result.ok, result.stderr
    np.testing.assert_array_equal(prod.reshape(rows, 64), x * g)  # src1RepStride 0 reuses g every repeat
    np.testing.assert_array_equal(total[:count], (x + x).ravel()[:count])
    assert not total[count:].any()


# -- data movement and GM byte counters ------------------------------------------------------------


def test_datacopy_truncates_to_32_bytes_and_warns(vector):
    x = np.arange(1, 101, dtype=np.float32)  # 400 bytes: the hardware moves 384
    (z,), result = vector("copy_truncate", tiling(100), [x, Out(np.float32, 104)])
    assert result.ok, result.stderr
    np.testing.assert_array_equal(z[:96], x[:96])
    np.testing.assert_array_equal(z[96:], -1.0)  # never copied: UB kept the Duplicate'd value
    assert len(result.warnings) == 1
    assert ("DataCopy GM->UB of 100 float elements = 400 B is not a multiple of 32 B; the hardware moves "
            "only 384 B (96 elements)") in result.warnings[0]
    (launch,) = result.launches
    assert (launch.gm_bytes_read, launch.gm_bytes_written, launch.warnings) == (384, 416, 1)


def test_datacopypad_rows_with_padding(vector):
    rows, n, pad = 3, 10, 7.0
    x = np.arange(rows * n, dtype=np.float32).reshape(rows, n)
    (z, image), result = vector("pad_rows", tiling(n, rows, scalar=pad),
                                [x, None, Out(np.float32, rows * n), Out(np.float32, rows * 16)])
    assert result.ok, result.stderr
    np.testing.assert_array_equal(z.reshape(rows, n), x + 1)
    want = np.full((rows, 16), pad, np.float32)
    want[:, :n] = x
    np.testing.assert_array_equal(image.reshape(rows, 16), want)
    (launch,) = result.launches
    # read: 3 rows of 40 B; written: the 3 x 64 B padded image, then 3 rows of 40 B
    assert (launch.gm_bytes_read, launch.gm_bytes_written) == (120, 192 + 120)


def test_scalar_gm_access_is_counted(vector):
    x = np.arange(5, dtype=np.float32)
    (z,), result = vector("scalar_gm", tiling(5), [x, None, Out(np.float32, 5)])
    assert result.ok, result.stderr
    np.testing.assert_array_equal(z, 2 * x)
    assert (result.launches[0].gm_bytes_read, result.launches[0].gm_bytes_written) == (20, 20)
    assert "gm_bytes_read=20 gm_bytes_written=20" in result.stdout  # the host functions agree


@pytest.mark.parametrize("key,mode,want", [(7, "aiv", [7, 1, 0, 11, 22]), (8, "aiv", [8, 1, 0, 11, 22]),
                                           (7, "aic", [7, 0, 1, 0, 0])])
def test_tiling_key_and_core_type(vector, key, mode, want):
    (out,), result = vector("tiling_key", tiling(), [None, None, Out(np.int32, 8), f"key:{key}"], mode=mode)
    assert result.ok, result.stderr
    np.testing.assert_array_equal(out[:5], want)


def test_atomic_add_from_concurrent_cores(vector):
    (c,), result = vector("atomic_add", tiling(2048), [None, None, Out(np.float32, 2048)], blocks=4)
    assert result.ok, result.stderr
    assert (c == 3000 * (1 + 2 + 3 + 4)).all()  # no update lost between the 4 concurrent cores


@pytest.mark.parametrize("mode,blocks,instances,ratio", [("aiv", 4, 4, 1), ("mix", 3, 6, 2)])
def test_sync_all_and_block_indices(vector, mode, blocks, instances, ratio):
    (out,), result = vector("sync_all", tiling(), [None, None, Out(np.int32, 4 * instances), None, 64],
                            blocks=blocks, mode=mode)
    assert result.ok, result.stderr
    out = out.reshape(instances, 4)
    assert (out[:, 0] == sum(range(1, instances + 1))).all()  # every core saw every other core's write
    np.testing.assert_array_equal(out[:, 1], np.arange(instances))  # GetBlockIdx: doubled in MIX
    assert (out[:, 2] == blocks).all()  # GetBlockNum does not double
    np.testing.assert_array_equal(out[:, 3], (np.arange(instances) % ratio) * 10 + ratio)


# -- Matmul (MIX: the cube folded into the vector cores' calls) ------------------------------------


def _run_matmul(exe, tmp, kernel, mode, m, n, k, alpha, a, b, bias):
    paths = []
    for name, array in (("a", a), ("b", b), ("bias", bias)):
        if array is None:
            paths.append("null")
            continue
        array.tofile(tmp / f"{name}.bin")
        paths.append(tmp / f"{name}.bin")
    result = run(exe, [kernel, 2, mode, m, n, k, alpha, *paths, tmp / "c.bin"], timeout=60)
    fields = dict(item.split("=") for item in result.stdout.split()[:7])
    return result, {key: int(value) for key, value in fields.items()}


def _blocks(total: int, single: int) -> list[int]:
    return [min(single, total - start) for start in range(0, total, single)]


def test_matmul_leakyrelu_mix_kernel(exes, tmp_path):
    rng = np.random.default_rng(5)
    m, n, k, alpha = 300, 300, 64, 0.1  # 2 AI cores -> 4 vector cores, 2 x 2 blocks with tail tiles
    a = rng.standard_normal((m, k)).astype(np.float16)
    b = rng.standard_normal((k, n)).astype(np.float16)
    bias = rng.standard_normal(n).astype(np.float32)
    result, t = _run_matmul(exes["matmul"], tmp_path, "matmul_leakyrelu", "mix", m, n, k, alpha, a, b, bias)
    assert result.ok, result.stderr
    c = np.fromfile(tmp_path / "c.bin", np.float32).reshape(m, n)
    acc = a.astype(np.float64) @ b.astype(np.float64) + bias
    np.testing.assert_allclose(c, np.where(acc >= 0, acc, alpha * acc), rtol=1e-5, atol=1e-5)
    assert t["usedCoreNum"] == 4 and (t["baseM"], t["baseN"]) == (128, 128)  # two tiles per block side
    rows, cols = _blocks(m, t["singleCoreM"]), _blocks(n, t["singleCoreN"])
    read = sum(r * k * 2 + k * q * 2 + q * 4 for r in rows for q in cols)  # A, B, bias once per block
    (launch,) = result.launches
    assert launch.mode == "MIX_MODE"
    # GetTensorC into UB goes through a GM workspace on A2 (write + read back), then DataCopyPad writes C.
    assert launch.gm_bytes_read == read + m * n * 4
    assert launch.gm_bytes_written == 2 * m * n * 4


def test_matmul_iterate_all_with_transposed_b(exes, tmp_path):
    rng = np.random.default_rng(6)
    m, n, k = 64, 48, 40
    a = rng.standard_normal((m, k)).astype(np.float16)
    b_t = rng.standard_normal((n, k)).astype(np.float16)  # B stored [N, K]
    result, t = _run_matmul(exes["matmul"], tmp_path, "matmul_all", "mix", m, n, k, 0, a, b_t, None)
    assert result.ok, result.stderr
    c = np.fromfile(tmp_path / "c.bin", np.float16).reshape(m, n)
    want = (a.astype(np.float32) @ b_t.astype(np.float32).T).astype(np.float16)
    np.testing.assert_allclose(c.astype(np.float32), want.astype(np.float32), rtol=2e-3, atol=2e-3)
    rows, cols = _blocks(m, t["singleCoreM"]), _blocks(n, t["singleCoreN"])
    (launch,) = result.launches
    assert launch.gm_bytes_read == sum(r * k * 2 + q * k * 2 for r in rows for q in cols)
    assert launch.gm_bytes_written == m * n * 2


def test_matmul_needs_the_cube(exes, tmp_path):
    a = np.zeros((16, 16), np.float16)
    result, _ = _run_matmul(exes["matmul"], tmp_path, "matmul_all", "aiv", 16, 16, 16, 0, a, a, None)
    assert result.returncode == EXIT_CODE
    assert "Matmul IterateAll in an AIV_MODE launch" in result.errors[0]


# -- every documented limit fails loudly, naming the buffer and the numbers ------------------------

_LIMITS = {
    "ub_overflow": f"InitBuffer of queue 'inQueueX' (limits_kernels.cpp:16): 2 x 81920 B = 163840 B does not fit "
                   f"in UB: 32768 of {UB} B already taken (by: queue 'outQueueZ' (limits_kernels.cpp:15) 2 x 16384 B)",
    "misaligned_operand": "Add: dst (TBuf 'calcBuf' (limits_kernels.cpp:23) + 12 B) starts at UB byte 12, "
                          "not 32-byte aligned",
    "queues_per_position": "InitBuffer of queue 'q4' (limits_kernels.cpp:36): 8 + 2 queue buffers on TPosition::VECIN "
                           "exceed the limit of 8 per position",
    "buffers_total": "InitBuffer of TBuf 'scratch[i]' (limits_kernels.cpp:43): 64 + 1 buffers exceed the limit of 64 "
                     "buffers per kernel",
    "compare_count": "Compare of 100 float elements = 400 B: the count must be a multiple of 256 B",
    "gm_write_past_buffer": "DataCopy UB->GM on 'zGm' (limits_kernels.cpp:60) touches GM bytes [992, 1056) of a "
                            "GmAlloc'd buffer of 1024 B",
    "gm_read_past_extent": "DataCopy GM->UB on 'xGm' (limits_kernels.cpp:72) touches elements [32, 96) outside the 64 "
                           "elements given to SetGlobalBuffer",
    "ub_past_tensor": "Adds: dst needs 512 float elements but queue 'outQueueY' (limits_kernels.cpp:84) buffer 0 "
                      "holds 256",
    "setvalue_past_tensor": "LocalTensor SetValue(256) is past the end of TBuf 'tmpBuf' (limits_kernels.cpp:93)",
    "alloc_without_free": "AllocTensor on queue 'inQueue' (limits_kernels.cpp:102): all 2 buffers are in use",
    "enque_past_depth": "EnQue on queue 'inQueue' (limits_kernels.cpp:114): 2 tensors enqueued without a DeQue, more "
                        "than the queue depth 1",
    "deque_empty": "DeQue on queue 'outQueue' (limits_kernels.cpp:125) with nothing enqueued",
    "use_after_free": "Muls dst uses queue 'inQueue' (limits_kernels.cpp:133) buffer 0 after FreeTensor",
    "wait_without_set": "WaitFlag<HardEvent::MTE2_V>(0) without a matching SetFlag",
}


@pytest.mark.parametrize("kernel", list(_LIMITS))
def test_limit_is_enforced_with_a_message_naming_it(limits, kernel):
    _, result = limits(kernel, b"", [np.zeros(256, np.float32), None, Out(np.float32, 256)])
    assert result.returncode == EXIT_CODE
    assert result.launches == []  # the launch never completed
    assert result.errors[0].startswith(f"{kernel}: block 0/1 (AIV): ")
    assert _LIMITS[kernel] in result.errors[0]


@pytest.mark.parametrize("kernel,blocks,mode,message", [
    ("aiv_kernel_in_mix_mode", 1, "mix", "runs in AIV_MODE but the host called SetKernelMode(MIX_MODE)"),
    ("sync_all_divergent", 4, "aiv", "SyncAll: a core of the launch returned without reaching this SyncAll"),
    ("vector_on_aic", 1, "aic", "InitBuffer of TBuf 'buf' (limits_kernels.cpp:165) on the AIC core"),
    ("crash", 2, "aiv", "crashed with signal 11"),
])
def test_launch_misuse_is_reported(limits, kernel, blocks, mode, message):
    _, result = limits(kernel, b"", [], blocks=blocks, mode=mode)
    assert result.returncode == EXIT_CODE
    assert message in result.errors[0]
    with pytest.raises(KernelRunError, match="SyncAll|AIV_MODE|AIC core|signal 11"):
        result.check()


def test_kernel_arguments_must_be_gmalloced(limits):
    _, result = limits("crash", b"", ["host:64"])
    assert result.returncode == EXIT_CODE
    assert "ICPU_RUN_KF(crash): argument 0 is not a GmAlloc'd pointer" in result.errors[0]


def test_ub_capacity_comes_from_the_profile(limits):
    """310P's profile has a larger UB: the same InitBuffers fit there."""
    exe = build([KERNELS / f for f in _BUILDS["limits"]], "ascend310p", cache_dir=CACHE, name="limits")
    _, result = Kernel(exe, limits.tmp)("ub_overflow", b"", [])
    assert result.ok, result.stderr
    assert target_for("ascend310p").ub_bytes > 2 * 16 * 1024 + 2 * 80 * 1024 > UB


@pytest.mark.parametrize("source,target,message", [
    ("compile_fail_bf16_add.cpp", "ascend910b", "Add: bfloat16_t is not a vector arithmetic type on Atlas A2/A3"),
    ("compile_fail_pad_310p.cpp", "ascend310p", "DataCopyPad does not exist on Atlas 300I / 310P"),
])
def test_compile_time_limits(source, target, message):
    with pytest.raises(CompileError, match=message) as info:
        build([KERNELS / source], target, cache_dir=CACHE)
    assert f"{source}:" in str(info.value)  # the "required from here" line points into the kernel


# -- the Python side -------------------------------------------------------------------------------


def test_build_is_cached_by_content(tmp_path):
    def project(where: str, code: int) -> Path:
        (tmp_path / where).mkdir(exist_ok=True)
        (tmp_path / where / "code.h").write_text(f"constexpr int kCode = {code};\n")
        source = tmp_path / where / "k.cpp"
        source.write_text('#include "tikicpulib.h"\n#include "code.h"\nint main() { return kCode; }\n')
        return source

    first = build([project("a", 0)], A2, cache_dir=tmp_path / "cache")
    assert build([project("b", 0)], A2, cache_dir=tmp_path / "cache") == first  # same content elsewhere
    second = build([project("a", 3)], A2, cache_dir=tmp_path / "cache")  # a header beside the source changed
    assert second != first and run(second).returncode == 3


def test_include_dir_holds_the_real_header_names():
    for name in ("kernel_operator.h", "tikicpulib.h", "lib/matmul_intf.h", "tiling/tiling_api.h",
                 "kernel_tiling/kernel_tiling.h"):
        assert (include_dir() / name).is_file(), name


def test_unknown_profile_arch_is_an_input_error(tmp_path):
    from dataclasses import replace

    from autofuse.cost.hardware import load_profile
    from autofuse.errors import InputError

    with pytest.raises(InputError, match="no __NPU_ARCH__ known for it"):
        target_for(replace(load_profile("ascend910b"), name="my_chip"))
