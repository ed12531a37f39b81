// Tiling of the test Add kernel: shared by the kernel and the host harness.
#ifndef ADD_CUSTOM_TILING_H
#define ADD_CUSTOM_TILING_H
#include <cstdint>

struct AddCustomTilingData {
    uint32_t totalLength;  // elements in x, y, z
    uint32_t blockLength;  // elements per core (the last core takes the remainder)
    uint32_t tileLength;   // elements per tile (a multiple of 32 bytes)
};
#endif
