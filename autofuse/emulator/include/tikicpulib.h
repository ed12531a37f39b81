// autofuse CPU emulator: the host side of CANN's CPU debug mode (GmAlloc, GmFree, SetKernelMode,
// ICPU_SET_TILING_KEY, ICPU_RUN_KF), plus emulator-only host functions for the GM byte counters.
//
// ICPU_RUN_KF runs every core instance of the launch, each in its own forked process, all at once
// (as CANN's CPU mode does): numBlocks vector cores (AIV_MODE), numBlocks cube cores (AIC_MODE),
// or, in MIX_MODE on Atlas A2/A3, the 2 * numBlocks vector cores (GetBlockIdx() in
// [0, 2*numBlocks), GetBlockNum() = numBlocks, GetTaskRatio() = 2) with the cube folded into the
// Matmul calls. GM (GmAlloc) is shared memory; each instance starts with a fresh core (UB filled
// with 0xFF bytes, no buffers, no flags). When an instance breaks a limit or crashes, the launcher
// stops the others and the process exits with AUTOFUSE_EMU_EXIT_CODE.
#ifndef AUTOFUSE_EMU_TIKICPULIB_H
#define AUTOFUSE_EMU_TIKICPULIB_H

#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include <cstdlib>
#include <new>

#include "kernel_operator.h"

namespace AscendC {

inline KernelMode g_emuHostMode = KernelMode::MIX_MODE;

inline size_t EmuPages(size_t size) { return size == 0 ? 4096 : (size + 4095) / 4096 * 4096; }

// Zero-filled shared memory (the forked core instances write into it); every kernel access is
// bounds-checked against `size`.
inline void* GmAlloc(size_t size) {
    void* p = mmap(nullptr, EmuPages(size), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) EmuFail("GmAlloc(%zu): out of memory", size);
    g_emuGm[reinterpret_cast<uintptr_t>(p)] = EmuGmBlock{size};
    return p;
}

inline void GmFree(void* ptr) {
    auto it = g_emuGm.find(reinterpret_cast<uintptr_t>(ptr));
    if (it == g_emuGm.end()) EmuFail("GmFree(%p): not a pointer GmAlloc returned (or freed twice)", ptr);
    munmap(ptr, EmuPages(it->second.size));
    g_emuGm.erase(it);
}

inline void SetKernelMode(KernelMode mode) { g_emuHostMode = mode; }

inline void EmuSetTilingKey(uint64_t key) { g_emuLaunch.tilingKey = key; }

// GM bytes the last ICPU_RUN_KF launch read and wrote, over all its cores (DataCopy, DataCopyPad,
// GlobalTensor GetValue/SetValue, Matmul). Emulator-only: for host harnesses, never for kernels.
inline uint64_t EmuGmBytesRead() { return g_emuLaunch.gmRead; }
inline uint64_t EmuGmBytesWritten() { return g_emuLaunch.gmWritten; }

template <typename A>
inline void EmuCheckArg(const char* kernel, int index, const A& arg) {
    if constexpr (std::is_pointer_v<A>) {
        if (arg && !EmuGmFind(arg) && !g_emuGm.count(reinterpret_cast<uintptr_t>(arg))) EmuFail("ICPU_RUN_KF(%s): argument %d is not a GmAlloc'd pointer", kernel, index);
    }
}

struct EmuInstance {
    int64_t idx, sub, ratio;
    bool aiv;
};

// The body of one forked core instance.
template <typename F>
[[noreturn]] inline void EmuRunInstance(F& body, const EmuInstance& in, int64_t numBlocks) {
    EmuResetCore();
    g_emuPipe = nullptr;
    g_emuLaunch.blockIdx = in.idx, g_emuLaunch.blockNum = numBlocks, g_emuLaunch.subBlockIdx = in.sub;
    g_emuLaunch.taskRatio = in.ratio, g_emuLaunch.aiv = in.aiv, g_emuLaunch.running = true;
    g_emuLaunch.gmRead = g_emuLaunch.gmWritten = 0;
    body();
    g_emuLaunch.shared->finished.fetch_add(1);
    for (int e = 0; e < static_cast<int>(HardEvent::MAX); ++e)
        for (int id = 0; id < 8; ++id)
            if (g_emuCore.flags[e][id])
                EmuWarn("SetFlag<HardEvent::%s>(%d) was never waited for", EmuEventName(static_cast<HardEvent>(e)), id);
    g_emuLaunch.shared->gmRead.fetch_add(g_emuLaunch.gmRead);
    g_emuLaunch.shared->gmWritten.fetch_add(g_emuLaunch.gmWritten);
    std::fflush(stdout);
    std::fflush(stderr);
    _exit(0);
}

// Waits for the forked instances; on the first failure stops the rest and exits.
inline void EmuWaitAll(std::vector<pid_t>& pids, const std::vector<int64_t>& idx) {
    size_t left = pids.size();
    while (left > 0) {
        int status = 0;
        pid_t pid = waitpid(-1, &status, 0);
        if (pid < 0) break;
        size_t k = 0;
        while (k < pids.size() && pids[k] != pid) ++k;
        if (k == pids.size()) continue;
        pids[k] = 0;
        --left;
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0) continue;
        for (pid_t other : pids)
            if (other > 0) kill(other, SIGKILL);
        for (pid_t other : pids)
            if (other > 0) waitpid(other, nullptr, 0);
        if (WIFSIGNALED(status)) {
            g_emuLaunch.running = false;
            EmuFail("core instance with block index %lld crashed with signal %d (%s)", (long long)idx[k],
                    WTERMSIG(status), strsignal(WTERMSIG(status)));
        }
        std::exit(WIFEXITED(status) ? WEXITSTATUS(status) : AUTOFUSE_EMU_EXIT_CODE);
    }
}

template <typename F, typename... Args>
inline void EmuRunKernel(const char* kernel, int64_t numBlocks, F body, const Args&... args) {
    static_assert(sizeof...(Args) <= AUTOFUSE_EMU_KERNEL_ARGS,
                  "ICPU_RUN_KF takes at most AUTOFUSE_EMU_KERNEL_ARGS (32) kernel arguments");
    g_emuLaunch.kernel = kernel;
    g_emuLaunch.mode = g_emuHostMode;
    int index = 0;
    (EmuCheckArg(kernel, index++, args), ...);
    if (numBlocks < 1 || numBlocks > 65535)
        EmuFail("ICPU_RUN_KF(%s): numBlocks %lld out of range [1, 65535]", kernel, (long long)numBlocks);
    std::vector<EmuInstance> list;
    bool split = AUTOFUSE_EMU_SPLIT_ARCH;
    for (int64_t b = 0; b < numBlocks; ++b) {
        if (g_emuHostMode == KernelMode::MIX_MODE && split) {
            list.push_back(EmuInstance{2 * b, 0, 2, true});
            list.push_back(EmuInstance{2 * b + 1, 1, 2, true});
        } else {
            list.push_back(EmuInstance{b, 0, 1, !split || g_emuHostMode != KernelMode::AIC_MODE});
        }
    }
    void* mem = mmap(nullptr, sizeof(EmuShared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) EmuFail("ICPU_RUN_KF(%s): cannot map shared launch state", kernel);
    g_emuLaunch.shared = new (mem) EmuShared();
    g_emuLaunch.instances = static_cast<int32_t>(list.size());
    g_emuLaunch.concurrent = list.size() <= AUTOFUSE_EMU_MAX_CONCURRENT;
    for (size_t wave = 0; wave < list.size(); wave += AUTOFUSE_EMU_MAX_CONCURRENT) {
        std::vector<pid_t> pids;
        std::vector<int64_t> idx;
        std::fflush(stdout);
        std::fflush(stderr);
        for (size_t k = wave; k < list.size() && k < wave + AUTOFUSE_EMU_MAX_CONCURRENT; ++k) {
            pid_t pid = fork();
            if (pid < 0) EmuFail("ICPU_RUN_KF(%s): fork failed", kernel);
            if (pid == 0) EmuRunInstance(body, list[k], numBlocks);
            pids.push_back(pid);
            idx.push_back(list[k].idx);
        }
        EmuWaitAll(pids, idx);
    }
    g_emuLaunch.gmRead = g_emuLaunch.shared->gmRead.load();
    g_emuLaunch.gmWritten = g_emuLaunch.shared->gmWritten.load();
    unsigned long long warnings = g_emuLaunch.shared->warnings.load();
    munmap(mem, sizeof(EmuShared));
    g_emuLaunch.shared = nullptr;
    std::fprintf(stderr, "autofuse-emulator: launch %s mode=%s blocks=%lld gm_read=%llu gm_written=%llu "
                 "warnings=%llu\n", kernel, EmuModeName(g_emuHostMode), (long long)numBlocks,
                 (unsigned long long)g_emuLaunch.gmRead, (unsigned long long)g_emuLaunch.gmWritten, warnings);
    std::fflush(stderr);
}

}  // namespace AscendC

#define ICPU_SET_TILING_KEY(key) AscendC::EmuSetTilingKey(key)
#define ICPU_RUN_KF(func, numBlocks, ...) \
    AscendC::EmuRunKernel(#func, numBlocks, [&]() { func(__VA_ARGS__); }, __VA_ARGS__)

#endif  // AUTOFUSE_EMU_TIKICPULIB_H
