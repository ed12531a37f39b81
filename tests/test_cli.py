"""The command-line contract: outputs, summary, exit codes and one-line errors."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import onnx
import pytest

from autofuse import cli
from graphs import model

CHAIN = """
g (float[N, 8] x, float[8] b) => (float[N, 8] y) {
  a = Add (x, b)
  r = Relu (a)
  y = Exp (r)
}
"""


def _run(args, cwd):
    return subprocess.run([sys.executable, "-m", "autofuse", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


@pytest.fixture()
def chain_file(tmp_path):
    path = tmp_path / "chain.onnx"
    onnx.save_model(model(CHAIN), path)
    return path


def test_default_outdir_and_outputs(chain_file, tmp_path):
    done = _run(["--input", str(chain_file), "--opt-level", "3", "--verify"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    outdir = tmp_path / "chain_autofuse"
    # Level 3 also writes an Ascend C custom-operator project per fused group (--emit kernels).
    assert sorted(p.name for p in outdir.iterdir()) == ["kernels", "model.onnx", "report.html", "report.json",
                                                         "report.md"]
    assert any((outdir / "kernels").iterdir())
    report = json.loads((outdir / "report.json").read_text())
    for key in ("kernels_before", "kernels_after", "nodes_before", "nodes_after", "pass_seconds", "groups", "rejected"):
        assert key in report
    group = report["groups"][0]
    assert set(group) >= {"id", "op_type", "members", "rule", "hbm_bytes_before", "hbm_bytes_after"}
    assert report["verification"]["ok"] is True
    assert "kernels" in done.stdout and str(outdir) in done.stdout
    onnx.checker.check_model(onnx.load(outdir / "model.onnx"))


def test_explicit_outdir_replaces_old_outputs(chain_file, tmp_path):
    outdir = tmp_path / "out"
    outdir.mkdir()
    (outdir / "report.json").write_text("stale")
    assert _run(["--input", str(chain_file), "-o", str(outdir)], cwd=tmp_path).returncode == 0
    assert json.loads((outdir / "report.json").read_text())["groups"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")], "staging directory left behind"


def _bad_inputs(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    good = model(CHAIN).SerializeToString()
    (tmp_path / "empty.onnx").write_bytes(b"")
    (tmp_path / "truncated.onnx").write_bytes(good[: len(good) // 2])
    (tmp_path / "text.onnx").write_bytes(b"this is not an onnx model\n" * 10)
    (tmp_path / "adir.onnx").mkdir()
    cyc = onnx.helper.make_graph(
        [onnx.helper.make_node("Add", ["x", "c"], ["a"], name="first"),
         onnx.helper.make_node("Relu", ["a"], ["c"], name="second"),
         onnx.helper.make_node("Neg", ["a"], ["y"], name="out")], "g",
        [onnx.helper.make_tensor_value_info("x", 1, [2])], [onnx.helper.make_tensor_value_info("y", 1, [2])])
    onnx.save_model(onnx.helper.make_model(cyc, opset_imports=[onnx.helper.make_opsetid("", 17)]), tmp_path / "cycle.onnx")
    dangling = model(CHAIN)
    dangling.graph.node[1].input[0] = "ghost"
    onnx.save_model(dangling, tmp_path / "dangling.onnx")
    old = model(CHAIN)
    old.opset_import[0].version = 5
    onnx.save_model(old, tmp_path / "opset5.onnx")
    twice = model(CHAIN)
    twice.graph.node[1].output[0] = "a"  # r = Relu (a) now writes 'a', which Add wrote already
    twice.graph.node[0].name, twice.graph.node[1].name = "adder", "relu"
    twice.graph.node[2].input[0] = "a"
    onnx.save_model(twice, tmp_path / "twice.onnx")
    inner = onnx.helper.make_graph([onnx.helper.make_node("Neg", ["x"], ["a"], name="inner")], "then", [],
                                   [onnx.helper.make_tensor_value_info("a", 1, [2])])
    other = onnx.helper.make_graph([onnx.helper.make_node("Neg", ["x"], ["e"])], "else", [],
                                   [onnx.helper.make_tensor_value_info("e", 1, [2])])
    sub = onnx.helper.make_graph(
        [onnx.helper.make_node("Relu", ["x"], ["a"], name="outer"),
         onnx.helper.make_node("Constant", [], ["c"], value=onnx.helper.make_tensor("v", 9, [], [True])),
         onnx.helper.make_node("If", ["c"], ["i"], name="branch", then_branch=inner, else_branch=other),
         onnx.helper.make_node("Add", ["a", "i"], ["y"])], "g",
        [onnx.helper.make_tensor_value_info("x", 1, [2])], [onnx.helper.make_tensor_value_info("y", 1, [2])])
    onnx.save_model(onnx.helper.make_model(sub, opset_imports=[onnx.helper.make_opsetid("", 17)]),
                    tmp_path / "subgraph.onnx")
    return {
        "missing": (tmp_path / "nope.onnx", "file not found"),
        "directory": (tmp_path / "adir.onnx", "is a directory"),
        "empty": (tmp_path / "empty.onnx", "file is empty"),
        "truncated": (tmp_path / "truncated.onnx", "not"),
        "not onnx": (tmp_path / "text.onnx", "not"),
        "cycle": (tmp_path / "cycle.onnx", "cycle through node"),
        "dangling": (tmp_path / "dangling.onnx", "dangling input"),
        "opset": (tmp_path / "opset5.onnx", "unsupported opset 5"),
        "value written twice": (tmp_path / "twice.onnx", "value 'a' is defined twice, by node 'adder' (Add, #0) and "
                                                         "by node 'relu' (Relu, #1), in main graph"),
        "subgraph redefines": (tmp_path / "subgraph.onnx", "value 'a' is defined by node 'inner' (Neg, #0) in subgraph "
                                                           "'then_branch' of node 'branch' (If, #2) in main graph, and "
                                                           "its enclosing main graph defines it too, by node 'outer'"),
    }


@pytest.mark.parametrize("case", ["missing", "directory", "empty", "truncated", "not onnx", "cycle", "dangling", "opset",
                                  "value written twice", "subgraph redefines"])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(case, tmp_path):
    path, message = _bad_inputs(tmp_path)[case]
    outdir = tmp_path / "result"
    done = _run(["--input", str(path), "-o", str(outdir)], cwd=tmp_path)
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("autofuse: error: "), done.stderr
    assert message in lines[0] and str(path.name) in lines[0]
    assert "Traceback" not in done.stderr
    assert not outdir.exists()


def test_verify_mismatch_exits_nonzero(chain_file, tmp_path, monkeypatch, capsys):
    from autofuse import api

    real = api.rewrite_onnx

    def corrupt(loaded, plan):
        out = real(loaded, plan)
        fused_fn = next(f for f in out.functions if f.domain == "ai.autofuse")
        fused_fn.node[-1].op_type = "Sigmoid"  # Exp -> Sigmoid: a silently wrong rewrite
        return out

    monkeypatch.setattr(api, "rewrite_onnx", corrupt)
    code = cli.main(["--input", str(chain_file), "-o", str(tmp_path / "o"), "--verify"])
    err = capsys.readouterr().err
    assert code == 3
    assert "output 'y'" in err and "differs" in err


def test_internal_error_exits_1_with_one_line(chain_file, tmp_path, monkeypatch, capsys):
    from autofuse import api

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(api, "plan_fusion", broken)
    assert cli.main(["--input", str(chain_file), "-o", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "internal error" in err[0] and "boom" in err[0]
    assert not (tmp_path / "o").exists()


def test_python_api_accepts_paths_and_saves(chain_file, tmp_path):
    from autofuse import fuse

    result = fuse(chain_file, opt_level=2)
    out = result.save(tmp_path / "api_out")
    assert (out / "model.onnx").exists() and json.loads((out / "report.json").read_text())["opt_level"] == 2
    assert os.path.basename(result.report["input"]) == "chain.onnx"


def test_duplicate_node_names_are_renamed_and_reported(tmp_path):
    m = model(CHAIN)
    for node in m.graph.node:
        node.name = "same"
    m.graph.node[2].name = ""
    path = tmp_path / "dups.onnx"
    onnx.save_model(m, path)
    done = _run(["--input", str(path), "-o", str(tmp_path / "out"), "--opt-level", "3", "--verify"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["verification"]["ok"] is True
    assert report["renamed_nodes"] == [
        {"graph": "main graph", "index": 1, "op_type": "Relu", "old": "same", "new": "same_1"},
        {"graph": "main graph", "index": 2, "op_type": "Exp", "old": "", "new": "Exp_2"},
    ]
    assert report["groups"][0]["members"] == ["same", "same_1", "Exp_2"]
    assert "## Renamed nodes: 2" in (tmp_path / "out" / "report.md").read_text()
    written = onnx.load(tmp_path / "out" / "model.onnx")
    body = next(f for f in written.functions if f.domain == "ai.autofuse")
    assert [n.name for n in body.node] == ["same", "same_1", "Exp_2"]
