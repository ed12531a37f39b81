// AutofuseFusedMatMulEpilogue0: Ascend C kernel written by autofuse 0.1.0 for fused group g0
// (matmul_epilogue) on ascend910b. Do not edit: regenerate it.
// Family: matmul_epilogue. A MIX kernel (1 cube : 2 vector cores per AI core): the MatMul members
// run on the cube unit through the high-level Matmul API, each AI core computing a block of rows
// and writing it to GM (the workspace: this chip has no L0C->UB path); after SyncAll the vector
// cores run the epilogue over tiles of those rows, reading the results back like any input.

// ONNX nodes it replaces, in order:
//   Transpose Transpose_0
//   MatMul MatMul_1
//   Div Div_2
//   Add Add_3
// Tile chosen by autofuse's cost model: elementwise, 64 rows of 8 per tile, 1 cores, 1 tiles, double-buffered.
#include "kernel_operator.h"
#include "lib/matmul_intf.h"

#include "autofuse_fused_mat_mul_epilogue0_tiling.h"

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

class KernelAutofuseFusedMatMulEpilogue0 {
public:
    __aicore__ inline KernelAutofuseFusedMatMulEpilogue0() {}

    __aicore__ inline void Init(GM_ADDR x0, GM_ADDR x1, GM_ADDR x2, GM_ADDR y0, GM_ADDR workspace,
                                const AutofuseFusedMatMulEpilogue0TilingData& td, TPipe* pipe)
    {
        pipe_ = pipe;
        td_ = td;
        x0Gm.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(x0), 1024);  // k
        x1Gm.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(x1), 1024);  // q
        x2Gm.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(x2), 128);  // mask
        y0Gm.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(y0), 512);  // y
        c0Gm.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(GetUserWorkspace(workspace) + td.workspaceOffset[0]), 512);  // MatMul result m
    }

    __aicore__ inline void Process()
    {
        // Cube phase: vector core 0 of each AI core drives that core's cube through the Matmul API.
        // Each result is cut into singleCoreM x singleCoreN blocks (its TCubeTiling); AI core b
        // computes block b (of a batched MatMul, blocks b, b + cubeBlocks, ... over its matrices).
        // SyncAll: the vector cores read the results only once all are written.
        const uint32_t block = static_cast<uint32_t>(GetBlockIdx()) / static_cast<uint32_t>(GetTaskRatio());
        if (GetSubBlockIdx() == 0) {
            {  // MatMul MatMul_1: 8 products, one per matrix of the result
                const TCubeTiling& tiling = td_.mm0Tiling;
                const uint32_t mBlocks = (tiling.M + tiling.singleCoreM - 1) / tiling.singleCoreM;
                const uint32_t nBlocks = (tiling.N + tiling.singleCoreN - 1) / tiling.singleCoreN;
                // Block t of the 8 x mBlocks x nBlocks: AI core b takes b, b + cubeBlocks, ...
                const uint32_t items = 8U * mBlocks * nBlocks;
                for (uint32_t t = block; block < td_.cubeBlocks && t < items; t += td_.cubeBlocks) {
                    const uint32_t bt = t / (mBlocks * nBlocks);
                    const uint32_t m0 = t % (mBlocks * nBlocks) % mBlocks * tiling.singleCoreM;
                    const uint32_t n0 = t % (mBlocks * nBlocks) / mBlocks * tiling.singleCoreN;
                    const uint32_t m = tiling.M - m0 < tiling.singleCoreM ? tiling.M - m0 : tiling.singleCoreM;
                    const uint32_t n = tiling.N - n0 < tiling.singleCoreN ? tiling.N - n0 : tiling.singleCoreN;
                    mm0.SetTensorA(x1Gm[static_cast<uint64_t>(bt * 128) + static_cast<uint64_t>(m0) * 16]);
                    mm0.SetTensorB(x0Gm[static_cast<uint64_t>(bt * 128) + static_cast<uint64_t>(n0) * 16], true);
                    mm0.SetTail(m, n);
                    mm0.IterateAll(c0Gm[static_cast<uint64_t>(bt) * 64 + static_cast<uint64_t>(m0) * 8 + n0]);
                    mm0.End();
                }
            }
        }
        SyncAll();

        const uint32_t worker = static_cast<uint32_t>(GetBlockIdx());
        if (worker >= td_.usedCores) {
            return;  // more cores launched than the tiles need
        }
        Part0(worker);
    }

    // MatMul MatMul_1: C[8, 8] = A[8, 16] * B
    Matmul<MatmulType<TPosition::GM, CubeFormat::ND, float>,
           MatmulType<TPosition::GM, CubeFormat::ND, float, true>,
           MatmulType<TPosition::GM, CubeFormat::ND, float>,
           MatmulType<TPosition::GM, CubeFormat::ND, float>> mm0;

private:
    // -- part 0: 64 rows of space [2, 4, 8, 8], tiles of up to 977 rows of 8 elements (UB rows of 8)

    __aicore__ inline void Part0(uint32_t worker)
    {
        pipe_->Reset();
        pipe_->InitBuffer(q_mm, 2, 31264);  // m
        pipe_->InitBuffer(tmp0, 31744);  // tmp0
        pipe_->InitBuffer(q_x2, 1, 31264);  // mask
        pipe_->InitBuffer(q_y0, 2, 31264);  // y
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
        LocalTensor<float> x_q_mm = q_mm.AllocTensor<float>();
        AfCopyRowsIn(x_q_mm, c0Gm[rowStart * 8], rows, 8, 8, 8);
        q_mm.EnQue(x_q_mm);
        LocalTensor<float> x_q_x2 = q_x2.AllocTensor<float>();
        for (uint32_t r = 0; r < rows;) {  // rows gathered from GM 64, 0, 8 elements apart
            const uint64_t R = rowStart + r;
            const uint32_t left = 8 - static_cast<uint32_t>(R % 8);
            const uint32_t run = rows - r < left ? rows - r : left;
            AfCopyRowsIn(x_q_x2[r * 8], x2Gm[((R % 8) * 8) + ((R / 32) * 64)], run, 8, 8, 8);
            r += run;
        }
        q_x2.EnQue(x_q_x2);
    }

    __aicore__ inline void Compute0(uint64_t rowStart, uint32_t rows)
    {
        LocalTensor<float> x_q_mm = q_mm.DeQue<float>();
        LocalTensor<float> x_q_x2 = q_x2.DeQue<float>();
        LocalTensor<float> y_q_y0 = q_y0.AllocTensor<float>();
        LocalTensor<float> t_tmp0 = tmp0.Get<float>();
        // Div Div_2
        Muls(t_tmp0, x_q_mm, 4.0f, rows * 8);
        PipeBarrier<PIPE_V>();
        // Add Add_3
        Add(y_q_y0, t_tmp0, x_q_x2, rows * 8);
        PipeBarrier<PIPE_V>();
        q_y0.EnQue(y_q_y0);
        q_mm.FreeTensor(x_q_mm);
        q_x2.FreeTensor(x_q_x2);
    }

    __aicore__ inline void CopyOut0(uint64_t rowStart, uint32_t rows)
    {
        LocalTensor<float> y_q_y0 = q_y0.DeQue<float>();
        AfCopyRowsOut(y0Gm[rowStart * 8], y_q_y0, rows, 8, 8);
        q_y0.FreeTensor(y_q_y0);
    }
    TQue<QuePosition::VECIN, 1> q_mm;
    TBuf<TPosition::VECCALC> tmp0;
    TQue<QuePosition::VECIN, 1> q_x2;
    TQue<QuePosition::VECOUT, 1> q_y0;

    TPipe* pipe_;
    AutofuseFusedMatMulEpilogue0TilingData td_;
    GlobalTensor<float> x0Gm;
    GlobalTensor<float> x1Gm;
    GlobalTensor<float> x2Gm;
    GlobalTensor<float> y0Gm;
    GlobalTensor<float> c0Gm;
};
}  // namespace

extern "C" __global__ __aicore__ void autofuse_fused_mat_mul_epilogue0(GM_ADDR x0, GM_ADDR x1, GM_ADDR x2, GM_ADDR y0, GM_ADDR workspace, GM_ADDR tiling)
{
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_MIX_AIC_1_2);
    REGISTER_TILING_DEFAULT(AutofuseFusedMatMulEpilogue0TilingData);
    GET_TILING_DATA(td, tiling);
    TPipe pipe;
    KernelAutofuseFusedMatMulEpilogue0 op;
    REGIST_MATMUL_OBJ(&pipe, GetSysWorkSpacePtr(), op.mm0, &td.mm0Tiling);
    op.Init(x0, x1, x2, y0, workspace, td, &pipe);
    op.Process();
}
