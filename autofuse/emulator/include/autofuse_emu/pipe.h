// autofuse CPU emulator: TPipe / TQue / TQueBind / TBuf (UB allocation with the hardware limits),
// synchronisation (checked for pairing, otherwise no-ops: one core runs at a time, in program
// order), the system variables (GetBlockIdx ...), and the kernel-type declaration.
#ifndef AUTOFUSE_EMU_PIPE_H
#define AUTOFUSE_EMU_PIPE_H

#include <deque>

#include "tensor.h"

// Kernel types for KERNEL_TASK_TYPE_DEFAULT (global names, as in CANN).
enum KernelMetaType {
    KERNEL_TYPE_AIV_ONLY = 0, KERNEL_TYPE_AIC_ONLY, KERNEL_TYPE_MIX_AIV_1_0, KERNEL_TYPE_MIX_AIC_1_0,
    KERNEL_TYPE_MIX_AIC_1_1, KERNEL_TYPE_MIX_AIC_1_2, KERNEL_TYPE_AICORE, KERNEL_TYPE_VECTORCORE,
    KERNEL_TYPE_MIX_AICORE, KERNEL_TYPE_MIX_VECTOR_CORE, KERNEL_TYPE_MAX
};

namespace AscendC {

// ---- system variables --------------------------------------------------------------------------

inline int64_t GetBlockIdx() { return g_emuLaunch.blockIdx; }
inline int64_t GetBlockNum() { return g_emuLaunch.blockNum; }
inline int64_t GetSubBlockIdx() { return g_emuLaunch.subBlockIdx; }
inline int64_t GetTaskRatio() { return g_emuLaunch.taskRatio; }

inline bool EmuIsAiv() { return g_emuLaunch.aiv; }

inline const char* EmuModeName(KernelMode m) {
    return m == KernelMode::MIX_MODE ? "MIX_MODE" : m == KernelMode::AIC_MODE ? "AIC_MODE" : "AIV_MODE";
}

// KERNEL_TASK_TYPE_DEFAULT: on the split architecture the declared type must match the mode the
// host launched with (an AIV-only kernel launched as MIX would also start cube cores).
inline void EmuDeclareKernelType(KernelMetaType type) {
#if AUTOFUSE_EMU_SPLIT_ARCH
    KernelMode want = type == KERNEL_TYPE_AIV_ONLY ? KernelMode::AIV_MODE
                      : type == KERNEL_TYPE_AIC_ONLY ? KernelMode::AIC_MODE : KernelMode::MIX_MODE;
    if (type >= KERNEL_TYPE_AICORE)
        EmuFail("KERNEL_TASK_TYPE_DEFAULT(%d) is a 310P kernel type; Atlas A2/A3 kernels use "
                "KERNEL_TYPE_AIV_ONLY, KERNEL_TYPE_AIC_ONLY or KERNEL_TYPE_MIX_*", static_cast<int>(type));
    if (want != g_emuLaunch.mode)
        EmuFail("the kernel declares a kernel type that runs in %s but the host called SetKernelMode(%s)",
                EmuModeName(want), EmuModeName(g_emuLaunch.mode));
#else
    (void)type;
#endif
}

// ---- synchronisation ---------------------------------------------------------------------------

inline const char* EmuEventName(HardEvent e) {
    static const char* names[] = {
        "MTE2_MTE1", "MTE1_MTE2", "MTE1_M", "M_MTE1", "MTE2_V", "V_MTE2", "MTE3_V", "V_MTE3", "M_V", "V_M", "V_V",
        "MTE3_MTE1", "MTE1_MTE3", "MTE1_V", "MTE2_M", "M_MTE2", "V_MTE1", "M_FIX", "FIX_M", "MTE3_MTE2",
        "MTE2_MTE3", "S_V", "V_S", "S_MTE2", "MTE2_S", "S_MTE3", "MTE3_S", "MTE2_FIX", "FIX_MTE2", "FIX_S", "M_S",
        "FIX_MTE3", "MTE1_FIX", "FIX_MTE1", "FIX_FIX"};
    int i = static_cast<int>(e);
    return i < static_cast<int>(HardEvent::MAX) ? names[i] : "?";
}

inline bool& EmuFlag(HardEvent e, int32_t id, const char* api) {
    if (e >= HardEvent::MAX || id < 0 || id > 7)
        EmuFail("%s<HardEvent::%s>(%d): event ids are 0..7", api, EmuEventName(e), id);
    return g_emuCore.flags[static_cast<int>(e)][id];
}

template <HardEvent e>
inline void SetFlag(int32_t eventId) {
    bool& f = EmuFlag(e, eventId, "SetFlag");
    if (f) EmuFail("SetFlag<HardEvent::%s>(%d) twice without a WaitFlag in between", EmuEventName(e), eventId);
    f = true;
}

template <HardEvent e>
inline void WaitFlag(int32_t eventId) {
    bool& f = EmuFlag(e, eventId, "WaitFlag");
    if (!f)
        EmuFail("WaitFlag<HardEvent::%s>(%d) without a matching SetFlag (the core would wait forever)",
                EmuEventName(e), eventId);
    f = false;
}

template <pipe_t pipe>
inline void PipeBarrier() {
    static_assert(pipe != PIPE_S, "PipeBarrier<PIPE_S> is not allowed (Ascend C: the scalar pipe needs no barrier)");
}

// Barrier across every core instance of the launch (all of them run at once, each in its own
// process). A core that returns without reaching the barrier would hang the hardware: reported.
template <bool isAIVOnly = true>
inline void SyncAll() {
    EmuShared* sh = g_emuLaunch.shared;
    int32_t n = g_emuLaunch.instances;
    if (!sh || n <= 1) return;
    if (!g_emuLaunch.concurrent)
        EmuFail("SyncAll in a launch of %d cores: the emulator runs at most %d cores at once", n,
                AUTOFUSE_EMU_MAX_CONCURRENT);
    int32_t gen = sh->syncGeneration.load();
    if (sh->syncArrived.fetch_add(1) + 1 == n) {
        sh->syncArrived.store(0);
        sh->syncGeneration.fetch_add(1);
        return;
    }
    while (sh->syncGeneration.load() == gen) {
        // A finished core is an error only while this barrier is still closed: the last core to
        // arrive releases it and may return before this one sees the release (seq_cst atomics:
        // seeing its `finished` means the release is visible too).
        if (sh->finished.load() > 0 && sh->syncGeneration.load() == gen)
            EmuFail("SyncAll: a core of the launch returned without reaching this SyncAll (the hardware would hang)");
        usleep(50);
    }
}

// Atomic accumulation of DataCopy UB->GM (SetAtomicNone was renamed DisableDmaAtomic after CANN 8.5).
template <typename T>
inline void SetAtomicAdd() { g_emuCore.atomic = 1; }
template <typename T>
inline void SetAtomicMax() { g_emuCore.atomic = 2; }
template <typename T>
inline void SetAtomicMin() { g_emuCore.atomic = 3; }
inline void SetAtomicNone() { g_emuCore.atomic = 0; }
inline void DisableDmaAtomic() { g_emuCore.atomic = 0; }

// ---- queues and buffers -------------------------------------------------------------------------

// What every TQue / TQueBind holds: its InitBuffer allocation and the order of EnQue'd buffers.
struct EmuQueue {
    int first = -1;  // index of buffer 0 in g_emuCore.buffers
    int num = 0;
    int cursor = 0;  // next buffer AllocTensor tries
    std::deque<int> fifo;

    const std::string& Name() const { return g_emuCore.buffers[first].owner; }

    void Check(const char* api) const {
        if (first < 0) EmuFail("%s on a queue that InitBuffer never set up", api);
    }

    int Alloc(int depth) {
        Check("AllocTensor");
        for (int k = 0; k < num; ++k) {
            int b = first + (cursor + k) % num;
            if (g_emuCore.buffers[b].state == EmuBufState::FREE) {
                g_emuCore.buffers[b].state = EmuBufState::ALLOCATED;
                cursor = (cursor + k + 1) % num;
                return b;
            }
        }
        EmuFail("AllocTensor on %s: all %d buffers are in use (every AllocTensor needs a FreeTensor; queue depth %d)",
                Name().c_str(), num, depth);
    }

    template <typename T>
    void Own(const LocalTensor<T>& t, const char* api) const {
        Check(api);
        if (t.emuBuf_ < first || t.emuBuf_ >= first + num)
            EmuFail("%s on %s with %s, which is not one of its buffers", api, Name().c_str(), t.EmuDescribe().c_str());
    }

    template <typename T>
    void Enque(const LocalTensor<T>& t, int depth) {
        Own(t, "EnQue");
        EmuUbBuffer& b = g_emuCore.buffers[t.emuBuf_];
        if (b.state != EmuBufState::ALLOCATED)
            EmuFail("EnQue on %s: buffer %d is %s", Name().c_str(), b.index,
                    b.state == EmuBufState::FREE ? "not allocated" : "already enqueued");
        fifo.push_back(t.emuBuf_);
        b.state = EmuBufState::ENQUEUED;
        if (depth > 0 && static_cast<int>(fifo.size()) > depth)
            EmuFail("EnQue on %s: %d tensors enqueued without a DeQue, more than the queue depth %d",
                    Name().c_str(), static_cast<int>(fifo.size()), depth);
    }

    int Deque() {
        Check("DeQue");
        if (fifo.empty())
            EmuFail("DeQue on %s with nothing enqueued (the core would wait forever)", Name().c_str());
        int b = fifo.front();
        fifo.pop_front();
        g_emuCore.buffers[b].state = EmuBufState::ALLOCATED;
        return b;
    }

    template <typename T>
    void Free(const LocalTensor<T>& t) {
        Own(t, "FreeTensor");
        EmuUbBuffer& b = g_emuCore.buffers[t.emuBuf_];
        if (b.state != EmuBufState::ALLOCATED)
            EmuFail("FreeTensor on %s: buffer %d is %s", Name().c_str(), b.index,
                    b.state == EmuBufState::FREE ? "not allocated (freed twice?)" : "still enqueued (DeQue it first)");
        b.state = EmuBufState::FREE;
    }

    template <typename T>
    static LocalTensor<T> Tensor(int b) {
        const EmuUbBuffer& buf = g_emuCore.buffers[b];
        return LocalTensor<T>(b, buf.start, buf.bytes / static_cast<uint32_t>(sizeof(T)));
    }
};

template <TPosition src, TPosition dst, int32_t depth, auto mask = 0>
class TQueBind {
public:
    TQueBind() = default;

    template <typename T>
    LocalTensor<T> AllocTensor() { return EmuQueue::Tensor<T>(emuQ_.Alloc(depth)); }
    template <typename T>
    void AllocTensor(LocalTensor<T>& tensor) { tensor = AllocTensor<T>(); }
    template <typename T>
    bool EnQue(const LocalTensor<T>& tensor) {
        emuQ_.Enque(tensor, depth);
        return true;
    }
    template <typename T>
    LocalTensor<T> DeQue() { return EmuQueue::Tensor<T>(emuQ_.Deque()); }
    template <typename T>
    void DeQue(LocalTensor<T>& tensor) { tensor = DeQue<T>(); }
    template <typename T>
    void FreeTensor(LocalTensor<T>& tensor) { emuQ_.Free(tensor); }

    bool VacantInQue() { return depth <= 0 || static_cast<int>(emuQ_.fifo.size()) < depth; }
    bool HasTensorInQue() { return !emuQ_.fifo.empty(); }
    int32_t GetTensorCountInQue() { return static_cast<int32_t>(emuQ_.fifo.size()); }
    bool HasIdleBuffer() {
        for (int k = 0; k < emuQ_.num; ++k)
            if (g_emuCore.buffers[emuQ_.first + k].state == EmuBufState::FREE) return true;
        return false;
    }

    // ---- emulator internals ----
    static constexpr TPosition emuPos = src;
    EmuQueue emuQ_;
};

template <TPosition pos, int32_t depth, auto mask = 0>
class TQue : public TQueBind<pos, pos, depth, mask> {
public:
    TQue() = default;
};

template <TPosition pos = TPosition::LCM>
class TBuf {
public:
    TBuf() = default;

    template <typename T>
    LocalTensor<T> Get() {
        EmuCheck("TBuf::Get");
        const EmuUbBuffer& b = g_emuCore.buffers[emuBuf_];
        return LocalTensor<T>(emuBuf_, b.start, b.bytes / static_cast<uint32_t>(sizeof(T)));
    }
    template <typename T>
    LocalTensor<T> Get(uint32_t len) { return GetWithOffset<T>(len, 0); }
    template <typename T>
    LocalTensor<T> GetWithOffset(uint32_t size, uint32_t bufOffset) {
        EmuCheck("TBuf::GetWithOffset");
        const EmuUbBuffer& b = g_emuCore.buffers[emuBuf_];
        if (bufOffset % AUTOFUSE_EMU_UB_ALIGN != 0)
            EmuFail("TBuf::GetWithOffset on %s: offset %u B is not %d-byte aligned", b.owner.c_str(), bufOffset,
                    AUTOFUSE_EMU_UB_ALIGN);
        if (bufOffset + static_cast<uint64_t>(size) * sizeof(T) > b.bytes)
            EmuFail("TBuf::Get on %s: %u %s elements at offset %u B need %llu B but the buffer has %u B",
                    b.owner.c_str(), size, EmuTypeName<T>(), bufOffset,
                    (unsigned long long)(bufOffset + static_cast<uint64_t>(size) * sizeof(T)), b.bytes);
        return LocalTensor<T>(emuBuf_, b.start + bufOffset, size);
    }

    // ---- emulator internals ----
    static constexpr TPosition emuPos = pos;
    int emuBuf_ = -1;

private:
    void EmuCheck(const char* api) const {
        if (emuBuf_ < 0) EmuFail("%s on a TBuf that InitBuffer never set up", api);
    }
};

// ---- TPipe --------------------------------------------------------------------------------------

class TPipe;
inline TPipe* g_emuPipe = nullptr;

class TPipe {
public:
    TPipe() {
        if (g_emuPipe) EmuFail("a second TPipe while one is alive: the emulator models one TPipe per kernel");
        g_emuPipe = this;
    }
    ~TPipe() {
        if (g_emuPipe == this) g_emuPipe = nullptr;
    }
    TPipe(const TPipe&) = delete;
    TPipe& operator=(const TPipe&) = delete;

    void Init() {}

    template <class Q>
    bool InitBuffer(Q& que, uint8_t num, uint32_t len, EmuSrcLoc loc = EmuSrcLoc()) {
        std::string owner = "queue " + EmuNameAt(loc, "InitBuffer", true);
        if (que.emuQ_.first >= 0) EmuFail("InitBuffer of %s: the queue already has buffers", owner.c_str());
        if (num == 0 || len == 0) EmuFail("InitBuffer of %s with %u buffers of %u B", owner.c_str(), num, len);
        constexpr TPosition pos = Q::emuPos;
        int& onPos = g_emuCore.queueBuffers[static_cast<int>(pos)];
        if (onPos + num > AUTOFUSE_EMU_QUE_BUFFERS_PER_POSITION)
            EmuFail("InitBuffer of %s: %d + %u queue buffers on TPosition::%s exceed the limit of %d per position "
                    "(one hardware event id each; use TBuf or single buffering)%s",
                    owner.c_str(), onPos, num, EmuPosName(pos), AUTOFUSE_EMU_QUE_BUFFERS_PER_POSITION,
                    EmuListOn(pos).c_str());
        que.emuQ_.first = EmuAllocate(owner, pos, true, num, len);
        que.emuQ_.num = num;
        onPos += num;
        return true;
    }

    template <TPosition pos>
    bool InitBuffer(TBuf<pos>& buf, uint32_t len, EmuSrcLoc loc = EmuSrcLoc()) {
        std::string owner = "TBuf " + EmuNameAt(loc, "InitBuffer", true);
        if (buf.emuBuf_ >= 0) EmuFail("InitBuffer of %s: the TBuf already has a buffer", owner.c_str());
        if (len == 0) EmuFail("InitBuffer of %s with 0 B", owner.c_str());
        buf.emuBuf_ = EmuAllocate(owner, pos, false, 1, len);
        return true;
    }

    template <HardEvent evt>
    TEventID AllocEventID() {
        for (int id = 0; id < 8; ++id) {
            bool& used = g_emuCore.eventAllocated[static_cast<int>(evt)][id];
            if (!used) {
                used = true;
                return static_cast<TEventID>(id);
            }
        }
        EmuFail("AllocEventID<HardEvent::%s>: all 8 event ids are allocated", EmuEventName(evt));
    }
    template <HardEvent evt>
    void ReleaseEventID(TEventID id) {
        if (id < 0 || id > 7 || !g_emuCore.eventAllocated[static_cast<int>(evt)][id])
            EmuFail("ReleaseEventID<HardEvent::%s>(%d) of an id that AllocEventID did not return", EmuEventName(evt),
                    id);
        g_emuCore.eventAllocated[static_cast<int>(evt)][id] = false;
    }
    template <HardEvent evt>
    TEventID FetchEventID() { return FetchEventID(evt); }
    // An id of `evt` that is not set at the moment (the hardware hands out a free one).
    TEventID FetchEventID(HardEvent evt) {
        for (int id = 0; id < 8; ++id)
            if (!g_emuCore.flags[static_cast<int>(evt)][id]) return static_cast<TEventID>(id);
        EmuFail("FetchEventID(HardEvent::%s): all 8 event ids are set", EmuEventName(evt));
    }

    // Releases every buffer so InitBuffer can run again.
    void Reset() {
        g_emuCore.buffers.clear();
        g_emuCore.ubUsed = 0;
        g_emuCore.totalBuffers = 0;
        for (int& n : g_emuCore.queueBuffers) n = 0;
    }
    void Destroy() { Reset(); }

private:
    // Carves `num` buffers of `len` bytes (rounded up to the UB alignment) from the UB, checking
    // the buffer-count and capacity limits. Returns the index of the first one.
    static int EmuAllocate(const std::string& owner, TPosition pos, bool isQueue, int num, uint32_t len) {
        if (!g_emuLaunch.aiv)
            EmuFail("InitBuffer of %s on the AIC core: only vector cores have a UB", owner.c_str());
        if (pos != TPosition::VECIN && pos != TPosition::VECOUT && pos != TPosition::VECCALC)
            EmuFail("InitBuffer of %s on TPosition::%s: only UB positions (VECIN, VECOUT, VECCALC) are emulated",
                    owner.c_str(), EmuPosName(pos));
        if (g_emuCore.totalBuffers + num > AUTOFUSE_EMU_QUE_BUFFERS_TOTAL)
            EmuFail("InitBuffer of %s: %d + %d buffers exceed the limit of %d buffers per kernel", owner.c_str(),
                    g_emuCore.totalBuffers, num, AUTOFUSE_EMU_QUE_BUFFERS_TOTAL);
        uint32_t aligned = (len + AUTOFUSE_EMU_UB_ALIGN - 1) / AUTOFUSE_EMU_UB_ALIGN * AUTOFUSE_EMU_UB_ALIGN;
        uint64_t need = static_cast<uint64_t>(aligned) * num;
        if (g_emuCore.ubUsed + need > AUTOFUSE_EMU_UB_BYTES)
            EmuFail("InitBuffer of %s: %d x %u B = %llu B does not fit in UB: %u of %d B already taken%s",
                    owner.c_str(), num, aligned, (unsigned long long)need, g_emuCore.ubUsed, AUTOFUSE_EMU_UB_BYTES,
                    EmuListOn(TPosition::MAX).c_str());
        int first = static_cast<int>(g_emuCore.buffers.size());
        for (int k = 0; k < num; ++k) {
            g_emuCore.buffers.push_back(EmuUbBuffer{owner, isQueue ? k : -1, g_emuCore.ubUsed, aligned, pos, isQueue,
                                                    EmuBufState::FREE});
            g_emuCore.ubUsed += aligned;
        }
        g_emuCore.totalBuffers += num;
        return first;
    }

    // " (by: owner N x B, ...)" for the queue buffers on `pos`, or for every buffer with MAX.
    static std::string EmuListOn(TPosition pos) {
        std::map<std::string, std::pair<int, uint32_t>> seen;
        std::vector<std::string> order;
        for (const EmuUbBuffer& b : g_emuCore.buffers) {
            if (pos != TPosition::MAX && (b.pos != pos || !b.isQueue)) continue;
            if (!seen.count(b.owner)) order.push_back(b.owner);
            seen[b.owner].first += 1;
            seen[b.owner].second = b.bytes;
        }
        if (order.empty()) return "";
        std::string s = " (by: ";
        for (size_t i = 0; i < order.size(); ++i) {
            if (i) s += ", ";
            s += order[i] + " " + std::to_string(seen[order[i]].first) + " x " +
                 std::to_string(seen[order[i]].second) + " B";
        }
        return s + ")";
    }
};

inline TPipe* GetTPipePtr() { return g_emuPipe; }

// The system workspace: the emulated Matmul needs none, so the emulator's is whatever the kernel
// gave SetSysWorkspace (or a small emulator-owned block), and the user workspace is the whole
// workspace argument.
inline void SetSysWorkspace(GM_ADDR workspace) { g_emuCore.sysWorkspace = workspace; }
inline GM_ADDR GetSysWorkSpacePtr() {
    static uint8_t dummy[64];
    return g_emuCore.sysWorkspace ? g_emuCore.sysWorkspace : dummy;
}
inline GM_ADDR GetUserWorkspace(GM_ADDR workspace) { return workspace; }

}  // namespace AscendC

#endif  // AUTOFUSE_EMU_PIPE_H
