"""Property-based tests of the fusion pass on random ONNX DAGs.

``tests/random_graphs.py`` builds small random valid models (elementwise, broadcasting,
Where/Cast, int64/bool, reductions, Softmax, LayerNormalization, view and data-movement
ops, MatMul epilogues, opaque If/Loop/Dropout, multi-consumer values, mid-chain graph
outputs, fp16, the symbolic dim ``N`` and empty tensors).  For each model and each
``opt_level`` in (2, 3) we check

1. the rewritten model passes ``onnx.checker.check_model`` and gives the same outputs
   as the original in onnxruntime (``verify_models(...).ok``), for models with the
   symbolic dim ``N`` at two values of ``N``;
2. ``report["groups"]`` partitions a subset of the original nodes: members are original
   node names, no node is in two groups, and every original node is either in a group
   or still present by name in the rewritten main graph (nothing lost, nothing
   duplicated);
3. determinism: fusing the same model twice gives identical ``report["groups"]``;

and at ``opt_level=0`` the model keeps its node count and the report has no groups.

Runs are reproducible (``derandomize=True``, no example database).  Set
``AUTOFUSE_PROPERTY_EXAMPLES`` to scale the number of random examples (e.g. 1000 for a
long local soak).  A failing example is printed as ONNX text (``GraphCase.__repr__``).
"""

from __future__ import annotations

import collections
import os

import numpy as np
import onnx
import pytest

pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402

try:  # tests/ as a package or as a rootdir-relative module
    from . import random_graphs as rg
except ImportError:
    import random_graphs as rg

LEVELS = (2, 3)
_SCALE = int(os.environ.get("AUTOFUSE_PROPERTY_EXAMPLES", "0"))


def _settings(max_examples: int):
    return settings(
        max_examples=_SCALE or max_examples,
        deadline=None,
        derandomize=True,
        database=None,
        print_blob=False,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                               HealthCheck.filter_too_much, HealthCheck.large_base_example],
    )


def _copy(model: onnx.ModelProto) -> onnx.ModelProto:
    m = onnx.ModelProto()
    m.CopyFrom(model)
    return m


def _fuse(model: onnx.ModelProto, level: int):
    from autofuse import fuse

    try:
        return fuse(_copy(model), opt_level=level)
    except Exception as exc:  # name the level; hypothesis still tells failures apart by type
        if hasattr(exc, "add_note"):  # Python 3.11+
            exc.add_note(f"raised by fuse(model, opt_level={level})")
        raise


def _verify(original: onnx.ModelProto, rewritten: onnx.ModelProto, inputs: dict):
    from autofuse.verify import verify_models

    return verify_models(original, rewritten, inputs=dict(inputs))


# ----------------------------------------------------------------------------- properties


def check_partition(original: onnx.ModelProto, rewritten: onnx.ModelProto, groups: list, level: int) -> None:
    """Property 2: groups partition a subset of the original nodes; nothing lost or duplicated."""
    orig = {n.name: n for n in original.graph.node}
    assert len(orig) == len(original.graph.node), "generator must give unique node names"
    where = collections.defaultdict(list)
    for g in groups:
        assert g["members"], f"level {level}: group {g['id']} has no members"
        for m in g["members"]:
            assert m in orig, f"level {level}: group {g['id']} lists {m!r}, which is not an original node"
            where[m].append(g["id"])
    twice = {m: ids for m, ids in where.items() if len(ids) > 1}
    assert not twice, f"level {level}: nodes in more than one group (or twice in one): {twice}"

    now = collections.defaultdict(list)
    for n in rewritten.graph.node:
        now[n.name].append(n)
    lost = [name for name in orig if name not in where and name not in now]
    assert not lost, f"level {level}: nodes neither grouped nor kept in the rewritten graph: {lost}"

    multi = {m for g in groups if len(g["members"]) > 1 for m in g["members"]}
    duplicated = [name for name in multi if any(_same_node(n, orig[name]) for n in now.get(name, ()))]
    assert not duplicated, (
        f"level {level}: nodes fused into a group but still present unchanged in the rewritten graph: {duplicated}")


def _same_node(a: onnx.NodeProto, b: onnx.NodeProto) -> bool:
    return (a.op_type, a.domain, list(a.input), list(a.output)) == (b.op_type, b.domain, list(b.input), list(b.output))


def check_case(case: rg.GraphCase, levels=LEVELS) -> None:
    original = case.model
    onnx.checker.check_model(original, full_check=True)  # the generator's own contract
    before = original.SerializeToString()
    for level in levels:
        res = _fuse(original, level)
        # 1. valid (strict shape inference included) and equivalent
        onnx.checker.check_model(res.model, full_check=True)
        v = _verify(original, res.model, case.inputs)
        assert v.ok, f"level {level}: {v.summary()}"
        if case.symbolic:  # the rewrite must not specialise on one value of N
            other = 3 if case.n != 3 else 1
            v = _verify(original, res.model, case.feeds_for(other, seed=1))
            assert v.ok, f"level {level}, N={other}: {v.summary()}"
        # 2. groups partition a subset of the original nodes
        groups = res.report["groups"]
        check_partition(original, res.model, groups, level)
        # 3. determinism
        again = _fuse(original, level)
        assert again.report["groups"] == groups, f"level {level}: fusing twice gave different groups"
    assert original.SerializeToString() == before  # (we pass copies; guards the test itself)


def check_level0(case: rg.GraphCase) -> None:
    original = case.model
    res = _fuse(original, 0)
    assert len(res.model.graph.node) == len(original.graph.node), (
        f"level 0 changed the node count: {len(original.graph.node)} -> {len(res.model.graph.node)}")
    assert not res.report["groups"], f"level 0 reported groups: {res.report['groups']}"
    onnx.checker.check_model(res.model)
    v = _verify(original, res.model, case.inputs)
    assert v.ok, f"level 0: {v.summary()}"


# ----------------------------------------------------------------------------- random models


@_settings(max_examples=1500)
@given(case=rg.random_models())
def test_fusion_preserves_outputs_and_partitions_nodes(case):
    check_case(case)


@_settings(max_examples=200)
@given(case=rg.random_models())
def test_level0_is_identity(case):
    check_level0(case)


@_settings(max_examples=150)
@given(case=rg.random_models())
def test_generator_builds_valid_runnable_models(case):
    """The strategy itself: valid opset-17/IR-10 models whose declared output shapes and
    dtypes match what onnxruntime computes, with finite float outputs.  Does not need
    autofuse, so it keeps the generator honest on its own."""
    import onnxruntime as ort

    m = case.model
    assert m.ir_version == rg.IR_VERSION and [(o.domain, o.version) for o in m.opset_import] == [("", rg.OPSET)]
    onnx.checker.check_model(m, full_check=True)
    names = [n.name for n in m.graph.node]
    assert all(names) and len(set(names)) == len(names)
    assert 2 <= len(names) <= 25
    options = ort.SessionOptions()
    options.log_severity_level = 3
    sess = ort.InferenceSession(m.SerializeToString(), options, providers=["CPUExecutionProvider"])
    outs = sess.run(None, case.inputs)
    for out, vi in zip(outs, m.graph.output):
        tt = vi.type.tensor_type
        want = [d.dim_value if d.HasField("dim_value") else case.n for d in tt.shape.dim]
        assert list(out.shape) == want, (vi.name, out.shape, want)
        assert out.dtype == onnx.helper.tensor_dtype_to_np_dtype(tt.elem_type), vi.name
        if out.dtype.kind == "f":
            assert np.isfinite(out).all(), f"non-finite values in {vi.name}"


# ----------------------------------------------------------------------------- hand-written regressions


@pytest.mark.parametrize("name", sorted(rg.HAND_CASES))
def test_hand_written_case(name):
    """Diamond, a chain whose middle value is a graph output, an fp16 chain, a symbolic
    dim, and two shrunk examples of groups that feed each other."""
    case = rg.HAND_CASES[name]()
    check_case(case)
    check_level0(case)
