// autofuse CPU emulator: element types (half, bfloat16_t), the API's enums, and the rounding
// helpers every instruction uses to round its exact (double) result to the element type.
#ifndef AUTOFUSE_EMU_TYPES_H
#define AUTOFUSE_EMU_TYPES_H

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include "core.h"

// fp16: g++ 12 implements _Float16 conversions with IEEE round-to-nearest-even.
using half = _Float16;

// bf16: stored as the top 16 bits of a float; conversions round to nearest even.
struct bfloat16_t {
    uint16_t bits;

    bfloat16_t() = default;
    template <typename U, typename = std::enable_if_t<std::is_convertible_v<U, double> &&
                                                      !std::is_same_v<std::decay_t<U>, bfloat16_t>>>
    bfloat16_t(U value) : bits(FromDouble(static_cast<double>(value))) {}
    operator float() const {
        uint32_t u = static_cast<uint32_t>(bits) << 16;
        float f;
        std::memcpy(&f, &u, sizeof f);
        return f;
    }

    static uint16_t FromFloat(float f) {
        uint32_t u;
        std::memcpy(&u, &f, sizeof u);
        if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);  // quiet NaN
        return static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
    }
    // Correct rounding from double: the float nearest to `d` rounds correctly to bf16 unless it
    // sits exactly on a bf16 midpoint, where the discarded residual breaks the tie.
    static uint16_t FromDouble(double d) {
        float hi = static_cast<float>(d);
        uint32_t u;
        std::memcpy(&u, &hi, sizeof u);
        double residual = d - static_cast<double>(hi);
        if ((u & 0xffffu) == 0x8000u && residual != 0 && std::isfinite(hi)) {
            bool awayFromZero = (residual > 0) == (hi > 0);
            return static_cast<uint16_t>((u >> 16) + (awayFromZero ? 1u : 0u));
        }
        return FromFloat(hi);
    }
};
static_assert(sizeof(bfloat16_t) == 2, "bfloat16_t must be 2 bytes");

// Pipes and event ids (global names in CANN too: PipeBarrier<PIPE_V>()).
enum pipe_t { PIPE_S = 0, PIPE_V, PIPE_M, PIPE_MTE1, PIPE_MTE2, PIPE_MTE3, PIPE_ALL, PIPE_FIX };
enum event_t : int32_t { EVENT_ID0 = 0, EVENT_ID1, EVENT_ID2, EVENT_ID3, EVENT_ID4, EVENT_ID5, EVENT_ID6, EVENT_ID7 };

enum class CubeFormat { ND = 0, NZ, ZN, ZZ, NN, ND_ALIGN, SCALAR, VECTOR };
enum class LayoutMode { NONE = 0, BSNGD, SBNGD, BNGS1S2, NORMAL };

namespace AscendC {

enum class TPosition : uint8_t {
    GM = 0, A1, A2, B1, B2, C1, C2, CO1, CO2, VECIN, VECOUT, VECCALC, LCM = VECCALC, SPM, SHM = SPM, TSCM,
    C2PIPE2GM, C2PIPE2LOCAL, MAX
};
using QuePosition = TPosition;

enum class HardEvent : uint8_t {
    MTE2_MTE1 = 0, MTE1_MTE2, MTE1_M, M_MTE1, MTE2_V, V_MTE2, MTE3_V, V_MTE3, M_V, V_M, V_V, MTE3_MTE1, MTE1_MTE3,
    MTE1_V, MTE2_M, M_MTE2, V_MTE1, M_FIX, FIX_M, MTE3_MTE2, MTE2_MTE3, S_V, V_S, S_MTE2, MTE2_S, S_MTE3, MTE3_S,
    MTE2_FIX, FIX_MTE2, FIX_S, M_S, FIX_MTE3, MTE1_FIX, FIX_MTE1, FIX_FIX, MAX
};
using TEventID = int8_t;

enum class RoundMode { CAST_NONE = 0, CAST_RINT, CAST_FLOOR, CAST_CEIL, CAST_ROUND, CAST_TRUNC, CAST_ODD, CAST_HYBRID };
enum class CMPMODE : uint8_t { LT = 0, GT, EQ, LE, GE, NE };
enum class SELMODE : uint8_t { VSEL_CMPMASK_SPR = 0, VSEL_TENSOR_SCALAR_MODE, VSEL_TENSOR_TENSOR_MODE };
enum class ReduceOrder { ORDER_VALUE_INDEX = 0, ORDER_INDEX_VALUE, ORDER_ONLY_VALUE, ORDER_ONLY_INDEX };
enum class MaskMode : uint8_t { NORMAL = 0, COUNTER };
enum class CacheMode { CACHE_MODE_NORMAL = 0, CACHE_MODE_DISABLE, CACHE_MODE_LAST, CACHE_MODE_PERSISTENT };

using ::CubeFormat;
using ::LayoutMode;

constexpr int32_t ONE_BLK_SIZE = 32;
constexpr int32_t ONE_REPEAT_BYTE_SIZE = 256;
constexpr int32_t DEFAULT_BLK_NUM = 8;
constexpr int32_t DEFAULT_REPEAT_STRIDE = 8;
constexpr int32_t MAX_REPEAT_TIMES = 255;
constexpr uint64_t MASK_PLACEHOLDER = 0;

// ---- element type traits -----------------------------------------------------------------------

template <typename T, typename... Us>
constexpr bool EmuOneOf = (std::is_same_v<T, Us> || ...);

template <typename T>
constexpr bool EmuIsFloat = EmuOneOf<T, half, float, bfloat16_t, double>;

template <typename T>
const char* EmuTypeName() {
    if constexpr (std::is_same_v<T, half>) return "half";
    else if constexpr (std::is_same_v<T, float>) return "float";
    else if constexpr (std::is_same_v<T, bfloat16_t>) return "bfloat16_t";
    else if constexpr (std::is_same_v<T, int8_t>) return "int8_t";
    else if constexpr (std::is_same_v<T, uint8_t>) return "uint8_t";
    else if constexpr (std::is_same_v<T, int16_t>) return "int16_t";
    else if constexpr (std::is_same_v<T, uint16_t>) return "uint16_t";
    else if constexpr (std::is_same_v<T, int32_t>) return "int32_t";
    else if constexpr (std::is_same_v<T, uint32_t>) return "uint32_t";
    else if constexpr (std::is_same_v<T, int64_t>) return "int64_t";
    else return "?";
}

// The exact value an instruction computes with: double for floating types, int64 for integers.
template <typename T>
using EmuWide = std::conditional_t<EmuIsFloat<T>, double, int64_t>;

template <typename T>
inline EmuWide<T> EmuWiden(T v) {
    if constexpr (std::is_same_v<T, bfloat16_t>) return static_cast<float>(v);
    else if constexpr (EmuIsFloat<T>) return static_cast<double>(v);
    else return static_cast<int64_t>(v);
}

// Round an exact result to T, nearest-even (the default of every vector instruction). Integer
// results wrap as two's complement.
template <typename T>
inline T EmuNarrow(double v) {
    if constexpr (std::is_same_v<T, bfloat16_t>) {
        bfloat16_t out;
        out.bits = bfloat16_t::FromDouble(v);
        return out;
    } else if constexpr (EmuIsFloat<T>) {
        return static_cast<T>(v);
    } else {
        return static_cast<T>(static_cast<int64_t>(v));
    }
}
template <typename T>
inline T EmuNarrow(int64_t v) {
    if constexpr (EmuIsFloat<T>) return EmuNarrow<T>(static_cast<double>(v));
    else return static_cast<T>(static_cast<uint64_t>(v));
}

// ---- directed rounding for Cast ----------------------------------------------------------------

// Neighbouring values of a floating type, by bit pattern (finite, non-zero handling included).
template <typename F>
inline F EmuNextToward(F x, bool up) {
    if constexpr (std::is_same_v<F, float>) {
        return std::nextafter(x, up ? std::numeric_limits<float>::infinity() : -std::numeric_limits<float>::infinity());
    } else {
        uint16_t b;
        std::memcpy(&b, &x, 2);
        bool neg = (b & 0x8000u) != 0;
        if ((b & 0x7fffu) == 0) {  // +-0: the smallest subnormal toward `up`
            b = up ? 0x0001u : 0x8001u;
        } else if (neg == up) {
            b = static_cast<uint16_t>(b - 1);  // toward zero
        } else {
            b = static_cast<uint16_t>(b + 1);  // away from zero
        }
        F out;
        std::memcpy(&out, &b, 2);
        return out;
    }
}

inline bool EmuLowBitOdd(float x) {
    uint32_t u;
    std::memcpy(&u, &x, 4);
    return u & 1u;
}
template <typename F>
inline bool EmuLowBitOdd(F x) {
    uint16_t u;
    std::memcpy(&u, &x, 2);
    return u & 1u;
}

// Round `v` to the floating type F under a Cast RoundMode (CAST_NONE / CAST_RINT: nearest even;
// CAST_ROUND: nearest, ties away from zero; CAST_ODD: von Neumann rounding to odd).
template <typename F>
inline F EmuRoundFloat(double v, RoundMode mode) {
    F nearest = EmuNarrow<F>(v);
    if (std::isnan(v) || static_cast<double>(static_cast<float>(nearest)) == v) return nearest;
    if (mode == RoundMode::CAST_NONE || mode == RoundMode::CAST_RINT) return nearest;
    double n = static_cast<float>(nearest);
    F lo = n < v ? nearest : EmuNextToward(nearest, false);
    F hi = n > v ? nearest : EmuNextToward(nearest, true);
    double dlo = static_cast<float>(lo), dhi = static_cast<float>(hi);
    switch (mode) {
        case RoundMode::CAST_FLOOR: return lo;
        case RoundMode::CAST_CEIL: return hi;
        case RoundMode::CAST_TRUNC: return v > 0 ? lo : hi;
        case RoundMode::CAST_ROUND:
            if (v - dlo == dhi - v) return v > 0 ? hi : lo;
            return nearest;
        case RoundMode::CAST_ODD: return EmuLowBitOdd(lo) ? lo : hi;
        default: return nearest;
    }
}

// Round `v` to an integer value under a RoundMode (no range clamp).
inline double EmuRoundInteger(double v, RoundMode mode) {
    switch (mode) {
        case RoundMode::CAST_FLOOR: return std::floor(v);
        case RoundMode::CAST_CEIL: return std::ceil(v);
        case RoundMode::CAST_TRUNC: return std::trunc(v);
        case RoundMode::CAST_ROUND: return std::round(v);
        default: return std::nearbyint(v);  // CAST_NONE / CAST_RINT: ties to even (default FP env)
    }
}

template <typename I>
inline I EmuSaturate(double v) {
    if (std::isnan(v)) return 0;
    if (v <= static_cast<double>(std::numeric_limits<I>::min())) return std::numeric_limits<I>::min();
    if (v >= static_cast<double>(std::numeric_limits<I>::max())) return std::numeric_limits<I>::max();
    return static_cast<I>(v);
}

}  // namespace AscendC

#endif  // AUTOFUSE_EMU_TYPES_H
