"""Generated sources against Huawei's real Ascend C and CANN headers (third_party/ascend-api).

Every kernel the suite generates — the demo, every rule example in every dtype at even and uneven
sizes, the per-op kernels in every dtype, every corpus model in fp32 and fp16 — is type-checked for
each shipped target (A2, A3: __NPU_ARCH__ 2201; 300I: 2002) with the kit's `check.sh`: the kernel as is and
for the vector core, and its op_host source. The kit cannot link or run (Huawei's CPU model is
binary-only); what a kernel computes is the emulator's part (test_kernel_verify.py).
"""
from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import onnx
import pytest
from kernel_cases import retyped, rule_cases, rule_model
from test_kernel_verify import EVEN, UNEVEN  # the same kernels as there: the results cache serves both
from test_ub_accounting import CASES as OP_CASES
from test_ub_accounting import build as op_model

from autofuse import fuse
from autofuse.cli import main
from autofuse.cost.hardware import KNOWN_TARGETS, load_profile
from autofuse.emulator.build import include_dir, target_for
from autofuse.verify import api_check
from autofuse.verify.api_check import check_projects, kit_directory

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "examples" / "tiny_llama.onnx"
KIT = ROOT / "third_party" / "ascend-api"


def test_the_kit_is_in_the_repository_with_its_licenses():
    """A fresh clone checks against the real headers without ../shared: the kit, its license
    texts and NOTICE are committed, and autofuse finds it."""
    assert kit_directory() == KIT
    notice = (KIT / "LICENSES" / "NOTICE").read_text()
    for repo in ("asc-devkit", "asc-tools", "metadef", "ge", "runtime", "libboundscheck"):
        assert (KIT / "LICENSES" / repo / "LICENSE").is_file(), repo
        assert re.search(rf"^{repo}\s+https://github.com/\S+\n\s+commit [0-9a-f]{{40}}", notice, re.MULTILINE), repo
    assert "CANN Open Software License Agreement" in (KIT / "LICENSES" / "asc-devkit" / "LICENSE").read_text()
    # every file of the kit is committed (an ignore rule once kept its tiling-header generator out)
    tracked = subprocess.run(["git", "-C", str(ROOT), "ls-files", "third_party/ascend-api"], capture_output=True,
                             text=True, check=True).stdout.split()
    on_disk = [str(p.relative_to(ROOT)) for p in KIT.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    assert sorted(on_disk) == sorted(tracked)


# -- every kernel the suite generates, on every target ------------------------------------------------


def _models():
    """(tag, model, fuse keyword arguments) of the models whose kernels the suite generates."""
    yield "demo", str(DEMO), {"opt_level": 3}
    for name, number, dtype in rule_cases():
        model = rule_model(name, number, dtype)
        if model is not None:
            for label, dims in (("even", EVEN), ("uneven", UNEVEN)):
                yield f"{name}-{number}-{dtype}-{label}", model, {"opt_level": 2, "dims": dims}
    for op, dtype, epilogue, kinds in OP_CASES:
        yield f"op-{op}-{dtype}-{epilogue}-{kinds}", op_model(op, dtype, epilogue, kinds), {"opt_level": 3}
    corpus = pytest.importorskip("autofuse.testing.corpus")
    for arch in corpus.ARCHES:
        for exporter in corpus.EXPORTERS:
            path = corpus.corpus_model(arch, exporter, 2).path
            yield f"{arch}-{exporter}", str(path), {"opt_level": 3}
            yield f"{arch}-{exporter}-fp16", retyped(onnx.load(str(path)), "float16"), {"opt_level": 3}


def _projects(target: str) -> dict[str, dict[str, str]]:
    """Every distinct generated project for `target`, under a unique folder name."""
    projects: dict[str, dict[str, str]] = {}
    seen: set[str] = set()
    for tag, model, kwargs in _models():
        result = fuse(model, target=target, kernels=True, **kwargs)
        for kernel in result.kernels.values():
            if not kernel.generated or kernel.same_as:
                continue
            digest = hashlib.sha256(json.dumps(sorted(kernel.files.items())).encode()).hexdigest()
            if digest not in seen:
                seen.add(digest)
                projects[f"{len(projects):04d}__{kernel.op_name}"] = kernel.files
    return projects


def sweep() -> dict[str, int]:
    """Generate the projects for each target in turn and check them; returns the counts. A3's
    projects differ from A2's only in SoC names and comments, so on the same architecture they
    are answered from A2's cached results."""
    counts = {}
    for target in KNOWN_TARGETS:
        projects = _projects(target)
        assert len(projects) > 300, f"{target}: only {len(projects)} projects: the model list lost its cases"
        if not load_profile(target).has_datacopy_pad:
            # CANN's 300I headers compile DataCopyPad (deprecated, "unsupported" at run time); the
            # emulator refuses it at compile time. The generator never writes it there, so the
            # two never disagree on a generated kernel:
            calls = [op for op, files in projects.items() if any("DataCopyPad(" in t for t in files.values())]
            assert not calls, f"DataCopyPad in {target} kernels: {calls[:3]}"
        results = check_projects(projects, target_for(target).npu_arch, cache_dir=ROOT / ".cache" / "kernels")
        failed = {op: r.error for op, r in results.items() if not r.ok}
        assert not failed, f"{len(failed)} of {len(projects)} projects do not compile on {target}: " + \
            "; ".join(f"{op}: {error}" for op, error in list(failed.items())[:3])
        counts[target] = len(projects)
    return counts


@pytest.mark.slow
def test_every_kernel_the_suite_generates_compiles_against_the_real_headers_on_every_target():
    """The demo, every rule example in every dtype at both sizes, the per-op kernels in every
    dtype, the corpus in fp32 and fp16: every distinct project, for A2, A3 and 300I. About a
    minute and a half on two cores (the sources are compiled many to a unit: api_batch.py)."""
    print("distinct projects that compile against the real headers:", sweep())


# -- the check itself --------------------------------------------------------------------------------


def _demo_projects(target: str = "ascend910b") -> dict[str, dict[str, str]]:
    result = fuse(str(DEMO), opt_level=3, target=target, kernels=True)
    return {k.op_name: k.files for k in result.kernels.values() if k.generated and not k.same_as}


def test_a_kernel_that_breaks_the_real_api_fails_with_the_compilers_words(tmp_path):
    """The 300I copy-out helper as it was (SetValue on a const GlobalTensor&): the emulator of
    the time accepted it, CANN's headers do not."""
    projects = _demo_projects("ascend310p")
    op, files = next((op, f) for op, f in projects.items() if "AfCopyRowsOut(GlobalTensor<T> dst" in
                     next(t for p, t in f.items() if p.startswith("op_kernel/") and p.endswith(".cpp")))
    kernel = next(p for p in files if p.startswith("op_kernel/") and p.endswith(".cpp"))
    broken = {**files, kernel: files[kernel].replace("AfCopyRowsOut(GlobalTensor<T> dst",
                                                     "AfCopyRowsOut(const GlobalTensor<T>& dst")}
    results = check_projects({op: broken}, 2002, work=tmp_path)
    assert not results[op].ok
    assert "discards qualifiers" in results[op].error and kernel in results[op].error


def test_every_project_has_an_atc_plugin_for_the_fused_op_types_it_serves(tmp_path):
    """The plugin names every fused node type of the rewritten model that the project implements
    (repeated layers share one project), and compiles against metadef's register.h; a broken one
    is reported as that project's error."""
    result = fuse(str(DEMO), opt_level=3, kernels=True)
    served: dict[str, set[str]] = {}
    for group in result.report["groups"]:
        kernel = result.kernels[group["id"]]
        if kernel.generated:
            served.setdefault(kernel.op_name, set()).add(f"ai.autofuse::1::{group['op_type']}")
    fused_types = {n.op_type for n in result.model.graph.node if n.domain == "ai.autofuse"}
    projects = _demo_projects()
    assert set(projects) == set(served)
    for op, files in projects.items():
        plugin = next(text for path, text in files.items() if path.startswith("framework/onnx_plugin/"))
        named = set(re.findall(r'ge::AscendString\("([^"]+)"\)', plugin))
        assert named == served[op] and {n.rsplit("::", 1)[1] for n in named} <= fused_types, op
        assert f'REGISTER_CUSTOM_OP("{op}")' in plugin and ".FrameworkType(ONNX)" in plugin
    assert any(len(names) > 1 for names in served.values()), "no project serves a repeated layer"
    op, files = next(iter(projects.items()))
    path = next(p for p in files if p.startswith("framework/onnx_plugin/"))
    broken = {**files, path: files[path].replace(".FrameworkType(ONNX)", ".FrameworkType(ONNX_MODEL)")}
    results = check_projects({**projects, op: broken}, 2201, work=tmp_path)
    assert not results[op].ok and path in results[op].error and "ONNX_MODEL" in results[op].error
    assert all(r.ok for other, r in results.items() if other != op)


def _kernel_path(files) -> str:
    return next(p for p in files if p.startswith("op_kernel/") and p.endswith(".cpp"))


def test_sources_are_checked_many_to_a_compile_and_only_a_failing_unit_is_checked_alone(tmp_path, monkeypatch):
    """The demo's projects, and a second copy of each under the same op names (as two models or two
    sizes of one rule example give): all pass in a few shared compiles, check.sh never runs. One
    copy broken: it alone fails, with check.sh's words about its own file; its twin passes."""
    projects = _demo_projects()
    twins = {f"{op}-twin": {**files, _kernel_path(files): files[_kernel_path(files)] + "// another size\n"}
             for op, files in projects.items()}
    compiles = []
    real = api_check.batch._errors
    monkeypatch.setattr(api_check.batch, "_errors", lambda command, timeout: compiles.append(command) or
                        real(command, timeout))

    def refused(*args, **kwargs):
        raise AssertionError("check.sh ran although every unit passed")

    monkeypatch.setattr(api_check, "_run_one_by_one", refused)
    results = check_projects({**projects, **twins}, 2201, work=tmp_path / "all")
    assert len(results) == 2 * len(projects) and all(r.ok for r in results.values())
    assert len(compiles) <= 8, f"{len(compiles)} compiles for {len(results)} projects"

    monkeypatch.undo()
    op = next(op for op, files in projects.items() if "pipe_->InitBuffer(" in files[_kernel_path(files)])
    kernel = _kernel_path(projects[op])
    broken = {**projects[op], kernel: projects[op][kernel].replace("pipe_->InitBuffer(", "pipe_->InitBufer(", 1)}
    assert broken[kernel] != projects[op][kernel]
    results = check_projects({**projects, **twins, op: broken}, 2201, work=tmp_path / "one")
    failed = {name for name, r in results.items() if not r.ok}
    assert failed == {op}, failed
    assert "InitBufer" in results[op].error and kernel in results[op].error


def test_a_unit_cannot_lend_a_source_a_header_it_does_not_include(tmp_path):
    """A MatMul kernel without its #include "lib/matmul_intf.h", checked with the other MatMul
    kernels (which include it): units hold sources of one include set, so it fails as it would
    alone."""
    projects = _demo_projects()
    op = next(op for op, files in projects.items() if '#include "lib/matmul_intf.h"' in files[_kernel_path(files)])
    kernel = _kernel_path(projects[op])
    alone = {**projects[op], kernel: projects[op][kernel].replace('#include "lib/matmul_intf.h"', "")}
    results = check_projects({**projects, op: alone}, 2201, work=tmp_path)
    assert {name for name, r in results.items() if not r.ok} == {op}
    assert "Matmul" in results[op].error or "matmul" in results[op].error


def test_results_are_cached_by_content(tmp_path, monkeypatch):
    projects = dict(list(_demo_projects().items())[:2])
    first = check_projects(projects, 2201, cache_dir=tmp_path)
    assert all(r.ok for r in first.values()) and len(list((tmp_path / "api").glob("*.json"))) == 2
    compiled = []

    def recording(kit, todo, arch, work, timeout_s):
        compiled.extend(todo)
        return {op: api_check.ApiResult(True) for op in todo}

    monkeypatch.setattr(api_check, "_run", recording)
    assert check_projects(projects, 2201, cache_dir=tmp_path) == first and not compiled
    op, files = next(iter(projects.items()))
    host = next(p for p in files if p.startswith("op_host/") and p.endswith(".cpp"))
    assert 'AddConfig("ascend910b")' in files[host]
    # another target of the same architecture writes another SoC name and comment: same result
    retargeted = files[host].replace('AddConfig("ascend910b")', 'AddConfig("ascend910_93")') + "// A3\n"
    check_projects({op: {**files, host: retargeted}}, 2201, cache_dir=tmp_path)
    assert not compiled
    check_projects({op: {**files, host: files[host] + "static int changed;\n"}}, 2201, cache_dir=tmp_path)
    check_projects({op: files}, 2002, cache_dir=tmp_path)  # another architecture
    assert compiled == [op, op]


def test_verify_kernels_reports_api_checked_per_kernel_and_fails_a_kernel_that_does_not_compile(
        tmp_path, monkeypatch, capsys):
    out = tmp_path / "demo"
    assert main(["--input", str(DEMO), "--opt-level", "3", "--verify-kernels", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    generated = [g for g in report["groups"] if g["kernel"]["generated"]]
    assert generated and all(g["kernel"]["api_checked"] is True for g in generated)
    assert f"api_checked {len(generated)}/{len(generated)} against CANN's real headers" in printed

    real = api_check._run

    def one_fails(kit, projects, arch, work, timeout_s):
        results = real(kit, projects, arch, work, timeout_s)
        first = sorted(results)[0]
        return {**results, first: api_check.ApiResult(False, "op_kernel/x.cpp: error: made up")}

    monkeypatch.setattr(api_check, "_run", one_fails)
    monkeypatch.setenv("AUTOFUSE_KERNEL_CACHE", str(tmp_path / "cold"))  # no cached results
    assert main(["--input", str(DEMO), "--opt-level", "3", "--verify-kernels", "-o", str(tmp_path / "bad")]) == 3
    captured = capsys.readouterr()
    assert "does not compile against CANN's headers" in captured.err
    report = json.loads((tmp_path / "bad" / "report.json").read_text())
    flagged = [g for g in report["groups"] if g["kernel"].get("api_checked") is False]
    assert flagged and all("made up" in g["kernel"]["api_error"] for g in flagged)


def test_without_the_kit_the_check_says_it_did_not_run(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("AUTOFUSE_ASCEND_API", str(tmp_path / "nowhere"))
    out = tmp_path / "demo"
    assert main(["--input", str(DEMO), "--opt-level", "3", "--verify-kernels", "-o", str(out)]) == 0
    assert "api_checked: not run: the ascend-api kit is not here" in capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    assert all(g["kernel"]["api_checked"] is None for g in report["groups"] if g["kernel"]["generated"])


# -- the host API for the CANN versions we claim ----------------------------------------------------


@pytest.mark.parametrize("has_new_call", [True, False])
def test_op_host_sets_the_block_count_with_the_call_the_headers_have(has_new_call, tmp_path):
    """SetSimdNumBlocks where TilingContext has it (current metadef), SetBlockDim before it: the
    helper the op_host source carries, compiled against a context of each kind."""
    source = next(t for p, t in next(iter(_demo_projects().values())).items() if p.startswith("op_host/")
                  and p.endswith(".cpp") and not p.endswith("_tiling_func.h"))
    helper = source[source.index("template <typename Context>"):source.index("static ge::graphStatus TilingFunc")]
    new_call = "int SetSimdNumBlocks(uint32_t n) { called = 2; return 0; }" if has_new_call else ""
    program = f"""
#include <cstdint>
#include <cstdio>
struct Context {{ int called = 0; int SetBlockDim(uint32_t n) {{ called = 1; return 0; }} {new_call} }};
{helper}
int main() {{ Context c; AfSetNumBlocks(&c, 8u, 0); std::printf("%d", c.called); return 0; }}
"""
    (tmp_path / "p.cpp").write_text(program)
    subprocess.run(["g++", "-std=c++17", "p.cpp", "-o", "p"], cwd=tmp_path, check=True, capture_output=True)
    called = subprocess.run([str(tmp_path / "p")], capture_output=True, text=True, check=True).stdout
    assert called == ("2" if has_new_call else "1")


# -- one API surface: the emulator declares what CANN declares ----------------------------------------

PROBE = ROOT / "tests" / "api_probe" / "probe.cpp"


def _kernel_flags(arch: int) -> list[str]:
    done = subprocess.run(["bash", str(KIT / "tools" / "check.sh"), "--print-flags", "kernel", "--arch", str(arch)],
                          capture_output=True, text=True, check=True)
    return done.stdout.split("\n")[:-1]


def _compile_probe(flags: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(["g++", "-fsyntax-only", *flags, str(PROBE)], capture_output=True, text=True, check=False)


@pytest.mark.parametrize("arch", [2201, 2002])
def test_the_probe_compiles_against_the_real_headers(arch):
    done = _compile_probe(_kernel_flags(arch))
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.parametrize("target", KNOWN_TARGETS)
def test_the_probe_compiles_against_the_emulator(target):
    flags = ["-std=c++17", "-DASCENDC_CPU_DEBUG=1", *target_for(target).defines(), f"-I{include_dir()}"]
    done = _compile_probe(flags)
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.parametrize("change", [
    ("autofuse_emu/tensor.h", "void SetValue(uint64_t offset, T value) {", "void SetValue(uint64_t offset, T value) const {"),
    ("autofuse_emu/tensor.h", "T GetValue(uint64_t offset) const {", "T GetValue(uint64_t offset) {"),
    ("autofuse_emu/vector.h", "inline void Name(const LocalTensor<T>& dst, const LocalTensor<T>& src, const int32_t& count) {",
     "inline void Name(const LocalTensor<T>& dst, const LocalTensor<T>& src, uint32_t count) {"),
    ("kernel_tiling/kernel_tiling.h", "    int32_t mxTypePara = 0;\n", ""),
])
def test_the_probe_notices_an_emulator_declaration_that_differs(change, tmp_path):
    """A copy of the emulator's headers with one declaration changed away from CANN's: the probe
    stops compiling against it."""
    copy = tmp_path / "include"
    shutil.copytree(include_dir(), copy)
    relative, before, after = change
    text = (copy / relative).read_text()
    assert text.count(before) == 1, f"{relative}: '{before}' is no longer there"
    (copy / relative).write_text(text.replace(before, after))
    flags = ["-std=c++17", "-DASCENDC_CPU_DEBUG=1", *target_for("ascend910b").defines(), f"-I{copy}"]
    assert _compile_probe(flags).returncode != 0


# -- refreshing the kit from upstream --------------------------------------------------------------


def _fake_clones(tmp_path: Path) -> dict[str, str]:
    """One git repository per upstream, holding the kit's files at their upstream paths; returns
    each one's HEAD commit."""
    sys.path.insert(0, str(KIT))
    try:
        import refresh
    finally:
        sys.path.remove(str(KIT))
    heads = {}
    for repo in refresh.notice_commits():
        clone = tmp_path / repo
        for upstream, ours in refresh.files_of(repo):
            (clone / upstream).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ours, clone / upstream)
        git = ["git", "-C", str(clone), "-c", "user.name=t", "-c", "user.email=t@t"]
        subprocess.run([*git[:3], "init", "-q"], check=True)
        subprocess.run([*git, "add", "-A"], check=True)
        subprocess.run([*git, "commit", "-qm", "snapshot"], check=True)
        heads[repo] = subprocess.run([*git[:3], "rev-parse", "HEAD"], capture_output=True, text=True,
                                     check=True).stdout.strip()
    return heads


def test_refresh_finds_every_file_upstream_and_reports_a_changed_one(tmp_path):
    heads = _fake_clones(tmp_path / "src")
    command = [sys.executable, str(KIT / "refresh.py"), "--sources", str(tmp_path / "src"), "--check",
               *(f"--commit={repo}={sha}" for repo, sha in heads.items())]
    same = subprocess.run(command, capture_output=True, text=True, check=False)
    assert same.returncode == 0 and same.stdout.strip().endswith("0 file(s) differ"), same.stdout + same.stderr
    header = tmp_path / "src" / "metadef" / "inc" / "external" / "register" / "register.h"
    header.write_text(header.read_text() + "\n// a newer commit\n")
    subprocess.run(["git", "-C", str(header.parents[3]), "-c", "user.name=t", "-c", "user.email=t@t", "commit",
                    "-qam", "newer"], check=True)
    heads["metadef"] = subprocess.run(["git", "-C", str(header.parents[3]), "rev-parse", "HEAD"],
                                      capture_output=True, text=True, check=True).stdout.strip()
    command = [*command[:5], *(f"--commit={repo}={sha}" for repo, sha in heads.items())]
    changed = subprocess.run(command, capture_output=True, text=True, check=False)
    assert changed.returncode == 1 and "metadef: inc/external/register/register.h changed" in changed.stdout
    assert changed.stdout.strip().endswith("1 file(s) differ")


if __name__ == "__main__":  # the sweep alone: every kernel the suite generates, on every target
    print("distinct projects that compile against the real headers:", sweep())
