"""CPU emulator of the Ascend C API subset autofuse's generated kernels use: C++ headers named like
CANN's (include/kernel_operator.h, tikicpulib.h, lib/matmul_intf.h) and `build`/`run` to compile a
kernel with g++ and execute it. See README.md in this directory."""
from autofuse.emulator.build import (
    CompileError,
    EmulatorError,
    EmulatorTarget,
    KernelRunError,
    Launch,
    RunResult,
    build,
    include_dir,
    run,
    target_for,
)

__all__ = ["CompileError", "EmulatorError", "EmulatorTarget", "KernelRunError", "Launch", "RunResult",
           "build", "include_dir", "run", "target_for"]
