// autofuse CPU emulator: the high-level activation APIs a generator needs for transcendentals
// without a basic instruction: Sigmoid, Silu, Tanh, Erf, Sin, Cos, Gelu. Each is computed exactly in double
// and rounded once to T (the hardware composes several rounded instructions, so it differs in the
// last bits). Gelu is Ascend C's tanh approximation x / (1 + exp(-2*sqrt(2/pi) * (x + 0.044715 x^3))),
// not ONNX's erf-based Gelu.
//
// The overloads without sharedTmpBuffer take scratch from the TPipe's free UB on hardware; the
// emulator does not model that scratch, so prefer the sharedTmpBuffer overloads in generated code.
#ifndef AUTOFUSE_EMU_ADVANCED_H
#define AUTOFUSE_EMU_ADVANCED_H

#include "reduce.h"

namespace AscendC {

inline double EmuSigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }
inline double EmuGeluTanh(double x) {
    const double k = 2.0 * std::sqrt(2.0 / 3.14159265358979323846);
    return x / (1.0 + std::exp(-k * (x + 0.044715 * x * x * x)));
}

template <typename T, typename F>
inline void EmuActivation(const char* api, const LocalTensor<T>& dst, const LocalTensor<T>& src,
                          const LocalTensor<uint8_t>* tmp, uint32_t count, F f) {
    AUTOFUSE_EMU_TYPES(T, "Sigmoid/Silu/Tanh/Erf/Sin/Cos/Gelu", half, float);
    if (tmp) EmuOperand(api, "sharedTmpBuffer", *tmp, 0);
    EmuUnary(api, dst, src, count, f);
}

#define AUTOFUSE_EMU_ACTIVATION(Name, TPARAMS, EXPR)                                                               \
    template <typename T, TPARAMS>                                                                                 \
    inline void Name(const LocalTensor<T>& dst, const LocalTensor<T>& src,                                        \
                     const LocalTensor<uint8_t>& sharedTmpBuffer, const uint32_t calCount) {                      \
        EmuActivation(#Name, dst, src, &sharedTmpBuffer, calCount, [](double x) { return EXPR; });                \
    }                                                                                                              \
    template <typename T, TPARAMS>                                                                                 \
    inline void Name(const LocalTensor<T>& dst, const LocalTensor<T>& src, const uint32_t calCount) {             \
        EmuActivation(#Name, dst, src, nullptr, calCount, [](double x) { return EXPR; });                         \
    }

AUTOFUSE_EMU_ACTIVATION(Sigmoid, bool isReuseSource = false, EmuSigmoid(x))
AUTOFUSE_EMU_ACTIVATION(Silu, bool isReuseSource = false, x * EmuSigmoid(x))
AUTOFUSE_EMU_ACTIVATION(Tanh, bool isReuseSource = false, std::tanh(x))
AUTOFUSE_EMU_ACTIVATION(Erf, bool isReuseSource = false, std::erf(x))
AUTOFUSE_EMU_ACTIVATION(Sin, bool isReuseSource = false, std::sin(x))
AUTOFUSE_EMU_ACTIVATION(Cos, bool isReuseSource = false, std::cos(x))
#define AUTOFUSE_EMU_GELU_PARAMS bool highPrecision = false, bool highPerformance = false
AUTOFUSE_EMU_ACTIVATION(Gelu, AUTOFUSE_EMU_GELU_PARAMS, EmuGeluTanh(x))
#undef AUTOFUSE_EMU_GELU_PARAMS
#undef AUTOFUSE_EMU_ACTIVATION

}  // namespace AscendC

#endif  // AUTOFUSE_EMU_ADVANCED_H
