"""Regenerates ``examples/tiny_llama.onnx``, the model shipped with the examples.

A 2-layer tiny Llama (hidden 64, 4 heads / 2 KV heads, vocab 256, random but
deterministic weights; nothing is downloaded) exported with the dynamo ONNX
exporter at opset 18, dynamic ``[batch, seq]`` inputs ``input_ids`` and
``attention_mask``, output ``logits``.  The file is well under 1 MB.

Needs the ``test`` extra (torch, transformers, onnxscript)::

    python examples/make_example_model.py [OUTPUT]
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # run from a checkout without installing

from autofuse.testing.corpus import export_model  # noqa: E402

MAX_BYTES = 1 << 20


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    out = Path(argv[0]) if argv else HERE / "tiny_llama.onnx"
    export_model("llama", "dynamo", 2, out)
    size = out.stat().st_size
    if size >= MAX_BYTES:
        raise SystemExit(f"{out} is {size} bytes, over the {MAX_BYTES}-byte budget")
    print(f"wrote {out} ({size / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
