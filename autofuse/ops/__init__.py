"""Op knowledge: op classes, per-node costs and reduction axes."""
from autofuse.ops.axes import reduction_signature
from autofuse.ops.table import NO_KERNEL_OPS, OP_CLASS, NodeCost, OpClass, is_kernel, node_cost, op_class

__all__ = [
    "NO_KERNEL_OPS", "OP_CLASS", "NodeCost", "OpClass", "is_kernel", "node_cost", "op_class",
    "reduction_signature",
]
