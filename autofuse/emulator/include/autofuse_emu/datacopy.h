// autofuse CPU emulator: DataCopy (contiguous and DataCopyParams strided forms, GM<->UB and UB->UB)
// and DataCopyPad (A2/A3 only). Every GM byte moved is counted for the launch.
#ifndef AUTOFUSE_EMU_DATACOPY_H
#define AUTOFUSE_EMU_DATACOPY_H

#include <sched.h>

#include "pipe.h"

namespace AscendC {

// blockLen and both strides (gap from the end of one block to the start of the next) in 32-byte units.
struct DataCopyParams {
    uint16_t blockCount = 1;
    uint16_t blockLen = 0;
    uint16_t srcStride = 0;
    uint16_t dstStride = 0;
    DataCopyParams() = default;
    DataCopyParams(uint16_t count, uint16_t len, uint16_t srcStrideIn, uint16_t dstStrideIn)
        : blockCount(count), blockLen(len), srcStride(srcStrideIn), dstStride(dstStrideIn) {}
};

// blockLen in bytes; the GM-side stride in bytes, the UB-side stride in 32-byte blocks.
struct DataCopyExtParams {
    uint16_t blockCount = 1;
    uint32_t blockLen = 0;
    uint32_t srcStride = 0;
    uint32_t dstStride = 0;
    uint32_t rsv = 0;
    DataCopyExtParams() = default;
    DataCopyExtParams(uint16_t count, uint32_t len, uint32_t srcStrideIn, uint32_t dstStrideIn, uint32_t rsvIn = 0)
        : blockCount(count), blockLen(len), srcStride(srcStrideIn), dstStride(dstStrideIn), rsv(rsvIn) {}
};

template <typename T>
struct DataCopyPadExtParams {
    bool isPad = false;
    uint8_t leftPadding = 0;
    uint8_t rightPadding = 0;
    T paddingValue = 0;
    DataCopyPadExtParams() = default;
    DataCopyPadExtParams(bool isPadIn, uint8_t left, uint8_t right, T value)
        : isPad(isPadIn), leftPadding(left), rightPadding(right), paddingValue(value) {}
};

// Legacy pad parameters (paddingValue carries the bits of a T).
struct DataCopyPadParams {
    bool isPad = false;
    uint8_t leftPadding = 0;
    uint8_t rightPadding = 0;
    uint64_t paddingValue = 0;
    DataCopyPadParams() = default;
    DataCopyPadParams(bool isPadIn, uint8_t left, uint8_t right, uint64_t value)
        : isPad(isPadIn), leftPadding(left), rightPadding(right), paddingValue(value) {}
};

// The hardware moves whole 32-byte blocks: a length that is not a multiple is rounded down.
template <typename T>
inline uint64_t EmuCopyBytes(const char* dir, uint64_t count) {
    uint64_t bytes = count * sizeof(T);
    if (bytes % 32 != 0) {
        uint64_t moved = bytes / 32 * 32;
        EmuWarn("DataCopy %s of %llu %s elements = %llu B is not a multiple of 32 B; the hardware moves only "
                "%llu B (%llu elements). Use DataCopyPad or pad the length", dir, (unsigned long long)count,
                EmuTypeName<T>(), (unsigned long long)bytes, (unsigned long long)moved,
                (unsigned long long)(moved / sizeof(T)));
        return moved;
    }
    return bytes;
}

// Writes `bytes` from `src` to GM at `dst`, honouring SetAtomicAdd/Max/Min: the read-modify-write
// holds a lock shared by every core instance of the launch, so concurrent accumulation is exact.
template <typename T>
inline void EmuGmStore(uint8_t* dst, const uint8_t* src, uint64_t bytes) {
    g_emuLaunch.gmWritten += bytes;
    if (g_emuCore.atomic == 0) {
        std::memmove(dst, src, bytes);
        return;
    }
    std::atomic<int32_t>* lock = g_emuLaunch.shared ? &g_emuLaunch.shared->atomicLock : nullptr;
    for (int32_t free = 0; lock && !lock->compare_exchange_weak(free, 1); free = 0) sched_yield();
    for (uint64_t i = 0; i < bytes / sizeof(T); ++i) {
        T a, b;
        std::memcpy(&a, dst + i * sizeof(T), sizeof(T));
        std::memcpy(&b, src + i * sizeof(T), sizeof(T));
        auto x = EmuWiden(a), y = EmuWiden(b);
        auto r = g_emuCore.atomic == 1 ? x + y : g_emuCore.atomic == 2 ? (x > y ? x : y) : (x < y ? x : y);
        T out = EmuNarrow<T>(r);
        std::memcpy(dst + i * sizeof(T), &out, sizeof(T));
    }
    if (lock) lock->store(0);
}

// ---- DataCopy, contiguous ----------------------------------------------------------------------

template <typename T>
inline void DataCopy(const LocalTensor<T>& dst, const GlobalTensor<T>& src, const uint32_t count) {
    uint64_t bytes = EmuCopyBytes<T>("GM->UB", count);
    uint8_t* d = reinterpret_cast<uint8_t*>(EmuOperand("DataCopy GM->UB", "dst", dst, bytes / sizeof(T)));
    std::memcpy(d, src.EmuCheck("DataCopy GM->UB", 0, bytes / sizeof(T)), bytes);
    g_emuLaunch.gmRead += bytes;
}

template <typename T>
inline void DataCopy(const GlobalTensor<T>& dst, const LocalTensor<T>& src, const uint32_t count) {
    uint64_t bytes = EmuCopyBytes<T>("UB->GM", count);
    const uint8_t* s = reinterpret_cast<const uint8_t*>(EmuOperand("DataCopy UB->GM", "src", src, bytes / sizeof(T)));
    EmuGmStore<T>(dst.EmuCheck("DataCopy UB->GM", 0, bytes / sizeof(T)), s, bytes);
}

template <typename T>
inline void DataCopy(const LocalTensor<T>& dst, const LocalTensor<T>& src, const uint32_t count) {
    uint64_t bytes = EmuCopyBytes<T>("UB->UB", count);
    T* d = EmuOperand("DataCopy UB->UB", "dst", dst, bytes / sizeof(T));
    const T* s = EmuOperand("DataCopy UB->UB", "src", src, bytes / sizeof(T));
    std::memmove(d, s, bytes);
}

// ---- DataCopy, strided (DataCopyParams: every length in 32-byte blocks) ------------------------

// Byte offsets of block i on the source and destination side, and the bytes each block moves.
struct EmuBlocks {
    uint64_t len, srcPitch, dstPitch, count;
    uint64_t SrcEnd() const { return count ? (count - 1) * srcPitch + len : 0; }
    uint64_t DstEnd() const { return count ? (count - 1) * dstPitch + len : 0; }
};

inline EmuBlocks EmuBlocksOf(const DataCopyParams& p) {
    uint64_t len = uint64_t(p.blockLen) * 32;
    return EmuBlocks{len, len + uint64_t(p.srcStride) * 32, len + uint64_t(p.dstStride) * 32, p.blockCount};
}

template <typename T>
inline void DataCopy(const LocalTensor<T>& dst, const GlobalTensor<T>& src, const DataCopyParams& params) {
    EmuBlocks b = EmuBlocksOf(params);
    uint8_t* d = reinterpret_cast<uint8_t*>(EmuOperand("DataCopy GM->UB", "dst", dst, b.DstEnd() / sizeof(T)));
    const uint8_t* s = src.EmuCheck("DataCopy GM->UB", 0, b.SrcEnd() / sizeof(T));
    for (uint64_t i = 0; i < b.count; ++i) std::memcpy(d + i * b.dstPitch, s + i * b.srcPitch, b.len);
    g_emuLaunch.gmRead += b.count * b.len;
}

template <typename T>
inline void DataCopy(const GlobalTensor<T>& dst, const LocalTensor<T>& src, const DataCopyParams& params) {
    EmuBlocks b = EmuBlocksOf(params);
    const uint8_t* s = reinterpret_cast<const uint8_t*>(EmuOperand("DataCopy UB->GM", "src", src, b.SrcEnd() / sizeof(T)));
    uint8_t* d = dst.EmuCheck("DataCopy UB->GM", 0, b.DstEnd() / sizeof(T));
    for (uint64_t i = 0; i < b.count; ++i) EmuGmStore<T>(d + i * b.dstPitch, s + i * b.srcPitch, b.len);
}

template <typename T>
inline void DataCopy(const LocalTensor<T>& dst, const LocalTensor<T>& src, const DataCopyParams& params) {
    EmuBlocks b = EmuBlocksOf(params);
    uint8_t* d = reinterpret_cast<uint8_t*>(EmuOperand("DataCopy UB->UB", "dst", dst, b.DstEnd() / sizeof(T)));
    const uint8_t* s = reinterpret_cast<const uint8_t*>(EmuOperand("DataCopy UB->UB", "src", src, b.SrcEnd() / sizeof(T)));
    for (uint64_t i = 0; i < b.count; ++i) std::memmove(d + i * b.dstPitch, s + i * b.srcPitch, b.len);
}

// ---- DataCopyPad (not on 310P) -----------------------------------------------------------------

template <typename T>
inline void EmuPadChecks(const char* api, const DataCopyExtParams& p, uint32_t left, uint32_t right) {
    static_assert(__NPU_ARCH__ != 2002 || sizeof(T) == 0,
                  "DataCopyPad does not exist on Atlas 300I / 310P (__NPU_ARCH__ 2002): use DataCopy with "
                  "32-byte multiples");
    if (p.blockCount > 4095) EmuFail("%s: blockCount %u exceeds 4095", api, p.blockCount);
    if (p.blockLen > 2097151) EmuFail("%s: blockLen %u B exceeds 2097151 B", api, p.blockLen);
    if (p.blockLen % sizeof(T) != 0)
        EmuFail("%s: blockLen %u B is not a multiple of sizeof(%s)", api, p.blockLen, EmuTypeName<T>());
    if (left * sizeof(T) > 32 || right * sizeof(T) > 32)
        EmuFail("%s: padding of %u + %u %s elements; each side must be at most 32 B", api, left, right,
                EmuTypeName<T>());
}

// GM -> UB: each block of blockLen bytes lands at the start of a 32-byte-aligned slot in UB, after
// leftPadding elements; the slot is filled up to its 32-byte end.
template <typename T>
inline void EmuPadIn(const LocalTensor<T>& dst, const GlobalTensor<T>& src, const DataCopyExtParams& p, bool isPad,
                     uint32_t left, uint32_t right, T padValue) {
    const char* api = "DataCopyPad GM->UB";
    EmuPadChecks<T>(api, p, left, right);
    if (p.blockCount == 0 || p.blockLen == 0) return;
    uint64_t slot = (left * sizeof(T) + p.blockLen + right * sizeof(T) + 31) / 32 * 32;
    uint64_t dstPitch = slot + uint64_t(p.dstStride) * 32, srcPitch = p.blockLen + uint64_t(p.srcStride);
    uint64_t dstEnd = (p.blockCount - 1) * dstPitch + slot;
    uint8_t* d = reinterpret_cast<uint8_t*>(EmuOperand(api, "dst", dst, dstEnd / sizeof(T)));
    const uint8_t* s = src.EmuCheck(api, 0, ((p.blockCount - 1) * srcPitch + p.blockLen) / sizeof(T));
    for (uint64_t i = 0; i < p.blockCount; ++i) {
        uint8_t* row = d + i * dstPitch;
        std::memcpy(row + left * sizeof(T), s + i * srcPitch, p.blockLen);
        uint64_t elems = slot / sizeof(T), dataEnd = left + p.blockLen / sizeof(T);
        T first;
        std::memcpy(&first, row + left * sizeof(T), sizeof(T));
        for (uint64_t e = 0; e < elems; ++e) {
            if (e >= left && e < dataEnd) continue;
            bool inPad = e < left || e < dataEnd + right;
            if (isPad && inPad) {
                std::memcpy(row + e * sizeof(T), &padValue, sizeof(T));
            } else if (!isPad && left == 0 && right == 0) {
                std::memcpy(row + e * sizeof(T), &first, sizeof(T));  // documented "dummy" filler
            } else {
                std::memset(row + e * sizeof(T), 0xFF, sizeof(T));  // undefined on hardware
            }
        }
    }
    g_emuLaunch.gmRead += uint64_t(p.blockCount) * p.blockLen;
}

template <typename T>
inline void DataCopyPad(const LocalTensor<T>& dst, const GlobalTensor<T>& src, const DataCopyExtParams& params,
                        const DataCopyPadExtParams<T>& padParams) {
    EmuPadIn(dst, src, params, padParams.isPad, padParams.leftPadding, padParams.rightPadding, padParams.paddingValue);
}

// UB -> GM: block i is read from a 32-byte-aligned UB slot and written as blockLen bytes.
template <typename T>
inline void DataCopyPad(const GlobalTensor<T>& dst, const LocalTensor<T>& src, const DataCopyExtParams& p) {
    const char* api = "DataCopyPad UB->GM";
    EmuPadChecks<T>(api, p, 0, 0);
    if (p.blockCount == 0 || p.blockLen == 0) return;
    uint64_t slot = (uint64_t(p.blockLen) + 31) / 32 * 32;
    uint64_t srcPitch = slot + uint64_t(p.srcStride) * 32, dstPitch = p.blockLen + uint64_t(p.dstStride);
    const uint8_t* s = reinterpret_cast<const uint8_t*>(
        EmuOperand(api, "src", src, ((p.blockCount - 1) * srcPitch + p.blockLen) / sizeof(T)));
    uint8_t* d = dst.EmuCheck(api, 0, ((p.blockCount - 1) * dstPitch + p.blockLen) / sizeof(T));
    for (uint64_t i = 0; i < p.blockCount; ++i) EmuGmStore<T>(d + i * dstPitch, s + i * srcPitch, p.blockLen);
}

// Legacy overloads: DataCopyParams with blockLen in bytes (as DataCopyExtParams).
template <typename T>
inline void DataCopyPad(const LocalTensor<T>& dst, const GlobalTensor<T>& src, const DataCopyParams& params,
                        const DataCopyPadParams& padParams) {
    T value;
    std::memcpy(&value, &padParams.paddingValue, sizeof(T));
    DataCopyExtParams ext(params.blockCount, params.blockLen, params.srcStride, params.dstStride, 0);
    EmuPadIn(dst, src, ext, padParams.isPad, padParams.leftPadding, padParams.rightPadding, value);
}

template <typename T>
inline void DataCopyPad(const GlobalTensor<T>& dst, const LocalTensor<T>& src, const DataCopyParams& params) {
    DataCopyPad(dst, src, DataCopyExtParams(params.blockCount, params.blockLen, params.srcStride, params.dstStride, 0));
}

}  // namespace AscendC

#endif  // AUTOFUSE_EMU_DATACOPY_H
