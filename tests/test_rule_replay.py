"""A match reused at another root (candidates/rules/replay.py) is exactly the match a search
there finds: the same matches with reuse as without, on real exports, on stacks of layers, on
the rule library's own examples and on random graphs; and a layer that differs in anything the
search reads is searched on its own."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from graphs import model
from hypothesis import HealthCheck, given, settings
from kernel_cases import LIBRARY
from random_graphs import random_models

from autofuse.candidates.rules.examples import example_model
from autofuse.candidates.rules.matcher import RuleIndex, find_matches
from autofuse.frontends.onnx import load_onnx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.synthetic import make_stack  # noqa: E402

INDEX = RuleIndex(list(LIBRARY))
HEADER = '<ir_version: 8, opset_import: ["" : 18]>\n'
_HAS_CORPUS_DEPS = all(importlib.util.find_spec(m) for m in ("torch", "transformers", "onnxscript"))


def _matches(graph, reuse: bool) -> list[tuple]:
    found, _ = find_matches(graph, INDEX, reuse=reuse)
    return sorted((m.rule.name, m.root, tuple(sorted(m.nodes)), tuple(sorted(m.values.items())),
                   tuple(sorted(m.constants.items()))) for m in found)


def _same_with_and_without_reuse(graph) -> list[tuple]:
    searched = _matches(graph, reuse=False)
    assert _matches(graph, reuse=True) == searched
    return searched


def test_a_stack_of_layers_matches_the_same_with_reuse():
    graph = load_onnx(make_stack(6)).graph
    found = _same_with_and_without_reuse(graph)
    per_rule = {}
    for name, *_ in found:
        per_rule[name] = per_rule.get(name, 0) + 1
    assert per_rule["rotary_embedding"] == 12 and per_rule["swiglu"] == 6


@pytest.mark.parametrize("rule", LIBRARY, ids=lambda r: r.name)
def test_rule_examples_match_the_same_with_reuse(rule):
    for text in (*rule.examples_match, *rule.examples_near_miss):
        _same_with_and_without_reuse(load_onnx(example_model(text)).graph)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_models(min_nodes=4, max_nodes=24))
def test_random_graphs_match_the_same_with_reuse(case):
    _same_with_and_without_reuse(load_onnx(case.model).graph)


@pytest.mark.corpus
@pytest.mark.skipif(not _HAS_CORPUS_DEPS, reason="torch/transformers/onnxscript are needed to export the corpus")
@pytest.mark.parametrize("exporter", ["dynamo", "torchscript"])
@pytest.mark.parametrize("arch", ["gpt2", "bert", "llama", "qwen2"])
def test_real_exports_match_the_same_with_reuse(arch, exporter):
    from autofuse.testing import corpus

    graph = load_onnx(str(corpus.corpus_model(arch, exporter, 3).path)).graph
    assert _same_with_and_without_reuse(graph)


# Four RMSNorm blocks in a row: the third differs from the others in one fact the search reads.
# (The second is searched and kept; the first reads a graph input and the last writes the graph
# output, so neither has the middle blocks' surroundings.) Each block has its own weight.
_NORM = """
        sq{i} = Pow({x}, two)
        mean{i} = ReduceMean(sq{i}, last)
        v{i} = Add(mean{i}, {eps})
        std{i} = {sqrt}(v{i})
        r{i} = Reciprocal(std{i})
        n{i} = Mul({x}, r{i})
        y{i} = Mul(n{i}, w{i})"""
_CHAIN = """
g (float[B, S, 8] x, float[8] w1, float[8] w2, {w3} w3, float[8] w4) => (float[B, S, 8] y4{extra_out}) <float two = {{2.0}}, float eps = {{1e-6}}, float big = {{0.5}}, float three = {{3.0}}, int64[1] last = {{-1}}> {{
{blocks}
{extra}
}}"""


def _chain(third: dict, extra: str = "", extra_out: str = "", w3: str = "float[8]") -> str:
    common = {"eps": "eps", "sqrt": "Sqrt"}
    blocks = [_NORM.format(i=1, x="x", **common), _NORM.format(i=2, x="y1", **common),
              _NORM.format(**{"i": 3, "x": "y2", **common, **third}), _NORM.format(i=4, x="y3", **common)]
    return _CHAIN.format(blocks="\n".join(blocks), extra=extra, extra_out=extra_out, w3=w3)


def _roots(graph, found) -> set[str]:
    return {graph.nodes[root].outputs[0] for name, root, *_ in found if name == "rms_norm"}


def test_the_middle_blocks_reuse_one_match():
    graph = load_onnx(model(_chain({}), HEADER)).graph
    assert _roots(graph, _same_with_and_without_reuse(graph)) == {"y1", "y2", "y3", "y4"}
    assert _reused(graph) == {"y3"}  # so that the cases below check something


@pytest.mark.parametrize("third, extra, extra_out, w3, roots", [
    ({"eps": "big"}, "", "", "float[8]", {"y1", "y2", "y4"}),  # epsilon outside the rule's range
    ({}, "", "", "float[1, 8]", {"y1", "y2", "y4"}),  # a 2-D weight: the rule wants rank 1
    ({"sqrt": "Abs"}, "", "", "float[8]", {"y1", "y2", "y4"}),  # another op, the same types
    ({}, "        t = Identity(r3)", ", float[B, S, 1] t", "float[8]", {"y1", "y2", "y4"}),  # also used outside
    ({}, "        t = Shape(n3)", ", int64[3] t", "float[8]", {"y1", "y2", "y3", "y4"}),  # ...by Shape: allowed
], ids=["eps", "weight-rank", "op", "escapes", "shape-read"])
def test_a_block_that_differs_is_searched_on_its_own(third, extra, extra_out, w3, roots):
    graph = load_onnx(model(_chain(third, extra, extra_out, w3), HEADER)).graph
    assert _roots(graph, _same_with_and_without_reuse(graph)) == roots


def test_the_pow_exponent_is_read_from_the_constant():
    """Pow(x, 3) is not a square: a block whose constant differs must not reuse the match."""
    text = _chain({}).replace("sq3 = Pow(y2, two)", "sq3 = Pow(y2, three)")
    graph = load_onnx(model(text, HEADER)).graph
    assert _roots(graph, _same_with_and_without_reuse(graph)) == {"y1", "y2", "y4"}


def _reused(graph) -> set[str]:
    """The roots whose rms_norm match came from another root's."""
    from autofuse.candidates.rules import replay

    reused = set()
    real = replay.Replays.reuse

    def spy(self, key, root):
        found = real(self, key, root)
        if found is not None:
            reused.add(graph.nodes[root].outputs[0])
        return found

    replay.Replays.reuse = spy
    try:
        find_matches(graph, INDEX)
    finally:
        replay.Replays.reuse = real
    return reused
