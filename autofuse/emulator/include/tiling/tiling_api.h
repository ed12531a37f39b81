// autofuse CPU emulator: the host-side Matmul tiling class of CANN's tiling library
// (matmul_tiling::MultiCoreMatmulTiling), enough for a host harness to fill a TCubeTiling with the
// same calls an op_host tiling function makes on CANN.
//
// The emulator's tiling is valid, not CANN's: it splits [M, N] over at most `dim` blocks
// (singleCoreM x singleCoreN, the whole K per block) and picks base tiles that fit L0 (baseM 128,
// baseN 128, baseK 64 for 2-byte inputs / 32 for 4-byte, all rounded to 16). On CANN the real
// library chooses other numbers, so kernels must read every size from the TCubeTiling.
#ifndef AUTOFUSE_EMU_TILING_API_H
#define AUTOFUSE_EMU_TILING_API_H

#include <algorithm>
#include <cstdint>

#include "../kernel_tiling/kernel_tiling.h"

namespace matmul_tiling {

enum class TPosition { GM = 0, A1, A2, B1, B2, C1, C2, CO1, CO2, VECIN, VECOUT, VECCALC, LCM = VECCALC, TSCM, MAX };
enum class CubeFormat { ND = 0, NZ, ZN, ZZ, NN, ND_ALIGN, SCALAR, VECTOR };
// Values as ge::DataType.
enum class DataType { DT_FLOAT = 0, DT_FLOAT16 = 1, DT_INT8 = 2, DT_INT32 = 3, DT_UINT8 = 4, DT_INT16 = 6, DT_BF16 = 27 };

class MultiCoreMatmulTiling {
public:
    MultiCoreMatmulTiling() = default;

    int32_t SetDim(int32_t dim) {
        dim_ = dim;
        return dim > 0 ? 0 : -1;
    }
    int32_t SetAType(TPosition pos, CubeFormat format, DataType type, bool isTrans = false) {
        (void)pos, (void)format, (void)isTrans;
        aBytes_ = Bytes(type);
        return 0;
    }
    int32_t SetBType(TPosition pos, CubeFormat format, DataType type, bool isTrans = false) {
        (void)pos, (void)format, (void)type, (void)isTrans;
        return 0;
    }
    int32_t SetCType(TPosition pos, CubeFormat format, DataType type) {
        (void)pos, (void)format, (void)type;
        return 0;
    }
    int32_t SetBiasType(TPosition pos, CubeFormat format, DataType type) {
        (void)pos, (void)format, (void)type;
        return 0;
    }
    int32_t SetOrgShape(int32_t orgM, int32_t orgN, int32_t orgK) { return SetOrgShape(orgM, orgN, orgK, orgK); }
    int32_t SetOrgShape(int32_t orgM, int32_t orgN, int32_t orgKa, int32_t orgKb) {
        orgM_ = orgM, orgN_ = orgN, orgKa_ = orgKa, orgKb_ = orgKb;
        return 0;
    }
    int32_t SetShape(int32_t m, int32_t n, int32_t k) {
        m_ = m, n_ = n, k_ = k;
        return 0;
    }
    int32_t EnableBias(bool isBias = false) {
        bias_ = isBias;
        return 0;
    }
    int32_t SetBias(bool isBias = false) { return EnableBias(isBias); }
    int32_t SetBufferSpace(int32_t l1Size = -1, int32_t l0CSize = -1, int32_t ubSize = -1, int32_t btSize = -1) {
        (void)l1Size, (void)l0CSize, (void)ubSize, (void)btSize;
        return 0;
    }

    // Fills `tiling`; -1 when the shape or the core count was not set.
    int64_t GetTiling(TCubeTiling& tiling) {
        if (m_ <= 0 || n_ <= 0 || k_ <= 0 || dim_ <= 0) return -1;
        int32_t orgM = orgM_ > 0 ? orgM_ : m_, orgN = orgN_ > 0 ? orgN_ : n_;
        int32_t orgKa = orgKa_ > 0 ? orgKa_ : k_, orgKb = orgKb_ > 0 ? orgKb_ : k_;
        // The split of [M, N] over the blocks that moves the fewest bytes per block.
        int64_t best = -1;
        for (int32_t mDim = 1; mDim <= dim_; ++mDim) {
            int32_t nDim = dim_ / mDim;
            int32_t sm = Round16(Ceil(m_, mDim)), sn = Round16(Ceil(n_, nDim));
            int64_t cost = (int64_t(sm) + sn) * k_ + int64_t(sm) * sn;
            if (best < 0 || cost < best) best = cost, singleM_ = sm, singleN_ = sn;
        }
        singleM_ = std::min(singleM_, m_), singleN_ = std::min(singleN_, n_);
        tiling = TCubeTiling();
        tiling.usedCoreNum = Ceil(m_, singleM_) * Ceil(n_, singleN_);
        tiling.M = orgM, tiling.N = orgN, tiling.Ka = orgKa, tiling.Kb = orgKb;
        tiling.singleCoreM = singleM_, tiling.singleCoreN = singleN_, tiling.singleCoreK = k_;
        tiling.baseM = std::min(128, Round16(singleM_));
        tiling.baseN = std::min(128, Round16(singleN_));
        tiling.baseK = std::min(aBytes_ == 2 ? 64 : 32, Round16(k_));
        tiling.depthA1 = tiling.depthB1 = 1;
        tiling.stepM = tiling.stepN = tiling.stepKa = tiling.stepKb = 1;
        tiling.isBias = bias_ ? 1 : 0;
        tiling.iterateOrder = 0;
        tiling.batchM = tiling.batchN = tiling.singleBatchM = tiling.singleBatchN = 1;
        tiling.dbL0A = tiling.dbL0B = 2;
        tiling.dbL0C = 1;
        return 0;
    }

    int32_t GetSingleShape(int32_t& shapeM, int32_t& shapeN, int32_t& shapeK) const {
        shapeM = singleM_, shapeN = singleN_, shapeK = k_;
        return 0;
    }

private:
    int32_t dim_ = 0, m_ = 0, n_ = 0, k_ = 0, orgM_ = 0, orgN_ = 0, orgKa_ = 0, orgKb_ = 0;
    int32_t singleM_ = 0, singleN_ = 0, aBytes_ = 2;
    bool bias_ = false;

    static int32_t Ceil(int32_t a, int32_t b) { return (a + b - 1) / b; }
    static int32_t Round16(int32_t v) { return (v + 15) / 16 * 16; }
    static int32_t Bytes(DataType t) {
        return t == DataType::DT_FLOAT || t == DataType::DT_INT32 ? 4 : t == DataType::DT_INT8 || t == DataType::DT_UINT8 ? 1 : 2;
    }
};

}  // namespace matmul_tiling

#endif  // AUTOFUSE_EMU_TILING_API_H
