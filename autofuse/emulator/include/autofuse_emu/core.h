// autofuse CPU emulator of the Ascend C API: configuration, diagnostics and per-launch state.
//
// Everything here is emulator-internal (names start with Emu / AUTOFUSE_EMU_); kernels never use it.
// Each core instance of a launch runs in its own forked process, so per-core state is plain globals
// that the instance resets when it starts. Headers only: every global is an `inline` variable so a
// kernel .cpp and a host harness .cpp can be linked together.
#ifndef AUTOFUSE_EMU_CORE_H
#define AUTOFUSE_EMU_CORE_H

#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

// ---- target configuration (build.py passes these from the hardware profile) --------------------
#ifndef __NPU_ARCH__
#error "autofuse emulator: compile with -D__NPU_ARCH__=2201 (Atlas A2/A3) or 2002 (Atlas 300I / 310P)"
#endif
#if __NPU_ARCH__ != 2201 && __NPU_ARCH__ != 2002
#error "autofuse emulator: only __NPU_ARCH__ 2201 (A2/A3) and 2002 (310P) are emulated"
#endif
#if !defined(AUTOFUSE_EMU_UB_BYTES) || !defined(AUTOFUSE_EMU_UB_ALIGN) || \
    !defined(AUTOFUSE_EMU_QUE_BUFFERS_PER_POSITION) || !defined(AUTOFUSE_EMU_QUE_BUFFERS_TOTAL) || \
    !defined(AUTOFUSE_EMU_REPEAT_BYTES) || !defined(AUTOFUSE_EMU_KERNEL_ARGS)
#error "autofuse emulator: compile through autofuse.emulator.build (it passes -DAUTOFUSE_EMU_UB_BYTES, \
_UB_ALIGN, _QUE_BUFFERS_PER_POSITION, _QUE_BUFFERS_TOTAL, _REPEAT_BYTES and _KERNEL_ARGS from the hardware profile)"
#endif

// Exit status of a kernel run that broke a hardware limit or misused the API.
#define AUTOFUSE_EMU_EXIT_CODE 86

// Most core instances a launch runs at once (larger launches run in waves and cannot SyncAll).
#define AUTOFUSE_EMU_MAX_CONCURRENT 256

// Split architecture (separate AIC and AIV cores, 1:2): Atlas A2/A3.
#define AUTOFUSE_EMU_SPLIT_ARCH (__NPU_ARCH__ == 2201)

// ---- CPU-mode keywords: empty, as in CANN's CPU debug mode -------------------------------------
#ifndef __aicore__
#define __aicore__
#endif
#ifndef __global__
#define __global__
#endif
#ifndef __gm__
#define __gm__
#endif
#ifndef __ubuf__
#define __ubuf__
#endif
#ifndef __host__
#define __host__
#endif
#ifndef __inout_pipe__
#define __inout_pipe__(pipe)
#endif
#ifndef __sync_alias__
#define __sync_alias__
#endif
#ifndef GM_ADDR
#define GM_ADDR __gm__ uint8_t*
#endif

enum class KernelMode { MIX_MODE = 0, AIC_MODE, AIV_MODE };

namespace AscendC {

using ::KernelMode;

// ---- launch state -------------------------------------------------------------------------------
//
// ICPU_RUN_KF forks one process per core instance (as CANN's CPU debug mode does): GM is shared
// memory, everything else (UB, queues, flags, kernel globals) is private to the instance. What the
// instances must share lives in EmuShared, a shared anonymous mapping made per launch.

struct EmuShared {
    std::atomic<uint64_t> gmRead{0};
    std::atomic<uint64_t> gmWritten{0};
    std::atomic<uint64_t> warnings{0};
    std::atomic<int32_t> syncArrived{0};
    std::atomic<int32_t> syncGeneration{0};
    std::atomic<int32_t> finished{0};  // instances whose kernel function returned
    std::atomic<int32_t> atomicLock{0};  // serialises SetAtomicAdd/Max/Min stores across instances
    std::atomic<uint64_t> warned[1024];  // hashes of printed warnings (0 = empty slot)
};

struct EmuLaunch {
    std::string kernel;
    KernelMode mode = KernelMode::MIX_MODE;
    int64_t blockIdx = 0;      // what GetBlockIdx() returns
    int64_t blockNum = 1;      // what GetBlockNum() returns
    int64_t subBlockIdx = 0;
    int64_t taskRatio = 1;
    int32_t instances = 1;     // cores of the launch that run this kernel body
    bool concurrent = true;    // all instances are alive at once (SyncAll works)
    bool aiv = true;           // this instance is a vector core (has a UB)
    bool running = false;
    uint64_t tilingKey = 0;
    uint64_t gmRead = 0;       // this instance's counts, added to EmuShared when it ends
    uint64_t gmWritten = 0;
    EmuShared* shared = nullptr;
};

inline EmuLaunch g_emuLaunch;

inline std::string EmuWhere() {
    if (!g_emuLaunch.running) return "host";
    char buf[96];
    std::snprintf(buf, sizeof(buf), "block %lld/%lld (%s)", (long long)g_emuLaunch.blockIdx,
                  (long long)(g_emuLaunch.blockNum * g_emuLaunch.taskRatio), g_emuLaunch.aiv ? "AIV" : "AIC");
    return buf;
}

inline std::string EmuFormat(const char* fmt, va_list ap) {
    char buf[1024];
    std::vsnprintf(buf, sizeof(buf), fmt, ap);
    return buf;
}

// A broken limit or a misuse: one line on stderr, then the process ends with AUTOFUSE_EMU_EXIT_CODE
// (in a core instance the launcher then stops the other instances and exits with the same code).
[[noreturn]] inline void EmuFail(const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    std::string msg = EmuFormat(fmt, ap);
    va_end(ap);
    std::fflush(stdout);
    std::fprintf(stderr, "autofuse-emulator: error: %s: %s: %s\n", g_emuLaunch.kernel.c_str(), EmuWhere().c_str(),
                 msg.c_str());
    std::fflush(stderr);
    _exit(AUTOFUSE_EMU_EXIT_CODE);
}

// Something the hardware does silently (e.g. DataCopy truncation): each distinct text is printed
// once per launch (by whichever instance meets it first) and every occurrence is counted.
inline void EmuWarn(const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    std::string msg = EmuFormat(fmt, ap);
    va_end(ap);
    EmuShared* sh = g_emuLaunch.shared;
    if (sh) {
        sh->warnings.fetch_add(1);
        uint64_t h = 1469598103934665603ull;  // FNV-1a, never 0
        for (unsigned char c : msg) h = (h ^ c) * 1099511628211ull;
        h |= 1u;
        for (size_t i = 0; i < 1024; ++i) {
            std::atomic<uint64_t>& slot = sh->warned[(h + i) % 1024];
            uint64_t expected = 0;
            if (slot.compare_exchange_strong(expected, h)) break;
            if (expected == h) return;
        }
    }
    std::fprintf(stderr, "autofuse-emulator: warning: %s: %s: %s\n", g_emuLaunch.kernel.c_str(), EmuWhere().c_str(),
                 msg.c_str());
    std::fflush(stderr);
}

// Where an API call is written: a defaulted `EmuSrcLoc loc = EmuSrcLoc()` parameter captures the
// caller's file and line (GCC evaluates __builtin_FILE/LINE in default arguments at the call site).
struct EmuSrcLoc {
    const char* file;
    int line;
    explicit EmuSrcLoc(const char* f = __builtin_FILE(), int l = __builtin_LINE()) : file(f), line(l) {}
};

// The variable a call names, read back from its source line (diagnostics only, so that errors can
// say "queue 'inQueueX'"): for `pipe.InitBuffer(inQueueX, 2, n)` at file:line with
// nameIsFirstArg it returns "'inQueueX' (file:line)"; for `xGm.SetGlobalBuffer(...)` without it,
// "'xGm' (file:line)". Falls back to "file:line" when the source cannot be read.
inline std::string EmuNameAt(EmuSrcLoc loc, const char* call, bool nameIsFirstArg) {
    const char* file = loc.file;
    int line = loc.line;
    static std::map<std::string, std::string> cache;
    std::string key = std::string(file) + ":" + std::to_string(line) + ":" + call;
    auto hit = cache.find(key);
    if (hit != cache.end()) return hit->second;
    std::string name, text;
    if (FILE* in = std::fopen(file, "r")) {  // lines line .. line+2, joined by spaces
        int row = 1;
        for (int c = std::fgetc(in); c != EOF && row < line + 3; c = std::fgetc(in)) {
            if (c == '\n') ++row;
            if (row >= line) text += c == '\n' ? ' ' : static_cast<char>(c);
        }
        std::fclose(in);
    }
    size_t at = text.find(call);
    if (at != std::string::npos) {
        if (nameIsFirstArg) {
            size_t open = text.find('(', at);
            size_t end = open == std::string::npos ? open : text.find_first_of(",)", open);
            if (end != std::string::npos) name = text.substr(open + 1, end - open - 1);
        } else {  // name precedes ".call" or "->call"
            size_t end = at;
            while (end > 0 && (text[end - 1] == '.' || text[end - 1] == '>' || text[end - 1] == '-' ||
                               text[end - 1] == ' '))
                --end;
            size_t begin = end;
            while (begin > 0 && (std::isalnum((unsigned char)text[begin - 1]) || text[begin - 1] == '_' ||
                                 text[begin - 1] == '[' || text[begin - 1] == ']'))
                --begin;
            name = text.substr(begin, end - begin);
        }
    }
    size_t b = name.find_first_not_of(" \t");
    size_t e = name.find_last_not_of(" \t");
    name = b == std::string::npos ? "" : name.substr(b, e - b + 1);
    const char* base = std::strrchr(file, '/');
    std::string where = std::string(base ? base + 1 : file) + ":" + std::to_string(line);
    std::string out = name.empty() ? where : "'" + name + "' (" + where + ")";
    cache[key] = out;
    return out;
}

// ---- global memory: every GmAlloc'd buffer, for bounds checks -----------------------------------

struct EmuGmBlock {
    uintptr_t size;
};

inline std::map<uintptr_t, EmuGmBlock> g_emuGm;  // start address -> block

// The GmAlloc'd block holding `addr`, or nullptr.
inline const std::pair<const uintptr_t, EmuGmBlock>* EmuGmFind(const void* addr) {
    uintptr_t a = reinterpret_cast<uintptr_t>(addr);
    auto it = g_emuGm.upper_bound(a);
    if (it == g_emuGm.begin()) return nullptr;
    --it;
    if (a >= it->first + it->second.size) return nullptr;
    return &*it;
}

}  // namespace AscendC

#endif  // AUTOFUSE_EMU_CORE_H
