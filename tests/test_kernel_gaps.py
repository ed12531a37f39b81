"""Fused groups left without a kernel, and bugs in the generator, are never silent.

The planner asks the generator before it forms a group (codegen/gate.py): a group the generator
declines (an op it has no lowering for) is refused with the generator's reason
(`no_kernel_for_group`). A group formed all the same and then left without a kernel (a rule's
group whose shapes cannot be priced, a gap the question misses) is still a legitimate outcome:
the run goes on and writes its outputs, the summary, report.json totals (`kernels_missing`,
`kernels_unverified`), report.md and `FuseResult.kernel_coverage` say how many and why, and the
command line exits 4 (the compilation is incomplete), with or without --verify-kernels. Those tests switch the question off (`planner_alone`) to make such a gap.
An exception inside the generator is a bug: exit 1, one line naming the group, nothing written.
"""
from __future__ import annotations

import json

import onnx
import pytest
from graphs import model, planner_alone

from autofuse import fuse
from autofuse.cli import main
from autofuse.codegen import lower, vector
from autofuse.errors import GeneratorError
from autofuse.verify import kernels as kernel_check
from autofuse.verify.kernels import reason_kind

# Two groups the generator declines (Sign has no vector lowering; the node names differ, the reason
# is the same kind) and one it lowers (x * sigmoid(x)).
GAPS = """
g (float[4, 64] x) => (float[4, 64] y, float[4, 64] z, float[4, 64] w) {
  e = Exp (x)
  first_sign = Sign (e)
  y = Relu (first_sign)
  a = Sigmoid (x)
  z = Mul (a, x)
  n = Neg (x)
  second_sign = Sign (n)
  w = Abs (second_sign)
}
"""
COMPLETE = """
g (float[4, 64] x) => (float[4, 64] y) {
  a = Sigmoid (x)
  y = Mul (a, x)
}
"""


@pytest.fixture()
def gaps_file(tmp_path):
    path = tmp_path / "gaps.onnx"
    onnx.save(model(GAPS), path)
    return path


def _sign_groups(report: dict) -> list[str]:
    return [g["id"] for g in report["groups"] if "Sign" in g["member_op_types"]]


def _lines(text: str, start: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip().startswith(start)]


def test_missing_kernels_are_counted_in_the_summary_and_the_report(gaps_file, tmp_path, capsys, monkeypatch):
    planner_alone(monkeypatch)  # a gap the planner's question to the generator did not prevent
    out = tmp_path / "out"
    code = main(["--input", str(gaps_file), "--opt-level", "3", "-o", str(out)])
    captured = capsys.readouterr()
    assert code == 4  # kernels were not checked, but two groups have none: the compilation is incomplete
    (err,) = captured.err.strip().splitlines()
    assert err.startswith("autofuse: error: kernel generation incomplete: 2 of 3 fused groups have no kernel")
    printed = captured.out
    report = json.loads((out / "report.json").read_text())
    signs = _sign_groups(report)
    assert len(signs) == 2 and len(report["groups"]) == 3
    (line,) = _lines(printed, "kernels MISSING:")
    assert line.startswith("kernels MISSING: 2 of 3 fused groups have no kernel")
    assert "has no vector lowering (2)" in line and all(g in line for g in signs)
    totals = report["totals"]
    assert totals["kernels_missing"] == {"count": 2, "groups": signs,
                                         "by_reason": {"op Sign ('…') has no vector lowering": 2}}
    assert totals["kernels_unverified"] is None
    assert not _lines(printed, "kernel check:")
    markdown = (out / "report.md").read_text()
    assert "**Missing kernels: 2 of 3 fused groups**" in markdown
    assert "| op Sign ('…') has no vector lowering | 2 |" in markdown


def test_verify_kernels_with_groups_left_unverified_exits_4(gaps_file, tmp_path, capsys, monkeypatch):
    planner_alone(monkeypatch)  # a gap the planner's question to the generator did not prevent
    out = tmp_path / "out"
    code = main(["--input", str(gaps_file), "--verify-kernels", "-o", str(out)])
    captured = capsys.readouterr()
    assert code == 4, captured.err
    assert _lines(captured.out, "kernel check:") == [
        "kernel check: INCOMPLETE, 2 of 3 unverified (2 not generated, 0 failed the CPU check)"]
    (err,) = captured.err.strip().splitlines()
    assert err.startswith("autofuse: error: kernel check incomplete: 2 of 3 unverified") and "Sign" in err
    report = json.loads((out / "report.json").read_text())  # the outputs are written, as for exit 3
    signs = _sign_groups(report)
    assert report["totals"]["kernels_unverified"] == {"count": 2, "of": 3, "not_generated": 2, "failed": 0,
                                                      "groups": signs}
    assert "**Unverified: 2 of 3**" in (out / "report.md").read_text()


def test_a_complete_check_says_none_unverified_and_exits_0(tmp_path, capsys):
    path = tmp_path / "complete.onnx"
    onnx.save(model(COMPLETE), path)
    out = tmp_path / "out"
    assert main(["--input", str(path), "--verify-kernels", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert _lines(printed, "kernel check:") == [
        "kernel check: 0 of 1 unverified (0 not generated, 0 failed the CPU check)"]
    assert not _lines(printed, "kernels MISSING:")
    totals = json.loads((out / "report.json").read_text())["totals"]
    assert totals["kernels_missing"] == {"count": 0, "groups": [], "by_reason": {}}
    assert totals["kernels_unverified"]["count"] == 0 and totals["kernels_unverified"]["of"] == 1


def test_a_wrong_kernel_and_a_missing_one_exit_3_and_name_both(gaps_file, tmp_path, monkeypatch, capsys):
    """A mismatch outranks a gap: exit 3, and the message mentions the gap too."""
    planner_alone(monkeypatch)  # a gap the planner's question to the generator did not prevent
    table = dict(vector.op_table())
    table["unary"] = {**table["unary"], "Sigmoid": [["Muls", -1.0], ["Exp"], ["Adds", 1.0]]}  # no reciprocal
    monkeypatch.setattr(vector, "op_table", lambda: table)
    code = main(["--input", str(gaps_file), "--verify-kernels", "-o", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert code == 3
    assert _lines(captured.out, "kernel check:") == [
        "kernel check: FAILED, 3 of 3 unverified (2 not generated, 1 failed the CPU check)"]
    (err,) = captured.err.strip().splitlines()
    assert "1 generated kernel(s) failed the CPU check" in err and "also 3 of 3 unverified" in err


def test_the_api_exposes_the_coverage(monkeypatch):
    planner_alone(monkeypatch)  # a gap the planner's question to the generator did not prevent
    result = fuse(model(GAPS), opt_level=3, verify_kernels=True)
    coverage = result.kernel_coverage
    signs = _sign_groups(result.report)
    assert sorted(coverage.missing) == signs
    assert all("Sign" in coverage.missing[g] for g in signs)
    assert coverage.unverified == tuple(signs) and coverage.unverified_line().startswith("2 of 3 unverified")
    assert coverage.missing_by_reason() == {"op Sign ('…') has no vector lowering": 2}
    assert coverage.totals() == {k: result.report["totals"][k] for k in ("kernels_missing", "kernels_unverified")}
    unchecked = fuse(model(GAPS), opt_level=3, kernels=True).kernel_coverage
    assert sorted(unchecked.missing) == signs and unchecked.unverified is None
    assert fuse(model(GAPS), opt_level=2).kernel_coverage is None  # no kernels asked for
    assert fuse(model(GAPS), opt_level=2).report["totals"]["kernels_missing"] is None


def test_reasons_of_one_kind_count_together():
    sign = "op Sign ('n1') has no vector lowering"
    assert reason_kind(sign) == reason_kind("op Sign ('other') has no vector lowering")
    assert reason_kind("a value of shape (1, 8, 64) does not broadcast over the rows (8,)") == \
        "a value of shape (…) does not broadcast over the rows (…)"
    assert reason_kind("the kernel's UB buffers need 300000 B, more than the 196608 B usable on ascend910b") == \
        "the kernel's UB buffers need N B, more than the N B usable on ascend910b"
    assert reason_kind("op Sign ('n1') has no vector lowering") != reason_kind("op Erf ('n1') has no vector lowering")


# -- a bug in the generator ------------------------------------------------------------------------


def _broken_build(self):
    raise ZeroDivisionError("boom in lowering")


def test_a_generator_bug_exits_1_names_the_group_and_writes_nothing(gaps_file, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(lower.KernelBuilder, "build", _broken_build)
    out = tmp_path / "out"
    assert main(["--input", str(gaps_file), "-o", str(out)]) == 1
    captured = capsys.readouterr()
    (err,) = captured.err.strip().splitlines()
    assert err.startswith("autofuse: internal error: the kernel generator failed on fused group g")
    assert "ZeroDivisionError: boom in lowering" in err and "please report" in err and "--disable-fusion g" in err
    assert "Traceback" not in captured.err and not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")], "staging directory left behind"


def test_a_generator_bug_raises_from_the_api_but_a_declined_group_does_not(monkeypatch):
    """A bug met while the planner asks the generator is not an answer: the group is formed and
    the bug reported on it by the generator. A declined group is a decision: refused by the
    planner with the reason, or (the question switched off) left without a kernel."""
    monkeypatch.setattr(lower.KernelBuilder, "build", _broken_build)
    with pytest.raises(GeneratorError) as raised:
        fuse(model(COMPLETE), opt_level=3, kernels=True)
    assert raised.value.group_id == "g0" and raised.value.exit_code == 1
    assert "g0" in str(raised.value) and "ZeroDivisionError" in str(raised.value)
    monkeypatch.undo()

    def declined(self):
        raise lower.LoweringError("nothing to see")

    monkeypatch.setattr(lower.KernelBuilder, "build", declined)
    result = fuse(model(COMPLETE), opt_level=3, kernels=True)  # a decision, not a bug
    assert not result.plan.groups and result.kernel_coverage.missing == {}
    assert [(r["reason"], r["detail"]) for r in result.report["rejected"] if r["reason"] == "no_kernel_for_group"] \
        == [("no_kernel_for_group", "the code generator declines it: nothing to see")]
    planner_alone(monkeypatch)
    result = fuse(model(COMPLETE), opt_level=3, kernels=True)
    assert result.kernel_coverage.missing == {"g0": "nothing to see"}


def test_the_planner_refuses_what_the_generator_declines(tmp_path, capsys):
    """The Sign groups of GAPS are never formed: refused with the generator's reason; the group it
    can write is kept, gets its kernel, and the kernel check is complete (exit 0)."""
    path = tmp_path / "gaps.onnx"
    onnx.save(model(GAPS), path)
    out = tmp_path / "out"
    assert main(["--input", str(path), "--verify-kernels", "-o", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert not _sign_groups(report) and len(report["groups"]) == 1 and report["groups"][0]["kernel"]["generated"]
    refused = [r for r in report["rejected"] if r["reason"] == "no_kernel_for_group"]
    assert len(refused) == 2 and all("Sign" in r["detail"] and "has no vector lowering" in r["detail"] for r in refused)
    assert report["totals"]["kernels_missing"]["count"] == 0
    assert not _lines(capsys.readouterr().out, "kernels MISSING:")


def test_a_bug_in_the_kernel_check_names_the_group(tmp_path, monkeypatch, capsys):
    def broken(*args, **kwargs):
        raise KeyError("no such value")

    monkeypatch.setattr(kernel_check, "_check", broken)
    path = tmp_path / "complete.onnx"
    onnx.save(model(COMPLETE), path)
    assert main(["--input", str(path), "--verify-kernels", "-o", str(tmp_path / "out")]) == 1
    (err,) = capsys.readouterr().err.strip().splitlines()
    assert err.startswith("autofuse: internal error: the kernel check failed on fused group g0") and "KeyError" in err
    assert not (tmp_path / "out").exists()



def test_bf16_groups_are_formed_where_the_profile_has_a_bf16_path_and_refused_where_not():
    """A2/A3 copy bf16 into the UB and cast it to fp32 there; CANN's 300I headers have no bf16
    Cast (profile features.bf16_data: false). There the planner does not form the group — it
    is refused with its reason code, where every refusal is — rather than forming it and the
    generator declining it."""
    from kernel_cases import rule_model
    bf16 = rule_model("rms_norm", 1, "bfloat16")
    assert bf16 is not None
    a2 = fuse(bf16, opt_level=2, target="ascend910b", kernels=True, dims={"batch": 2, "seq": 16})
    p300 = fuse(bf16, opt_level=2, target="ascend310p", kernels=True, dims={"batch": 2, "seq": 16})
    assert a2.kernels and all(k.generated for k in a2.kernels.values())
    assert not p300.plan.groups and not p300.kernels
    refused = [r for r in p300.report["rejected"] if r["reason"] == "dtype_not_on_target"]
    assert refused and "features.bf16_data" in refused[0]["detail"]
