// AutofuseSoftmax0: Ascend C kernel written by autofuse 0.1.0 for fused group g0
// (softmax, rule softmax) on ascend910b. Do not edit: regenerate it.
// Family: row_reduction. The group reduces each row (a norm, a softmax, a reduction) and uses the
// per-row results again on the same row: a tile holds whole rows, each row is reduced with
// ReduceSum/ReduceMax into a per-row fp32 value, and the elementwise tail reads it back per row.

// ONNX nodes it replaces, in order:
//   ReduceMax ReduceMax_0
//   Sub Sub_1
//   Exp Exp_2
//   ReduceSum ReduceSum_3
//   Div Div_4
// Tile chosen by autofuse's cost model: rows, 80 rows of 40 per tile, 1 cores, 1 tiles, double-buffered.
#include "kernel_operator.h"

#include "autofuse_softmax0_tiling.h"

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

class KernelAutofuseSoftmax0 {
public:
    __aicore__ inline KernelAutofuseSoftmax0() {}

    __aicore__ inline void Init(GM_ADDR x, GM_ADDR y, GM_ADDR workspace,
                                const AutofuseSoftmax0TilingData& td, TPipe* pipe)
    {
        pipe_ = pipe;
        td_ = td;
        xGm.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(x), 3200);  // x
        yGm.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(y), 3200);  // y
    }

    __aicore__ inline void Process()
    {
        const uint32_t worker = static_cast<uint32_t>(GetBlockIdx());
        if (worker >= td_.usedCores) {
            return;  // more cores launched than the tiles need
        }
        Part0(worker);
    }

private:
    // -- part 0: 80 rows of space [1, 2, 40, 40], tiles of up to 80 rows of 40 elements (UB rows of 40)

    __aicore__ inline void Part0(uint32_t worker)
    {
        pipe_->InitBuffer(q_x, 2, 12800);  // x
        pipe_->InitBuffer(reduce_work, 32);  // reduce_work
        pipe_->InitBuffer(reduce_out, 32);  // reduce_out
        pipe_->InitBuffer(row0, 512);  // row0
        pipe_->InitBuffer(tmp0, 13056);  // tmp0
        pipe_->InitBuffer(q_y, 2, 12800);  // y
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
        LocalTensor<float> x_q_x = q_x.AllocTensor<float>();
        AfCopyRowsIn(x_q_x, xGm[rowStart * 40], rows, 40, 40, 40);
        q_x.EnQue(x_q_x);
    }

    __aicore__ inline void Compute0(uint64_t rowStart, uint32_t rows)
    {
        LocalTensor<float> x_q_x = q_x.DeQue<float>();
        LocalTensor<float> y_q_y = q_y.AllocTensor<float>();
        LocalTensor<float> t_reduce_work = reduce_work.Get<float>();
        LocalTensor<float> t_reduce_out = reduce_out.Get<float>();
        LocalTensor<float> t_row0 = row0.Get<float>();
        LocalTensor<float> t_tmp0 = tmp0.Get<float>();
        // ReduceMax ReduceMax_0
        for (uint32_t r = 0; r < rows; ++r) {
            ReduceMax(t_reduce_out, x_q_x[r * 40], t_reduce_work, 40, false);
            AfWaitVector();
            t_row0.SetValue(r, t_reduce_out.GetValue(0));
        }
        AfWaitScalar();
        // Sub Sub_1
        AfWaitVector();
        for (uint32_t r = 0; r < rows; ++r) {
            const float bRow = t_row0.GetValue(r);
            Adds(t_tmp0[r * 40], x_q_x[r * 40], -(bRow), 40);
            PipeBarrier<PIPE_V>();
        }
        // Exp Exp_2
        Exp(t_tmp0, t_tmp0, rows * 40);
        PipeBarrier<PIPE_V>();
        // ReduceSum ReduceSum_3
        for (uint32_t r = 0; r < rows; ++r) {
            ReduceSum(t_reduce_out, t_tmp0[r * 40], t_reduce_work, 40);
            AfWaitVector();
            t_row0.SetValue(r, t_reduce_out.GetValue(0));
        }
        AfWaitScalar();
        // Div Div_4
        AfWaitVector();
        for (uint32_t r = 0; r < rows; ++r) {
            const float bRow = t_row0.GetValue(r);
            Muls(y_q_y[r * 40], t_tmp0[r * 40], 1.0f / (bRow), 40);
            PipeBarrier<PIPE_V>();
        }
        q_y.EnQue(y_q_y);
        q_x.FreeTensor(x_q_x);
    }

    __aicore__ inline void CopyOut0(uint64_t rowStart, uint32_t rows)
    {
        LocalTensor<float> y_q_y = q_y.DeQue<float>();
        AfCopyRowsOut(yGm[rowStart * 40], y_q_y, rows, 40, 40);
        q_y.FreeTensor(y_q_y);
    }
    TQue<QuePosition::VECIN, 1> q_x;
    TBuf<TPosition::VECCALC> reduce_work;
    TBuf<TPosition::VECCALC> reduce_out;
    TBuf<TPosition::VECCALC> row0;
    TBuf<TPosition::VECCALC> tmp0;
    TQue<QuePosition::VECOUT, 1> q_y;

    TPipe* pipe_;
    AutofuseSoftmax0TilingData td_;
    GlobalTensor<float> xGm;
    GlobalTensor<float> yGm;
};
}  // namespace

extern "C" __global__ __aicore__ void autofuse_softmax0(GM_ADDR x, GM_ADDR y, GM_ADDR workspace, GM_ADDR tiling)
{
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIV_ONLY);
    REGISTER_TILING_DEFAULT(AutofuseSoftmax0TilingData);
    GET_TILING_DATA(td, tiling);
    TPipe pipe;
    KernelAutofuseSoftmax0 op;
    op.Init(x, y, workspace, td, &pipe);
    op.Process();
}
