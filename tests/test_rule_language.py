"""The rule language: every construct on tiny graphs, and every validation error message."""
from __future__ import annotations

import textwrap

import pytest

from autofuse import fuse
from autofuse.candidates.rules.language import PatternSyntaxError, parse_pattern
from autofuse.candidates.rules.loader import RuleError, load_rule_file, load_rules
from autofuse.candidates.rules.matcher import RuleIndex, find_matches
from autofuse.frontends.onnx import load_onnx
from graphs import fused, model

OPSET18 = '<ir_version: 8, opset_import: ["" : 18]>\n'


def rule_yaml(pattern: str, **fields) -> str:
    """A complete, valid rule with `pattern`; keyword arguments override or add fields."""
    base = {
        "name": "probe",
        "kind": "elementwise",
        "inputs": "[x]",
        "fused_op": "{name: Probe}",
        "lowering": "{ascendc: elementwise}",
        "examples": "{match: ['g (float[2] x) => (float[2] y) { y = Relu (x) }'], "
                    "near_miss: ['g (float[2] x) => (float[2] y) { y = Exp (x) }']}",
    }
    base.update({k: v for k, v in fields.items() if v is not None})
    for key in [k for k, v in fields.items() if v is None]:
        base.pop(key, None)
    lines = ["rules:", "  - name: " + base.pop("name")]
    lines.append("    pattern: |")
    lines += ["      " + line for line in textwrap.dedent(pattern).strip().splitlines()]
    lines += [f"    {k}: {v}" for k, v in base.items()]
    return "\n".join(lines) + "\n"


def load(tmp_path, text: str, name: str = "r.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return load_rule_file(path)


def matches(rules, graph_text: str, header: str = OPSET18):
    graph = load_onnx(model(graph_text, header=header)).graph
    found, misses = find_matches(graph, RuleIndex(rules), trace=True)
    return [sorted(graph.nodes[i].name for i in m.nodes) for m in found], misses, found


# -- constructs ---------------------------------------------------------------------------------


def test_commutative_ops_match_in_either_order(tmp_path):
    rules = load(tmp_path, rule_yaml("y = Add(Relu(x), b)", inputs="[x, b]"))
    for body in ("a = Relu (x)\n y = Add (a, b)", "a = Relu (x)\n y = Add (b, a)"):
        found, _, _ = matches(rules, f"g (float[2] x, float[2] b) => (float[2] y) {{ {body} }}")
        assert found == [["Add_1", "Relu_0"]]


def test_non_commutative_ops_keep_their_order(tmp_path):
    rules = load(tmp_path, rule_yaml("y = Sub(Relu(x), b)", inputs="[x, b]"))
    found, misses, _ = matches(rules, "g (float[2] x, float[2] b) => (float[2] y) { a = Relu (x)\n y = Sub (b, a) }")
    assert found == []
    assert "expected Relu(x)" in misses[0].reason if misses else True


def test_alternatives_and_capture_reuse(tmp_path):
    rules = load(tmp_path, rule_yaml("y = Pow(x, 2) | Mul(x, x)"))
    assert matches(rules, "g (float[2] x) => (float[2] y) <float two = {2.0}> { y = Pow (x, two) }")[0] == [["Pow_0"]]
    assert matches(rules, "g (float[2] x) => (float[2] y) { y = Mul (x, x) }")[0] == [["Mul_0"]]
    # Mul(x, z) with two different values is not Mul(x, x): a capture sees one value.
    assert matches(rules, "g (float[2] x, float[2] z) => (float[2] y) { y = Mul (x, z) }")[0] == []


def test_optional_op(tmp_path):
    rules = load(tmp_path, rule_yaml("y = Relu(Cast?(x))"))
    with_cast = "g (float16[2] x) => (float[2] y) { c = Cast <to = 1> (x)\n y = Relu (c) }"
    assert matches(rules, with_cast)[0] == [["Cast_0", "Relu_1"]]
    assert matches(rules, "g (float[2] x) => (float[2] y) { y = Relu (x) }")[0] == [["Relu_0"]]


def test_numbers_match_constants_within_tolerance(tmp_path):
    rules = load(tmp_path, rule_yaml("y = Relu(Mul(x, 0.7978845608))", tolerance="1.0e-4"))
    near = "g (float[2] x) => (float[2] y) <float c = {0.79788}> { m = Mul (x, c)\n y = Relu (m) }"
    far = "g (float[2] x) => (float[2] y) <float c = {0.8}> { m = Mul (x, c)\n y = Relu (m) }"
    assert matches(rules, near)[0] == [["Mul_0", "Relu_1"]]
    found, misses, _ = matches(rules, far)
    assert found == [] and "expected the constant 0.797885, found 0.8" in misses[0].reason


def test_constant_captures_with_bounds_become_attributes(tmp_path):
    rules = load(tmp_path, rule_yaml("y = Relu(Add(x, eps))", constants="{eps: {min: 0, max: 0.01}}",
                                     fused_op="{name: Probe, attributes: {epsilon: eps}}"))
    graph = "g (float[2] x) => (float[2] y) <float e = {E}> { a = Add (x, e)\n y = Relu (a) }"
    found, _, hits = matches(rules, graph.replace("E", "1e-5"))
    assert found == [["Add_0", "Relu_1"]] and abs(hits[0].constants["eps"] - 1e-5) < 1e-9
    found, misses, _ = matches(rules, graph.replace("E", "0.5"))
    assert found == [] and "outside [0, 0.01]" in misses[0].reason


def test_axes_last_however_written(tmp_path):
    rules = load(tmp_path, rule_yaml("y = Relu(ReduceMean<axes=last>(x))"))
    as_input = "g (float[2, 8] x) => (float[2, 1] y) <int64[1] a = {-1}> { r = ReduceMean (x, a)\n y = Relu (r) }"
    as_positive = as_input.replace("{-1}", "{1}")
    as_attribute = "g (float[2, 8] x) => (float[2, 1] y) { r = ReduceMean <axes = [-1]> (x)\n y = Relu (r) }"
    other_axis = as_input.replace("{-1}", "{0}").replace("=> (float[2, 1] y)", "=> (float[1, 8] y)")
    assert matches(rules, as_input)[0] == [["ReduceMean_0", "Relu_1"]]
    assert matches(rules, as_positive)[0] == [["ReduceMean_0", "Relu_1"]]
    assert matches(rules, as_attribute, header='<ir_version: 8, opset_import: ["" : 17]>\n')[0] == [["ReduceMean_0", "Relu_1"]]
    found, misses, _ = matches(rules, other_axis)
    assert found == [] and "axes=(0,)" in misses[0].reason


def test_where_constrains_dtype_and_rank(tmp_path):
    rules = load(tmp_path, rule_yaml("y = Relu(x)", where="{x: {dtype: [float16], rank: {min: 2}}}"))
    assert matches(rules, "g (float16[2, 3] x) => (float16[2, 3] y) { y = Relu (x) }")[0] == [["Relu_0"]]
    found, misses, _ = matches(rules, "g (float[2, 3] x) => (float[2, 3] y) { y = Relu (x) }")
    assert found == [] and misses == []  # the root itself failed: not a near miss
    assert matches(rules, "g (float16[3] x) => (float16[3] y) { y = Relu (x) }")[0] == []


def test_a_match_never_swallows_a_value_used_outside(tmp_path):
    rules = load(tmp_path, rule_yaml("a = Relu(x)\ny = Exp(a)"))
    graph = "g (float[2] x) => (float[2] y, float[2] z) { a = Relu (x)\n y = Exp (a)\n z = Neg (a) }"
    found, misses, _ = matches(rules, graph)
    assert found == [] and "also used by 'Neg_2'" in misses[0].reason
    declared = load(tmp_path, rule_yaml("a = Relu(x)\ny = Exp(a)", outputs="[y, a]"), "r2.yaml")
    assert matches(declared, graph)[0] == [["Exp_1", "Relu_0"]]


def test_reads_of_the_shape_alone_do_not_count_as_uses(tmp_path):
    rules = load(tmp_path, rule_yaml("a = Relu(x)\ny = Exp(a)"))
    graph = "g (float[2] x) => (float[2] y, int64[1] s) { a = Relu (x)\n y = Exp (a)\n s = Shape (a) }"
    assert matches(rules, graph)[0] == [["Exp_1", "Relu_0"]]


def test_level_1_fires_rules_only_and_reports_the_rule(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(rule_yaml("a = Relu(x)\ny = Exp(a)"))
    m = model("g (float[2] x) => (float[2] y) { a = Relu (x)\n y = Exp (a)\n }", header=OPSET18)
    other = model("g (float[2] x) => (float[2] y) { a = Sigmoid (x)\n y = Neg (a)\n }", header=OPSET18)
    result = fused(m, level=1, rules=[path], use_library=False)
    assert [(g["rule"], g["op_type"]) for g in result.report["groups"]] == [("probe", "Probe_0")]
    assert fused(other, level=1, rules=[path], use_library=False).report["groups"] == []
    assert fused(other, level=2, rules=[path], use_library=False).report["groups"][0]["rule"] is None


def test_disabled_rule_is_reported(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(rule_yaml("a = Relu(x)\ny = Exp(a)"))
    m = model("g (float[2] x) => (float[2] y) { a = Relu (x)\n y = Exp (a)\n }", header=OPSET18)
    result = fuse(m, opt_level=1, rules=[path], use_library=False, disable_rules=["probe"])
    assert result.report["groups"] == []
    assert [r["reason"] for r in result.report["rejected"]] == ["disabled_by_user"]


def test_bigger_match_wins_an_overlap(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(rule_yaml("y = Exp(x)") + rule_yaml("a = Relu(x)\ny = Exp(a)", name="bigger").replace("rules:\n", ""))
    m = model("g (float[2] x) => (float[2] y) { a = Relu (x)\n y = Exp (a)\n }", header=OPSET18)
    result = fuse(m, opt_level=1, rules=[path], use_library=False)
    assert [g["rule"] for g in result.report["groups"]] == ["bigger"]
    assert "overlapping_match" in {r["reason"] for r in result.report["rejected"]}


# -- errors -------------------------------------------------------------------------------------


def test_pattern_syntax_error_has_line_and_column():
    with pytest.raises(PatternSyntaxError) as error:
        parse_pattern("a = Relu(x)\ny = Add(a,, x)")
    assert error.value.line == 2 and error.value.column == 11


@pytest.mark.parametrize(("text", "line", "message"), [
    # rule_yaml writes: 1 rules:, 2 name, 3 pattern: |, 4.. pattern lines, then kind, inputs,
    # fused_op, lowering, examples, then any added field (line 10 after a one-line pattern).
    (rule_yaml("y = Rsqrt(x)"), 4, "unknown op 'Rsqrt' (did you mean 'Sqrt'?)"),
    (rule_yaml("y = Relu(x)", paterns="x"), 10, "unknown field 'paterns' (did you mean 'pattern'?)"),
    (rule_yaml("y = Relu(x,"), 4, "pattern: expected an expression"),
    (rule_yaml("y = Relu(w)"), 4, "pattern uses 'w', which is neither a binding nor declared"),
    (rule_yaml("y = Relu(x)", inputs="[x, w]"), 6, "capture 'w' is never bound by the pattern"),
    (rule_yaml("a = Exp(x)\ny = Relu(x)"), 4, "binding 'a' is never used"),
    (rule_yaml("a = Exp(x)\na = Relu(a)"), 5, "pattern binds 'a' twice"),
    (rule_yaml("y = Relu(x) | Add(x, w)", inputs="[x, w]"), 3, "capture 'w' is not bound on every alternative"),
    (rule_yaml("y = Relu(x)", fused_op="{name: Probe, attributes: {epsilon: eps}}"), 7,
     "fused_op attribute 'epsilon' takes undefined capture 'eps'"),
    (rule_yaml("y = Relu(x)", kind="norms"), 5, "unknown kind 'norms' (did you mean 'norm'?)"),
    (rule_yaml("y = Relu(x)", lowering="{ascendc: vector}"), 8, "lowering.ascendc must name a template family"),
    (rule_yaml("y = Relu(x)", where="{z: {dtype: [float32]}}"), 10, "'where' constrains undefined capture 'z'"),
    (rule_yaml("y = Relu(x)", where="{x: {dtype: [float33]}}"), 10, "unknown dtype 'float33'"),
    (rule_yaml("y = Relu(x)", examples=None), 2, "missing required field 'examples'"),
    (rule_yaml("y = x"), 4, "the root) must be an op"),
    (rule_yaml("y = Relu(x)", name="Bad-Name"), 2, "rule names are snake_case"),
    (rule_yaml("y = Relu(x)", outputs="[z]"), 10, "output 'z' is not a binding of the pattern"),
])
def test_every_validation_error_names_file_line_and_what(tmp_path, text, line, message):
    with pytest.raises(RuleError) as error:
        load(tmp_path, text)
    assert str(error.value).startswith(f"{tmp_path / 'r.yaml'}:{line}: rule '"), str(error.value)
    assert message in str(error.value)


def test_yaml_errors_and_duplicates(tmp_path):
    with pytest.raises(RuleError, match=r"r\.yaml:\d+: not valid YAML"):
        load(tmp_path, "rules:\n  - name: [unclosed\n")
    with pytest.raises(RuleError, match=r"a rule file is a mapping with a 'rules' list"):
        load(tmp_path, "- just a list\n")
    (tmp_path / "a.yaml").write_text(rule_yaml("y = Relu(x)"))
    (tmp_path / "b.yaml").write_text(rule_yaml("y = Exp(x)"))
    with pytest.raises(RuleError, match=r"b\.yaml:2: rule 'probe' is already defined at .*a\.yaml:2"):
        load_rules([tmp_path / "a.yaml", tmp_path / "b.yaml"])


def test_yaml_tags_are_not_executed(tmp_path):
    with pytest.raises(RuleError, match="r.yaml:1: not valid YAML: unsupported YAML tag"):
        load(tmp_path, "rules: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(RuleError, match="r.yaml:1: not valid YAML"):
        load(tmp_path, "rules: !!python/name:os.system\n")


def test_a_constant_bound_yaml_reads_as_text_is_an_error_with_a_hint(tmp_path):
    text = rule_yaml("y = Add(x, c)", constants="{c: {max: -1.0e4}}")
    with pytest.raises(RuleError, match=r"constant 'c': bounds must be numbers, got '-1.0e4' "
                                         r"\(YAML reads 1.0e4 as text: write 1.0e\+4\)"):
        load(tmp_path, text)
    assert load(tmp_path, rule_yaml("y = Add(x, c)", constants="{c: {max: -1.0e+4}}"))[0].constants["c"].maximum == -1e4


def test_a_root_may_name_another_binding_as_an_alternative(tmp_path):
    rules = load(tmp_path, rule_yaml("e = Exp(x)\ny = Relu(e) | e"))
    assert rules[0].anchors == frozenset({"Relu", "Exp"})
    found, _, _ = matches(rules, "g (float[2] x) => (float[2] y) { y = Exp (x) }")
    assert found == [["Exp_0"]]
