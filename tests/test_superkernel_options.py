"""SuperKernel options strings (grammar, keys, values) and the op table file: what CANN would reject
is rejected here, with the nearest valid key; what CANN ignores is a warning."""
from __future__ import annotations

import pytest

from autofuse.cost.hardware import load_profile
from autofuse.errors import InputError
from autofuse.superkernel.optable import load_optable, target_keys
from autofuse.superkernel.options import known_keys, parse_options

# superkernel.md 1.3, written out by hand: the keys CANN's option parser accepts.
CANN_KEYS = {
    "stream-fusion", "feed-sync-all", "strict-scope-check", "dcci-before-kernel-start", "dcci-after-kernel-end",
    "dcci-disable-on-kernel", "debug-aic-num", "debug-aiv-num", "early-start", "preload-code", "split-mode",
    "func-align", "debug-dcci-all", "debug-sync-all", "profiling", "compile-options",
}


def test_the_key_table_is_the_one_cann_accepts():
    assert set(known_keys()) == CANN_KEYS


def test_misspelled_key_suggests_the_nearest_one():
    with pytest.raises(InputError) as err:
        parse_options("stream-funsion=1")
    message = str(err.value)
    assert "did you mean 'stream-fusion'" in message and "stream-funsion" in message
    assert "\n" not in message


def test_unknown_key_without_a_near_one_lists_the_keys():
    with pytest.raises(InputError, match="known keys: stream-fusion, feed-sync-all"):
        parse_options("turbo=1")


def test_valid_pairs_are_kept_in_order_and_quotes_and_spaces_stripped():
    options = parse_options("'stream-fusion=1 : feed-sync-all=1:strict-scope-check=abort'")
    assert options.pairs == (("stream-fusion", "1"), ("feed-sync-all", "1"), ("strict-scope-check", "abort"))
    assert options.text == "stream-fusion=1:feed-sync-all=1:strict-scope-check=abort"
    assert options.stream_fusion and options.warnings == ()
    assert parse_options("").pairs == () and parse_options(None).text == ""


@pytest.mark.parametrize("text, expected", [
    ("stream-fusion=2", "expected 0 or 1"),
    ("feed-sync-all=yes", "expected 0 or 1"),
    ("strict-scope-check=warn", "expected bypass or abort"),
    ("early-start=3", "expected 0 or 1 or 2"),
    ("preload-code=all", "expected max or none or per-func"),
    ("split-mode=0", "an integer 1..64"),
    ("split-mode=65", "an integer 1..64"),
    ("split-mode=four", "an integer 1..64"),
    ("debug-aic-num=-1", "an integer 0 or more"),
    ("func-align=3", "0 or a power of 2"),
    ("dcci-disable-on-kernel=Grouped-Matmul", "'Grouped-Matmul' is not an op type"),
    ("stream-fusion=", "has an empty value"),
    ("stream-fusion=1:stream-fusion=0", "given twice"),
    ("debug-aic-num=8:debug-aiv-num=12", "ratio must be 1:0, 0:1, 1:1 or 1:2"),
])
def test_bad_values_are_errors(text, expected):
    with pytest.raises(InputError, match=expected):
        parse_options(text)


@pytest.mark.parametrize("text", ["split-mode=1", "split-mode=64", "func-align=0", "func-align=64",
                                  "debug-aic-num=8:debug-aiv-num=16", "debug-aic-num=0:debug-aiv-num=24",
                                  "dcci-disable-on-kernel=GroupedMatmul,MoeGatingTopK", "compile-options=-g",
                                  "preload-code=per-func:early-start=2"])
def test_good_values_pass(text):
    assert parse_options(text).text == text


def test_a_pair_without_equals_is_ignored_with_a_warning():
    # cann-recipes pass the placeholder "option_xxx2" on purpose: CANN ignores it.
    options = parse_options("option_xxx2")
    assert options.pairs == () and len(options.warnings) == 1 and "CANN ignores it" in options.warnings[0]
    forgot_value = parse_options("stream-fusion:feed-sync-all=1")
    assert forgot_value.pairs == (("feed-sync-all", "1"),)
    assert "did you mean 'stream-fusion=...'" in forgot_value.warnings[0]


def test_core_counts_are_bounded_by_the_target():
    a3 = load_profile("ascend910_93")
    assert parse_options("debug-aic-num=24:debug-aiv-num=48", hardware=a3).text
    with pytest.raises(InputError, match="more than the 24 cores of ascend910_93"):
        parse_options("debug-aic-num=25", hardware=a3)


def test_stream_fusion_with_early_start_warns():
    assert any("early-start has no effect" in w for w in parse_options("stream-fusion=1:early-start=2").warnings)
    assert parse_options("stream-fusion=1:early-start=0").warnings == ()


def test_unknown_op_type_in_a_dcci_list_warns_with_the_nearest():
    ops = load_optable().ge_ops
    warned = parse_options("dcci-before-kernel-start=GroupedMatMul", op_types=ops).warnings
    assert len(warned) == 1 and "did you mean 'GroupedMatmul'" in warned[0]


# -- the op table ----------------------------------------------------------------------------------


def test_shipped_table_facts_from_the_reference():
    table = load_optable()
    kinds = {name: op.kind for name, op in table.ge_ops.items()}
    # superkernel.md 1.2 / 1.4: the blacklisted Ascend C MoE routing kernels, the TBE ops vllm-ascend
    # found breaking scopes, the four collectives HCCL lets join on its AIV path.
    assert {kinds[k] for k in ("MoeInitRoutingV2", "MoeInitRoutingV3", "MoeInitRoutingQuant")} == {"excluded"}
    assert {kinds[k] for k in ("Cast", "StridedSliceV2", "Add", "Transpose", "ConcatV2")} == {"tbe"}
    assert {k for k, op in table.ge_ops.items() if op.aiv} == {"HcomAllReduce", "HcomAllGather",
                                                               "HcomReduceScatter", "HcomAllToAllV"}
    assert table.ge_op_of(target_keys_for("aten.mm.default"))[1].kind == "ascendc"
    assert all(op.source and "(confidence " in op.source for op in table.ge_ops.values())


def target_keys_for(name: str) -> tuple[str, ...]:
    import torch

    namespace, op, overload = name.split(".")
    return target_keys(getattr(getattr(getattr(torch.ops, namespace), op), overload))


def test_target_keys():
    import operator

    assert target_keys_for("aten.add.Tensor") == ("aten.add.Tensor", "aten.add")
    assert target_keys_for("aten.div_.Tensor") == ("aten.div_.Tensor", "aten.div_", "aten.div")
    assert target_keys(operator.getitem) == ("operator.getitem",)


def test_user_table_overrides_entries(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("ge_ops:\n  Transpose: {kind: ascendc, source: our profiling, confidence: S}\n"
                    "fx:\n  aten.repeat_interleave: Transpose\n")
    table = load_optable(path)
    assert table.ge_ops["Transpose"].kind == "ascendc" and table.ge_ops["Transpose"].source.startswith("our profiling")
    assert table.fx["aten.repeat_interleave"] == "Transpose"
    assert table.ge_ops["Cast"].kind == "tbe"  # untouched entries stay
    assert load_optable().ge_ops["Transpose"].kind == "tbe"


@pytest.mark.parametrize("text, expected", [
    ("ge_ops:\n  Foo: {kind: fast, source: x, confidence: S}\n", ":2: ge_ops.Foo: kind must be one of"),
    ("ge_ops:\n  Foo: {kind: tbe, confidence: S}\n", ":2: ge_ops.Foo: needs a source"),
    ("ge_ops:\n  Foo: {kind: tbe, source: x, confidence: Z}\n", "confidence must be one of"),
    ("ge_ops:\n  Foo: {kind: tbe, source: x, confidence: S, aiv: true}\n", "only for kind comm"),
    ("fx:\n  aten.foo: NoSuchOp\n", ":2: fx.aten.foo: GE op 'NoSuchOp' is not in ge_ops"),
    ("ops: {}\n", "an op table is a mapping with 'ge_ops' and/or 'fx'"),
])
def test_bad_user_table_names_file_and_line(tmp_path, text, expected):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(InputError, match=expected) as err:
        load_optable(path)
    assert str(path) in str(err.value)
