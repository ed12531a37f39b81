// Classic double-buffered Add, written as a generated kernel would be: Init / Process / CopyIn /
// Compute / CopyOut, TPipe in the entry, uneven split across cores (the last core takes the
// remainder), a short last tile.
#include "kernel_operator.h"
#include "add_custom_tiling.h"

using namespace AscendC;

constexpr int32_t BUFFER_NUM = 2;

template <typename T>
class KernelAdd {
public:
    __aicore__ inline KernelAdd() {}
    __aicore__ inline void Init(GM_ADDR x, GM_ADDR y, GM_ADDR z, const AddCustomTilingData& td, TPipe* pipe)
    {
        uint32_t start = td.blockLength * GetBlockIdx();
        length = start >= td.totalLength ? 0 : (td.totalLength - start < td.blockLength ? td.totalLength - start
                                                                                        : td.blockLength);
        tileLength = td.tileLength;
        xGm.SetGlobalBuffer((__gm__ T*)x + start, length);
        yGm.SetGlobalBuffer((__gm__ T*)y + start, length);
        zGm.SetGlobalBuffer((__gm__ T*)z + start, length);
        pipe->InitBuffer(inQueueX, BUFFER_NUM, tileLength * sizeof(T));
        pipe->InitBuffer(inQueueY, BUFFER_NUM, tileLength * sizeof(T));
        pipe->InitBuffer(outQueueZ, BUFFER_NUM, tileLength * sizeof(T));
    }
    __aicore__ inline void Process()
    {
        uint32_t tiles = (length + tileLength - 1) / tileLength;
        for (uint32_t i = 0; i < tiles; i++) {
            uint32_t n = (i + 1) * tileLength <= length ? tileLength : length - i * tileLength;
            CopyIn(i, n);
            Compute(n);
            CopyOut(i, n);
        }
    }

private:
    __aicore__ inline void CopyIn(uint32_t i, uint32_t n)
    {
        LocalTensor<T> xLocal = inQueueX.AllocTensor<T>();
        LocalTensor<T> yLocal = inQueueY.AllocTensor<T>();
        DataCopy(xLocal, xGm[i * tileLength], n);
        DataCopy(yLocal, yGm[i * tileLength], n);
        inQueueX.EnQue(xLocal);
        inQueueY.EnQue(yLocal);
    }
    __aicore__ inline void Compute(uint32_t n)
    {
        LocalTensor<T> xLocal = inQueueX.DeQue<T>();
        LocalTensor<T> yLocal = inQueueY.DeQue<T>();
        LocalTensor<T> zLocal = outQueueZ.AllocTensor<T>();
        Add(zLocal, xLocal, yLocal, n);
        outQueueZ.EnQue<T>(zLocal);
        inQueueX.FreeTensor(xLocal);
        inQueueY.FreeTensor(yLocal);
    }
    __aicore__ inline void CopyOut(uint32_t i, uint32_t n)
    {
        LocalTensor<T> zLocal = outQueueZ.DeQue<T>();
        DataCopy(zGm[i * tileLength], zLocal, n);
        outQueueZ.FreeTensor(zLocal);
    }

    TQue<QuePosition::VECIN, BUFFER_NUM> inQueueX, inQueueY;
    TQue<QuePosition::VECOUT, BUFFER_NUM> outQueueZ;
    GlobalTensor<T> xGm, yGm, zGm;
    uint32_t length = 0;
    uint32_t tileLength = 0;
};

extern "C" __global__ __aicore__ void add_custom_float(GM_ADDR x, GM_ADDR y, GM_ADDR z, GM_ADDR workspace,
                                                       GM_ADDR tiling)
{
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIV_ONLY);
    REGISTER_TILING_DEFAULT(AddCustomTilingData);
    GET_TILING_DATA(td, tiling);
    TPipe pipe;
    KernelAdd<float> op;
    op.Init(x, y, z, td, &pipe);
    op.Process();
}

extern "C" __global__ __aicore__ void add_custom_half(GM_ADDR x, GM_ADDR y, GM_ADDR z, GM_ADDR workspace,
                                                      GM_ADDR tiling)
{
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIV_ONLY);
    GET_TILING_DATA_WITH_STRUCT(AddCustomTilingData, td, tiling);
    TPipe pipe;
    KernelAdd<half> op;
    op.Init(x, y, z, td, &pipe);
    op.Process();
}
