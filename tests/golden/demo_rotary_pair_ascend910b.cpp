// AutofuseRotaryMulPair5: Ascend C kernel written by autofuse 0.1.0 for fused group g5
// (rotary, rule rotary_embedding) on ascend910b. Do not edit: regenerate it.
// Family: elementwise. Every member is an elementwise or broadcast op (or a view of one): each
// tile is loaded (CopyIn), computed in fp32 by vector instructions (Compute) and stored (CopyOut),
// double-buffered so the loads of tile t+1 overlap the compute of tile t. Tiles of whole rows where
// a value is broadcast per row or per column; flat runs of elements otherwise.

// ONNX nodes it replaces, in order:
//   Transpose node_transpose
//   Transpose node_transpose_1
//   Mul node_mul_125
//   Slice node_slice_1
//   Slice node_slice_2
//   Neg node_neg
//   Concat node_cat_1
//   Mul node_mul_142
//   Add node_add_199
//   Mul node_mul_150
//   Slice node_slice_3
//   Slice node_slice_4
//   Neg node_neg_1
//   Concat node_cat_2
//   Mul node_mul_166
//   Add node_add_235
// Tile chosen by autofuse's cost model: elementwise, up to 324 rows of 16 per tile, double-buffered; tile count and cores from the run-time sizes.
#include "kernel_operator.h"

#include "autofuse_rotary_mul_pair5_tiling.h"

using namespace AscendC;

namespace {
// Vector results read by the scalar unit (GetValue) wait for the vector pipe, and scalar writes
// (SetValue) are waited for before vector instructions read them.
__aicore__ inline void AfWaitVector()
{
    event_t id = static_cast<event_t>(GetTPipePtr()->FetchEventID(HardEvent::V_S));
    SetFlag<HardEvent::V_S>(id);
    WaitFlag<HardEvent::V_S>(id);
}

__aicore__ inline void AfWaitScalar()
{
    event_t id = static_cast<event_t>(GetTPipePtr()->FetchEventID(HardEvent::S_V));
    SetFlag<HardEvent::S_V>(id);
    WaitFlag<HardEvent::S_V>(id);
}

__aicore__ inline uint32_t AfAlignUp(uint32_t value, uint32_t multiple)
{
    return (value + multiple - 1) / multiple * multiple;
}

__aicore__ inline float AfBitsToFloat(uint32_t bits)
{
    union {
        uint32_t u;
        float f;
    } v;
    v.u = bits;
    return v.f;
}

// GM -> UB: `rows` rows of `width` elements, `srcStride` elements apart in GM (== width: the rows
// follow each other), each landing `pitch` elements apart in UB. Unaligned lengths use DataCopyPad.
template <typename T>
__aicore__ inline void AfCopyRowsIn(const LocalTensor<T>& dst, const GlobalTensor<T>& src, uint32_t rows,
                                    uint32_t width, uint32_t pitch, uint64_t srcStride)
{
    const uint32_t bytes = width * sizeof(T);
    if (srcStride == width && pitch == width) {  // one contiguous run in GM and in UB
        if ((bytes * rows) % 32 == 0) {
            DataCopy(dst, src, rows * width);
        } else {
            DataCopyExtParams params{1, bytes * rows, 0, 0, 0};
            DataCopyPad(dst, src, params, DataCopyPadExtParams<T>{false, 0, 0, 0});
        }
        return;
    }
    // Rows land on 32-byte blocks in UB: the lowering pads `pitch` to whole blocks.
    const uint32_t gap = (pitch * sizeof(T) - AfAlignUp(bytes, 32)) / 32;
    if (srcStride >= width) {
        for (uint32_t done = 0; done < rows; done += 4095) {
            const uint16_t count = static_cast<uint16_t>(rows - done < 4095 ? rows - done : 4095);
            DataCopyExtParams params{count, bytes, static_cast<uint32_t>((srcStride - width) * sizeof(T)), gap, 0};
            DataCopyPad(dst[done * pitch], src[done * srcStride], params, DataCopyPadExtParams<T>{false, 0, 0, 0});
        }
        return;
    }
    for (uint32_t r = 0; r < rows; ++r) {  // the same GM row again (a broadcast)
        DataCopyExtParams params{1, bytes, 0, 0, 0};
        DataCopyPad(dst[r * pitch], src[r * srcStride], params, DataCopyPadExtParams<T>{false, 0, 0, 0});
    }
}

// UB -> GM: `rows` rows of `width` elements, `pitch` apart in UB, contiguous in GM.
template <typename T>
__aicore__ inline void AfCopyRowsOut(const GlobalTensor<T>& dst, const LocalTensor<T>& src, uint32_t rows,
                                     uint32_t width, uint32_t pitch)
{
    const uint32_t bytes = width * sizeof(T);
    if (pitch == width) {  // one contiguous run in UB and in GM
        if ((bytes * rows) % 32 == 0) {
            DataCopy(dst, src, rows * width);
        } else {
            DataCopyExtParams params{1, bytes * rows, 0, 0, 0};
            DataCopyPad(dst, src, params);
        }
        return;
    }
    const uint32_t gap = (pitch * sizeof(T) - AfAlignUp(bytes, 32)) / 32;
    for (uint32_t done = 0; done < rows; done += 4095) {
        const uint16_t count = static_cast<uint16_t>(rows - done < 4095 ? rows - done : 4095);
        DataCopyExtParams params{count, bytes, gap, 0, 0};
        DataCopyPad(dst[done * width], src[done * pitch], params);
    }
}

// UB -> GM: `pieces` runs of `width` elements, consecutive in UB, `dstStride` elements apart in GM.
template <typename T>
__aicore__ inline void AfCopyPiecesOut(const GlobalTensor<T>& dst, const LocalTensor<T>& src, uint32_t pieces,
                                       uint32_t width, uint64_t dstStride)
{
    const uint32_t bytes = width * sizeof(T);
    DataCopyExtParams params{static_cast<uint16_t>(pieces), bytes, 0, static_cast<uint32_t>((dstStride - width) * sizeof(T)), 0};
    DataCopyPad(dst, src, params);
}

class KernelAutofuseRotaryMulPair5 {
public:
    __aicore__ inline KernelAutofuseRotaryMulPair5() {}

    __aicore__ inline void Init(GM_ADDR x, GM_ADDR cos, GM_ADDR sin, GM_ADDR x3, GM_ADDR y, GM_ADDR y1, GM_ADDR workspace,
                                const AutofuseRotaryMulPair5TilingData& td, TPipe* pipe)
    {
        pipe_ = pipe;
        td_ = td;
        xGm.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(x), td.argElements[0]);  // unsqueeze_14
        cosGm.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(cos), td.argElements[1]);  // unsqueeze_15
        sinGm.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(sin), td.argElements[2]);  // view
        x3Gm.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(x3), td.argElements[3]);  // view_1
        yGm.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(y), td.argElements[4]);  // add_199
        y1Gm.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(y1), td.argElements[5]);  // add_235
    }

    __aicore__ inline void Process()
    {
        const uint32_t worker = static_cast<uint32_t>(GetBlockIdx());
        if (worker >= td_.usedCores) {
            return;  // more cores launched than the tiles need
        }
        Part0(worker);
        Part1(worker);
    }

private:
    // -- part 0: tiles of up to 324 rows of 16 elements (UB rows of 16)

    __aicore__ inline void Part0(uint32_t worker)
    {
        pipe_->InitBuffer(q_sin, 2, 20736);  // transpose
        pipe_->InitBuffer(q_x, 1, 20736);  // unsqueeze_14
        pipe_->InitBuffer(tmp0, 20992);  // tmp0
        pipe_->InitBuffer(tmp1, 20992);  // tmp1
        pipe_->InitBuffer(tmp2, 20992);  // tmp2
        pipe_->InitBuffer(q_cos, 1, 20736);  // unsqueeze_15
        pipe_->InitBuffer(q_y, 2, 20736);  // add_199
        // Tiles [first, first + count) of the part's td_.part0Tiles: the first `rem` cores take one more.
        const uint32_t tiles = td_.part0Tiles;
        const uint32_t base = tiles / td_.usedCores;
        const uint32_t rem = tiles % td_.usedCores;
        const uint32_t first = worker * base + (worker < rem ? worker : rem);
        const uint32_t count = base + (worker < rem ? 1 : 0);
        for (uint32_t t = first; t < first + count; ++t) {
            const uint64_t rowStart = static_cast<uint64_t>(t) * td_.part0PerTile;
            const uint32_t rows = (t + 1 == tiles) ? td_.part0LastTile : td_.part0PerTile;
            CopyIn0(rowStart, rows);
            Compute0(rowStart, rows);
            CopyOut0(rowStart, rows);
        }
    }

    __aicore__ inline void CopyIn0(uint64_t rowStart, uint32_t rows)
    {
        LocalTensor<float> x_q_sin = q_sin.AllocTensor<float>();
        for (uint32_t r = 0; r < rows;) {  // rows gathered from GM 8192, 16, 64 elements apart
            const uint64_t R = rowStart + r;
            const uint32_t left = (td_.dims[0]) - static_cast<uint32_t>(R % (td_.dims[0]));
            const uint32_t run = rows - r < left ? rows - r : left;
            AfCopyRowsIn(x_q_sin[r * 16], sinGm[((R % (td_.dims[0])) * 64) + (((R / (td_.dims[0])) % 4) * 16) + ((R / (4ULL * td_.dims[0])) * (64ULL * td_.dims[0]))], run, 16, 16, 64);
            r += run;
        }
        q_sin.EnQue(x_q_sin);
        LocalTensor<float> x_q_x = q_x.AllocTensor<float>();
        for (uint32_t r = 0; r < rows;) {  // rows gathered from GM 0, 16 elements apart
            const uint64_t R = rowStart + r;
            const uint32_t left = (td_.dims[0]) - static_cast<uint32_t>(R % (td_.dims[0]));
            const uint32_t run = rows - r < left ? rows - r : left;
            AfCopyRowsIn(x_q_x[r * 16], xGm[((R % (td_.dims[0])) * 16)], run, 16, 16, 16);
            r += run;
        }
        q_x.EnQue(x_q_x);
        LocalTensor<float> x_q_cos = q_cos.AllocTensor<float>();
        for (uint32_t r = 0; r < rows;) {  // rows gathered from GM 0, 16 elements apart
            const uint64_t R = rowStart + r;
            const uint32_t left = (td_.dims[0]) - static_cast<uint32_t>(R % (td_.dims[0]));
            const uint32_t run = rows - r < left ? rows - r : left;
            AfCopyRowsIn(x_q_cos[r * 16], cosGm[((R % (td_.dims[0])) * 16)], run, 16, 16, 16);
            r += run;
        }
        q_cos.EnQue(x_q_cos);
    }

    __aicore__ inline void Compute0(uint64_t rowStart, uint32_t rows)
    {
        LocalTensor<float> x_q_sin = q_sin.DeQue<float>();
        LocalTensor<float> x_q_x = q_x.DeQue<float>();
        LocalTensor<float> x_q_cos = q_cos.DeQue<float>();
        LocalTensor<float> y_q_y = q_y.AllocTensor<float>();
        LocalTensor<float> t_tmp0 = tmp0.Get<float>();
        LocalTensor<float> t_tmp1 = tmp1.Get<float>();
        LocalTensor<float> t_tmp2 = tmp2.Get<float>();
        // Mul node_mul_125
        Mul(t_tmp0, x_q_sin, x_q_x, rows * 16);
        PipeBarrier<PIPE_V>();
        // Neg node_neg
        AfWaitVector();
        for (uint32_t r = 0; r < rows; ++r) {
            Muls(t_tmp1[r * 16], x_q_sin[r * 16 + 8], 1.0f, 8);
            PipeBarrier<PIPE_V>();
        }
        Muls(t_tmp1, t_tmp1, -1.0f, rows * 16);
        PipeBarrier<PIPE_V>();
        // Concat node_cat_1
        AfWaitVector();
        for (uint32_t r = 0; r < rows; ++r) {
            Muls(t_tmp2[r * 16], t_tmp1[r * 16], 1.0f, 8);
            PipeBarrier<PIPE_V>();
        }
        AfWaitVector();
        for (uint32_t r = 0; r < rows; ++r) {
            Muls(t_tmp2[r * 16 + 8], x_q_sin[r * 16], 1.0f, 8);
            PipeBarrier<PIPE_V>();
        }
        // Mul node_mul_142
        Mul(t_tmp2, t_tmp2, x_q_cos, rows * 16);
        PipeBarrier<PIPE_V>();
        // Add node_add_199
        Add(y_q_y, t_tmp0, t_tmp2, rows * 16);
        PipeBarrier<PIPE_V>();
        q_y.EnQue(y_q_y);
        q_sin.FreeTensor(x_q_sin);
        q_x.FreeTensor(x_q_x);
        q_cos.FreeTensor(x_q_cos);
    }

    __aicore__ inline void CopyOut0(uint64_t rowStart, uint32_t rows)
    {
        LocalTensor<float> y_q_y = q_y.DeQue<float>();
        AfCopyRowsOut(yGm[rowStart * 16], y_q_y, rows, 16, 16);
        q_y.FreeTensor(y_q_y);
    }
    TQue<QuePosition::VECIN, 1> q_sin;
    TQue<QuePosition::VECIN, 1> q_x;
    TBuf<TPosition::VECCALC> tmp0;
    TBuf<TPosition::VECCALC> tmp1;
    TBuf<TPosition::VECCALC> tmp2;
    TQue<QuePosition::VECIN, 1> q_cos;
    TQue<QuePosition::VECOUT, 1> q_y;

    // -- part 1: tiles of up to 324 rows of 16 elements (UB rows of 16)

    __aicore__ inline void Part1(uint32_t worker)
    {
        pipe_->Reset();
        pipe_->InitBuffer(q_p1_x3, 2, 20736);  // transpose_1
        pipe_->InitBuffer(q_p1_x, 1, 20736);  // unsqueeze_14
        pipe_->InitBuffer(p1_tmp0, 20992);  // tmp0
        pipe_->InitBuffer(p1_tmp1, 20992);  // tmp1
        pipe_->InitBuffer(p1_tmp2, 20992);  // tmp2
        pipe_->InitBuffer(q_p1_cos, 1, 20736);  // unsqueeze_15
        pipe_->InitBuffer(q_p1_y1, 2, 20736);  // add_235
        // Tiles [first, first + count) of the part's td_.part1Tiles: the first `rem` cores take one more.
        const uint32_t tiles = td_.part1Tiles;
        const uint32_t base = tiles / td_.usedCores;
        const uint32_t rem = tiles % td_.usedCores;
        const uint32_t first = worker * base + (worker < rem ? worker : rem);
        const uint32_t count = base + (worker < rem ? 1 : 0);
        for (uint32_t t = first; t < first + count; ++t) {
            const uint64_t rowStart = static_cast<uint64_t>(t) * td_.part1PerTile;
            const uint32_t rows = (t + 1 == tiles) ? td_.part1LastTile : td_.part1PerTile;
            CopyIn1(rowStart, rows);
            Compute1(rowStart, rows);
            CopyOut1(rowStart, rows);
        }
    }

    __aicore__ inline void CopyIn1(uint64_t rowStart, uint32_t rows)
    {
        LocalTensor<float> x_q_p1_x3 = q_p1_x3.AllocTensor<float>();
        for (uint32_t r = 0; r < rows;) {  // rows gathered from GM 4096, 16, 32 elements apart
            const uint64_t R = rowStart + r;
            const uint32_t left = (td_.dims[0]) - static_cast<uint32_t>(R % (td_.dims[0]));
            const uint32_t run = rows - r < left ? rows - r : left;
            AfCopyRowsIn(x_q_p1_x3[r * 16], x3Gm[((R % (td_.dims[0])) * 32) + (((R / (td_.dims[0])) % 2) * 16) + ((R / (2ULL * td_.dims[0])) * (32ULL * td_.dims[0]))], run, 16, 16, 32);
            r += run;
        }
        q_p1_x3.EnQue(x_q_p1_x3);
        LocalTensor<float> x_q_p1_x = q_p1_x.AllocTensor<float>();
        for (uint32_t r = 0; r < rows;) {  // rows gathered from GM 0, 16 elements apart
            const uint64_t R = rowStart + r;
            const uint32_t left = (td_.dims[0]) - static_cast<uint32_t>(R % (td_.dims[0]));
            const uint32_t run = rows - r < left ? rows - r : left;
            AfCopyRowsIn(x_q_p1_x[r * 16], xGm[((R % (td_.dims[0])) * 16)], run, 16, 16, 16);
            r += run;
        }
        q_p1_x.EnQue(x_q_p1_x);
        LocalTensor<float> x_q_p1_cos = q_p1_cos.AllocTensor<float>();
        for (uint32_t r = 0; r < rows;) {  // rows gathered from GM 0, 16 elements apart
            const uint64_t R = rowStart + r;
            const uint32_t left = (td_.dims[0]) - static_cast<uint32_t>(R % (td_.dims[0]));
            const uint32_t run = rows - r < left ? rows - r : left;
            AfCopyRowsIn(x_q_p1_cos[r * 16], cosGm[((R % (td_.dims[0])) * 16)], run, 16, 16, 16);
            r += run;
        }
        q_p1_cos.EnQue(x_q_p1_cos);
    }

    __aicore__ inline void Compute1(uint64_t rowStart, uint32_t rows)
    {
        LocalTensor<float> x_q_p1_x3 = q_p1_x3.DeQue<float>();
        LocalTensor<float> x_q_p1_x = q_p1_x.DeQue<float>();
        LocalTensor<float> x_q_p1_cos = q_p1_cos.DeQue<float>();
        LocalTensor<float> y_q_p1_y1 = q_p1_y1.AllocTensor<float>();
        LocalTensor<float> t_p1_tmp0 = p1_tmp0.Get<float>();
        LocalTensor<float> t_p1_tmp1 = p1_tmp1.Get<float>();
        LocalTensor<float> t_p1_tmp2 = p1_tmp2.Get<float>();
        // Mul node_mul_150
        Mul(t_p1_tmp0, x_q_p1_x3, x_q_p1_x, rows * 16);
        PipeBarrier<PIPE_V>();
        // Neg node_neg_1
        AfWaitVector();
        for (uint32_t r = 0; r < rows; ++r) {
            Muls(t_p1_tmp1[r * 16], x_q_p1_x3[r * 16 + 8], 1.0f, 8);
            PipeBarrier<PIPE_V>();
        }
        Muls(t_p1_tmp1, t_p1_tmp1, -1.0f, rows * 16);
        PipeBarrier<PIPE_V>();
        // Concat node_cat_2
        AfWaitVector();
        for (uint32_t r = 0; r < rows; ++r) {
            Muls(t_p1_tmp2[r * 16], t_p1_tmp1[r * 16], 1.0f, 8);
            PipeBarrier<PIPE_V>();
        }
        AfWaitVector();
        for (uint32_t r = 0; r < rows; ++r) {
            Muls(t_p1_tmp2[r * 16 + 8], x_q_p1_x3[r * 16], 1.0f, 8);
            PipeBarrier<PIPE_V>();
        }
        // Mul node_mul_166
        Mul(t_p1_tmp2, t_p1_tmp2, x_q_p1_cos, rows * 16);
        PipeBarrier<PIPE_V>();
        // Add node_add_235
        Add(y_q_p1_y1, t_p1_tmp0, t_p1_tmp2, rows * 16);
        PipeBarrier<PIPE_V>();
        q_p1_y1.EnQue(y_q_p1_y1);
        q_p1_x3.FreeTensor(x_q_p1_x3);
        q_p1_x.FreeTensor(x_q_p1_x);
        q_p1_cos.FreeTensor(x_q_p1_cos);
    }

    __aicore__ inline void CopyOut1(uint64_t rowStart, uint32_t rows)
    {
        LocalTensor<float> y_q_p1_y1 = q_p1_y1.DeQue<float>();
        AfCopyRowsOut(y1Gm[rowStart * 16], y_q_p1_y1, rows, 16, 16);
        q_p1_y1.FreeTensor(y_q_p1_y1);
    }
    TQue<QuePosition::VECIN, 1> q_p1_x3;
    TQue<QuePosition::VECIN, 1> q_p1_x;
    TBuf<TPosition::VECCALC> p1_tmp0;
    TBuf<TPosition::VECCALC> p1_tmp1;
    TBuf<TPosition::VECCALC> p1_tmp2;
    TQue<QuePosition::VECIN, 1> q_p1_cos;
    TQue<QuePosition::VECOUT, 1> q_p1_y1;

    TPipe* pipe_;
    AutofuseRotaryMulPair5TilingData td_;
    GlobalTensor<float> xGm;
    GlobalTensor<float> cosGm;
    GlobalTensor<float> sinGm;
    GlobalTensor<float> x3Gm;
    GlobalTensor<float> yGm;
    GlobalTensor<float> y1Gm;
};
}  // namespace

extern "C" __global__ __aicore__ void autofuse_rotary_mul_pair5(GM_ADDR x, GM_ADDR cos, GM_ADDR sin, GM_ADDR x3, GM_ADDR y, GM_ADDR y1, GM_ADDR workspace, GM_ADDR tiling)
{
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIV_ONLY);
    REGISTER_TILING_DEFAULT(AutofuseRotaryMulPair5TilingData);
    GET_TILING_DATA(td, tiling);
    TPipe pipe;
    KernelAutofuseRotaryMulPair5 op;
    op.Init(x, cos, sin, x3, y, y1, workspace, td, &pipe);
    op.Process();
}
