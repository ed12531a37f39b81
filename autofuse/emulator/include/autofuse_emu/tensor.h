// autofuse CPU emulator: the per-core Unified Buffer, LocalTensor and GlobalTensor.
//
// A LocalTensor is a view (byte offset + element count) into the current core's UB arena and
// remembers which InitBuffer allocation it came from, so that every access can be bounds-checked
// and every error can name the queue or TBuf. A GlobalTensor remembers the GmAlloc'd block its
// address lies in and the extent given to SetGlobalBuffer; every GM access is checked against both.
#ifndef AUTOFUSE_EMU_TENSOR_H
#define AUTOFUSE_EMU_TENSOR_H

#include "types.h"

namespace AscendC {

// ---- one core's Unified Buffer -------------------------------------------------------------------

enum class EmuBufState : uint8_t { FREE = 0, ALLOCATED, ENQUEUED };

struct EmuUbBuffer {
    std::string owner;  // "queue 'inQueueX' (kernel.cpp:40)" or "TBuf 'tmp' (kernel.cpp:41)"
    int index;          // buffer number within its queue; -1 for a TBuf
    uint32_t start;     // byte offset in UB
    uint32_t bytes;
    TPosition pos;
    bool isQueue;
    EmuBufState state;
};

struct EmuCore {
    std::vector<uint8_t> ub;
    std::vector<EmuUbBuffer> buffers;
    uint32_t ubUsed = 0;
    int queueBuffers[static_cast<int>(TPosition::MAX) + 1] = {};
    int totalBuffers = 0;
    const void* pipe = nullptr;  // the live TPipe
    bool flags[static_cast<int>(HardEvent::MAX)][8] = {};
    bool eventAllocated[static_cast<int>(HardEvent::MAX)][8] = {};
    uint64_t maskHigh = ~0ull, maskLow = ~0ull;
    bool maskCounter = false;
    int atomic = 0;  // 0 none, 1 add, 2 max, 3 min
    GM_ADDR sysWorkspace = nullptr;
};

inline EmuCore g_emuCore;

// Fresh core: UB filled with 0xFF bytes (NaN for half/float) so reading what no instruction wrote
// shows up in the results instead of passing silently.
inline void EmuResetCore() {
    g_emuCore = EmuCore();
    g_emuCore.ub.assign(AUTOFUSE_EMU_UB_BYTES, 0xFF);
}

inline const char* EmuPosName(TPosition pos) {
    switch (pos) {
        case TPosition::GM: return "GM";
        case TPosition::VECIN: return "VECIN";
        case TPosition::VECOUT: return "VECOUT";
        case TPosition::VECCALC: return "VECCALC";
        case TPosition::A1: return "A1";
        case TPosition::B1: return "B1";
        case TPosition::A2: return "A2";
        case TPosition::B2: return "B2";
        case TPosition::C1: return "C1";
        case TPosition::C2: return "C2";
        case TPosition::CO1: return "CO1";
        case TPosition::CO2: return "CO2";
        default: return "other";
    }
}

// ---- LocalTensor --------------------------------------------------------------------------------

template <typename T>
class LocalTensor {
public:
    using PrimType = T;

    LocalTensor() = default;
    LocalTensor(int buf, uint32_t offset, uint32_t size) : emuBuf_(buf), emuOffset_(offset), emuSize_(size) {}

    T GetValue(uint32_t index) const {
        T v;
        std::memcpy(&v, EmuAt(index, "GetValue"), sizeof(T));
        return v;
    }
    void SetValue(uint32_t index, T value) const { std::memcpy(EmuAt(index, "SetValue"), &value, sizeof(T)); }

    LocalTensor operator[](uint32_t offset) const {
        EmuValid("operator[]");
        if (offset > emuSize_)
            EmuFail("LocalTensor operator[](%u) is past the end of %s (%u %s elements)", offset, EmuDescribe().c_str(),
                    emuSize_, EmuTypeName<T>());
        return LocalTensor(emuBuf_, emuOffset_ + offset * static_cast<uint32_t>(sizeof(T)), emuSize_ - offset);
    }

    uint32_t GetSize() const { return emuSize_; }
    uint32_t GetLength() const { return emuSize_ * static_cast<uint32_t>(sizeof(T)); }
    void SetSize(uint32_t size) {
        EmuValid("SetSize");
        const EmuUbBuffer& b = g_emuCore.buffers[emuBuf_];
        if (emuOffset_ + static_cast<uint64_t>(size) * sizeof(T) > b.start + b.bytes)
            EmuFail("LocalTensor SetSize(%u) would reach past the end of %s", size, EmuDescribe().c_str());
        emuSize_ = size;
    }

    template <typename U>
    LocalTensor<U> ReinterpretCast() const {
        return LocalTensor<U>(emuBuf_, emuOffset_, static_cast<uint32_t>(uint64_t(emuSize_) * sizeof(T) / sizeof(U)));
    }

    // The UB byte address (CANN returns a __ubuf__ pointer; only its value is meaningful here).
    uint64_t GetPhyAddr() const { return emuOffset_; }
    TPosition GetPosition() const { return emuBuf_ < 0 ? TPosition::MAX : g_emuCore.buffers[emuBuf_].pos; }

    // ---- emulator internals (not Ascend C API) ----
    int emuBuf_ = -1;           // index into g_emuCore.buffers
    uint32_t emuOffset_ = 0;    // byte offset in UB
    uint32_t emuSize_ = 0;      // elements from emuOffset_ to the end of the view

    T* EmuData() const { return reinterpret_cast<T*>(g_emuCore.ub.data() + emuOffset_); }

    std::string EmuDescribe() const {
        if (emuBuf_ < 0) return "an empty LocalTensor";
        const EmuUbBuffer& b = g_emuCore.buffers[emuBuf_];
        std::string s = b.owner;
        if (b.index >= 0) s += " buffer " + std::to_string(b.index);
        if (emuOffset_ != b.start) s += " + " + std::to_string(emuOffset_ - b.start) + " B";
        return s;
    }

    void EmuValid(const char* api) const {
        if (emuBuf_ < 0) EmuFail("%s on an empty LocalTensor (not from AllocTensor, DeQue or TBuf::Get)", api);
        const EmuUbBuffer& b = g_emuCore.buffers[emuBuf_];
        if (b.isQueue && b.state == EmuBufState::FREE)
            EmuFail("%s uses %s after FreeTensor", api, EmuDescribe().c_str());
    }

private:
    uint8_t* EmuAt(uint32_t index, const char* api) const {
        EmuValid(api);
        if (index >= emuSize_)
            EmuFail("LocalTensor %s(%u) is past the end of %s (%u %s elements)", api, index, EmuDescribe().c_str(),
                    emuSize_, EmuTypeName<T>());
        return g_emuCore.ub.data() + emuOffset_ + static_cast<size_t>(index) * sizeof(T);
    }
};

// Checks a vector-instruction operand and returns its data: the tensor is live, on a vector core,
// `align`-byte aligned in UB (32 B for almost every operand), and holds at least `elems` elements.
template <typename T>
inline T* EmuOperand(const char* api, const char* role, const LocalTensor<T>& t, uint64_t elems,
                     uint32_t align = AUTOFUSE_EMU_UB_ALIGN) {
    if (!g_emuLaunch.aiv) EmuFail("%s runs on the AIC core, which has no vector unit and no UB", api);
    char what[64];
    std::snprintf(what, sizeof(what), "%s %s", api, role);
    t.EmuValid(what);
    if (t.emuOffset_ % align != 0)
        EmuFail("%s: %s (%s) starts at UB byte %u, not %u-byte aligned", api, role, t.EmuDescribe().c_str(),
                t.emuOffset_, align);
    if (elems > t.emuSize_)
        EmuFail("%s: %s needs %llu %s elements but %s holds %u", api, role, (unsigned long long)elems,
                EmuTypeName<T>(), t.EmuDescribe().c_str(), t.emuSize_);
    return t.EmuData();
}

// ---- GlobalTensor -------------------------------------------------------------------------------

template <typename T>
class GlobalTensor {
public:
    using PrimType = T;

    GlobalTensor() = default;

    void SetGlobalBuffer(__gm__ T* buffer, uint64_t bufferSize, EmuSrcLoc loc = EmuSrcLoc()) {
        EmuBind(buffer, bufferSize, true, loc);
    }
    void SetGlobalBuffer(__gm__ T* buffer, EmuSrcLoc loc = EmuSrcLoc()) { EmuBind(buffer, 0, false, loc); }

    T GetValue(uint64_t offset) const {
        T v;
        std::memcpy(&v, EmuCheck("GetValue", offset, 1), sizeof(T));
        g_emuLaunch.gmRead += sizeof(T);
        return v;
    }
    void SetValue(uint64_t offset, T value) {  // not const, as in CANN (LocalTensor's is const)
        std::memcpy(EmuCheck("SetValue", offset, 1), &value, sizeof(T));
        g_emuLaunch.gmWritten += sizeof(T);
    }

    GlobalTensor operator[](uint64_t offset) const {
        GlobalTensor out = *this;
        out.emuAddr_ = emuAddr_ + offset;
        return out;
    }

    // Elements from this address to the end of the SetGlobalBuffer extent (0 when none was given).
    uint64_t GetSize() const {
        if (!emuSized_) return 0;
        int64_t left = static_cast<int64_t>(emuBase_ + emuSize_ - emuAddr_);
        return left > 0 ? static_cast<uint64_t>(left) : 0;
    }

    __gm__ T* GetPhyAddr() const { return emuAddr_; }
    __gm__ T* GetPhyAddr(uint64_t offset) const { return emuAddr_ + offset; }

    template <typename U>
    GlobalTensor<U> ReinterpretCast() const {
        GlobalTensor<U> out;
        out.emuAddr_ = reinterpret_cast<U*>(emuAddr_);
        out.emuBase_ = reinterpret_cast<U*>(emuBase_);
        out.emuSize_ = emuSize_ * sizeof(T) / sizeof(U);
        out.emuSized_ = emuSized_;
        out.emuLo_ = emuLo_;
        out.emuHi_ = emuHi_;
        out.emuName_ = emuName_;
        return out;
    }

    void SetL2CacheHint(CacheMode) {}

    // ---- emulator internals (not Ascend C API) ----
    T* emuAddr_ = nullptr;
    T* emuBase_ = nullptr;     // address given to SetGlobalBuffer
    uint64_t emuSize_ = 0;     // elements given to SetGlobalBuffer
    bool emuSized_ = false;
    uintptr_t emuLo_ = 0, emuHi_ = 0;  // the GmAlloc'd block
    std::string emuName_;

    void EmuBind(T* buffer, uint64_t size, bool sized, EmuSrcLoc loc) {
        emuName_ = EmuNameAt(loc, "SetGlobalBuffer", false);
        // One past the end is a legal (empty) start, e.g. the last core of an uneven split.
        const auto* blk = EmuGmFind(buffer);
        if (!blk && buffer) blk = EmuGmFind(reinterpret_cast<uint8_t*>(buffer) - 1);
        if (!blk)
            EmuFail("SetGlobalBuffer of %s: address %p is not inside any GmAlloc'd buffer", emuName_.c_str(),
                    static_cast<void*>(buffer));
        emuLo_ = blk->first;
        emuHi_ = blk->first + blk->second.size;
        emuAddr_ = emuBase_ = buffer;
        emuSize_ = size;
        emuSized_ = sized;
        uintptr_t end = reinterpret_cast<uintptr_t>(buffer) + size * sizeof(T);
        if (sized && end > emuHi_)
            EmuFail("SetGlobalBuffer of %s: %llu %s elements reach %llu B past the end of its GmAlloc'd buffer "
                    "(%llu B)", emuName_.c_str(), (unsigned long long)size, EmuTypeName<T>(),
                    (unsigned long long)(end - emuHi_), (unsigned long long)(emuHi_ - emuLo_));
    }

    // Checks that elements [offset, offset + count) from this address are inside the GmAlloc'd
    // block and inside the SetGlobalBuffer extent; returns their address.
    uint8_t* EmuCheck(const char* api, uint64_t offset, uint64_t count) const {
        if (!emuAddr_ && !emuLo_) EmuFail("%s on a GlobalTensor that SetGlobalBuffer never bound", api);
        uintptr_t lo = reinterpret_cast<uintptr_t>(emuAddr_ + offset);
        uintptr_t hi = lo + count * sizeof(T);
        if (lo < emuLo_ || hi > emuHi_)
            EmuFail("%s on %s touches GM bytes [%lld, %lld) of a GmAlloc'd buffer of %llu B", api, emuName_.c_str(),
                    (long long)(lo - emuLo_), (long long)(hi - emuLo_), (unsigned long long)(emuHi_ - emuLo_));
        uintptr_t base = reinterpret_cast<uintptr_t>(emuBase_);
        if (emuSized_ && (lo < base || hi > base + emuSize_ * sizeof(T)))
            EmuFail("%s on %s touches elements [%lld, %lld) outside the %llu elements given to SetGlobalBuffer",
                    api, emuName_.c_str(), (long long)(lo - base) / (long long)sizeof(T),
                    (long long)(hi - base) / (long long)sizeof(T), (unsigned long long)emuSize_);
        return reinterpret_cast<uint8_t*>(lo);
    }
};

}  // namespace AscendC

#endif  // AUTOFUSE_EMU_TENSOR_H
