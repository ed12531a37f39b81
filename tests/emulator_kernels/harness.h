// Generic host harness of the emulator test kernels, included by each *_main.cpp after it defines
// TEST_KERNELS(X) (kernels taking four data GM_ADDRs + workspace + tiling) and TEST_KERNELS_XYZ(X)
// (kernels taking x, y, z + workspace + tiling).
//
// Usage: MAIN KERNEL BLOCKS MODE TILING.bin ARG...   MODE: aiv | mix | aic
//   ARG: in:PATH (GmAlloc'd copy of the file)   out:BYTES:PATH (zeroed, written to PATH afterwards)
//        ws:BYTES (zeroed workspace)   null   host:BYTES (plain malloc, not GmAlloc: must be rejected)
//        key:N (ICPU_SET_TILING_KEY(N); not a kernel argument)
// The tiling file is copied into a GmAlloc'd block passed as the last argument.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "tikicpulib.h"

#define TEST_DECLARE6(k) extern "C" void k(GM_ADDR, GM_ADDR, GM_ADDR, GM_ADDR, GM_ADDR, GM_ADDR);
#define TEST_DECLARE5(k) extern "C" void k(GM_ADDR, GM_ADDR, GM_ADDR, GM_ADDR, GM_ADDR);
TEST_KERNELS(TEST_DECLARE6)
TEST_KERNELS_XYZ(TEST_DECLARE5)

namespace {

uint8_t* ReadGm(const std::string& path)
{
    FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) { std::fprintf(stderr, "cannot read %s\n", path.c_str()); std::exit(2); }
    std::fseek(f, 0, SEEK_END);
    size_t bytes = static_cast<size_t>(std::ftell(f));
    std::fseek(f, 0, SEEK_SET);
    uint8_t* p = static_cast<uint8_t*>(AscendC::GmAlloc(bytes));
    if (std::fread(p, 1, bytes, f) != bytes) { std::fprintf(stderr, "short read %s\n", path.c_str()); std::exit(2); }
    std::fclose(f);
    return p;
}

struct Out {
    uint8_t* data;
    size_t bytes;
    std::string path;
};

}  // namespace

int main(int argc, char** argv)
{
    if (argc < 5) { std::fprintf(stderr, "usage: %s KERNEL BLOCKS MODE TILING ARG...\n", argv[0]); return 2; }
    std::string kernel = argv[1], mode = argv[3];
    int blocks = std::atoi(argv[2]);
    std::vector<uint8_t*> args;
    std::vector<Out> outs;
    for (int i = 5; i < argc; ++i) {
        std::string a = argv[i];
        if (a.rfind("in:", 0) == 0) {
            args.push_back(ReadGm(a.substr(3)));
        } else if (a.rfind("out:", 0) == 0) {
            size_t colon = a.find(':', 4);
            size_t bytes = std::strtoull(a.substr(4, colon - 4).c_str(), nullptr, 10);
            args.push_back(static_cast<uint8_t*>(AscendC::GmAlloc(bytes)));
            outs.push_back(Out{args.back(), bytes, a.substr(colon + 1)});
        } else if (a.rfind("ws:", 0) == 0) {
            args.push_back(static_cast<uint8_t*>(AscendC::GmAlloc(std::strtoull(a.c_str() + 3, nullptr, 10))));
        } else if (a.rfind("key:", 0) == 0) {
            ICPU_SET_TILING_KEY(std::strtoull(a.c_str() + 4, nullptr, 10));
        } else if (a.rfind("host:", 0) == 0) {
            args.push_back(static_cast<uint8_t*>(std::calloc(1, std::strtoull(a.c_str() + 5, nullptr, 10))));
        } else {
            args.push_back(nullptr);
        }
    }
    args.push_back(ReadGm(argv[4]));
    AscendC::SetKernelMode(mode == "aiv" ? KernelMode::AIV_MODE : mode == "aic" ? KernelMode::AIC_MODE
                                                                               : KernelMode::MIX_MODE);
    while (args.size() < 6) args.insert(args.end() - 1, nullptr);
    bool found = false;
#define TEST_RUN6(k) \
    if (kernel == #k) found = true, ICPU_RUN_KF(k, blocks, args[0], args[1], args[2], args[3], args[4], args[5]);
#define TEST_RUN5(k) \
    if (kernel == #k) found = true, ICPU_RUN_KF(k, blocks, args[0], args[1], args[2], args[3], args[5]);
    TEST_KERNELS(TEST_RUN6)
    TEST_KERNELS_XYZ(TEST_RUN5)
    if (!found) { std::fprintf(stderr, "unknown kernel %s\n", kernel.c_str()); return 2; }
    for (const Out& o : outs) {
        FILE* f = std::fopen(o.path.c_str(), "wb");
        if (!f || std::fwrite(o.data, 1, o.bytes, f) != o.bytes) { std::fprintf(stderr, "cannot write\n"); return 2; }
        std::fclose(f);
    }
    std::printf("gm_bytes_read=%llu gm_bytes_written=%llu\n", (unsigned long long)AscendC::EmuGmBytesRead(),
                (unsigned long long)AscendC::EmuGmBytesWritten());
    return 0;
}
