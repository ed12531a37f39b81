"""Op knowledge: the class of every default-domain ONNX op, and what one node of it costs.

One table (`OP_CLASS`) says how each op may take part in fusion; `node_cost` says how many bytes a
node moves through HBM and how many FLOPs it does when it runs as its own kernel. Ops in other
domains, and ops this table does not know, are OPAQUE: never fused, left exactly as they are.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum

from autofuse.ir.graph import Graph, Node, TensorType


class OpClass(IntEnum):
    """How an op may be fused. Ordered from most to least fusible (as TVM's OpPatternKind)."""

    ELEMENTWISE = 0  # one output element from the same-index input elements (with broadcasting)
    BROADCAST = 1  # copies its input along new or size-1 axes (Expand)
    VIEW = 2  # reinterprets a contiguous buffer: no kernel of its own
    METADATA = 3  # reads no tensor data (Constant, Shape, Size): no kernel of its own
    INJECTIVE = 4  # moves data: every output element comes from one input element
    REDUCTION = 5  # combines elements along axes
    NORMALIZATION = 6  # reduce-then-broadcast over rows (Softmax, LayerNormalization, ...)
    CONTRACTION = 7  # matrix multiplication and convolution: the cube unit's work
    OPAQUE = 8  # control flow, sequences, randomness, strings, custom domains, anything unknown


def _classes(kind: OpClass, names: str) -> dict[str, OpClass]:
    return {name: kind for name in names.split()}


OP_CLASS: dict[str, OpClass] = {
    **_classes(OpClass.ELEMENTWISE, """
        Abs Acos Acosh Add And Asin Asinh Atan Atanh BitShift BitwiseAnd BitwiseNot BitwiseOr
        BitwiseXor Cast CastLike Ceil Celu Clip Cos Cosh DequantizeLinear Div Elu Equal Erf Exp
        Floor Gelu Greater GreaterOrEqual HardSigmoid HardSwish IsInf IsNaN LeakyRelu Less
        LessOrEqual Log Max Mean Min Mish Mod Mul Neg Not Or PRelu Pow QuantizeLinear Reciprocal
        Relu Round Selu Shrink Sigmoid Sign Sin Sinh Softplus Softsign Sqrt Sub Sum Swish Tan Tanh
        ThresholdedRelu Where Xor"""),
    **_classes(OpClass.BROADCAST, "Expand"),
    **_classes(OpClass.VIEW, "Reshape Squeeze Unsqueeze Flatten Identity"),
    **_classes(OpClass.METADATA, "Constant Shape Size"),
    **_classes(OpClass.INJECTIVE, """
        BitCast CenterCropPad Col2Im Concat ConstantOfShape DepthToSpace EyeLike Gather
        GatherElements GatherND OneHot Pad Range Resize ReverseSequence RotaryEmbedding Scatter
        ScatterElements ScatterND SpaceToDepth Slice Split TensorScatter Tile Transpose Trilu
        Upsample"""),
    **_classes(OpClass.REDUCTION, """
        ArgMax ArgMin GlobalAveragePool GlobalLpPool GlobalMaxPool ReduceL1 ReduceL2 ReduceLogSum
        ReduceLogSumExp ReduceMax ReduceMean ReduceMin ReduceProd ReduceSum ReduceSumSquare"""),
    **_classes(OpClass.NORMALIZATION, """
        BatchNormalization GroupNormalization Hardmax InstanceNormalization LayerNormalization
        LogSoftmax LpNormalization LRN MeanVarianceNormalization RMSNormalization Softmax"""),
    **_classes(OpClass.CONTRACTION, """
        Attention Conv ConvInteger ConvTranspose DeformConv Einsum Gemm LinearAttention MatMul
        MatMulInteger QLinearConv QLinearMatMul"""),
    # Opaque on purpose: control flow and sequences (If, Loop, Scan, Sequence*, Optional*),
    # randomness (Dropout, Random*, Bernoulli, Multinomial), data-dependent output sizes
    # (NonZero, Unique, Compress, NonMaxSuppression, TopK), scans (CumSum, CumProd), windowed and
    # recurrent ops, signal processing, strings, images, losses and ops that are already fused.
    **_classes(OpClass.OPAQUE, """
        AffineGrid AveragePool Bernoulli BlackmanWindow CausalConvWithState Compress
        ConcatFromSequence CumProd CumSum DFT Det Dropout DynamicQuantizeLinear GRU GridSample
        HammingWindow HannWindow If ImageDecoder LSTM Loop LpPool MaxPool MaxRoiPool MaxUnpool
        MelWeightMatrix Multinomial NegativeLogLikelihoodLoss NonMaxSuppression NonZero Optional
        OptionalGetElement OptionalHasElement RandomNormal RandomNormalLike RandomUniform
        RandomUniformLike RegexFullMatch RNN RoiAlign STFT Scan SequenceAt SequenceConstruct
        SequenceEmpty SequenceErase SequenceInsert SequenceLength SequenceMap SoftmaxCrossEntropyLoss
        SplitToSequence StringConcat StringNormalizer StringSplit SwiGLU TfIdfVectorizer TopK
        Unique"""),
}

# Ops that launch no kernel on a contiguous tensor. The report's kernel count excludes them.
NO_KERNEL_OPS = frozenset("Constant Identity Reshape Squeeze Unsqueeze Flatten Shape Size".split())


def op_class(node: Node) -> OpClass:
    """The fusion class of a node; anything outside the default domain is OPAQUE. A Reduce* whose
    optional `axes` input is absent and that has noop_with_empty_axes set reduces nothing: it is
    elementwise (ReduceSumSquare squares, ReduceL1 takes the absolute value, the others copy)."""
    if node.domain not in ("", "ai.onnx"):
        return OpClass.OPAQUE
    kind = OP_CLASS.get(node.op_type, OpClass.OPAQUE)
    if kind == OpClass.REDUCTION and node.attrs.get("noop_with_empty_axes", 0) and node.op_type.startswith("Reduce") \
            and not (len(node.inputs) > 1 and node.inputs[1]) and not node.attrs.get("axes"):
        return OpClass.ELEMENTWISE
    return kind


def reads_only_metadata(node: Node) -> bool:
    """Shape and Size read a tensor's shape, never its data."""
    return node.op_type in ("Shape", "Size") and node.domain in ("", "ai.onnx")


def scalar_factor(node: Node, graph: Graph) -> tuple[str, str] | None:
    """(data operand, constant operand) of `x * c`, `c * x` or `x / c` where c is one float
    number: a scale that a MatMul reading the result may apply to its own output instead."""
    if node.op_type not in ("Mul", "Div") or len(node.inputs) != 2:
        return None
    for position in (1,) if node.op_type == "Div" else (1, 0):
        value = graph.constant(node.inputs[position])
        if value is not None and value.size == 1 and value.dtype.kind == "f":
            return node.inputs[1 - position], node.inputs[position]
    return None


def is_kernel(node: Node, graph: Graph) -> bool:
    """Whether the node launches a kernel of its own (the definition the report counts)."""
    if node.op_type in NO_KERNEL_OPS and node.domain in ("", "ai.onnx"):
        return False
    return not all(v in graph.constants for v in node.all_inputs)


# -- cost of one node ---------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeCost:
    """HBM traffic and arithmetic of one node run alone. None where a shape is unknown."""

    bytes_read: int | None
    bytes_written: int | None
    flops: int | None

    @property
    def bytes_total(self) -> int | None:
        if self.bytes_read is None or self.bytes_written is None:
            return None
        return self.bytes_read + self.bytes_written


ZERO_COST = NodeCost(0, 0, 0)

# Inputs of these ops are read only where the output needs them: count the output's size once
# for the data operand instead of the whole input (a Gather reads rows, not the whole table).
_READS_OUTPUT_SIZED = {"Gather": 0, "GatherElements": 0, "GatherND": 0, "Slice": 0}


def _sum(values: list[int | None]) -> int | None:
    return None if any(v is None for v in values) else sum(values)  # type: ignore[arg-type]


def node_bytes(node: Node, nbytes: Callable[[str], int | None]) -> tuple[int | None, int | None]:
    """(bytes read, bytes written) of one node as its own kernel, with `nbytes` sizing a value.

    Each distinct input is read once; a Gather or Slice reads only as much of its data operand
    as it writes. None where `nbytes` cannot size a value.
    """
    outputs = [v for v in node.outputs if v]
    written = _sum([nbytes(v) for v in outputs])
    sized = _READS_OUTPUT_SIZED.get(node.op_type)
    reads: list[int | None] = []
    seen: set[str] = set()
    for position, value in enumerate(node.inputs):
        if not value or value in seen:
            continue
        seen.add(value)
        reads.append(nbytes(outputs[0] if position == sized and outputs else value))
    return _sum(reads), written


def node_cost(node: Node, graph: Graph) -> NodeCost:
    """Bytes read, bytes written and FLOPs of one node as a separate kernel (static shapes)."""
    if not is_kernel(node, graph) or op_class(node) in (OpClass.VIEW, OpClass.METADATA):
        return ZERO_COST
    reads, written = node_bytes(node, lambda v: graph.type_of(v).nbytes())
    return NodeCost(reads, written, node_flops(node, graph))


def node_flops(node: Node, graph: Graph) -> int | None:
    """Arithmetic operations of one node (multiply-add counted as two)."""
    kind = op_class(node)
    out = graph.type_of(node.outputs[0]) if node.outputs else TensorType(None, None)
    first = graph.type_of(node.inputs[0]) if node.inputs and node.inputs[0] else out
    if kind == OpClass.ELEMENTWISE:
        return out.numel()
    if kind in (OpClass.REDUCTION, OpClass.NORMALIZATION):
        n = first.numel()
        return None if n is None else n * (1 if kind == OpClass.REDUCTION else 5)
    if node.op_type in ("MatMul", "Gemm", "MatMulInteger"):
        return _matmul_flops(node, graph)
    if node.op_type in ("Conv", "ConvInteger"):
        weight = graph.type_of(node.inputs[1])
        n = out.numel()
        if n is None or not weight.is_static:
            return None
        return 2 * n * math.prod(weight.shape[1:])  # type: ignore[index,arg-type]
    return 0


def _matmul_flops(node: Node, graph: Graph) -> int | None:
    a = graph.type_of(node.inputs[0])
    out = graph.type_of(node.outputs[0])
    n = out.numel()
    if n is None or not a.is_static or not a.shape:
        return None
    k = a.shape[0] if node.op_type == "Gemm" and node.attrs.get("transA", 0) else a.shape[-1]
    return 2 * n * int(k)  # type: ignore[arg-type]
