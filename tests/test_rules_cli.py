"""`autofuse rules check|list|explain`, and --rules / --disable-rule on the main command."""
from __future__ import annotations

import subprocess
import sys

import onnx

from graphs import model
from test_rule_language import OPSET18, rule_yaml

GRAPH = "g (float[2] x) => (float[2] y) { a = Relu (x)\n y = Exp (a)\n }"


def _run(*args, cwd):
    return subprocess.run([sys.executable, "-m", "autofuse", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def test_rules_check_accepts_good_files_and_runs_examples(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text(rule_yaml("y = Relu(x)"))
    done = _run("rules", "check", str(good), cwd=tmp_path)
    assert done.returncode == 0 and "ok: 1 rule(s)" in done.stdout, done.stderr


def test_rules_check_reports_a_failing_example(tmp_path):
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(rule_yaml("y = Exp(x)"))  # its declared match example is a Relu
    done = _run("rules", "check", str(wrong), cwd=tmp_path)
    assert done.returncode == 1
    assert "match example 1: does not match" in done.stdout
    assert "near_miss example 1: matches, but it is declared a near miss" in done.stdout


def test_rules_check_bad_file_is_one_line_exit_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(rule_yaml("y = Rsqrt(x)"))
    done = _run("rules", "check", str(bad), cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"autofuse: error: {bad}:4: rule 'probe': unknown op 'Rsqrt' (did you mean 'Sqrt'?)"]


def test_rules_list_shows_library_and_user_rules(tmp_path):
    extra = tmp_path / "mine.yaml"
    extra.write_text(rule_yaml("y = Relu(x)"))
    done = _run("rules", "list", "--rules", str(extra), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    names = [line.split()[0] for line in done.stdout.splitlines()[:-1]]
    assert "rms_norm" in names and "probe" in names


def test_rules_explain_shows_matches_and_near_misses(tmp_path):
    path = tmp_path / "m.onnx"
    onnx.save_model(model("""
    g (float[2, 8] x, float[8] w) => (float[2, 8] y, float[2, 8] z) <float two = {2.0}, float eps = {1e-6}, int64[1] last = {-1}, int64[1] first = {0}> {
      sq = Pow (x, two)
      mean = ReduceMean (sq, last)
      v = Add (mean, eps)
      std = Sqrt (v)
      r = Reciprocal (std)
      n = Mul (x, r)
      y = Mul (n, w)
      sq2 = Pow (x, two)
      mean2 = ReduceMean (sq2, first)
      v2 = Add (mean2, eps)
      std2 = Sqrt (v2)
      r2 = Reciprocal (std2)
      n2 = Mul (x, r2)
      z = Mul (n2, w)
    }""", header=OPSET18), path)
    done = _run("rules", "explain", "--input", str(path), "--rule", "rms_norm", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "rms_norm: 1 match(es)" in done.stdout
    assert "matched at 'Mul_6'" in done.stdout
    assert "near miss at 'Mul_13'" in done.stdout and "the pattern wants axes=last" in done.stdout


def test_user_rules_and_disable_rule_on_the_main_command(tmp_path):
    rules = tmp_path / "mine.yaml"
    rules.write_text(rule_yaml("a = Relu(x)\ny = Exp(a)"))
    path = tmp_path / "m.onnx"
    onnx.save_model(model(GRAPH, header=OPSET18), path)
    done = _run("--input", str(path), "--opt-level", "1", "--rules", str(rules), "-o", str(tmp_path / "o"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "fused groups: 1" in done.stdout
    done = _run("--input", str(path), "--opt-level", "1", "--rules", str(rules), "--disable-rule", "probe",
                "-o", str(tmp_path / "o2"), cwd=tmp_path)
    assert done.returncode == 0 and "fused groups: 0" in done.stdout
    done = _run("--input", str(path), "--disable-rule", "rms_nrom", "-o", str(tmp_path / "o3"), cwd=tmp_path)
    assert done.returncode == 2
    assert "no rule named 'rms_nrom' (did you mean 'rms_norm'?)" in done.stderr
    assert not (tmp_path / "o3").exists()


def test_bad_user_rule_file_exits_2_and_writes_nothing(tmp_path):
    rules = tmp_path / "mine.yaml"
    rules.write_text("rules:\n  - name: x\n    kind: [unclosed\n")
    path = tmp_path / "m.onnx"
    onnx.save_model(model(GRAPH, header=OPSET18), path)
    done = _run("--input", str(path), "--rules", str(rules), "-o", str(tmp_path / "o"), cwd=tmp_path)
    assert done.returncode == 2 and "not valid YAML" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()
