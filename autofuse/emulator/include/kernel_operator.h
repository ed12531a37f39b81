// autofuse CPU emulator of the Ascend C kernel API (the subset autofuse's generated kernels use).
//
// Kernels include this header exactly as they include CANN's; compiled with g++ and
// -DASCENDC_CPU_DEBUG=1 they run on the CPU through tikicpulib.h's ICPU_RUN_KF. See
// autofuse/emulator/README.md for what is emulated, what is checked and the conventions.
#ifndef AUTOFUSE_EMU_KERNEL_OPERATOR_H
#define AUTOFUSE_EMU_KERNEL_OPERATOR_H

#include "autofuse_emu/advanced.h"
#include "kernel_tiling/kernel_tiling.h"

// ---- kernel-side macros -------------------------------------------------------------------------

// Tiling data. The struct type comes from REGISTER_TILING_DEFAULT(T) earlier in the same scope
// (function body or file); GET_TILING_DATA_WITH_STRUCT names it directly. Both copy the struct
// from the tiling GM address, which must be a GmAlloc'd block of at least sizeof(T) bytes.
#define REGISTER_TILING_DEFAULT(T) using AutofuseEmuTilingDefault = T
#define GET_TILING_DATA(var, tiling) GET_TILING_DATA_WITH_STRUCT(AutofuseEmuTilingDefault, var, tiling)
#define GET_TILING_DATA_WITH_STRUCT(T, var, tiling) \
    T var;                                          \
    AscendC::EmuLoadTiling(&var, sizeof(T), tiling)

#define TILING_KEY_IS(k) (AscendC::g_emuLaunch.tilingKey == static_cast<uint64_t>(k))
#define KERNEL_TASK_TYPE_DEFAULT(type) AscendC::EmuDeclareKernelType(type)

// `if ASCEND_IS_AIV { ... }`: a run-time test in CPU mode, as in CANN.
#define ASCEND_IS_AIV (AscendC::EmuIsAiv())
#define ASCEND_IS_AIC (!AscendC::EmuIsAiv())
#define ASCEND_IS_NOT_AIV (!AscendC::EmuIsAiv())
#define ASCEND_IS_NOT_AIC (AscendC::EmuIsAiv())

namespace AscendC {

inline void EmuLoadTiling(void* dst, size_t bytes, const void* tiling) {
    const auto* blk = EmuGmFind(tiling);
    if (!blk) EmuFail("GET_TILING_DATA: the tiling address %p is not inside a GmAlloc'd buffer", tiling);
    uintptr_t end = reinterpret_cast<uintptr_t>(tiling) + bytes;
    if (end > blk->first + blk->second.size)
        EmuFail("GET_TILING_DATA: the tiling struct is %zu B but its GmAlloc'd buffer ends %llu B earlier", bytes,
                (unsigned long long)(end - blk->first - blk->second.size));
    std::memcpy(dst, tiling, bytes);
}

}  // namespace AscendC

#endif  // AUTOFUSE_EMU_KERNEL_OPERATOR_H
