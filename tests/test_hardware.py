"""Hardware profiles: the shipped facts against the reference, and every validation error (file:line)."""
from __future__ import annotations

import dataclasses
import re

import pytest

from autofuse.cost import DEFAULT_TARGET, KNOWN_TARGETS, Hardware, load_profile
from autofuse.cost.hardware import PROFILE_DIR
from autofuse.errors import InputError

KIB = 1024
SOURCE = re.compile(r"^\S.* \(confidence [SMWG]\)$")


@pytest.fixture(scope="module")
def profiles() -> dict[str, Hardware]:
    return {name: load_profile(name) for name in KNOWN_TARGETS}


# -- shipped profiles ---------------------------------------------------------------------------


def test_known_targets_ship_and_load(profiles):
    assert DEFAULT_TARGET == "ascend910b"
    for name, hw in profiles.items():
        assert (PROFILE_DIR / f"{name}.yaml").is_file()
        assert hw.name == name and hw.description


def test_ascend910b_matches_the_reference(profiles):
    hw = profiles["ascend910b"]
    assert (hw.aic_cores, hw.aiv_cores, hw.vector_only_cores) == (24, 48, 0)
    assert hw.ub_bytes == 192 * KIB
    assert hw.ub_usable_bytes == 192 * KIB - 256 - 8 * KIB < hw.ub_bytes
    assert (hw.l1_bytes, hw.l0a_bytes, hw.l0b_bytes, hw.l0c_bytes) == (512 * KIB, 64 * KIB, 64 * KIB, 128 * KIB)
    assert hw.hbm_bytes == 64 * 1024**3 and hw.hbm_bandwidth == 1.6e12
    assert hw.l2_bytes == 192 * 1024**2
    assert hw.clock_hz == 1.8e9
    assert hw.cube_flops["float16"] == hw.cube_flops["bfloat16"] == 353e12
    assert hw.vector_ops["float16"] == pytest.approx(48 * 128 * 1.8e9, rel=1e-3)
    assert "bfloat16" not in hw.vector_dtypes and {"float16", "float32"} <= hw.vector_dtypes
    assert hw.has_datacopy_pad and not hw.l0c_to_ub
    assert (hw.launch_us_all_cores, hw.mix_extra_us) == (20, 5)
    assert hw.launch_us_few_cores < hw.launch_us_all_cores
    assert (hw.ub_alignment, hw.vector_repeat_bytes) == (32, 256)
    assert (hw.max_queue_buffers_per_position, hw.max_queue_buffers_total, hw.max_double_buffered_inputs) == (8, 64, 4)
    assert hw.sources["aic_cores"].endswith("(confidence S)")
    assert hw.sources["cube_flops.float32"].endswith("(confidence G)")


def test_ascend910_93_shares_the_a2_core(profiles):
    a2, a3 = profiles["ascend910b"], profiles["ascend910_93"]
    per_core = ("ub_bytes", "ub_usable_bytes", "l1_bytes", "l0a_bytes", "l0b_bytes", "l0c_bytes", "vector_dtypes",
                "has_datacopy_pad", "has_bf16_data", "l0c_to_ub", "ub_alignment", "max_queue_buffers_per_position")
    assert all(getattr(a2, f) == getattr(a3, f) for f in per_core)
    assert (a3.aic_cores, a3.aiv_cores) == (24, 48)
    assert a3.sources["aic_cores"].endswith("(confidence M)")
    assert a3.sources["hbm_bandwidth"].endswith("(confidence W)")


def test_ascend310p_lacks_datacopy_pad_and_bf16(profiles):
    hw = profiles["ascend310p"]
    assert not hw.has_datacopy_pad and not hw.has_bf16_data and profiles["ascend910b"].has_bf16_data
    assert "bfloat16" not in hw.vector_dtypes and "bfloat16" not in hw.cube_flops
    assert hw.l0c_to_ub  # through the vector unit on the coupled core
    assert hw.vector_only_cores > 0 and hw.mix_extra_us == 0
    assert hw.ub_usable_bytes < hw.ub_bytes
    for unverified in ("ub_bytes", "l1_bytes", "l0c_bytes", "l2_bytes", "clock_hz"):
        assert hw.sources[unverified].endswith("(confidence G)"), unverified


def numeric_keys(hw: Hardware) -> list[str]:
    keys = []
    for f in dataclasses.fields(hw):
        value = getattr(hw, f.name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            keys.append(f.name)
        elif isinstance(value, dict) and f.name != "sources":
            keys += [f"{f.name}.{k}" for k in value]
    keys += [f"dma_efficiency.{size}" for size, _ in hw.dma_efficiency]
    return keys


@pytest.mark.parametrize("name", KNOWN_TARGETS)
def test_every_number_has_a_source_and_a_confidence(profiles, name):
    hw = profiles[name]
    keys = numeric_keys(hw)
    assert len(keys) > 30
    for key in keys + ["vector_dtypes", "has_datacopy_pad", "l0c_to_ub"]:
        assert SOURCE.match(hw.sources.get(key, "")), key


@pytest.mark.parametrize("name", KNOWN_TARGETS)
def test_dma_fraction_is_monotonic_and_clamped(profiles, name):
    hw = profiles[name]
    table = hw.dma_efficiency
    assert [s for s, _ in table] == sorted(s for s, _ in table)
    sizes = [1, 7, 32, 100, 512, 1000, 2048, 3000, 16 * KIB, 100_000, 1 << 20, 1 << 30]
    fractions = [hw.dma_fraction(s) for s in sizes]
    assert fractions == sorted(fractions)
    assert all(table[0][1] <= f <= table[-1][1] <= 1 for f in fractions)
    assert hw.dma_fraction(0) == hw.dma_fraction(1) == table[0][1]
    assert hw.dma_fraction(1 << 40) == table[-1][1]
    for size, fraction in table:
        assert hw.dma_fraction(size) == pytest.approx(fraction)


def test_dma_fraction_interpolates_in_log_size(profiles):
    hw = profiles["ascend910b"]
    assert dict(hw.dma_efficiency)[1024] == 0.5 and dict(hw.dma_efficiency)[4096] == 0.8
    assert hw.dma_fraction(2048) == pytest.approx(0.65)  # halfway between 1 KiB and 4 KiB in log2
    assert hw.dma_fraction(16 * KIB) > 0.9  # Huawei: >= 16 KB per transfer is near peak


def test_a_user_profile_loads_like_a_shipped_one(tmp_path, profiles):
    path = tmp_path / "mine.yaml"
    path.write_text((PROFILE_DIR / "ascend910b.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    assert load_profile(str(path)) == profiles["ascend910b"]
    assert load_profile(path) == profiles["ascend910b"]


# -- unknown target -----------------------------------------------------------------------------


@pytest.mark.parametrize("typo, nearest", [("ascend910", "ascend910b"), ("ascend910_39", "ascend910_93"),
                                           ("ascend310", "ascend310p")])
def test_unknown_target_suggests_the_nearest(typo, nearest):
    with pytest.raises(InputError) as info:
        load_profile(typo)
    message = str(info.value)
    assert f"unknown target '{typo}' (did you mean '{nearest}'?)" in message
    assert "known targets: ascend910b, ascend910_93, ascend310p" in message
    assert info.value.exit_code == 2


def test_missing_profile_file(tmp_path):
    with pytest.raises(InputError, match=r"nope\.yaml: cannot read hardware profile"):
        load_profile(str(tmp_path / "nope.yaml"))


# -- validation errors --------------------------------------------------------------------------

BASE = (PROFILE_DIR / "ascend910b.yaml").read_text(encoding="utf-8")


def line_of(text: str, needle: str) -> int:
    """1-based line of the first line containing `needle`."""
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def load_bad(tmp_path, old: str, new: str) -> tuple[str, str]:
    """Load the A2 profile with `old` replaced by `new`; return (error message, new text)."""
    assert BASE.count(old) == 1, old
    text = BASE.replace(old, new)
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as info:
        load_profile(str(path))
    assert info.value.exit_code == 2
    message = str(info.value)
    assert message.startswith(f"{path}:") and "\n" not in message
    return message, text


CASES = {
    # id: (old, new, line marker in the new text, expected message)
    "missing field": (
        '  l0c: {value: 128, unit: KiB, confidence: S, source: "NPU架构版本2201.md; '
        'catlass include/catlass/arch/arch.hpp (AtlasA2)"}\n', "",
        "memory:", "missing field 'memory.l0c'"),
    "unknown group": (
        "launch:   #", "launch_:   #",
        "launch_:", "unknown field 'launch_' (did you mean 'launch'?)"),
    "unknown field": (
        "  l0c: {value: 128", "  l0cc: {value: 128",
        "l0cc:", "unknown field 'memory.l0cc' (did you mean 'memory.l0c'?)"),
    "unknown fact key": (
        "l0c: {value: 128, unit: KiB, confidence: S", "l0c: {value: 128, unit: KiB, confidance: S",
        "confidance", "unknown field 'memory.l0c.confidance' (did you mean 'memory.l0c.confidence'?)"),
    "negative value": (
        "l0c: {value: 128,", "l0c: {value: -128,",
        "l0c:", "'memory.l0c': value must be a positive number, got -128"),
    "zero value": (
        "aic: {value: 24,", "aic: {value: 0,",
        "aic:", "'cores.aic': value must be a positive number, got 0"),
    "text value": (
        "aic: {value: 24,", "aic: {value: many,",
        "aic:", "'cores.aic': value must be a positive number, got 'many'"),
    "boolean value": (
        "aic: {value: 24,", "aic: {value: true,",
        "aic:", "'cores.aic': value must be a positive number, got True"),
    "exponent read as text": (
        "hbm: {value: 1.6, unit: TB/s,", "hbm: {value: 1.6e12, unit: B/s,",
        "1.6e12", "got the string '1.6e12' (write 1.6e+12, or use a larger unit)"),
    "bad confidence": (
        "l0c: {value: 128, unit: KiB, confidence: S", "l0c: {value: 128, unit: KiB, confidence: X",
        "l0c:", "'memory.l0c': confidence must be one of S, M, W, G, got 'X'"),
    "missing confidence": (
        "l0c: {value: 128, unit: KiB, confidence: S,", "l0c: {value: 128, unit: KiB,",
        "l0c:", "missing field 'memory.l0c.confidence'"),
    "number without a source": (
        'l0c: {value: 128, unit: KiB, confidence: S, source: "NPU架构版本2201.md; '
        'catlass include/catlass/arch/arch.hpp (AtlasA2)"}', "l0c: {value: 128, unit: KiB, confidence: S}",
        "l0c:", "'memory.l0c' = 128 is a number without a source"),
    "bare number": (
        'l0c: {value: 128, unit: KiB, confidence: S, source: "NPU架构版本2201.md; '
        'catlass include/catlass/arch/arch.hpp (AtlasA2)"}', "l0c: 131072",
        "l0c:", "'memory.l0c' is a number without a source"),
    "bad unit": (
        "l0c: {value: 128, unit: KiB,", "l0c: {value: 128, unit: KB,",
        "l0c:", "'memory.l0c': unit must be one of B, KiB, MiB, GiB, got 'KB'"),
    "fractional bytes": (
        "l0c: {value: 128, unit: KiB,", "l0c: {value: 128.1, unit: B,",
        "l0c:", "'memory.l0c': 128.1 B is not a whole number"),
    "unknown dtype": (
        "value: [float16, float32, int16, int32]", "value: [float16, float23, int16, int32]",
        "float23", "unknown dtype 'float23' (did you mean 'float32'?)"),
    "feature not a bool": (
        "datacopy_pad: {value: true,", "datacopy_pad: {value: maybe,",
        "datacopy_pad:", "'features.datacopy_pad': value must be true or false, got 'maybe'"),
    "usable UB above total": (
        "ub_usable: {value: 183.75,", "ub_usable: {value: 200,",
        "ub_usable:", "'memory.ub_usable' is larger than 'memory.ub'"),
    "bf16 vector rate without bf16 arithmetic": (
        "    int32: {value: 5.53, unit: TOP/s,", "    bfloat16: {value: 5.53, unit: TOP/s,",
        "  vector:", "exactly the dtypes in 'features.vector_dtypes': int32 (no rate), bfloat16 (not a vector dtype)"),
    "dma sizes not ascending": (
        "{bytes: 4096, fraction: 0.8", "{bytes: 512, fraction: 0.8",
        "bytes: 512,", "'dma.efficiency': transfer sizes must ascend (512 after 1024)"),
    "dma fraction above one": (
        "{bytes: 262144, fraction: 1.0", "{bytes: 262144, fraction: 1.5",
        "fraction: 1.5", "'dma.efficiency': fraction must be at most 1, got 1.5"),
    "dma fraction falls": (
        "{bytes: 4096, fraction: 0.8", "{bytes: 4096, fraction: 0.4",
        "fraction: 0.4", "a larger transfer cannot reach a smaller fraction (0.4 after 0.5)"),
    "dma row without a source": (
        "{bytes: 256, fraction: 0.2, confidence: G, source: *dma_model}", "{bytes: 256, fraction: 0.2, confidence: G}",
        "bytes: 256,", "'dma.efficiency[256]' = 256 is a number without a source"),
    "feature without a source": (
        'datacopy_pad: {value: true, confidence: S, source: "asc-devkit DataCopyPad.md support table (A2/A3/200I-A2)"}',
        "datacopy_pad: {value: true, confidence: S}",
        "datacopy_pad:", "'features.datacopy_pad' = True is a fact without a source"),
    "duplicate key": (
        "  l0b: {value: 64", "  l0a: {value: 65",
        "l0a: {value: 65", "duplicate key 'l0a'"),
    "python tag": (
        "name: ascend910b", "name: !!python/object/apply:os.system ['echo pwned']",
        "python/object", "unsupported YAML tag tag:yaml.org,2002:python/object/apply:os.system"),
    "python scalar tag": (
        "name: ascend910b", "name: !!python/name:os.system",
        "python/name", "not valid YAML"),
    "broken YAML": (
        "aic: {value: 24,", "aic: {value: [24,",
        None, "not valid YAML"),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_validation_errors_name_file_and_line(tmp_path, case):
    old, new, marker, expected = CASES[case]
    message, text = load_bad(tmp_path, old, new)
    assert expected in message, message
    if marker is not None:
        assert message.startswith(f"{tmp_path / 'bad.yaml'}:{line_of(text, marker)}: "), message


def test_a_profile_must_be_a_mapping(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(InputError, match=r"list\.yaml:1: a hardware profile is a mapping"):
        load_profile(str(path))
