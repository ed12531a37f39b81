// Matmul kernels on the high-level API, written as generated MIX kernels are: each vector core
// (GetBlockIdx() over 2 * numBlocks) takes one [singleCoreM, singleCoreN] block of C.
#include "kernel_operator.h"
#include "lib/matmul_intf.h"

using namespace AscendC;

struct MatmulTestTiling {
    TCubeTiling cube;
    float alpha;
};

// Position of this core's block: offsets into A, B, bias, C and the block's real size.
struct BlockPlace {
    bool active;
    int32_t m0, n0, rows, cols;
};

__aicore__ inline BlockPlace Place(const TCubeTiling& t)
{
    int32_t mBlocks = (t.M + t.singleCoreM - 1) / t.singleCoreM;
    int32_t nBlocks = (t.N + t.singleCoreN - 1) / t.singleCoreN;
    int32_t idx = GetBlockIdx();
    if (idx >= mBlocks * nBlocks) return BlockPlace{false, 0, 0, 0, 0};
    int32_t m0 = idx % mBlocks * t.singleCoreM, n0 = idx / mBlocks * t.singleCoreN;
    int32_t rows = t.M - m0 < t.singleCoreM ? t.M - m0 : t.singleCoreM;
    int32_t cols = t.N - n0 < t.singleCoreN ? t.N - n0 : t.singleCoreN;
    return BlockPlace{true, m0, n0, rows, cols};
}

// C = LeakyRelu(A[M,K] * B[K,N] + bias, alpha): Iterate, GetTensorC into UB, epilogue, DataCopyPad out.
extern "C" __global__ __aicore__ void matmul_leakyrelu(GM_ADDR a, GM_ADDR b, GM_ADDR bias, GM_ADDR c,
                                                       GM_ADDR workspace, GM_ADDR tiling)
{
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_MIX_AIC_1_2);
    GET_TILING_DATA_WITH_STRUCT(MatmulTestTiling, td, tiling);
    const TCubeTiling& t = td.cube;
    using AType = MatmulType<TPosition::GM, CubeFormat::ND, half>;
    using BType = MatmulType<TPosition::GM, CubeFormat::ND, half>;
    using CType = MatmulType<TPosition::VECIN, CubeFormat::ND, float>;
    using BiasType = MatmulType<TPosition::GM, CubeFormat::ND, float>;
    TPipe pipe;
    Matmul<AType, BType, CType, BiasType> mm;
    REGIST_MATMUL_OBJ(&pipe, GetSysWorkSpacePtr(), mm, &t);
    BlockPlace p = Place(t);
    if (!p.active) return;
    GlobalTensor<half> aGm, bGm;
    GlobalTensor<float> biasGm, cGm;
    aGm.SetGlobalBuffer((__gm__ half*)a, t.M * t.Ka);
    bGm.SetGlobalBuffer((__gm__ half*)b, t.Kb * t.N);
    biasGm.SetGlobalBuffer((__gm__ float*)bias, t.N);
    cGm.SetGlobalBuffer((__gm__ float*)c, t.M * t.N);
    TQue<QuePosition::VECIN, 1> tileQueue;
    pipe.InitBuffer(tileQueue, 1, t.baseM * t.baseN * sizeof(float));
    mm.SetTensorA(aGm[p.m0 * t.Ka]);
    mm.SetTensorB(bGm[p.n0]);
    mm.SetBias(biasGm[p.n0]);
    mm.SetTail(p.rows, p.cols);
    int32_t mTiles = (p.rows + t.baseM - 1) / t.baseM;
    for (int32_t count = 0; mm.Iterate(); ++count) {
        int32_t tm = count % mTiles, tn = count / mTiles;  // iterateOrder 0: M first
        int32_t rows = p.rows - tm * t.baseM < t.baseM ? p.rows - tm * t.baseM : t.baseM;
        int32_t cols = p.cols - tn * t.baseN < t.baseN ? p.cols - tn * t.baseN : t.baseN;
        int32_t stride = (cols * 4 + 31) / 32 * 8;  // GetTensorC rows start 32-byte aligned
        LocalTensor<float> tile = tileQueue.AllocTensor<float>();
        mm.GetTensorC(tile);
        LeakyRelu(tile, tile, td.alpha, rows * stride);
        tileQueue.EnQue(tile);
        tile = tileQueue.DeQue<float>();
        DataCopyExtParams out{(uint16_t)rows, (uint32_t)(cols * sizeof(float)), 0,
                              (uint32_t)((t.N - cols) * sizeof(float)), 0};
        DataCopyPad(cGm[(p.m0 + tm * t.baseM) * t.N + p.n0 + tn * t.baseN], tile, out);
        tileQueue.FreeTensor(tile);
    }
    mm.End();
}

// C (half) = A[M,K] * B^T where B is stored [N, K]: IterateAll straight to GM, no epilogue.
extern "C" __global__ __aicore__ void matmul_all(GM_ADDR a, GM_ADDR b, GM_ADDR bias, GM_ADDR c,
                                                 GM_ADDR workspace, GM_ADDR tiling)
{
    GET_TILING_DATA_WITH_STRUCT(MatmulTestTiling, td, tiling);
    const TCubeTiling& t = td.cube;
    using AType = MatmulType<TPosition::GM, CubeFormat::ND, half>;
    using BType = MatmulType<TPosition::GM, CubeFormat::ND, half, true>;
    using CType = MatmulType<TPosition::GM, CubeFormat::ND, half>;
    TPipe pipe;
    Matmul<AType, BType, CType> mm;
    REGIST_MATMUL_OBJ(&pipe, GetSysWorkSpacePtr(), mm);
    mm.Init(&t);
    BlockPlace p = Place(t);
    if (!p.active) return;
    GlobalTensor<half> aGm, bGm, cGm;
    aGm.SetGlobalBuffer((__gm__ half*)a, t.M * t.Ka);
    bGm.SetGlobalBuffer((__gm__ half*)b, t.N * t.Kb);
    cGm.SetGlobalBuffer((__gm__ half*)c, t.M * t.N);
    mm.SetOrgShape(t.M, t.N, t.Ka);
    mm.SetSingleShape(p.rows, p.cols, t.singleCoreK);
    mm.SetTensorA(aGm[p.m0 * t.Ka]);
    mm.SetTensorB(bGm[p.n0 * t.Kb], true);
    mm.IterateAll(cGm[p.m0 * t.N + p.n0]);
    mm.End();
}
