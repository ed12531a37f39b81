"""`autofuse bisect`: finds the fused groups that break verification, in O(k log n) probes.

Models that fail on purpose: `rewrite_onnx` is wrapped so the ONNX functions of chosen groups are
corrupted (their Exp becomes Sigmoid) whenever those groups are fused.
"""
from __future__ import annotations

import math
import shlex

import onnx
import pytest

import autofuse.api
from autofuse import cli
from autofuse.bisect import bisect
from graphs import model

CHAINS = 12
# Independent Exp -> Mul -> Relu chains: one automatic group each, g0 ... g11.
TEXT = "g ({}) => ({}) {{\n{}\n}}".format(
    ", ".join(f"float[4, 8] x{i}" for i in range(CHAINS)),
    ", ".join(f"float[4, 8] y{i}" for i in range(CHAINS)),
    "\n".join(f"  a{i} = Exp (x{i})\n  b{i} = Mul (a{i}, x{i})\n  y{i} = Relu (b{i})" for i in range(CHAINS)),
)
LOG = math.ceil(math.log2(CHAINS))


@pytest.fixture(scope="module")
def chains() -> onnx.ModelProto:
    return model(TEXT)


def corrupt(monkeypatch, bad: set[str], together: bool = False) -> None:
    """Break the functions of the groups in `bad` when they are fused (with `together`: only when
    all of them are fused at once)."""
    real = autofuse.api.rewrite_onnx

    def rewrite(loaded, plan):
        out = real(loaded, plan)
        fused = {g.id for g in plan.groups}
        if together and not bad <= fused:
            return out
        op_types = {n.op_type for n in out.graph.node if n.name.removeprefix("autofuse/") in bad}
        for function in out.functions:
            if function.name in op_types:
                for node in function.node:
                    if node.op_type == "Exp":
                        node.op_type = "Sigmoid"
        return out

    monkeypatch.setattr(autofuse.api, "rewrite_onnx", rewrite)


def test_model_that_verifies(chains):
    result = bisect(chains)
    assert result.culprits == [] and result.verified_without and result.probes == 1
    assert result.groups == CHAINS


@pytest.mark.parametrize("bad", ["g0", "g7", "g11"])
def test_one_broken_group(chains, monkeypatch, bad):
    corrupt(monkeypatch, {bad})
    lines = []
    result = bisect(chains, log=lines.append)
    assert [c["id"] for c in result.culprits] == [bad]
    assert result.culprits[0]["members"] == [f"Exp_{3 * int(bad[1:])}", f"Mul_{3 * int(bad[1:]) + 1}",
                                              f"Relu_{3 * int(bad[1:]) + 2}"]
    assert result.verified_without
    assert f"output 'y{bad[1:]}'" in result.summary
    # full run, nothing fused, <= 2 per halving, the fix check
    assert result.probes <= 3 + 2 * LOG, result.probes
    assert len(lines) == result.probes and "mismatch" in lines[0]


def test_two_broken_groups(chains, monkeypatch):
    corrupt(monkeypatch, {"g2", "g9"})
    result = bisect(chains)
    assert [c["id"] for c in result.culprits] == ["g2", "g9"]
    assert result.verified_without
    assert result.probes <= 4 + 4 * LOG, result.probes


def test_groups_that_only_fail_together(chains, monkeypatch):
    corrupt(monkeypatch, {"g1", "g4"}, together=True)
    result = bisect(chains)
    assert [c["id"] for c in result.culprits] == ["g1", "g4"]
    assert result.verified_without and "output 'y1'" in result.summary
    assert result.probes <= 4 + 4 * LOG, result.probes


def test_cli(chains, monkeypatch, capsys, tmp_path):
    path = tmp_path / "chains.onnx"
    onnx.save_model(chains, path)
    assert cli.main(["bisect", "--input", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.strip().splitlines() == [f"ok: the rewritten model verifies ({CHAINS} fused groups): nothing to bisect"]

    corrupt(monkeypatch, {"g5"})
    assert cli.main(["bisect", "--input", str(path), "--seed", "3"]) == 3
    captured = capsys.readouterr()
    out = captured.out
    assert "probe 1: 12/12 groups fused: mismatch" in out
    assert "  g5  FusedElementwise_5  rule automatic: Exp_15, Mul_16, Relu_17" in out
    assert "output 'y5'" in out
    fix = next(line for line in out.splitlines() if line.startswith("fix (verified): "))
    command = shlex.split(fix.removeprefix("fix (verified): "))
    assert command == ["autofuse", "--input", str(path), "--verify", "--seed", "3", "--disable-fusion", "g5"]
    assert out.strip().splitlines()[-1].endswith(" probes")
    assert "g5" in captured.err
    # the printed command does what it says, through the main command
    assert cli.main([*command[1:], "-o", str(tmp_path / "out")]) == 0
