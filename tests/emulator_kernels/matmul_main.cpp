// Host harness of the matmul test kernels: the TCubeTiling comes from the host tiling API, as an
// op_host tiling function computes it on CANN.
// Usage: matmul_main KERNEL BLOCKS MODE M N K ALPHA a.bin b.bin bias.bin|null c.bin
#include <cstdio>
#include <cstdlib>
#include <string>

#include "tikicpulib.h"
#include "tiling/tiling_api.h"

struct MatmulTestTiling {
    TCubeTiling cube;
    float alpha;
};

extern "C" void matmul_leakyrelu(GM_ADDR, GM_ADDR, GM_ADDR, GM_ADDR, GM_ADDR, GM_ADDR);
extern "C" void matmul_all(GM_ADDR, GM_ADDR, GM_ADDR, GM_ADDR, GM_ADDR, GM_ADDR);

static uint8_t* ReadGm(const char* path, size_t* bytes)
{
    FILE* f = std::fopen(path, "rb");
    if (!f) { std::fprintf(stderr, "cannot read %s\n", path); std::exit(2); }
    std::fseek(f, 0, SEEK_END);
    *bytes = static_cast<size_t>(std::ftell(f));
    std::fseek(f, 0, SEEK_SET);
    uint8_t* p = static_cast<uint8_t*>(AscendC::GmAlloc(*bytes));
    if (std::fread(p, 1, *bytes, f) != *bytes) std::exit(2);
    std::fclose(f);
    return p;
}

int main(int argc, char** argv)
{
    if (argc != 12) { std::fprintf(stderr, "usage: see matmul_main.cpp\n"); return 2; }
    std::string kernel = argv[1], mode = argv[3];
    int blocks = std::atoi(argv[2]), m = std::atoi(argv[4]), n = std::atoi(argv[5]), k = std::atoi(argv[6]);
    bool mix = mode == "mix";
    MatmulTestTiling td{};
    td.alpha = static_cast<float>(std::atof(argv[7]));
    matmul_tiling::MultiCoreMatmulTiling tiler;
    tiler.SetDim(mix ? 2 * blocks : blocks);
    tiler.SetAType(matmul_tiling::TPosition::GM, matmul_tiling::CubeFormat::ND, matmul_tiling::DataType::DT_FLOAT16);
    tiler.SetBType(matmul_tiling::TPosition::GM, matmul_tiling::CubeFormat::ND, matmul_tiling::DataType::DT_FLOAT16,
                   kernel == "matmul_all");
    tiler.SetCType(matmul_tiling::TPosition::GM, matmul_tiling::CubeFormat::ND, matmul_tiling::DataType::DT_FLOAT);
    tiler.SetBiasType(matmul_tiling::TPosition::GM, matmul_tiling::CubeFormat::ND, matmul_tiling::DataType::DT_FLOAT);
    tiler.SetOrgShape(m, n, k);
    tiler.SetShape(m, n, k);
    tiler.EnableBias(kernel == "matmul_leakyrelu");
    tiler.SetBufferSpace(-1, -1, -1);
    if (tiler.GetTiling(td.cube) != 0) { std::fprintf(stderr, "tiling failed\n"); return 2; }
    const TCubeTiling& t = td.cube;
    std::printf("usedCoreNum=%d singleCoreM=%d singleCoreN=%d singleCoreK=%d baseM=%d baseN=%d baseK=%d\n",
                t.usedCoreNum, t.singleCoreM, t.singleCoreN, t.singleCoreK, t.baseM, t.baseN, t.baseK);
    size_t bytes;
    uint8_t* a = ReadGm(argv[8], &bytes);
    uint8_t* b = ReadGm(argv[9], &bytes);
    uint8_t* bias = std::string(argv[10]) == "null" ? nullptr : ReadGm(argv[10], &bytes);
    size_t cBytes = size_t(m) * n * (kernel == "matmul_all" ? 2 : 4);
    uint8_t* c = static_cast<uint8_t*>(AscendC::GmAlloc(cBytes));
    uint8_t* tilingGm = static_cast<uint8_t*>(AscendC::GmAlloc(sizeof(td)));
    std::memcpy(tilingGm, &td, sizeof(td));
    AscendC::SetKernelMode(mix ? KernelMode::MIX_MODE : mode == "aic" ? KernelMode::AIC_MODE : KernelMode::AIV_MODE);
    if (kernel == "matmul_leakyrelu") ICPU_RUN_KF(matmul_leakyrelu, blocks, a, b, bias, c, nullptr, tilingGm);
    else ICPU_RUN_KF(matmul_all, blocks, a, b, bias, c, nullptr, tilingGm);
    FILE* f = std::fopen(argv[11], "wb");
    std::fwrite(c, 1, cBytes, f);
    std::fclose(f);
    AscendC::GmFree(c);
    return 0;
}
