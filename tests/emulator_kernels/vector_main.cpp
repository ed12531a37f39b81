// Host harness of the vector test kernels (see harness.h for the command line).
#define TEST_KERNELS(X) \
    X(chain_half) X(reduce_rows) X(whole_reduce_half) X(cast_modes) X(compare_select) X(copy_truncate) \
    X(pad_rows) X(scalar_gm) X(sync_all) X(activations) X(repeat_forms) X(atomic_add) X(tiling_key)
#define TEST_KERNELS_XYZ(X) X(add_custom_float) X(add_custom_half)
#include "harness.h"
