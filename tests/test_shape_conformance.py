"""The shape evaluator against onnxruntime's actual output shapes on every ONNX backend node case.

`shape_conformance.py` runs each case: our evaluator from the inputs' shapes and values alone
(and again with only the values of inputs read as parameters), onnxruntime with every node
output exposed (the case's expected outputs where onnxruntime cannot run the model).
`python tests/shape_conformance.py` prints the same counts. One test, so that pytest-xdist runs
the pass over the cases once.
"""
from __future__ import annotations

try:  # tests/ as a package or as a rootdir-relative directory
    from . import shape_conformance as sc
except ImportError:
    import shape_conformance as sc  # type: ignore[no-redef]


def test_shapes_match_onnxruntime_on_every_backend_node_case():
    results = sc.check_all()
    s = sc.summarize(results)
    print(f"\ncases compared {s['cases_compared']} ({s['cases_compared_ort']} against onnxruntime), "
          f"values compared {s['values_compared']} ({s['values_compared_shape_only']} with parameter "
          f"values only), stopped at {dict(s['stopped_at'])}")

    # 1. Every shape we give is the one onnxruntime computes.
    wrong = [(r.name, *w) for r in results for w in r.wrong]
    assert not wrong, "(case, value, op, ours, reference):\n" + "\n".join(map(str, wrong[:30]))

    # 2. Sizing stops only at outputs whose shape is data (or at ops outside the default domain).
    assert not s["stopped_not_allowed"], "(case, op, output, value):\n" + "\n".join(
        map(str, s["stopped_not_allowed"][:30]))
    # Every default-domain op the cases run has an output we size, but those whose only outputs
    # are data-dependent.
    never = {op for op in s["ops_never_sized"] if not op.startswith(sc.OTHER_DOMAINS)}
    assert never <= {"NonZero", "NonMaxSuppression", "Compress", "ImageDecoder"}, sorted(never)
    # The list stays justified: each entry is seen to stop sizing in some case.
    assert set(sc.DATA_DEPENDENT) <= set(s["stopped_at"]), sorted(set(sc.DATA_DEPENDENT) - set(s["stopped_at"]))

    # 3. The comparison is not vacuous.
    assert s["cases"] >= 1800, s
    assert s["cases_compared"] >= 0.99 * s["cases"] and s["cases_compared_ort"] >= 0.9 * s["cases"], s
    assert s["values_compared"] >= 6 * s["cases_compared"], s
    assert s["values_compared_shape_only"] >= 0.95 * s["values_compared"], s
    assert len([op for op in s["ops_compared"] if not op.startswith(sc.OTHER_DOMAINS)]) >= 180, s
