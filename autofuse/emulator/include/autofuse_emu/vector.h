// autofuse CPU emulator: the vector instructions (count form, plus the mask/repeat form of the
// binary instructions), Duplicate, Cast, Compare/Compares, Select, and the vector mask.
//
// Every instruction reads its operands exactly (double for floating types, int64 for integers),
// computes, and rounds each result to the element type: the hardware rounds per instruction.
// Transcendentals use the C library, so they are correctly rounded here and not bit-exact with the
// hardware's approximations.
#ifndef AUTOFUSE_EMU_VECTOR_H
#define AUTOFUSE_EMU_VECTOR_H

#include <algorithm>

#include "datacopy.h"

// Element types an instruction accepts on the target (Ascend C dtype lists for Atlas A2/A3; the
// same sets are used for 310P, which has no bf16 at all). bf16 gets its own message.
#define AUTOFUSE_EMU_TYPES(T, api, ...)                                                                       \
    static_assert(!std::is_same_v<T, bfloat16_t>,                                                          \
                  api ": bfloat16_t is not a vector arithmetic type on Atlas A2/A3 (only DataCopy, "       \
                      "Duplicate and Cast accept it): Cast to float, compute, Cast back with CAST_RINT");  \
    static_assert(std::is_same_v<T, bfloat16_t> || EmuOneOf<T, __VA_ARGS__>,                               \
                  api ": unsupported element type (Ascend C accepts " #__VA_ARGS__ ")")

namespace AscendC {

struct BinaryRepeatParams {
    uint8_t blockNumber = 8;
    uint8_t dstBlkStride = 1, src0BlkStride = 1, src1BlkStride = 1;
    uint8_t dstRepStride = 8, src0RepStride = 8, src1RepStride = 8;
    bool repeatStrideMode = false, strideSizeMode = false;
    BinaryRepeatParams() = default;
    BinaryRepeatParams(uint8_t dstBlk, uint8_t src0Blk, uint8_t src1Blk, uint8_t dstRep, uint8_t src0Rep,
                       uint8_t src1Rep)
        : dstBlkStride(dstBlk), src0BlkStride(src0Blk), src1BlkStride(src1Blk), dstRepStride(dstRep),
          src0RepStride(src0Rep), src1RepStride(src1Rep) {}
};

inline void EmuCountCheck(const char* api, int64_t count) {
    if (count < 0) EmuFail("%s with a negative count (%lld)", api, (long long)count);
}

// ---- count form: elementwise over the first `count` elements ------------------------------------

template <typename T, typename F>
inline void EmuUnary(const char* api, const LocalTensor<T>& dst, const LocalTensor<T>& src, int64_t count, F f) {
    EmuCountCheck(api, count);
    if (count == 0) return;
    T* d = EmuOperand(api, "dst", dst, count);
    const T* s = EmuOperand(api, "src", src, count);
    std::vector<EmuWide<T>> x(s, s + count);  // operands are read before any result is written
    for (int64_t i = 0; i < count; ++i) d[i] = EmuNarrow<T>(f(x[i]));
}

template <typename T, typename F>
inline void EmuBinary(const char* api, const LocalTensor<T>& dst, const LocalTensor<T>& src0,
                      const LocalTensor<T>& src1, int64_t count, F f) {
    EmuCountCheck(api, count);
    if (count == 0) return;
    T* d = EmuOperand(api, "dst", dst, count);
    const T* a = EmuOperand(api, "src0", src0, count);
    const T* b = EmuOperand(api, "src1", src1, count);
    std::vector<EmuWide<T>> x(a, a + count), y(b, b + count);
    for (int64_t i = 0; i < count; ++i) d[i] = EmuNarrow<T>(f(x[i], y[i]));
}

// ---- mask/repeat form of the binary instructions ------------------------------------------------

// The lanes a mask enables in one 256-byte repeat of T elements (bit i = lane i).
template <typename T>
inline std::vector<bool> EmuMaskLanes(const char* api, uint64_t maskHigh, uint64_t maskLow, bool continuous) {
    constexpr int lanes = AUTOFUSE_EMU_REPEAT_BYTES / sizeof(T);
    std::vector<bool> on(lanes, false);
    if (continuous) {
        if (maskLow < 1 || maskLow > static_cast<uint64_t>(lanes))
            EmuFail("%s: mask %llu out of range [1, %d] for %s", api, (unsigned long long)maskLow, lanes,
                    EmuTypeName<T>());
        for (uint64_t i = 0; i < maskLow; ++i) on[i] = true;
    } else {
        for (int i = 0; i < lanes; ++i) on[i] = i < 64 ? (maskLow >> i) & 1u : (maskHigh >> (i - 64)) & 1u;
    }
    return on;
}

// Element offset of lane `lane` in repeat `r` for block/repeat strides in 32-byte units.
template <typename T>
inline uint64_t EmuLane(uint64_t r, int lane, uint32_t blkStride, uint32_t repStride) {
    constexpr int perBlock = 32 / sizeof(T);
    return (r * repStride * 32 + static_cast<uint64_t>(lane / perBlock) * blkStride * 32) / sizeof(T) +
           lane % perBlock;
}

// Runs f over the enabled lanes of `repeats` repeats; in counter mode (SetMaskCount) over the
// first maskLow elements instead, ignoring `repeats`.
template <typename T, typename F>
inline void EmuRepeatBinary(const char* api, const LocalTensor<T>& dst, const LocalTensor<T>& src0,
                            const LocalTensor<T>& src1, std::vector<bool> on, uint64_t repeats,
                            const BinaryRepeatParams& p, F f) {
    constexpr int lanes = AUTOFUSE_EMU_REPEAT_BYTES / sizeof(T);
    uint64_t total = repeats * lanes;
    if (g_emuCore.maskCounter) {
        total = g_emuCore.maskLow;
        repeats = (total + lanes - 1) / lanes;
        on.assign(lanes, true);
    }
    if (repeats > MAX_REPEAT_TIMES && !g_emuCore.maskCounter)
        EmuFail("%s: repeatTime %llu exceeds %d", api, (unsigned long long)repeats, MAX_REPEAT_TIMES);
    std::vector<uint64_t> di, ai, bi;
    uint64_t dMax = 0, aMax = 0, bMax = 0;
    for (uint64_t k = 0; k < total; ++k) {
        uint64_t r = k / lanes;
        int lane = static_cast<int>(k % lanes);
        if (!on[lane]) continue;
        di.push_back(EmuLane<T>(r, lane, p.dstBlkStride, p.dstRepStride));
        ai.push_back(EmuLane<T>(r, lane, p.src0BlkStride, p.src0RepStride));
        bi.push_back(EmuLane<T>(r, lane, p.src1BlkStride, p.src1RepStride));
        dMax = std::max(dMax, di.back() + 1);
        aMax = std::max(aMax, ai.back() + 1);
        bMax = std::max(bMax, bi.back() + 1);
    }
    T* d = EmuOperand(api, "dst", dst, dMax);
    const T* a = EmuOperand(api, "src0", src0, aMax);
    const T* b = EmuOperand(api, "src1", src1, bMax);
    std::vector<EmuWide<T>> x, y;
    for (size_t k = 0; k < di.size(); ++k) {
        x.push_back(EmuWiden(a[ai[k]]));
        y.push_back(EmuWiden(b[bi[k]]));
    }
    for (size_t k = 0; k < di.size(); ++k) d[di[k]] = EmuNarrow<T>(f(x[k], y[k]));
}

// Declares Name(dst, src0, src1, count) and its mask/repeat forms.
#define AUTOFUSE_EMU_BINARY(Name, EXPR, ...)                                                                     \
    template <typename T>                                                                                      \
    inline void Name(const LocalTensor<T>& dst, const LocalTensor<T>& src0, const LocalTensor<T>& src1,        \
                     const int32_t& count) {                                                                   \
        AUTOFUSE_EMU_TYPES(T, #Name, __VA_ARGS__);                                                             \
        EmuBinary(#Name, dst, src0, src1, count, [](auto a, auto b) { return EXPR; });                         \
    }                                                                                                          \
    template <typename T, bool isSetMask = true>                                                               \
    inline void Name(const LocalTensor<T>& dst, const LocalTensor<T>& src0, const LocalTensor<T>& src1,        \
                     uint64_t mask, const uint8_t repeatTime, const BinaryRepeatParams& params) {              \
        AUTOFUSE_EMU_TYPES(T, #Name, __VA_ARGS__);                                                             \
        auto on = isSetMask ? EmuMaskLanes<T>(#Name, 0, mask, true)                                            \
                            : EmuMaskLanes<T>(#Name, g_emuCore.maskHigh, g_emuCore.maskLow, false);            \
        EmuRepeatBinary(#Name, dst, src0, src1, on, repeatTime, params, [](auto a, auto b) { return EXPR; });  \
    }                                                                                                          \
    template <typename T, bool isSetMask = true>                                                               \
    inline void Name(const LocalTensor<T>& dst, const LocalTensor<T>& src0, const LocalTensor<T>& src1,        \
                     const uint64_t mask[], const uint8_t repeatTime, const BinaryRepeatParams& params) {      \
        AUTOFUSE_EMU_TYPES(T, #Name, __VA_ARGS__);                                                             \
        auto on = isSetMask ? EmuMaskLanes<T>(#Name, sizeof(T) == 2 ? mask[1] : 0, mask[0], false)             \
                            : EmuMaskLanes<T>(#Name, g_emuCore.maskHigh, g_emuCore.maskLow, false);            \
        EmuRepeatBinary(#Name, dst, src0, src1, on, repeatTime, params, [](auto a, auto b) { return EXPR; });  \
    }

AUTOFUSE_EMU_BINARY(Add, a + b, int16_t, half, int32_t, float)
AUTOFUSE_EMU_BINARY(Sub, a - b, int16_t, half, int32_t, float)
AUTOFUSE_EMU_BINARY(Mul, a * b, int16_t, half, int32_t, float)
AUTOFUSE_EMU_BINARY(Div, a / b, half, float)
AUTOFUSE_EMU_BINARY(Max, (a > b || a != a) ? a : b, int16_t, half, int32_t, float)
AUTOFUSE_EMU_BINARY(Min, (a < b || a != a) ? a : b, int16_t, half, int32_t, float)

#undef AUTOFUSE_EMU_BINARY

// ---- scalar forms: the scalar has the tensor's element type ------------------------------------

#define AUTOFUSE_EMU_SCALAR(Name, EXPR, ...)                                                                       \
    template <typename T, bool isSetMask = true>                                                                 \
    inline void Name(const LocalTensor<T>& dst, const LocalTensor<T>& src, const T& scalarValue,                 \
                     const int32_t& count) {                                                                     \
        AUTOFUSE_EMU_TYPES(T, #Name, __VA_ARGS__);                                                               \
        EmuWide<T> s = EmuWiden(scalarValue);                                                                    \
        EmuUnary(#Name, dst, src, count, [s](auto a) { return EXPR; });                                          \
    }

AUTOFUSE_EMU_SCALAR(Adds, a + s, int16_t, half, int32_t, float)
AUTOFUSE_EMU_SCALAR(Muls, a * s, int16_t, half, int32_t, float)
AUTOFUSE_EMU_SCALAR(Maxs, (a > s || a != a) ? a : s, int16_t, half, int32_t, float)
AUTOFUSE_EMU_SCALAR(Mins, (a < s || a != a) ? a : s, int16_t, half, int32_t, float)
AUTOFUSE_EMU_SCALAR(LeakyRelu, a >= 0 ? a : a * s, half, float)

#undef AUTOFUSE_EMU_SCALAR

// ---- unary --------------------------------------------------------------------------------------

#define AUTOFUSE_EMU_UNARY(Name, EXPR, ...)                                                                   \
    template <typename T>                                                                                   \
    inline void Name(const LocalTensor<T>& dst, const LocalTensor<T>& src, const int32_t& count) {          \
        AUTOFUSE_EMU_TYPES(T, #Name, __VA_ARGS__);                                                          \
        EmuUnary(#Name, dst, src, count, [](auto a) { return EXPR; });                                      \
    }

AUTOFUSE_EMU_UNARY(Exp, std::exp(a), half, float)
AUTOFUSE_EMU_UNARY(Ln, std::log(a), half, float)
AUTOFUSE_EMU_UNARY(Sqrt, std::sqrt(a), half, float)
AUTOFUSE_EMU_UNARY(Rsqrt, 1.0 / std::sqrt(a), half, float)
AUTOFUSE_EMU_UNARY(Reciprocal, 1.0 / a, half, float)
AUTOFUSE_EMU_UNARY(Abs, a < 0 ? -a : a, half, float)
AUTOFUSE_EMU_UNARY(Relu, a > 0 ? a : decltype(a)(0), half, int32_t, float)

#undef AUTOFUSE_EMU_UNARY

// ---- Duplicate ----------------------------------------------------------------------------------

template <typename T>
inline void Duplicate(const LocalTensor<T>& dst, const T& scalarValue, const int32_t& count) {
    static_assert(EmuOneOf<T, int16_t, uint16_t, half, bfloat16_t, int32_t, uint32_t, float>,
                  "Duplicate: unsupported element type (int16, uint16, half, bfloat16_t, int32, uint32, float)");
    static_assert(__NPU_ARCH__ != 2002 || !std::is_same_v<T, bfloat16_t>, "Duplicate: 310P has no bfloat16_t");
    EmuCountCheck("Duplicate", count);
    T* d = EmuOperand("Duplicate", "dst", dst, count);
    for (int32_t i = 0; i < count; ++i) d[i] = scalarValue;
}

// ---- Cast ---------------------------------------------------------------------------------------

constexpr unsigned EmuModeBit(RoundMode m) { return 1u << static_cast<unsigned>(m); }
constexpr unsigned EMU_NONE = EmuModeBit(RoundMode::CAST_NONE);
constexpr unsigned EMU_DIRECTED = EmuModeBit(RoundMode::CAST_RINT) | EmuModeBit(RoundMode::CAST_FLOOR) |
                                  EmuModeBit(RoundMode::CAST_CEIL) | EmuModeBit(RoundMode::CAST_ROUND) |
                                  EmuModeBit(RoundMode::CAST_TRUNC);

// The round modes Cast accepts for each (dst, src) pair on Atlas A2/A3; 0 = pair not available.
template <typename D, typename S>
constexpr unsigned EmuCastModes() {
    if constexpr (std::is_same_v<S, half> && std::is_same_v<D, float>) return EMU_NONE;
    else if constexpr (std::is_same_v<S, bfloat16_t> && std::is_same_v<D, float>) return EMU_NONE;
    else if constexpr (EmuOneOf<S, int8_t, uint8_t> && std::is_same_v<D, half>) return EMU_NONE;
    else if constexpr (std::is_same_v<S, int16_t> && std::is_same_v<D, float>) return EMU_NONE;
    else if constexpr (std::is_same_v<S, float> && std::is_same_v<D, half>)
        return EMU_NONE | EMU_DIRECTED | EmuModeBit(RoundMode::CAST_ODD);
    else if constexpr (std::is_same_v<S, float> && std::is_same_v<D, bfloat16_t>) return EMU_DIRECTED;
    else if constexpr (EmuOneOf<S, float, half, bfloat16_t> && std::is_same_v<D, int32_t>) return EMU_DIRECTED;
    else if constexpr (std::is_same_v<S, float> && std::is_same_v<D, int16_t>) return EMU_DIRECTED;
    else if constexpr (std::is_same_v<S, int32_t> && std::is_same_v<D, float>) return EMU_NONE | EMU_DIRECTED;
    else if constexpr (std::is_same_v<S, float> && std::is_same_v<D, float>) return EMU_DIRECTED;
    else return 0;
}

inline const char* EmuRoundName(RoundMode m) {
    static const char* names[] = {"CAST_NONE", "CAST_RINT", "CAST_FLOOR", "CAST_CEIL",
                                  "CAST_ROUND", "CAST_TRUNC", "CAST_ODD", "CAST_HYBRID"};
    return names[static_cast<int>(m)];
}

template <typename T, typename U>
inline void Cast(const LocalTensor<T>& dst, const LocalTensor<U>& src, const RoundMode& roundMode,
                 const uint32_t count) {
    constexpr unsigned modes = EmuCastModes<T, U>();
    static_assert(modes != 0, "Cast: this (dst, src) type pair is not available on Atlas A2/A3 (half<->bf16 "
                              "goes through float; int32->half needs SetDeqScale)");
    static_assert(__NPU_ARCH__ != 2002 || !(std::is_same_v<T, bfloat16_t> || std::is_same_v<U, bfloat16_t>),
                  "Cast: 310P has no bfloat16_t");
    if (!(modes & EmuModeBit(roundMode)))
        EmuFail("Cast %s -> %s does not accept RoundMode::%s%s", EmuTypeName<U>(), EmuTypeName<T>(),
                EmuRoundName(roundMode),
                std::is_same_v<T, bfloat16_t> ? " (float -> bf16 needs an explicit mode, e.g. CAST_RINT)" : "");
    T* d = EmuOperand("Cast", "dst", dst, count);
    const U* s = EmuOperand("Cast", "src", src, count);
    std::vector<double> x(count);
    for (uint32_t i = 0; i < count; ++i) x[i] = static_cast<double>(EmuWiden(s[i]));
    for (uint32_t i = 0; i < count; ++i) {
        if constexpr (std::is_same_v<T, float> && std::is_same_v<U, float>)
            d[i] = static_cast<float>(EmuRoundInteger(x[i], roundMode));
        else if constexpr (EmuIsFloat<T>)
            d[i] = EmuRoundFloat<T>(x[i], roundMode);
        else
            d[i] = EmuSaturate<T>(EmuRoundInteger(x[i], roundMode));
    }
}

// ---- Compare / Compares / Select ----------------------------------------------------------------

inline bool EmuCompare(double a, double b, CMPMODE mode) {
    switch (mode) {
        case CMPMODE::LT: return a < b;
        case CMPMODE::GT: return a > b;
        case CMPMODE::EQ: return a == b;
        case CMPMODE::LE: return a <= b;
        case CMPMODE::GE: return a >= b;
        default: return a != b;
    }
}

// Compare writes one bit per element (little-endian within each byte); the count must fill whole
// 256-byte repeats.
template <typename T, typename U>
inline void EmuCompareInto(const char* api, const LocalTensor<U>& dst, const T* a, const double* scalar, const T* b,
                           uint32_t count, CMPMODE mode) {
    static_assert(EmuOneOf<U, uint8_t, int8_t, uint16_t, uint32_t>, "Compare: the mask tensor must be uint8_t");
    uint8_t* out = reinterpret_cast<uint8_t*>(EmuOperand(api, "dst", dst, (count / 8 + sizeof(U) - 1) / sizeof(U)));
    std::vector<uint8_t> bits(count / 8, 0);
    for (uint32_t i = 0; i < count; ++i) {
        double y = scalar ? *scalar : static_cast<double>(EmuWiden(b[i]));
        if (EmuCompare(static_cast<double>(EmuWiden(a[i])), y, mode)) bits[i / 8] |= uint8_t(1u << (i % 8));
    }
    std::memcpy(out, bits.data(), bits.size());
}

template <typename T>
inline void EmuCompareChecks(const char* api, uint32_t count, CMPMODE mode) {
    static_assert(EmuOneOf<T, half, float, int32_t>, "Compare: T must be half or float (int32_t for EQ only)");
    if (std::is_same_v<T, int32_t> && mode != CMPMODE::EQ) EmuFail("%s on int32_t supports only CMPMODE::EQ", api);
    if (uint64_t(count) * sizeof(T) % AUTOFUSE_EMU_REPEAT_BYTES != 0)
        EmuFail("%s of %u %s elements = %llu B: the count must be a multiple of %d B (whole repeats)", api, count,
                EmuTypeName<T>(), (unsigned long long)(uint64_t(count) * sizeof(T)), AUTOFUSE_EMU_REPEAT_BYTES);
}

template <typename T, typename U>
inline void Compare(const LocalTensor<U>& dst, const LocalTensor<T>& src0, const LocalTensor<T>& src1,
                    CMPMODE cmpMode, uint32_t count) {
    EmuCompareChecks<T>("Compare", count, cmpMode);
    const T* a = EmuOperand("Compare", "src0", src0, count);
    const T* b = EmuOperand("Compare", "src1", src1, count);
    EmuCompareInto("Compare", dst, a, nullptr, b, count, cmpMode);
}

template <typename T, typename U>
inline void Compares(const LocalTensor<U>& dst, const LocalTensor<T>& src0, const T src1Scalar, CMPMODE cmpMode,
                     uint32_t count) {
    EmuCompareChecks<T>("Compares", count, cmpMode);
    const T* a = EmuOperand("Compares", "src0", src0, count);
    double s = static_cast<double>(EmuWiden(src1Scalar));
    EmuCompareInto("Compares", dst, a, &s, a, count, cmpMode);
}

template <typename T, typename U>
inline const uint8_t* EmuSelectMask(const LocalTensor<U>& selMask, uint32_t count) {
    static_assert(EmuOneOf<T, half, float>, "Select: T must be half or float");
    static_assert(EmuOneOf<U, uint8_t, int8_t, uint16_t, uint32_t>, "Select: the mask tensor must be uint8_t");
    return reinterpret_cast<const uint8_t*>(
        EmuOperand("Select", "selMask", selMask, ((count + 7) / 8 + sizeof(U) - 1) / sizeof(U)));
}

// Bit i of selMask = 1 takes src0[i], 0 takes src1[i] (or the scalar).
template <typename T, typename U>
inline void Select(const LocalTensor<T>& dst, const LocalTensor<U>& selMask, const LocalTensor<T>& src0,
                   const LocalTensor<T>& src1, SELMODE selMode, uint32_t count) {
    if (selMode != SELMODE::VSEL_TENSOR_TENSOR_MODE)
        EmuFail("Select with two tensors: only SELMODE::VSEL_TENSOR_TENSOR_MODE is emulated in the count form");
    const uint8_t* m = EmuSelectMask<T>(selMask, count);
    T* d = EmuOperand("Select", "dst", dst, count);
    const T* a = EmuOperand("Select", "src0", src0, count);
    const T* b = EmuOperand("Select", "src1", src1, count);
    std::vector<T> out(count);
    for (uint32_t i = 0; i < count; ++i) out[i] = (m[i / 8] >> (i % 8)) & 1u ? a[i] : b[i];
    std::memcpy(d, out.data(), count * sizeof(T));
}

template <typename T, typename U>
inline void Select(const LocalTensor<T>& dst, const LocalTensor<U>& selMask, const LocalTensor<T>& src0,
                   T src1, SELMODE selMode, uint32_t count) {
    if (selMode != SELMODE::VSEL_TENSOR_SCALAR_MODE)
        EmuFail("Select with a scalar needs SELMODE::VSEL_TENSOR_SCALAR_MODE");
    const uint8_t* m = EmuSelectMask<T>(selMask, count);
    T* d = EmuOperand("Select", "dst", dst, count);
    const T* a = EmuOperand("Select", "src0", src0, count);
    std::vector<T> out(count);
    for (uint32_t i = 0; i < count; ++i) out[i] = (m[i / 8] >> (i % 8)) & 1u ? a[i] : src1;
    std::memcpy(d, out.data(), count * sizeof(T));
}

// ---- vector mask (for the mask/repeat forms with isSetMask = false) -----------------------------

template <typename T, MaskMode mode = MaskMode::NORMAL>
inline void SetVectorMask(const uint64_t maskHigh, const uint64_t maskLow) {
    g_emuCore.maskHigh = maskHigh;
    g_emuCore.maskLow = maskLow;
}

// Continuous mask of `len` lanes (normal mode) or a count of `len` elements (counter mode).
template <typename T, MaskMode mode = MaskMode::NORMAL>
inline void SetVectorMask(int32_t len) {
    if (mode == MaskMode::COUNTER || g_emuCore.maskCounter) {
        g_emuCore.maskHigh = 0;
        g_emuCore.maskLow = static_cast<uint64_t>(len);
        return;
    }
    g_emuCore.maskLow = len >= 64 ? ~0ull : (1ull << len) - 1;
    g_emuCore.maskHigh = len >= 128 ? ~0ull : len <= 64 ? 0 : (1ull << (len - 64)) - 1;
}

inline void ResetMask() {
    g_emuCore.maskHigh = ~0ull;
    g_emuCore.maskLow = ~0ull;
}
inline void SetMaskCount() { g_emuCore.maskCounter = true; }
inline void SetMaskNorm() { g_emuCore.maskCounter = false; }

}  // namespace AscendC

#endif  // AUTOFUSE_EMU_VECTOR_H
