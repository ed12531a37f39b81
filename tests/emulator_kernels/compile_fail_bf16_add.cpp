// Must not compile: Atlas A2/A3 vector units have no bf16 arithmetic.
#include "kernel_operator.h"

using namespace AscendC;

extern "C" __global__ __aicore__ void bf16_add(GM_ADDR x, GM_ADDR workspace, GM_ADDR tiling)
{
    TPipe pipe;
    TBuf<TPosition::VECCALC> buf;
    pipe.InitBuffer(buf, 1024);
    LocalTensor<bfloat16_t> t = buf.Get<bfloat16_t>();
    Add(t, t, t[256], 256);
}
