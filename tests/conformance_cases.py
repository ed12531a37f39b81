"""ONNX backend node conformance check for the autofuse fusion pass.

The backend node test cases are generated in-process from the installed onnx
package's test-case scripts (``onnx.backend.test.case.node.collect_testcases``,
the same source ``onnx/backend/test/cmd_tools.py generate-data`` serialises to
disk).  Nothing is downloaded and the data files shipped in the wheel are not
used.

For every case:

1. the *original* model is run with onnxruntime (CPUExecutionProvider) and the
   outputs are compared with the case's expected outputs, using the backend-test
   tolerances (the case's own ``rtol``/``atol``; 1e-3 / 1e-7 for node cases),
   NaN == NaN.  A case whose model ORT cannot load or run, or whose outputs do
   not match, is "not passed unfused" and is excluded;
2. otherwise the model is rewritten by ``autofuse.fuse(model, opt_level=3)`` and
   the rewritten model is run on the same inputs; it must load and match the
   expected outputs with the same tolerances.  ``InputError`` from ``fuse`` is
   counted as "rejected as unsupported input" (not a failure); any other
   exception is a failure.

Run ``python tests/conformance_cases.py`` for the summary table (``-j N`` runs
the cases in N worker processes, a case that crashes its process is a failure;
``-k SUBSTR`` filters by name; ``-v`` also lists the excluded cases).  The
pytest view of the same check is ``tests/test_conformance.py``.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

DEFAULT_RTOL = 1e-3
DEFAULT_ATOL = 1e-7
OPT_LEVEL = 3

# Outcome labels.
NOT_PASSED_UNFUSED = "not-passed-unfused"
PASS = "pass"
REJECTED = "rejected-unsupported-input"
FAIL = "fail"


# ---------------------------------------------------------------------------
# Generation
# ---------------------------------------------------------------------------


@dataclass
class Case:
    name: str
    model: onnx.ModelProto
    inputs: list[Any]  # numpy arrays / lists (sequences) / None (empty optional)
    outputs: list[Any]
    rtol: float = DEFAULT_RTOL
    atol: float = DEFAULT_ATOL


def _to_py(value: Any) -> Any:
    """TensorProto -> numpy; recurse into lists/tuples/dicts; keep None."""
    if isinstance(value, TensorProto):
        return numpy_helper.to_array(value)
    if isinstance(value, (list, tuple)):
        return [_to_py(v) for v in value]
    if isinstance(value, dict):
        return {k: _to_py(v) for k, v in value.items()}
    return value


_REPO_ROOT = Path(__file__).resolve().parents[1]
_CACHE_DIR = _REPO_ROOT / ".cache" / "conformance"
_CACHE_FORMAT = 1  # bump when the cached layout or the generation changes
_NO_CACHE_ENV = "AUTOFUSE_CONFORMANCE_NO_CACHE"


def _cache_path() -> Path:
    import hashlib
    import platform

    import ml_dtypes

    src = Path(node_cases_dir())
    stamp = max(f.stat().st_mtime_ns for f in src.glob("*.py"))
    key = repr(
        (_CACHE_FORMAT, onnx.__version__, str(src), stamp, np.__version__,
         ml_dtypes.__version__, platform.python_version())
    )
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return _CACHE_DIR / f"node-cases-onnx{onnx.__version__}-{digest}.pkl"


def node_cases_dir() -> str:
    import onnx.backend.test.case.node as node_pkg

    return os.path.dirname(node_pkg.__file__)


def _generate_raw() -> list[tuple]:
    """(name, model bytes, inputs, outputs, rtol, atol) for every node case."""
    from onnx.backend.test.case import node as node_cases

    # Most scripts draw their inputs from numpy's global RNG without seeding
    # it: seed it so every run (and every pytest-xdist worker) sees the same
    # data, then restore the caller's RNG state.
    rng_state = np.random.get_state()
    np.random.seed(0)
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            raw = node_cases.collect_testcases()
    finally:
        np.random.set_state(rng_state)
    rows = []
    for tc in raw:
        assert tc.model is not None and tc.data_sets, tc.name
        # Node cases have exactly one data set; keep the general form anyway.
        for i, (inputs, outputs) in enumerate(tc.data_sets):
            rows.append((
                tc.name if len(tc.data_sets) == 1 else f"{tc.name}_{i}",
                tc.model.SerializeToString(),
                [_to_py(v) for v in inputs],
                [_to_py(v) for v in outputs],
                tc.rtol if tc.rtol is not None else DEFAULT_RTOL,
                tc.atol if tc.atol is not None else DEFAULT_ATOL,
            ))
    rows.sort(key=lambda r: r[0])
    return rows


def _load_or_generate() -> list[tuple]:
    import pickle
    import tempfile

    if os.environ.get(_NO_CACHE_ENV):
        return _generate_raw()
    path = _cache_path()
    try:
        with open(path, "rb") as f:
            return pickle.load(f)
    except Exception:  # noqa: BLE001  (missing / stale / corrupt: regenerate)
        pass
    rows = _generate_raw()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # atomic publish: pytest-xdist workers may race on a cold cache
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            pickle.dump(rows, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    except OSError:
        pass
    return rows


@functools.lru_cache(maxsize=1)
def generate_cases() -> tuple[Case, ...]:
    """All node test cases of the installed onnx package, sorted by name.

    Generating takes ~6 s on one core (importing the ~200 test-case scripts,
    which compute the expected outputs with numpy).  The result is
    deterministic (numpy's global RNG is seeded) and is pickled under
    ``<repo>/.cache/conformance/`` keyed by the onnx / numpy / ml_dtypes /
    Python versions and the scripts' mtimes, so later runs load it in ~0.1 s.
    Set ``AUTOFUSE_CONFORMANCE_NO_CACHE=1`` to bypass the cache.
    """
    cases = []
    for name, model_bytes, inputs, outputs, rtol, atol in _load_or_generate():
        model = onnx.ModelProto()
        model.ParseFromString(model_bytes)
        cases.append(Case(name, model, inputs, outputs, rtol, atol))
    return tuple(cases)


@functools.lru_cache(maxsize=1)
def cases_by_name() -> dict[str, Case]:
    return {c.name: c for c in generate_cases()}


# ---------------------------------------------------------------------------
# Running and comparing
# ---------------------------------------------------------------------------


# ONNX element types numpy (and onnxruntime's numpy bridge) cannot represent
# natively: onnx's numpy_helper maps them to ml_dtypes, and ORT's Python API can
# neither take nor return such arrays.  They are moved through OrtValues as raw
# bytes, using onnx's own (un)packing of the raw_data layout.
_RAW_TYPES = frozenset(
    getattr(TensorProto, n)
    for n in (
        "BFLOAT16", "FLOAT8E4M3FN", "FLOAT8E4M3FNUZ", "FLOAT8E5M2",
        "FLOAT8E5M2FNUZ", "FLOAT8E8M0", "UINT4", "INT4", "FLOAT4E2M1",
        "UINT2", "INT2",
    )
    if hasattr(TensorProto, n)
)


def _is_raw_array(v: Any) -> bool:
    if not isinstance(v, np.ndarray) or v.dtype == object:
        return False
    try:
        return onnx.helper.np_dtype_to_tensor_dtype(v.dtype) in _RAW_TYPES
    except Exception:  # noqa: BLE001
        return False


def _raw_to_ortvalue(arr: np.ndarray):
    import ctypes

    import onnxruntime as ort

    tp = numpy_helper.from_array(arr)
    raw = tp.raw_data
    val = ort.OrtValue.ortvalue_from_shape_and_type(list(arr.shape), tp.data_type)
    if val.tensor_size_in_bytes() != len(raw):
        raise RuntimeError(
            f"OrtValue size {val.tensor_size_in_bytes()} != raw size {len(raw)}"
        )
    if raw:
        ctypes.memmove(val.data_ptr(), raw, len(raw))
    return val


def _ortvalue_to_py(val) -> Any:
    import ctypes

    if not val.has_value():
        return None
    if not val.is_tensor():
        raise RuntimeError("non-tensor output on the OrtValue path")
    et = val.element_type()
    if et not in _RAW_TYPES:
        return val.numpy()
    n = val.tensor_size_in_bytes()
    tp = TensorProto()
    tp.data_type = et
    tp.dims.extend(val.shape())
    tp.raw_data = ctypes.string_at(val.data_ptr(), n) if n else b""
    return numpy_helper.to_array(tp)


def _graph_output_is_raw(vi: onnx.ValueInfoProto) -> bool:
    t = vi.type
    return t.HasField("tensor_type") and t.tensor_type.elem_type in _RAW_TYPES


def _feed_value(v: Any) -> Any:
    if isinstance(v, np.generic):  # numpy scalar -> 0-d array
        return np.asarray(v)
    if isinstance(v, list):
        return [_feed_value(x) for x in v]
    return v


def io_names(model: onnx.ModelProto) -> tuple[list[str], list[str]]:
    """(graph input names without initializers, graph output names)."""
    init_names = {i.name for i in model.graph.initializer}
    return (
        [i.name for i in model.graph.input if i.name not in init_names],
        [o.name for o in model.graph.output],
    )


def run_ort(
    model: onnx.ModelProto,
    inputs: list[Any],
    names: tuple[list[str], list[str]] | None = None,
) -> list[Any]:
    """Run ``model`` on CPU with onnxruntime.

    ``names`` = (input names, output names) to feed / fetch, in the order of
    ``inputs`` and of the returned list; by default the model's own graph
    inputs / outputs.  The rewritten model is run with the *original* model's
    names, so a rewrite that renames or reorders the interface is caught.
    """
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 4  # failures are reported through exceptions
    # The suite runs under pytest-xdist on small machines; one thread per
    # session avoids oversubscription and the models are tiny anyway.
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(
        model.SerializeToString(), so, providers=["CPUExecutionProvider"]
    )
    graph_inputs, out_names = names if names is not None else io_names(model)
    if len(graph_inputs) != len(inputs):
        raise AssertionError(
            f"model has {len(graph_inputs)} graph inputs, case provides {len(inputs)}"
        )
    inputs = [_feed_value(v) for v in inputs]
    if not (
        any(_is_raw_array(v) for v in inputs)
        or any(_graph_output_is_raw(o) for o in model.graph.output
               if o.name in out_names)
    ):
        return sess.run(out_names, dict(zip(graph_inputs, inputs, strict=True)))
    feeds = {}
    for name, v in zip(graph_inputs, inputs, strict=True):
        if _is_raw_array(v):
            feeds[name] = _raw_to_ortvalue(v)
        elif isinstance(v, np.ndarray):
            feeds[name] = ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(v))
        else:
            raise RuntimeError(f"input {name!r}: {type(v)} on the OrtValue path")
    outs = sess.run_with_ort_values(out_names, feeds)
    return [_ortvalue_to_py(o) for o in outs]


def _compare_value(exp: Any, got: Any, rtol: float, atol: float, where: str) -> None:
    if exp is None:
        if got is not None:
            raise AssertionError(f"{where}: expected empty optional, got {type(got)}")
        return
    if isinstance(exp, (list, tuple)):
        if not isinstance(got, (list, tuple)):
            raise AssertionError(f"{where}: expected a sequence, got {type(got)}")
        if len(exp) != len(got):
            raise AssertionError(
                f"{where}: sequence length {len(got)} != expected {len(exp)}"
            )
        for j, (e, g) in enumerate(zip(exp, got)):
            _compare_value(e, g, rtol, atol, f"{where}[{j}]")
        return
    if isinstance(exp, dict):
        if not isinstance(got, dict) or set(exp) != set(got):
            raise AssertionError(f"{where}: map keys differ")
        for k in exp:
            _compare_value(exp[k], got[k], rtol, atol, f"{where}[{k!r}]")
        return
    exp = np.asarray(exp)
    if got is None:
        raise AssertionError(f"{where}: got empty optional / None")
    got = np.asarray(got)
    if got.shape != exp.shape:
        raise AssertionError(f"{where}: shape {got.shape} != expected {exp.shape}")
    if exp.dtype == object or exp.dtype.kind in "SU":
        np.testing.assert_array_equal(got, exp, err_msg=where)
        return
    if got.dtype != exp.dtype:
        raise AssertionError(f"{where}: dtype {got.dtype} != expected {exp.dtype}")
    if exp.dtype.kind in "biu":
        np.testing.assert_array_equal(got, exp, err_msg=where)
        return
    out_rtol = rtol
    if exp.dtype.kind not in "fc":
        # ml_dtypes (bfloat16, float8*, float4, ...) cannot be promoted with a
        # Python float by np.isclose: compare in float32 (as onnx's runner).
        if exp.dtype.name == "bfloat16":
            out_rtol = max(rtol, 2**-6)  # two bfloat16 ULPs, as onnx's runner
        exp = exp.astype(np.float32)
        got = got.astype(np.float32)
    np.testing.assert_allclose(
        got, exp, rtol=out_rtol, atol=atol, equal_nan=True, err_msg=where
    )


def compare_outputs(case: Case, got: list[Any]) -> None:
    """Raise AssertionError if ``got`` does not match ``case.outputs``."""
    if len(got) != len(case.outputs):
        raise AssertionError(
            f"{len(got)} outputs, expected {len(case.outputs)}"
        )
    names = [o.name for o in case.model.graph.output]
    for i, (e, g) in enumerate(zip(case.outputs, got)):
        _compare_value(e, g, case.rtol, case.atol, f"output {i} ({names[i]!r})")


def _short(exc: BaseException, limit: int = 600) -> str:
    msg = f"{type(exc).__name__}: {exc}".strip()
    return msg if len(msg) <= limit else msg[:limit] + " ..."


@functools.lru_cache(maxsize=None)
def check_unfused(name: str) -> tuple[bool, str]:
    """(passed, reason) for the original model of case ``name`` in ORT."""
    case = cases_by_name()[name]
    try:
        got = run_ort(case.model, case.inputs)
    except Exception as e:  # noqa: BLE001
        return False, "ORT cannot run the original model: " + _short(e)
    try:
        compare_outputs(case, got)
    except AssertionError as e:
        return False, "ORT output mismatch on the original model: " + _short(e)
    return True, ""


@dataclass
class Outcome:
    name: str
    status: str  # NOT_PASSED_UNFUSED / PASS / REJECTED / FAIL
    detail: str = ""
    groups: int = 0  # fused groups created by fuse (0 if not run / rejected)
    stage: str = ""  # for FAIL: "fuse", "load/run", "compare", "crash", "harness"


def _fuse(model: onnx.ModelProto):
    from autofuse import fuse

    return fuse(model, opt_level=OPT_LEVEL)


@functools.lru_cache(maxsize=None)
def check_case(name: str) -> Outcome:
    """Full check of one case (unfused gate, level-3 rewrite, fused run)."""
    from autofuse.errors import InputError

    ok, why = check_unfused(name)
    if not ok:
        return Outcome(name, NOT_PASSED_UNFUSED, why)
    case = cases_by_name()[name]
    model = onnx.ModelProto()
    model.CopyFrom(case.model)  # fuse must not see (or mutate) the shared proto
    try:
        res = _fuse(model)
    except InputError as e:
        return Outcome(name, REJECTED, _short(e))
    except Exception:  # noqa: BLE001
        return Outcome(name, FAIL, traceback.format_exc(limit=8), stage="fuse")
    report = getattr(res, "report", None) or {}
    groups = len(report.get("groups") or ())
    try:
        got = run_ort(res.model, case.inputs, io_names(case.model))
    except Exception as e:  # noqa: BLE001
        return Outcome(
            name, FAIL, "ORT cannot run the rewritten model: " + _short(e, 2000),
            groups=groups, stage="load/run",
        )
    try:
        compare_outputs(case, got)
    except AssertionError as e:
        return Outcome(
            name, FAIL, "rewritten model output mismatch: " + _short(e, 2000),
            groups=groups, stage="compare",
        )
    return Outcome(name, PASS, groups=groups)


# ---------------------------------------------------------------------------
# Summary entry point
# ---------------------------------------------------------------------------


def _check_case_safe(name: str) -> Outcome:
    try:
        return check_case(name)
    except Exception:  # noqa: BLE001  (e.g. autofuse not importable)
        return Outcome(name, FAIL, traceback.format_exc(limit=8), stage="harness")


def _check_chunk(names: list[str]) -> list[Outcome]:
    return [_check_case_safe(n) for n in names]


def _run_isolated(name: str, ctx) -> Outcome:
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    with ProcessPoolExecutor(1, mp_context=ctx) as ex:
        try:
            return ex.submit(_check_case_safe, name).result()
        except BrokenProcessPool:
            return Outcome(name, FAIL, "worker process crashed (segfault/abort "
                           "in onnxruntime or fuse)", stage="crash")


def run_all(names: list[str], jobs: int) -> list[Outcome]:
    """Check ``names``; a case that crashes its process is a FAIL (stage
    "crash") instead of taking the whole run down."""
    if jobs <= 1:
        return [_check_case_safe(n) for n in names]
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    generate_cases()  # once in the parent; forked workers inherit it
    ctx = mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    chunk = max(1, min(32, len(names) // (jobs * 4) or 1))
    chunks = [names[i:i + chunk] for i in range(0, len(names), chunk)]
    results: dict[str, Outcome] = {}
    suspects: list[str] = []
    with ProcessPoolExecutor(jobs, mp_context=ctx) as ex:
        futs = [(c, ex.submit(_check_chunk, c)) for c in chunks]
        for c, fut in futs:
            try:
                results.update((o.name, o) for o in fut.result())
            except BrokenProcessPool:
                suspects.extend(c)
    # After a crash every pending chunk is "broken": re-run those cases one
    # process per case to find the culprit(s) (cheap with fork).
    for n in suspects:
        results[n] = _run_isolated(n, ctx)
    return [results[n] for n in names]


def summarize(outcomes: list[Outcome]) -> dict[str, int]:
    return {
        "generated": len(outcomes),
        "passed_unfused": sum(o.status != NOT_PASSED_UNFUSED for o in outcomes),
        "passed_level3": sum(o.status == PASS for o in outcomes),
        "rejected_unsupported": sum(o.status == REJECTED for o in outcomes),
        "failed_level3": sum(o.status == FAIL for o in outcomes),
        "fused_group_created": sum(o.groups > 0 for o in outcomes),
        "fused_group_created_passed": sum(
            o.groups > 0 for o in outcomes if o.status == PASS
        ),
    }


SUMMARY_ROWS = (
    ("generated", "backend node cases generated"),
    ("passed_unfused", "passed unfused in onnxruntime (CPU)"),
    ("passed_level3", "passed after level-3 rewrite"),
    ("rejected_unsupported", "rejected as unsupported input (InputError)"),
    ("failed_level3", "FAILED after level-3 rewrite"),
    ("fused_group_created", "rewrite created >=1 fused group"),
    ("fused_group_created_passed", "  ... of which passed"),
)


def format_summary(s: dict[str, int]) -> str:
    w = max(len(label) for _, label in SUMMARY_ROWS)
    return "\n".join(f"  {label:<{w}}  {s[k]:>5}" for k, label in SUMMARY_ROWS)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("-k", dest="filter", default=None,
                    help="only cases whose name contains this substring")
    ap.add_argument("-v", "--verbose", action="store_true",
                    help="also list the cases excluded as not passed unfused")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    cases = generate_cases()
    t_gen = time.perf_counter() - t0
    names = [c.name for c in cases if args.filter is None or args.filter in c.name]
    t1 = time.perf_counter()
    outcomes = run_all(names, args.jobs)
    t_run = time.perf_counter() - t1
    s = summarize(outcomes)

    import onnxruntime

    print(f"onnx {onnx.__version__}, onnxruntime {onnxruntime.__version__}, "
          f"opt_level={OPT_LEVEL}")
    print(f"generation {t_gen:.1f}s, checks {t_run:.1f}s ({args.jobs} jobs)")
    print(format_summary(s))

    for status, title in ((FAIL, "FAILED"), (REJECTED, "rejected as unsupported")):
        bad = [o for o in outcomes if o.status == status]
        if bad:
            print(f"\n{title} ({len(bad)}):")
            for o in bad:
                first = o.detail.strip().splitlines()[-1] if o.detail else ""
                print(f"  {o.name}: {first[:200]}")
    if args.verbose:
        bad = [o for o in outcomes if o.status == NOT_PASSED_UNFUSED]
        print(f"\nnot passed unfused in ORT ({len(bad)}):")
        for o in bad:
            print(f"  {o.name}: {o.detail.splitlines()[0][:200]}")
    return 1 if s["failed_level3"] else 0


if __name__ == "__main__":
    sys.exit(main())
