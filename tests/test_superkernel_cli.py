"""`autofuse superkernel`: the contract of issue 6. Files written (plan JSON with scopes of label,
options, members, cuts; report; patch), exit 2 with one line on bad input, nothing written then."""
from __future__ import annotations

import itertools
import json

import pytest

pytest.importorskip("torch")

from autofuse.cli import main
from autofuse.errors import InputError

FACTORY = '''
import torch
from torch import nn


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b, self.c = nn.Linear(8, 8), nn.Linear(8, 8), nn.Linear(8, 8)

    def forward(self, x):
        return self.c(torch.cumsum(self.b(self.a(x)), -1))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList([Block(), Block()])

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


def factory():
    torch.manual_seed(0)
    return Net().eval(), (torch.randn(1, 1, 8),)
'''
_names = itertools.count()


@pytest.fixture
def spec(tmp_path, monkeypatch):
    """A factory module in a fresh directory on sys.path (a new module name per test)."""
    name = f"sk_cli_net_{next(_names)}"
    (tmp_path / f"{name}.py").write_text(FACTORY)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    return f"{name}:factory"


def test_writes_plan_report_and_patch(spec, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["superkernel", "--input", spec, "--options", "stream-fusion=1:feed-sync-all=1", "-o", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["superkernel.patch", "superkernel_plan.json", "superkernel_report.md"]
    plan = json.loads((out / "superkernel_plan.json").read_text())
    # linear (a, b) | cumsum | c, next layer's a, b | cumsum | c: two runs of MatMuls.
    assert [(s["label"], s["start"], s["end"]) for s in plan["scopes"]] == [
        ("layer_0", "linear", "linear_1"), ("layers_0_1", "linear_2", "linear_4")]
    for scope in plan["scopes"]:
        assert scope["options"] == "stream-fusion=1:feed-sync-all=1"
        assert isinstance(scope["members"], list) and all(isinstance(m, str) for m in scope["members"])
        assert [c["node"] for c in scope["cuts"]] and all(c["reason"] and c["kind"] == "tbe" for c in scope["cuts"])
    assert [c["node"] for c in plan["scopes"][1]["cuts"]] == ["cumsum", "cumsum_1"]
    assert plan["gate"] == {"expression": "enable and not is_prefill", "decode_only": True}
    assert plan["totals"]["launches_saved"] == 3 and plan["strategy"] == "auto"
    report = (out / "superkernel_report.md").read_text()
    assert "### `layers_0_1`" in report and "Measuring it on an Atlas A3 machine" in report
    patch = (out / "superkernel.patch").read_text()
    assert f"+++ b/{spec.partition(':')[0]}.py" in patch and "with _autofuse_super_kernel('layers_0_1'" in patch
    printed = capsys.readouterr().out
    assert "launches per decode step 8 -> 5 (3 saved)" in printed


@pytest.mark.parametrize("strategy, labels", [("layer", ["layer_0", "layer_1"]), ("all-layers", ["layers_0_1"]),
                                              ("attention", []), ("moe", [])])
def test_template_strategies(spec, tmp_path, strategy, labels):
    out = tmp_path / strategy
    assert main(["superkernel", "--input", spec, "--strategy", strategy, "-o", str(out)]) == 0
    assert [s["label"] for s in json.loads((out / "superkernel_plan.json").read_text())["scopes"]] == labels


def test_bad_options_exit_2_with_one_line_and_write_nothing(spec, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["superkernel", "--input", spec, "--options", "stream-funsion=1", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("autofuse: error: --options:")
    assert "did you mean 'stream-fusion'" in err
    assert not out.exists()
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main(["superkernel", "--input", spec, "--options", "split-mode=99", "-o", str(out)]) == 2
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_a_failure_late_writes_nothing(spec, tmp_path, monkeypatch, capsys):
    from autofuse.superkernel import patch

    def broken(model, plan):
        raise InputError("cannot patch this model")

    monkeypatch.setattr(patch, "make_patch", broken)
    out = tmp_path / "out"
    assert main(["superkernel", "--input", spec, "-o", str(out)]) == 2
    assert capsys.readouterr().err == "autofuse: error: cannot patch this model\n"
    assert not out.exists() and not list(tmp_path.glob(".out.*"))


@pytest.mark.parametrize("argv, expected", [
    (["--input", "no_such_module_here:factory"], "no module named 'no_such_module_here'"),
    (["--input", "json:nothing"], "module 'json' has no function 'nothing'"),
    (["--input", "json:dumps"], "dumps() raised"),
])
def test_bad_input_exit_2(argv, expected, capsys, tmp_path):
    assert main(["superkernel", *argv, "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1 and not (tmp_path / "out").exists()


def test_unknown_strategy_is_a_usage_error(spec, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["superkernel", "--input", spec, "--strategy", "layers"])
    assert exit_.value.code == 2 and "invalid choice: 'layers'" in capsys.readouterr().err
