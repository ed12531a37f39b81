// Kernels that each break one hardware limit or misuse the API once; the emulator must stop them
// with a one-line error naming the buffer/queue/call and the numbers (tests/test_emulator.py).
#include "kernel_operator.h"

using namespace AscendC;

#define TEST_KERNEL(name) \
    extern "C" __global__ __aicore__ void name(GM_ADDR a, GM_ADDR b, GM_ADDR c, GM_ADDR d, GM_ADDR workspace, GM_ADDR tiling)

TEST_KERNEL(ub_overflow)
{
    TPipe pipe;
    TQue<QuePosition::VECOUT, 2> outQueueZ;
    TQue<QuePosition::VECIN, 2> inQueueX;
    pipe.InitBuffer(outQueueZ, 2, 16 * 1024);
    pipe.InitBuffer(inQueueX, 2, 80 * 1024);
}

TEST_KERNEL(misaligned_operand)
{
    TPipe pipe;
    TBuf<TPosition::VECCALC> calcBuf;
    pipe.InitBuffer(calcBuf, 1024);
    LocalTensor<float> x = calcBuf.Get<float>();
    Add(x[3], x[64], x[128], 8);
}

TEST_KERNEL(queues_per_position)
{
    TPipe pipe;
    TQue<QuePosition::VECIN, 1> q0, q1, q2, q3, q4;
    pipe.InitBuffer(q0, 2, 256);
    pipe.InitBuffer(q1, 2, 256);
    pipe.InitBuffer(q2, 2, 256);
    pipe.InitBuffer(q3, 2, 256);
    pipe.InitBuffer(q4, 2, 256);
}

TEST_KERNEL(buffers_total)
{
    TPipe pipe;
    TBuf<TPosition::VECCALC> scratch[65];
    for (int i = 0; i < 65; ++i) pipe.InitBuffer(scratch[i], 32);
}

TEST_KERNEL(compare_count)
{
    TPipe pipe;
    TBuf<TPosition::VECCALC> buf, maskBuf;
    pipe.InitBuffer(buf, 800);
    pipe.InitBuffer(maskBuf, 64);
    LocalTensor<float> x = buf.Get<float>();
    LocalTensor<uint8_t> mask = maskBuf.Get<uint8_t>();
    Compare(mask, x, x[100], CMPMODE::LT, 100);
}

TEST_KERNEL(gm_write_past_buffer)
{
    GlobalTensor<float> zGm;
    zGm.SetGlobalBuffer((__gm__ float*)c);
    TPipe pipe;
    TBuf<TPosition::VECCALC> buf;
    pipe.InitBuffer(buf, 64);
    LocalTensor<float> z = buf.Get<float>();
    Duplicate(z, 1.0f, 16);
    DataCopy(zGm[248], z, 16);
}

TEST_KERNEL(gm_read_past_extent)
{
    GlobalTensor<float> xGm;
    xGm.SetGlobalBuffer((__gm__ float*)a + 64, 64);
    TPipe pipe;
    TQue<QuePosition::VECIN, 1> inQueueX;
    pipe.InitBuffer(inQueueX, 1, 256);
    LocalTensor<float> x = inQueueX.AllocTensor<float>();
    DataCopy(x, xGm[32], 64);
}

TEST_KERNEL(ub_past_tensor)
{
    TPipe pipe;
    TQue<QuePosition::VECOUT, 1> outQueueY;
    pipe.InitBuffer(outQueueY, 2, 1024);
    LocalTensor<float> y = outQueueY.AllocTensor<float>();
    Adds(y, y, 1.0f, 512);
}

TEST_KERNEL(setvalue_past_tensor)
{
    TPipe pipe;
    TBuf<TPosition::VECCALC> tmpBuf;
    pipe.InitBuffer(tmpBuf, 1024);
    LocalTensor<float> t = tmpBuf.Get<float>();
    t.SetValue(256, 1.0f);
}

TEST_KERNEL(alloc_without_free)
{
    TPipe pipe;
    TQue<QuePosition::VECIN, 2> inQueue;
    pipe.InitBuffer(inQueue, 2, 256);
    for (int i = 0; i < 3; ++i) {
        LocalTensor<float> t = inQueue.AllocTensor<float>();
        inQueue.EnQue(t);
        inQueue.DeQue<float>();
    }
}

TEST_KERNEL(enque_past_depth)
{
    TPipe pipe;
    TQue<QuePosition::VECIN, 1> inQueue;
    pipe.InitBuffer(inQueue, 2, 256);
    LocalTensor<float> t0 = inQueue.AllocTensor<float>();
    LocalTensor<float> t1 = inQueue.AllocTensor<float>();
    inQueue.EnQue(t0);
    inQueue.EnQue(t1);
}

TEST_KERNEL(deque_empty)
{
    TPipe pipe;
    TQue<QuePosition::VECOUT, 1> outQueue;
    pipe.InitBuffer(outQueue, 1, 256);
    outQueue.DeQue<float>();
}

TEST_KERNEL(use_after_free)
{
    TPipe pipe;
    TQue<QuePosition::VECIN, 1> inQueue;
    pipe.InitBuffer(inQueue, 1, 256);
    LocalTensor<float> t = inQueue.AllocTensor<float>();
    inQueue.FreeTensor(t);
    Muls(t, t, 2.0f, 64);
}

TEST_KERNEL(wait_without_set)
{
    WaitFlag<HardEvent::MTE2_V>(0);
}

TEST_KERNEL(aiv_kernel_in_mix_mode)
{
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIV_ONLY);
}

TEST_KERNEL(sync_all_divergent)
{
    if (GetBlockIdx() == 0) return;
    SyncAll();
}

TEST_KERNEL(crash)
{
    volatile int* p = nullptr;
    *p = 1;
}

TEST_KERNEL(vector_on_aic)
{
    TPipe pipe;
    TBuf<TPosition::VECCALC> buf;
    pipe.InitBuffer(buf, 256);
}
