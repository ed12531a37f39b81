// Host harness of the limit-breaking test kernels (see harness.h for the command line).
#define TEST_KERNELS(X) \
    X(ub_overflow) X(misaligned_operand) X(queues_per_position) X(buffers_total) X(compare_count) \
    X(gm_write_past_buffer) X(gm_read_past_extent) X(ub_past_tensor) X(setvalue_past_tensor) \
    X(alloc_without_free) X(enque_past_depth) X(deque_empty) X(use_after_free) X(wait_without_set) \
    X(aiv_kernel_in_mix_mode) X(sync_all_divergent) X(crash) X(vector_on_aic)
#define TEST_KERNELS_XYZ(X)
#include "harness.h"
