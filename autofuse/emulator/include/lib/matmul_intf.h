// autofuse CPU emulator of the high-level Matmul API (lib/matmul_intf.h): C = A * B (+ bias) for
// one core's [singleM, singleN] block, tile by tile ([baseM, baseN], Iterate + GetTensorC) or at
// once (IterateAll).
//
// The cube is not emulated instruction by instruction: products are accumulated in float (as in
// L0C) in K order and rounded to C's type. A, B and bias come from GM (ND format). The AIC side of a
// MIX kernel is folded into the AIV calls: each call computes synchronously.
//
// GM bytes counted: each SetTensorA/SetTensorB/SetBias block once, when first used (the least the
// cube can read; re-reads that the L1 tiling causes on hardware are not modelled), every C byte
// written to GM, and on the split architecture (A2/A3) each GetTensorC into UB twice: the cube
// writes the tile to a GM workspace and the vector core reads it back.
#ifndef AUTOFUSE_EMU_MATMUL_INTF_H
#define AUTOFUSE_EMU_MATMUL_INTF_H

#include "../kernel_operator.h"

struct MatmulConfig {
    int emuKind;  // 0 = NORM, 1 = MDL (the emulator computes both the same way)
};
inline constexpr MatmulConfig CFG_NORM{0};
inline constexpr MatmulConfig CFG_MDL{1};

namespace AscendC {

template <TPosition POSITION, CubeFormat FORMAT, typename TYPE, bool ISTRANS = false,
          LayoutMode LAYOUT = LayoutMode::NONE, bool IBSHARE = false>
struct MatmulType {
    constexpr static TPosition pos = POSITION;
    constexpr static CubeFormat format = FORMAT;
    using T = TYPE;
    constexpr static bool isTrans = ISTRANS;
    constexpr static LayoutMode layout = LAYOUT;
    constexpr static bool ibShare = IBSHARE;
};

template <class A_TYPE, class B_TYPE, class C_TYPE, class BIAS_TYPE = C_TYPE, const auto& MM_CFG = CFG_NORM>
class Matmul {
    using SrcAT = typename A_TYPE::T;
    using SrcBT = typename B_TYPE::T;
    using DstT = typename C_TYPE::T;
    using BiasT = typename BIAS_TYPE::T;
    static_assert(A_TYPE::format == CubeFormat::ND && B_TYPE::format == CubeFormat::ND &&
                      (C_TYPE::format == CubeFormat::ND || C_TYPE::format == CubeFormat::ND_ALIGN),
                  "Matmul: the emulator supports ND (row-major) A, B and C only");
    static_assert(std::is_same_v<SrcAT, SrcBT>, "Matmul: A and B must have the same element type");

public:
    Matmul() = default;

    void Init(const TCubeTiling* tiling, TPipe* tpipe = nullptr) {
        (void)tpipe;
        if (!tiling) EmuFail("Matmul Init with a null TCubeTiling");
        tiling_ = *tiling;
        inited_ = true;
        orgM_ = tiling_.M, orgN_ = tiling_.N, orgKa_ = tiling_.Ka, orgKb_ = tiling_.Kb;
        singleM_ = tiling_.singleCoreM, singleN_ = tiling_.singleCoreN, singleK_ = tiling_.singleCoreK;
    }

    void SetOrgShape(int orgM, int orgN, int orgK) { SetOrgShape(orgM, orgN, orgK, orgK); }
    void SetOrgShape(int orgM, int orgN, int orgKa, int orgKb, int orgKc = 0) {
        (void)orgKc;
        orgM_ = orgM, orgN_ = orgN, orgKa_ = orgKa, orgKb_ = orgKb;
    }
    void SetSingleShape(int singleM, int singleN, int singleK) {
        singleM_ = singleM, singleN_ = singleN, singleK_ = singleK;
        Restart();
    }
    void SetTail(int tailM = -1, int tailN = -1, int tailK = -1) {
        if (tailM > 0) singleM_ = tailM;
        if (tailN > 0) singleN_ = tailN;
        if (tailK > 0) singleK_ = tailK;
        Restart();
    }

    void SetTensorA(const GlobalTensor<SrcAT>& gm, bool isTransposeA = false) {
        a_ = gm, transA_ = isTransposeA || A_TYPE::isTrans, hasA_ = true, countedA_ = false;
        Restart();
    }
    void SetTensorB(const GlobalTensor<SrcBT>& gm, bool isTransposeB = false) {
        b_ = gm, transB_ = isTransposeB || B_TYPE::isTrans, hasB_ = true, countedB_ = false;
        Restart();
    }
    void SetBias(const GlobalTensor<BiasT>& biasGlobal) {
        bias_ = biasGlobal, hasBias_ = true, countedBias_ = false;
        Restart();
    }
    void DisableBias() { hasBias_ = false; }
    void ClearBias() { hasBias_ = false; }

    // Computes the next [baseM, baseN] tile of the block; false when every tile is done.
    template <bool sync = true>
    bool Iterate(bool enPartialSum = false) {
        (void)enPartialSum;
        Ready("Iterate");
        int mTiles = Ceil(singleM_, BaseM()), nTiles = Ceil(singleN_, BaseN());
        if (next_ >= mTiles * nTiles) {
            Restart();
            return false;
        }
        int t = next_++;
        bool mFirst = tiling_.iterateOrder == 0;
        tileM_ = mFirst ? t % mTiles : t / nTiles;
        tileN_ = mFirst ? t / mTiles : t % nTiles;
        curM_ = std::min(BaseM(), singleM_ - tileM_ * BaseM());
        curN_ = std::min(BaseN(), singleN_ - tileN_ * BaseN());
        Compute(tileM_ * BaseM(), tileN_ * BaseN(), curM_, curN_);
        return true;
    }

    // The current tile into UB: curM rows, each starting 32-byte aligned (row stride = curN rounded
    // up to a multiple of 32 bytes; equal to baseN for full tiles with 32-byte rows).
    template <bool sync = true>
    void GetTensorC(const LocalTensor<DstT>& c, uint8_t enAtomic = 0, bool enSequentialWrite = false) {
        (void)enSequentialWrite;
        if (curM_ == 0) EmuFail("Matmul GetTensorC before a successful Iterate");
        if (enAtomic) EmuFail("Matmul GetTensorC into UB with enAtomic is not emulated");
        int stride = (curN_ * int(sizeof(DstT)) + 31) / 32 * 32 / int(sizeof(DstT));
        DstT* d = EmuOperand("Matmul GetTensorC", "c", c, uint64_t(curM_ - 1) * stride + curN_);
        for (int i = 0; i < curM_; ++i)
            for (int j = 0; j < curN_; ++j) d[i * stride + j] = EmuNarrow<DstT>(double(acc_[i * curN_ + j]));
#if AUTOFUSE_EMU_SPLIT_ARCH
        uint64_t bytes = uint64_t(curM_) * curN_ * sizeof(DstT);  // workspace round trip through GM
        g_emuLaunch.gmWritten += bytes;
        g_emuLaunch.gmRead += bytes;
#endif
    }

    // The current tile into GM at its place in the block (row stride orgN).
    template <bool sync = true>
    void GetTensorC(const GlobalTensor<DstT>& gm, uint8_t enAtomic = 0, bool enSequentialWrite = false) {
        if (curM_ == 0) EmuFail("Matmul GetTensorC before a successful Iterate");
        int m0 = enSequentialWrite ? 0 : tileM_ * BaseM(), n0 = enSequentialWrite ? 0 : tileN_ * BaseN();
        int ld = enSequentialWrite ? curN_ : orgN_;
        StoreC(gm, m0, n0, ld, enAtomic);
    }

    // The whole [singleM, singleN] block into GM (row stride orgN).
    template <bool sync = true>
    void IterateAll(const GlobalTensor<DstT>& gm, uint8_t enAtomic = 0, bool enSequentialWrite = false,
                    bool waitIterateAll = false, bool fakeMsg = false) {
        (void)enSequentialWrite, (void)waitIterateAll, (void)fakeMsg;
        Ready("IterateAll");
        Restart();
        while (Iterate()) StoreC(gm, tileM_ * BaseM(), tileN_ * BaseN(), orgN_, enAtomic);
    }

    void End() { Restart(); }

private:
    TCubeTiling tiling_{};
    bool inited_ = false;
    int orgM_ = 0, orgN_ = 0, orgKa_ = 0, orgKb_ = 0, singleM_ = 0, singleN_ = 0, singleK_ = 0;
    GlobalTensor<SrcAT> a_;
    GlobalTensor<SrcBT> b_;
    GlobalTensor<BiasT> bias_;
    bool transA_ = false, transB_ = false, hasA_ = false, hasB_ = false, hasBias_ = false;
    bool countedA_ = false, countedB_ = false, countedBias_ = false;
    int next_ = 0, tileM_ = 0, tileN_ = 0, curM_ = 0, curN_ = 0;
    std::vector<float> acc_;

    static int Ceil(int a, int b) { return (a + b - 1) / b; }
    int BaseM() const { return tiling_.baseM > 0 ? tiling_.baseM : singleM_; }
    int BaseN() const { return tiling_.baseN > 0 ? tiling_.baseN : singleN_; }
    void Restart() { next_ = 0, curM_ = 0; }

    void Ready(const char* api) const {
        if (!inited_) EmuFail("Matmul %s before REGIST_MATMUL_OBJ / Init gave it a TCubeTiling", api);
        if (!hasA_ || !hasB_) EmuFail("Matmul %s before SetTensorA and SetTensorB", api);
        if (singleM_ <= 0 || singleN_ <= 0 || singleK_ <= 0)
            EmuFail("Matmul %s with single-core shape M=%d N=%d K=%d", api, singleM_, singleN_, singleK_);
        if (orgKa_ < (transA_ ? singleM_ : singleK_) || orgN_ < singleN_)
            EmuFail("Matmul %s: original shape (M=%d, N=%d, Ka=%d) smaller than the single-core shape", api, orgM_,
                    orgN_, orgKa_);
#if AUTOFUSE_EMU_SPLIT_ARCH
        if (g_emuLaunch.mode == KernelMode::AIV_MODE)
            EmuFail("Matmul %s in an AIV_MODE launch: the cube runs only in MIX_MODE (or AIC_MODE)", api);
#endif
    }

    // Element offsets in A ([M, K], or [K, M] transposed) and B ([K, N], or [N, K] transposed).
    uint64_t OffA(int m, int k) const { return transA_ ? uint64_t(k) * orgM_ + m : uint64_t(m) * orgKa_ + k; }
    uint64_t OffB(int k, int n) const { return transB_ ? uint64_t(n) * orgKb_ + k : uint64_t(k) * orgN_ + n; }

    void Compute(int m0, int n0, int rows, int cols) {
        const int K = singleK_;
        // Bounds: the whole block this object reads, checked (and counted) once per SetTensor.
        uint64_t aEnd = OffA(singleM_ - 1, K - 1) + 1;
        uint64_t bEnd = OffB(K - 1, singleN_ - 1) + 1;
        const SrcAT* A = reinterpret_cast<const SrcAT*>(a_.EmuCheck("Matmul SetTensorA", 0, aEnd));
        const SrcBT* B = reinterpret_cast<const SrcBT*>(b_.EmuCheck("Matmul SetTensorB", 0, bEnd));
        if (!countedA_) g_emuLaunch.gmRead += uint64_t(singleM_) * K * sizeof(SrcAT), countedA_ = true;
        if (!countedB_) g_emuLaunch.gmRead += uint64_t(K) * singleN_ * sizeof(SrcBT), countedB_ = true;
        const BiasT* bias = nullptr;
        if (hasBias_) {
            bias = reinterpret_cast<const BiasT*>(bias_.EmuCheck("Matmul SetBias", 0, singleN_));
            if (!countedBias_) g_emuLaunch.gmRead += uint64_t(singleN_) * sizeof(BiasT), countedBias_ = true;
        }
        acc_.assign(size_t(rows) * cols, 0.0f);
        for (int i = 0; i < rows; ++i)
            for (int j = 0; j < cols; ++j) {
                float s = bias ? float(EmuWiden(bias[n0 + j])) : 0.0f;
                for (int k = 0; k < K; ++k)
                    s += float(EmuWiden(A[OffA(m0 + i, k)])) * float(EmuWiden(B[OffB(k, n0 + j)]));
                acc_[size_t(i) * cols + j] = s;
            }
    }

    void StoreC(const GlobalTensor<DstT>& gm, int m0, int n0, int ld, uint8_t enAtomic) {
        const uint64_t last = uint64_t(m0 + curM_ - 1) * ld + n0 + curN_;
        uint8_t* base = gm.EmuCheck("Matmul GetTensorC/IterateAll", 0, last);
        int saved = g_emuCore.atomic;
        if (enAtomic) g_emuCore.atomic = 1;
        for (int i = 0; i < curM_; ++i) {
            std::vector<DstT> row(curN_);
            for (int j = 0; j < curN_; ++j) row[j] = EmuNarrow<DstT>(double(acc_[size_t(i) * curN_ + j]));
            EmuGmStore<DstT>(base + (uint64_t(m0 + i) * ld + n0) * sizeof(DstT),
                             reinterpret_cast<const uint8_t*>(row.data()), curN_ * sizeof(DstT));
        }
        g_emuCore.atomic = saved;
    }
};

// REGIST_MATMUL_OBJ(&pipe, GetSysWorkSpacePtr(), mm1[, &tiling1][, mm2, &tiling2 ...])
template <class MM>
inline void EmuRegistMatmul(TPipe*, GM_ADDR, MM&) {}
template <class MM, class... Rest>
inline void EmuRegistMatmul(TPipe* pipe, GM_ADDR ws, MM& mm, const TCubeTiling* tiling, Rest&&... rest) {
    mm.Init(tiling, pipe);
    if constexpr (sizeof...(Rest) > 0) EmuRegistMatmul(pipe, ws, rest...);
}

}  // namespace AscendC

namespace matmul {
using AscendC::Matmul;
using AscendC::MatmulType;
}  // namespace matmul

#define REGIST_MATMUL_OBJ(tpipe, workspace, ...) AscendC::EmuRegistMatmul(tpipe, workspace, __VA_ARGS__)

#endif  // AUTOFUSE_EMU_MATMUL_INTF_H
