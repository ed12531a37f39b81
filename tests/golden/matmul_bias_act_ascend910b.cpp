// AutofuseMatMulBiasAct0: Ascend C kernel written by autofuse 0.1.0 for fused group g0
// (matmul_epilogue, rule matmul_bias_act) on ascend910b. Do not edit: regenerate it.
// Family: matmul_epilogue. A MIX kernel (1 cube : 2 vector cores per AI core): the MatMul members
// run on the cube unit through the high-level Matmul API, each AI core computing a block of rows
// and writing it to GM (the workspace: this chip has no L0C->UB path); after SyncAll the vector
// cores run the epilogue over tiles of those rows, reading the results back like any input.

// ONNX nodes it replaces, in order:
//   MatMul MatMul_0
//   Add Add_1
//   Relu Relu_2
// Tile chosen by autofuse's cost model: elementwise, up to 293 rows of 32 per tile, double-buffered; tile count and cores from the run-time sizes.
#include "kernel_operator.h"
#include "lib/matmul_intf.h"

#include "autofuse_mat_mul_bias_act0_tiling.h"

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

class KernelAutofuseMatMulBiasAct0 {
public:
    __aicore__ inline KernelAutofuseMatMulBiasAct0() {}

    __aicore__ inline void Init(GM_ADDR x, GM_ADDR w, GM_ADDR bias, GM_ADDR y, GM_ADDR workspace,
                                const AutofuseMatMulBiasAct0TilingData& td, TPipe* pipe)
    {
        pipe_ = pipe;
        td_ = td;
        xGm.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(x), td.argElements[0]);  // x
        wGm.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(w), td.argElements[1]);  // w
        biasGm.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(bias), td.argElements[2]);  // bias
        yGm.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(y), td.argElements[3]);  // y
        c0Gm.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(GetUserWorkspace(workspace) + td.workspaceOffset[0]), td.argElements[4]);  // MatMul result m
    }

    __aicore__ inline void Process()
    {
        // Cube phase: vector core 0 of each AI core drives that core's cube through the Matmul API.
        // Each result is cut into singleCoreM x singleCoreN blocks (its TCubeTiling); AI core b
        // computes block b (of a batched MatMul, blocks b, b + cubeBlocks, ... over its matrices).
        // SyncAll: the vector cores read the results only once all are written.
        const uint32_t block = static_cast<uint32_t>(GetBlockIdx()) / static_cast<uint32_t>(GetTaskRatio());
        if (GetSubBlockIdx() == 0) {
            {  // MatMul MatMul_0
                const TCubeTiling& tiling = td_.mm0Tiling;
                const uint32_t mBlocks = (tiling.M + tiling.singleCoreM - 1) / tiling.singleCoreM;
                const uint32_t nBlocks = (tiling.N + tiling.singleCoreN - 1) / tiling.singleCoreN;
                if (block < mBlocks * nBlocks) {
                    const uint32_t m0 = block % mBlocks * tiling.singleCoreM;
                    const uint32_t n0 = block / mBlocks * tiling.singleCoreN;
                    const uint32_t m = tiling.M - m0 < tiling.singleCoreM ? tiling.M - m0 : tiling.singleCoreM;
                    const uint32_t n = tiling.N - n0 < tiling.singleCoreN ? tiling.N - n0 : tiling.singleCoreN;
                    mm0.SetTensorA(xGm[static_cast<uint64_t>(m0) * 16]);
                    mm0.SetTensorB(wGm[n0]);
                    mm0.SetTail(m, n);
                    mm0.IterateAll(c0Gm[static_cast<uint64_t>(m0) * 32 + n0]);
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

    // MatMul MatMul_0: C[256, 32] = A[256, 16] * B
    Matmul<MatmulType<TPosition::GM, CubeFormat::ND, float>,
           MatmulType<TPosition::GM, CubeFormat::ND, float>,
           MatmulType<TPosition::GM, CubeFormat::ND, float>,
           MatmulType<TPosition::GM, CubeFormat::ND, float>> mm0;

private:
    // -- part 0: tiles of up to 293 rows of 32 elements (UB rows of 32)

    __aicore__ inline void Part0(uint32_t worker)
    {
        pipe_->Reset();
        pipe_->InitBuffer(res_bias, 128);  // bias
        pipe_->InitBuffer(q_mm, 2, 37504);  // m
        pipe_->InitBuffer(tmp0, 37888);  // tmp0
        pipe_->InitBuffer(q_y, 2, 37504);  // y
        // Tiles [first, first + count) of the part's td_.part0Tiles: the first `rem` cores take one more.
        const uint32_t tiles = td_.part0Tiles;
        const uint32_t base = tiles / td_.usedCores;
        const uint32_t rem = tiles % td_.usedCores;
        const uint32_t first = worker * base + (worker < rem ? worker : rem);
        const uint32_t count = base + (worker < rem ? 1 : 0);
        if (count > 0) {
            LoadResidents0();
        }
        for (uint32_t t = first; t < first + count; ++t) {
            const uint64_t rowStart = static_cast<uint64_t>(t) * td_.part0PerTile;
            const uint32_t rows = (t + 1 == tiles) ? td_.part0LastTile : td_.part0PerTile;
            CopyIn0(rowStart, rows);
            Compute0(rowStart, rows);
            CopyOut0(rowStart, rows);
        }
    }

    // Small inputs, loaded whole once per core and kept in UB as fp32 rows.
    __aicore__ inline void LoadResidents0()
    {
        LocalTensor<float> t_res_bias = res_bias.Get<float>();
        AfCopyRowsIn(t_res_bias, biasGm, 1, 32, 32, 32);
        event_t loaded = static_cast<event_t>(GetTPipePtr()->FetchEventID(HardEvent::MTE2_V));
        SetFlag<HardEvent::MTE2_V>(loaded);
        WaitFlag<HardEvent::MTE2_V>(loaded);
        AfWaitScalar();
        PipeBarrier<PIPE_V>();
    }

    __aicore__ inline void CopyIn0(uint64_t rowStart, uint32_t rows)
    {
        LocalTensor<float> x_q_mm = q_mm.AllocTensor<float>();
        AfCopyRowsIn(x_q_mm, c0Gm[rowStart * 32], rows, 32, 32, 32);
        q_mm.EnQue(x_q_mm);
    }

    __aicore__ inline void Compute0(uint64_t rowStart, uint32_t rows)
    {
        LocalTensor<float> x_q_mm = q_mm.DeQue<float>();
        LocalTensor<float> y_q_y = q_y.AllocTensor<float>();
        LocalTensor<float> t_res_bias = res_bias.Get<float>();
        LocalTensor<float> t_tmp0 = tmp0.Get<float>();
        // Add Add_1
        AfWaitVector();
        for (uint32_t r = 0; r < rows; ++r) {
            Add(t_tmp0[r * 32], t_res_bias[0], x_q_mm[r * 32], 32);
            PipeBarrier<PIPE_V>();
        }
        // Relu Relu_2
        Relu(y_q_y, t_tmp0, rows * 32);
        PipeBarrier<PIPE_V>();
        q_y.EnQue(y_q_y);
        q_mm.FreeTensor(x_q_mm);
    }

    __aicore__ inline void CopyOut0(uint64_t rowStart, uint32_t rows)
    {
        LocalTensor<float> y_q_y = q_y.DeQue<float>();
        AfCopyRowsOut(yGm[rowStart * 32], y_q_y, rows, 32, 32);
        q_y.FreeTensor(y_q_y);
    }
    TBuf<TPosition::VECCALC> res_bias;
    TQue<QuePosition::VECIN, 1> q_mm;
    TBuf<TPosition::VECCALC> tmp0;
    TQue<QuePosition::VECOUT, 1> q_y;

    TPipe* pipe_;
    AutofuseMatMulBiasAct0TilingData td_;
    GlobalTensor<float> xGm;
    GlobalTensor<float> wGm;
    GlobalTensor<float> biasGm;
    GlobalTensor<float> yGm;
    GlobalTensor<float> c0Gm;
};
}  // namespace

extern "C" __global__ __aicore__ void autofuse_mat_mul_bias_act0(GM_ADDR x, GM_ADDR w, GM_ADDR bias, GM_ADDR y, GM_ADDR workspace, GM_ADDR tiling)
{
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_MIX_AIC_1_2);
    REGISTER_TILING_DEFAULT(AutofuseMatMulBiasAct0TilingData);
    GET_TILING_DATA(td, tiling);
    TPipe pipe;
    KernelAutofuseMatMulBiasAct0 op;
    REGIST_MATMUL_OBJ(&pipe, GetSysWorkSpacePtr(), op.mm0, &td.mm0Tiling);
    op.Init(x, w, bias, y, workspace, td, &pipe);
    op.Process();
}
