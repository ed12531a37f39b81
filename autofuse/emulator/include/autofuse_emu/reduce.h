// autofuse CPU emulator: reductions. ReduceSum/Max/Min (count form, with sharedTmpBuffer) and
// WholeReduceSum/Max/Min (one result per 256-byte repeat). Sums follow the documented order: a
// binary tree of pairwise additions inside each repeat (each addition rounded to T; half saturates
// at 65504), and for the count form the repeat results added one after another.
#ifndef AUTOFUSE_EMU_REDUCE_H
#define AUTOFUSE_EMU_REDUCE_H

#include "vector.h"

namespace AscendC {

template <typename T>
inline double EmuRoundSum(double v) {
    if constexpr (std::is_same_v<T, half>) {
        if (v > 65504.0) v = 65504.0;
        if (v < -65504.0) v = -65504.0;
    }
    return static_cast<double>(EmuWiden(EmuNarrow<T>(v)));
}

// Pairwise-tree sum of one repeat's lanes (disabled lanes hold 0).
template <typename T>
inline double EmuTreeSum(std::vector<double> lanes) {
    for (size_t n = lanes.size(); n > 1; n /= 2)
        for (size_t i = 0; i < n / 2; ++i) lanes[i] = EmuRoundSum<T>(lanes[2 * i] + lanes[2 * i + 1]);
    return lanes.empty() ? 0.0 : lanes[0];
}

template <typename T>
inline void EmuReduceChecks(const char* api, const LocalTensor<T>& tmp, int32_t count) {
    static_assert(EmuOneOf<T, half, float>, "ReduceSum/ReduceMax/ReduceMin: T must be half or float");
    EmuCountCheck(api, count);
    // Documented minimum: one element per repeat of the first pass, rounded up to a 32-byte block.
    constexpr int32_t perRepeat = AUTOFUSE_EMU_REPEAT_BYTES / sizeof(T), perBlock = 32 / sizeof(T);
    int32_t firstRepeats = count < perRepeat ? 1 : (count + perRepeat - 1) / perRepeat;
    int32_t need = (firstRepeats + perBlock - 1) / perBlock * perBlock;
    EmuOperand(api, "sharedTmpBuffer", tmp, need);
}

template <typename T, bool isSetMask = true>
inline void ReduceSum(const LocalTensor<T>& dst, const LocalTensor<T>& src, const LocalTensor<T>& sharedTmpBuffer,
                      const int32_t count) {
    EmuReduceChecks("ReduceSum", sharedTmpBuffer, count);
    const T* s = EmuOperand("ReduceSum", "src", src, count);
    T* d = EmuOperand("ReduceSum", "dst", dst, 1, sizeof(T));
    constexpr int32_t perRepeat = AUTOFUSE_EMU_REPEAT_BYTES / sizeof(T);
    double acc = 0;
    for (int32_t r = 0; r * perRepeat < count; ++r) {
        std::vector<double> lanes(perRepeat, 0.0);
        for (int32_t i = 0; i < perRepeat && r * perRepeat + i < count; ++i) lanes[i] = EmuWiden(s[r * perRepeat + i]);
        double part = EmuTreeSum<T>(lanes);
        acc = r == 0 ? part : EmuRoundSum<T>(acc + part);
    }
    d[0] = EmuNarrow<T>(acc);
}

// dst[0] = the extreme value; with calIndex, dst[1] holds its index (the bits of an unsigned
// integer of T's size).
template <typename T>
inline void EmuReduceExtreme(const char* api, const LocalTensor<T>& dst, const LocalTensor<T>& src,
                             const LocalTensor<T>& tmp, int32_t count, bool calIndex, bool wantMax) {
    EmuReduceChecks(api, tmp, count);
    if (count == 0) return;
    const T* s = EmuOperand(api, "src", src, count);
    T* d = EmuOperand(api, "dst", dst, calIndex ? 2 : 1, sizeof(T));
    int32_t best = 0;
    for (int32_t i = 1; i < count; ++i) {
        double v = EmuWiden(s[i]), b = EmuWiden(s[best]);
        if (wantMax ? v > b : v < b) best = i;
    }
    d[0] = s[best];
    if (calIndex) {
        using Index = std::conditional_t<sizeof(T) == 2, uint16_t, uint32_t>;
        Index idx = static_cast<Index>(best);
        std::memcpy(&d[1], &idx, sizeof(T));
    }
}

template <typename T>
inline void ReduceMax(const LocalTensor<T>& dst, const LocalTensor<T>& src, const LocalTensor<T>& sharedTmpBuffer,
                      const int32_t count, bool calIndex = 0) {
    EmuReduceExtreme("ReduceMax", dst, src, sharedTmpBuffer, count, calIndex, true);
}

template <typename T>
inline void ReduceMin(const LocalTensor<T>& dst, const LocalTensor<T>& src, const LocalTensor<T>& sharedTmpBuffer,
                      const int32_t count, bool calIndex = 0) {
    EmuReduceExtreme("ReduceMin", dst, src, sharedTmpBuffer, count, calIndex, false);
}

// ---- WholeReduce: one result per repeat ---------------------------------------------------------

// The values of repeat r's enabled lanes (disabled lanes: absent for max/min, 0 for the sum tree)
// and each lane's element offset.
template <typename T>
inline void EmuWholeReduce(const char* api, const LocalTensor<T>& dst, const LocalTensor<T>& src,
                           const std::vector<bool>& on, int32_t repeatTime, int32_t dstRepStride,
                           int32_t srcBlkStride, int32_t srcRepStride, int kind /*0 sum, 1 max, 2 min*/,
                           ReduceOrder order) {
    static_assert(EmuOneOf<T, half, float>, "WholeReduceSum/Max/Min: T must be half or float");
    if (repeatTime < 0 || repeatTime > MAX_REPEAT_TIMES)
        EmuFail("%s: repeatTime %d out of range [0, %d]", api, repeatTime, MAX_REPEAT_TIMES);
    if (repeatTime == 0) return;
    constexpr int lanes = AUTOFUSE_EMU_REPEAT_BYTES / sizeof(T);
    using Index = std::conditional_t<sizeof(T) == 2, uint16_t, uint32_t>;
    // Results per repeat and the unit of dstRepStride, in T elements.
    int width = kind == 0 || order == ReduceOrder::ORDER_ONLY_VALUE ? 1
                : order == ReduceOrder::ORDER_ONLY_INDEX ? static_cast<int>(sizeof(uint32_t) / sizeof(T)) : 2;
    uint64_t srcMax = 0;
    for (int32_t r = 0; r < repeatTime; ++r)
        for (int lane = 0; lane < lanes; ++lane)
            if (on[lane]) srcMax = std::max(srcMax, EmuLane<T>(r, lane, srcBlkStride, srcRepStride) + 1);
    const T* s = EmuOperand(api, "src", src, srcMax);
    uint64_t dstNeed = uint64_t(repeatTime - 1) * dstRepStride * width + width;
    T* d = EmuOperand(api, "dst", dst, dstNeed, static_cast<uint32_t>(sizeof(T) * (width == 2 ? 2 : 1)));
    std::vector<T> out(dstNeed);
    std::memcpy(out.data(), d, dstNeed * sizeof(T));
    for (int32_t r = 0; r < repeatTime; ++r) {
        T* o = out.data() + uint64_t(r) * dstRepStride * width;
        if (kind == 0) {
            std::vector<double> v(lanes, 0.0);
            for (int lane = 0; lane < lanes; ++lane)
                if (on[lane]) v[lane] = EmuWiden(s[EmuLane<T>(r, lane, srcBlkStride, srcRepStride)]);
            o[0] = EmuNarrow<T>(EmuTreeSum<T>(v));
            continue;
        }
        int best = -1;
        for (int lane = 0; lane < lanes; ++lane) {
            if (!on[lane]) continue;
            double v = EmuWiden(s[EmuLane<T>(r, lane, srcBlkStride, srcRepStride)]);
            double b = best < 0 ? 0 : EmuWiden(s[EmuLane<T>(r, best, srcBlkStride, srcRepStride)]);
            if (best < 0 || (kind == 1 ? v > b : v < b)) best = lane;
        }
        T value = s[EmuLane<T>(r, best, srcBlkStride, srcRepStride)];
        Index idx = static_cast<Index>(best);
        T idxBits;
        std::memcpy(&idxBits, &idx, sizeof(T));
        switch (order) {
            case ReduceOrder::ORDER_VALUE_INDEX: o[0] = value; o[1] = idxBits; break;
            case ReduceOrder::ORDER_INDEX_VALUE: o[0] = idxBits; o[1] = value; break;
            case ReduceOrder::ORDER_ONLY_VALUE: o[0] = value; break;
            default: {
                uint32_t wide = static_cast<uint32_t>(best);
                std::memcpy(o, &wide, sizeof(uint32_t));
            }
        }
    }
    std::memcpy(d, out.data(), dstNeed * sizeof(T));
}

template <typename T>
inline std::vector<bool> EmuReduceMask(const char* api, bool isSetMask, int32_t mask) {
    return isSetMask ? EmuMaskLanes<T>(api, 0, static_cast<uint64_t>(mask), true)
                     : EmuMaskLanes<T>(api, g_emuCore.maskHigh, g_emuCore.maskLow, false);
}
template <typename T>
inline std::vector<bool> EmuReduceMask(const char* api, bool isSetMask, const uint64_t mask[]) {
    return isSetMask ? EmuMaskLanes<T>(api, sizeof(T) == 2 ? mask[1] : 0, mask[0], false)
                     : EmuMaskLanes<T>(api, g_emuCore.maskHigh, g_emuCore.maskLow, false);
}

#define AUTOFUSE_EMU_WHOLE_REDUCE(Name, KIND, ORDER_PARAM, ORDER)                                                    \
    template <typename T, bool isSetMask = true>                                                                   \
    inline void Name(const LocalTensor<T>& dst, const LocalTensor<T>& src, const int32_t mask,                     \
                     const int32_t repeatTime, const int32_t dstRepStride, const int32_t srcBlkStride,            \
                     const int32_t srcRepStride ORDER_PARAM) {                                                     \
        EmuWholeReduce(#Name, dst, src, EmuReduceMask<T>(#Name, isSetMask, mask), repeatTime, dstRepStride,       \
                       srcBlkStride, srcRepStride, KIND, ORDER);                                                   \
    }                                                                                                              \
    template <typename T, bool isSetMask = true>                                                                   \
    inline void Name(const LocalTensor<T>& dst, const LocalTensor<T>& src, const uint64_t mask[],                  \
                     const int32_t repeatTime, const int32_t dstRepStride, const int32_t srcBlkStride,            \
                     const int32_t srcRepStride ORDER_PARAM) {                                                     \
        EmuWholeReduce(#Name, dst, src, EmuReduceMask<T>(#Name, isSetMask, mask), repeatTime, dstRepStride,       \
                       srcBlkStride, srcRepStride, KIND, ORDER);                                                   \
    }

#define AUTOFUSE_EMU_ORDER_PARAM , ReduceOrder order = ReduceOrder::ORDER_VALUE_INDEX
AUTOFUSE_EMU_WHOLE_REDUCE(WholeReduceSum, 0, , ReduceOrder::ORDER_ONLY_VALUE)
AUTOFUSE_EMU_WHOLE_REDUCE(WholeReduceMax, 1, AUTOFUSE_EMU_ORDER_PARAM, order)
AUTOFUSE_EMU_WHOLE_REDUCE(WholeReduceMin, 2, AUTOFUSE_EMU_ORDER_PARAM, order)
#undef AUTOFUSE_EMU_ORDER_PARAM
#undef AUTOFUSE_EMU_WHOLE_REDUCE

}  // namespace AscendC

#endif  // AUTOFUSE_EMU_REDUCE_H
