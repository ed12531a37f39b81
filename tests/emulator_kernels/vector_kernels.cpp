// Small single-purpose kernels that exercise the emulated vector API; tests/test_emulator.py runs
// each through vector_main and checks the results against numpy. Every kernel takes four data
// GM_ADDRs, a workspace and the tiling address; the tiling is a few uint32/float fields.
#include "kernel_operator.h"

using namespace AscendC;

struct TestTiling {
    uint32_t n;       // elements (or columns)
    uint32_t rows;
    uint32_t mode;    // a RoundMode / CMPMODE / variant selector
    float scalar;
};

#define TEST_KERNEL(name) \
    extern "C" __global__ __aicore__ void name(GM_ADDR a, GM_ADDR b, GM_ADDR c, GM_ADDR d, GM_ADDR workspace, GM_ADDR tiling)

// fp16 chain: every instruction rounds to half. Six results of n halves each in c:
//   s1 = ((a + b) * a) / b           s2 = exp(s1 * scalar)         s3 = sqrt(relu(s2 - a))
//   s4 = maxs(leakyrelu(min(a - 1.5, b), 0.1), -0.2)               s5 = ln(1 / b)
//   s6 = rsqrt(abs(a) + 0.5)
TEST_KERNEL(chain_half)
{
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIV_ONLY);
    REGISTER_TILING_DEFAULT(TestTiling);
    GET_TILING_DATA(td, tiling);
    uint32_t n = td.n;
    GlobalTensor<half> aGm, bGm, outGm;
    aGm.SetGlobalBuffer((__gm__ half*)a, n);
    bGm.SetGlobalBuffer((__gm__ half*)b, n);
    outGm.SetGlobalBuffer((__gm__ half*)c, n * 6);
    TPipe pipe;
    TBuf<TPosition::VECCALC> buf;
    pipe.InitBuffer(buf, n * sizeof(half) * 4);
    LocalTensor<half> x = buf.Get<half>();
    LocalTensor<half> y = x[n];
    LocalTensor<half> t = x[2 * n];
    LocalTensor<half> u = x[3 * n];
    DataCopy(x, aGm, n);
    DataCopy(y, bGm, n);
    Add(t, x, y, n);
    PipeBarrier<PIPE_V>();
    Mul(t, t, x, n);
    PipeBarrier<PIPE_V>();
    Div(t, t, y, n);
    DataCopy(outGm, t, n);
    Muls(u, t, (half)td.scalar, n);
    Exp(u, u, n);
    DataCopy(outGm[n], u, n);
    Sub(u, u, x, n);
    Relu(u, u, n);
    Sqrt(u, u, n);
    DataCopy(outGm[2 * n], u, n);
    Adds(t, x, (half)-1.5, n);
    Min(t, t, y, n);
    LeakyRelu(t, t, (half)0.1, n);
    Maxs(t, t, (half)-0.2, n);
    DataCopy(outGm[3 * n], t, n);
    Reciprocal(t, y, n);
    Ln(t, t, n);
    DataCopy(outGm[4 * n], t, n);
    Abs(t, x, n);
    Adds(t, t, (half)0.5, n);
    Rsqrt(t, t, n);
    DataCopy(outGm[5 * n], t, n);
}

// Row reductions of a [rows, n] float matrix: c[r] = ReduceSum (count form), d[r] = ReduceMax with
// its index read back through GetValue after a V_S flag, and b gets WholeReduceSum and
// WholeReduceMax over the first 64 columns of each row (8 floats per row).
TEST_KERNEL(reduce_rows)
{
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIV_ONLY);
    GET_TILING_DATA_WITH_STRUCT(TestTiling, td, tiling);
    GlobalTensor<float> xGm, whole, sums, maxes;
    xGm.SetGlobalBuffer((__gm__ float*)a, td.rows * td.n);
    whole.SetGlobalBuffer((__gm__ float*)b, td.rows * 8);
    sums.SetGlobalBuffer((__gm__ float*)c, td.rows);
    maxes.SetGlobalBuffer((__gm__ float*)d, td.rows * 2);
    TPipe pipe;
    TQue<QuePosition::VECIN, 1> inQueue;
    TBuf<TPosition::VECCALC> tmpBuf, outBuf;
    uint32_t rowBytes = (td.n * sizeof(float) + 31) / 32 * 32;
    pipe.InitBuffer(inQueue, 2, rowBytes);
    pipe.InitBuffer(tmpBuf, 64 * sizeof(float));
    pipe.InitBuffer(outBuf, 32);
    LocalTensor<float> tmp = tmpBuf.Get<float>();
    LocalTensor<float> out = outBuf.Get<float>();
    for (uint32_t r = 0; r < td.rows; ++r) {
        LocalTensor<float> row = inQueue.AllocTensor<float>();
        DataCopyExtParams copy{1, td.n * (uint32_t)sizeof(float), 0, 0, 0};
        DataCopyPad(row, xGm[r * td.n], copy, DataCopyPadExtParams<float>{false, 0, 0, 0.0f});
        inQueue.EnQue(row);
        row = inQueue.DeQue<float>();
        ReduceSum<float>(out, row, tmp, td.n);
        event_t ev = static_cast<event_t>(GetTPipePtr()->FetchEventID(HardEvent::V_S));
        SetFlag<HardEvent::V_S>(ev);
        WaitFlag<HardEvent::V_S>(ev);
        sums.SetValue(r, out.GetValue(0));
        ReduceMax<float>(out, row, tmp, td.n, true);
        SetFlag<HardEvent::V_S>(ev);
        WaitFlag<HardEvent::V_S>(ev);
        maxes.SetValue(2 * r, out.GetValue(0));
        uint32_t index = out.ReinterpretCast<uint32_t>().GetValue(1);
        maxes.SetValue(2 * r + 1, (float)index);
        inQueue.FreeTensor(row);
    }
    // WholeReduceSum: the first 64 columns of each row, one repeat per row (rows of n floats).
    if (td.n % 8 == 0 && td.n >= 64) {
        TBuf<TPosition::VECCALC> allBuf, resBuf;
        pipe.InitBuffer(allBuf, td.rows * td.n * sizeof(float));
        pipe.InitBuffer(resBuf, td.rows * 8 * sizeof(float));
        LocalTensor<float> all = allBuf.Get<float>();
        LocalTensor<float> res = resBuf.Get<float>();
        DataCopy(all, xGm, td.rows * td.n);
        Duplicate(res, 0.0f, td.rows * 8);
        WholeReduceSum<float>(res, all, 64, td.rows, 8, 1, td.n / 8);
        // [value, index] pairs at res[r * 8 + 2]: dstRepStride counts pairs.
        WholeReduceMax<float>(res[2], all, 64, td.rows, 4, 1, td.n / 8, ReduceOrder::ORDER_VALUE_INDEX);
        DataCopy(whole, res, td.rows * 8);
    }
}

// The documented WholeReduceSum example for half: [60000, 60000, -30000, 100] -> 35604 (the
// pairwise tree saturates at 65504).
TEST_KERNEL(whole_reduce_half)
{
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIV_ONLY);
    GlobalTensor<half> xGm, outGm;
    xGm.SetGlobalBuffer((__gm__ half*)a, 128);
    outGm.SetGlobalBuffer((__gm__ half*)b, 16);
    TPipe pipe;
    TBuf<TPosition::VECCALC> inBuf, outBuf;
    pipe.InitBuffer(inBuf, 128 * sizeof(half));
    pipe.InitBuffer(outBuf, 16 * sizeof(half));
    LocalTensor<half> x = inBuf.Get<half>();
    LocalTensor<half> o = outBuf.Get<half>();
    DataCopy(x, xGm, 128);
    Duplicate(o, (half)0, 16);
    SetVectorMask<half>(0, 0xF);  // only the first four lanes
    WholeReduceSum<half, false>(o, x, MASK_PLACEHOLDER, 1, 1, 1, 8);
    ResetMask();
    DataCopy(outGm, o, 16);
}

// Cast with a RoundMode chosen by tiling.mode; tiling.rows picks the destination type:
// 0 half, 1 int32, 2 bfloat16, 3 float (round to integer), 4 float <- half (b) and c <- int32 -> float.
TEST_KERNEL(cast_modes)
{
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIV_ONLY);
    GET_TILING_DATA_WITH_STRUCT(TestTiling, td, tiling);
    RoundMode mode = static_cast<RoundMode>(td.mode);
    GlobalTensor<float> xGm;
    xGm.SetGlobalBuffer((__gm__ float*)a, td.n);
    TPipe pipe;
    TBuf<TPosition::VECCALC> inBuf, outBuf;
    pipe.InitBuffer(inBuf, td.n * sizeof(float));
    pipe.InitBuffer(outBuf, td.n * sizeof(float));
    LocalTensor<float> x = inBuf.Get<float>();
    DataCopy(x, xGm, td.n);
    if (td.rows == 0) {
        GlobalTensor<half> o;
        o.SetGlobalBuffer((__gm__ half*)b, td.n);
        LocalTensor<half> y = outBuf.Get<half>();
        Cast(y, x, mode, td.n);
        DataCopy(o, y, td.n);
    } else if (td.rows == 1) {
        GlobalTensor<int32_t> o;
        o.SetGlobalBuffer((__gm__ int32_t*)b, td.n);
        LocalTensor<int32_t> y = outBuf.Get<int32_t>();
        Cast(y, x, mode, td.n);
        DataCopy(o, y, td.n);
    } else if (td.rows == 2) {
        GlobalTensor<bfloat16_t> o;
        o.SetGlobalBuffer((__gm__ bfloat16_t*)b, td.n);
        LocalTensor<bfloat16_t> y = outBuf.Get<bfloat16_t>();
        Cast(y, x, mode, td.n);
        DataCopy(o, y, td.n);
    } else if (td.rows == 3) {
        GlobalTensor<float> o;
        o.SetGlobalBuffer((__gm__ float*)b, td.n);
        LocalTensor<float> y = outBuf.Get<float>();
        Cast(y, x, mode, td.n);
        DataCopy(o, y, td.n);
    } else {
        GlobalTensor<float> o;
        o.SetGlobalBuffer((__gm__ float*)b, td.n);
        LocalTensor<half> h = outBuf.Get<half>();
        LocalTensor<int32_t> i32 = outBuf.Get<int32_t>();
        Cast(h, x, RoundMode::CAST_RINT, td.n);
        Cast(x, h, RoundMode::CAST_NONE, td.n);  // half -> float, exact
        DataCopy(o, x, td.n);
        Cast(i32, x, RoundMode::CAST_TRUNC, td.n);
        Cast(x, i32, RoundMode::CAST_NONE, td.n);  // int32 -> float
        GlobalTensor<float> o2;
        o2.SetGlobalBuffer((__gm__ float*)c, td.n);
        DataCopy(o2, x, td.n);
    }
}

// Compare / Compares / Select: c = Select(a < b, a, b) (elementwise min), d = Select(a > s, a, s)
// followed by the bytes of the a > s bitmask.
TEST_KERNEL(compare_select)
{
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIV_ONLY);
    GET_TILING_DATA_WITH_STRUCT(TestTiling, td, tiling);
    GlobalTensor<float> aGm, bGm, minGm, clampGm;
    aGm.SetGlobalBuffer((__gm__ float*)a, td.n);
    bGm.SetGlobalBuffer((__gm__ float*)b, td.n);
    minGm.SetGlobalBuffer((__gm__ float*)c, td.n);
    clampGm.SetGlobalBuffer((__gm__ float*)d, td.n + td.n / 32);
    TPipe pipe;
    TQue<QuePosition::VECIN, 1> qa, qb;
    TQue<QuePosition::VECOUT, 1> qo;
    TBuf<TPosition::VECCALC> maskBuf;
    pipe.InitBuffer(qa, 1, td.n * sizeof(float));
    pipe.InitBuffer(qb, 1, td.n * sizeof(float));
    pipe.InitBuffer(qo, 1, td.n * sizeof(float) + td.n / 8);
    pipe.InitBuffer(maskBuf, td.n / 8 > 32 ? td.n / 8 : 32);
    LocalTensor<float> x = qa.AllocTensor<float>();
    LocalTensor<float> y = qb.AllocTensor<float>();
    DataCopy(x, aGm, td.n);
    DataCopy(y, bGm, td.n);
    qa.EnQue(x);
    qb.EnQue(y);
    x = qa.DeQue<float>();
    y = qb.DeQue<float>();
    LocalTensor<uint8_t> mask = maskBuf.Get<uint8_t>();
    LocalTensor<float> o = qo.AllocTensor<float>();
    Compare(mask, x, y, CMPMODE::LT, td.n);
    Select(o, mask, x, y, SELMODE::VSEL_TENSOR_TENSOR_MODE, td.n);
    DataCopy(minGm, o, td.n);
    Compares(mask, x, td.scalar, CMPMODE::GT, td.n);
    Select(o, mask, x, td.scalar, SELMODE::VSEL_TENSOR_SCALAR_MODE, td.n);
    DataCopy(o[td.n].ReinterpretCast<uint8_t>(), mask, td.n / 8);  // the GT bitmask after the values
    qo.EnQue(o);
    o = qo.DeQue<float>();
    DataCopy(clampGm, o, td.n + td.n / 32);
    qo.FreeTensor(o);
    qa.FreeTensor(x);
    qb.FreeTensor(y);
}

// DataCopy with a length that is not a multiple of 32 bytes: the hardware moves the rounded-down
// length. UB is pre-filled with -1, so the untouched tail shows in the output.
TEST_KERNEL(copy_truncate)
{
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIV_ONLY);
    GET_TILING_DATA_WITH_STRUCT(TestTiling, td, tiling);
    uint32_t padded = (td.n + 7) / 8 * 8;
    GlobalTensor<float> xGm, zGm;
    xGm.SetGlobalBuffer((__gm__ float*)a, td.n);
    zGm.SetGlobalBuffer((__gm__ float*)b, padded);
    TPipe pipe;
    TBuf<TPosition::VECCALC> buf;
    pipe.InitBuffer(buf, padded * sizeof(float));
    LocalTensor<float> x = buf.Get<float>();
    Duplicate(x, -1.0f, padded);
    DataCopy(x, xGm, td.n);
    DataCopy(zGm, x, padded);
}

// DataCopyPad of `rows` rows of n floats (n * 4 bytes not a multiple of 32) into 32-byte slots
// padded with tiling.scalar, +1 on the whole padded image, DataCopyPad back: c = a + 1 and d gets
// the padded UB image.
TEST_KERNEL(pad_rows)
{
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIV_ONLY);
    GET_TILING_DATA_WITH_STRUCT(TestTiling, td, tiling);
    uint32_t slot = (td.n + 7) / 8 * 8;
    GlobalTensor<float> xGm, zGm, imgGm;
    xGm.SetGlobalBuffer((__gm__ float*)a, td.rows * td.n);
    zGm.SetGlobalBuffer((__gm__ float*)c, td.rows * td.n);
    imgGm.SetGlobalBuffer((__gm__ float*)d, td.rows * slot);
    TPipe pipe;
    TQue<QuePosition::VECIN, 1> inQ;
    TQue<QuePosition::VECOUT, 1> outQ;
    pipe.InitBuffer(inQ, 1, td.rows * slot * sizeof(float));
    pipe.InitBuffer(outQ, 1, td.rows * slot * sizeof(float));
    LocalTensor<float> x = inQ.AllocTensor<float>();
    DataCopyExtParams in{(uint16_t)td.rows, td.n * (uint32_t)sizeof(float), 0, 0, 0};
    DataCopyPadExtParams<float> pad{true, 0, (uint8_t)(slot - td.n), td.scalar};
    DataCopyPad(x, xGm, in, pad);
    inQ.EnQue(x);
    x = inQ.DeQue<float>();
    DataCopy(imgGm, x, td.rows * slot);
    LocalTensor<float> z = outQ.AllocTensor<float>();
    Adds(z, x, 1.0f, td.rows * slot);
    outQ.EnQue(z);
    inQ.FreeTensor(x);
    z = outQ.DeQue<float>();
    DataCopyPad(zGm, z, DataCopyExtParams{(uint16_t)td.rows, td.n * (uint32_t)sizeof(float), 0, 0, 0});
    outQ.FreeTensor(z);
}

// Scalar GM access: c[i] = 2 * a[i] for i < n through GetValue/SetValue (counted sizeof(float) each).
TEST_KERNEL(scalar_gm)
{
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIV_ONLY);
    GET_TILING_DATA_WITH_STRUCT(TestTiling, td, tiling);
    GlobalTensor<float> xGm, zGm;
    xGm.SetGlobalBuffer((__gm__ float*)a, td.n);
    zGm.SetGlobalBuffer((__gm__ float*)c, td.n);
    for (uint32_t i = 0; i < td.n; ++i) zGm.SetValue(i, 2.0f * xGm.GetValue(i));
}

// SyncAll across the cores of the launch: each core writes its block index into the workspace,
// synchronises, then sums every core's entry: c[i] = sum of all block indices (+ i * 0).
TEST_KERNEL(sync_all)
{
    GlobalTensor<int32_t> ws, out;
    int64_t cores = GetBlockNum() * GetTaskRatio();
    ws.SetGlobalBuffer((__gm__ int32_t*)workspace, cores);
    out.SetGlobalBuffer((__gm__ int32_t*)c, cores * 4);
    ws.SetValue(GetBlockIdx(), (int32_t)GetBlockIdx() + 1);
    SyncAll();
    int32_t total = 0;
    for (int64_t i = 0; i < cores; ++i) total += ws.GetValue(i);
    out.SetValue(GetBlockIdx() * 4, total);
    out.SetValue(GetBlockIdx() * 4 + 1, (int32_t)GetBlockIdx());
    out.SetValue(GetBlockIdx() * 4 + 2, (int32_t)GetBlockNum());
    out.SetValue(GetBlockIdx() * 4 + 3, (int32_t)(GetSubBlockIdx() * 10 + GetTaskRatio()));
}

// Activations of the high-level API on float: b = Sigmoid(a), c = Gelu(a) (tanh form), d = Erf(a).
TEST_KERNEL(activations)
{
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIV_ONLY);
    GET_TILING_DATA_WITH_STRUCT(TestTiling, td, tiling);
    GlobalTensor<float> xGm, sGm, gGm, eGm;
    xGm.SetGlobalBuffer((__gm__ float*)a, td.n);
    sGm.SetGlobalBuffer((__gm__ float*)b, td.n);
    gGm.SetGlobalBuffer((__gm__ float*)c, td.n);
    eGm.SetGlobalBuffer((__gm__ float*)d, td.n);
    TPipe pipe;
    TBuf<TPosition::VECCALC> xb, yb, tb;
    pipe.InitBuffer(xb, td.n * sizeof(float));
    pipe.InitBuffer(yb, td.n * sizeof(float));
    pipe.InitBuffer(tb, 1024);
    LocalTensor<float> x = xb.Get<float>(), y = yb.Get<float>();
    LocalTensor<uint8_t> tmp = tb.Get<uint8_t>();
    DataCopy(x, xGm, td.n);
    Sigmoid(y, x, tmp, td.n);
    DataCopy(sGm, y, td.n);
    Gelu(y, x, tmp, td.n);
    DataCopy(gGm, y, td.n);
    Erf(y, x, td.n);
    DataCopy(eGm, y, td.n);
}

// The mask/repeat form: c = a * g with g (one 64-float row) broadcast to every repeat through
// src1RepStride 0, and d[:n] = a + a in counter mode (SetMaskCount), the rest of d left at 0.
TEST_KERNEL(repeat_forms)
{
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIV_ONLY);
    GET_TILING_DATA_WITH_STRUCT(TestTiling, td, tiling);
    GlobalTensor<float> xGm, gGm, prodGm, sumGm;
    xGm.SetGlobalBuffer((__gm__ float*)a, td.rows * 64);
    gGm.SetGlobalBuffer((__gm__ float*)b, 64);
    prodGm.SetGlobalBuffer((__gm__ float*)c, td.rows * 64);
    sumGm.SetGlobalBuffer((__gm__ float*)d, td.rows * 64);
    TPipe pipe;
    TBuf<TPosition::VECCALC> xb, gb, pb, sb;
    pipe.InitBuffer(xb, td.rows * 64 * sizeof(float));
    pipe.InitBuffer(gb, 64 * sizeof(float));
    pipe.InitBuffer(pb, td.rows * 64 * sizeof(float));
    pipe.InitBuffer(sb, td.rows * 64 * sizeof(float));
    LocalTensor<float> x = xb.Get<float>(), g = gb.Get<float>(), p = pb.Get<float>(), s = sb.Get<float>();
    DataCopy(x, xGm, td.rows * 64);
    DataCopy(g, gGm, 64);
    Mul(p, x, g, 64, td.rows, BinaryRepeatParams(1, 1, 1, 8, 8, 0));
    DataCopy(prodGm, p, td.rows * 64);
    Duplicate(s, 0.0f, td.rows * 64);
    SetMaskCount();
    SetVectorMask<float, MaskMode::COUNTER>(0, td.n);
    Add<float, false>(s, x, x, MASK_PLACEHOLDER, 1, BinaryRepeatParams(1, 1, 1, 8, 8, 8));
    SetMaskNorm();
    ResetMask();
    DataCopy(sumGm, s, td.rows * 64);
}

// SetAtomicAdd: every core adds (its block index + 1) to the same n floats of c, 3000 times, all
// cores released together by SyncAll so that their stores overlap.
TEST_KERNEL(atomic_add)
{
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIV_ONLY);
    GET_TILING_DATA_WITH_STRUCT(TestTiling, td, tiling);
    GlobalTensor<float> cGm;
    cGm.SetGlobalBuffer((__gm__ float*)c, td.n);
    TPipe pipe;
    TBuf<TPosition::VECCALC> buf;
    pipe.InitBuffer(buf, td.n * sizeof(float));
    LocalTensor<float> v = buf.Get<float>();
    SyncAll();
    for (int round = 0; round < 3000; ++round) {
        Duplicate(v, (float)(GetBlockIdx() + 1), td.n);
        SetAtomicAdd<float>();
        DataCopy(cGm, v, td.n);
        SetAtomicNone();
    }
}

// Tiling key, core type and TBuf views: c[0] = the selected branch, c[1] = ASCEND_IS_AIV,
// c[2] = ASCEND_IS_AIC, c[3..4] = values written through TBuf::Get(len) and read back through
// GetWithOffset.
TEST_KERNEL(tiling_key)
{
    GlobalTensor<int32_t> out;
    out.SetGlobalBuffer((__gm__ int32_t*)c, 8);
    if (TILING_KEY_IS(7)) {
        out.SetValue(0, 7);
    } else if (TILING_KEY_IS(8)) {
        out.SetValue(0, 8);
    }
    out.SetValue(1, ASCEND_IS_AIV ? 1 : 0);
    out.SetValue(2, ASCEND_IS_AIC ? 1 : 0);
    if ASCEND_IS_AIV {
        TPipe pipe;
        TBuf<> buf;
        pipe.InitBuffer(buf, 64);
        LocalTensor<int32_t> head = buf.Get<int32_t>(8);
        head.SetValue(0, 11);
        LocalTensor<int32_t> whole = buf.Get<int32_t>();
        whole.SetValue(8, 22);
        out.SetValue(3, buf.GetWithOffset<int32_t>(8, 0).GetValue(0));
        out.SetValue(4, buf.GetWithOffset<int32_t>(8, 32).GetValue(0));
    }
}
