// Must not compile for Atlas 300I / 310P (__NPU_ARCH__ 2002): it has no DataCopyPad.
#include "kernel_operator.h"

using namespace AscendC;

extern "C" __global__ __aicore__ void pad_on_310p(GM_ADDR x, GM_ADDR workspace, GM_ADDR tiling)
{
    GlobalTensor<half> xGm;
    xGm.SetGlobalBuffer((__gm__ half*)x, 10);
    TPipe pipe;
    TQue<QuePosition::VECIN, 1> inQueueX;
    pipe.InitBuffer(inQueueX, 1, 32);
    LocalTensor<half> t = inQueueX.AllocTensor<half>();
    DataCopyPad(t, xGm, DataCopyExtParams{1, 20, 0, 0, 0}, DataCopyPadExtParams<half>{false, 0, 0, (half)0});
}
