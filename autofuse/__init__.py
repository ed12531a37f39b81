"""autofuse: an automatic operator-fusion compiler pass for Ascend NPU inference graphs."""
__version__ = "0.1.0"

from autofuse.api import FuseResult, fuse  # noqa: E402

__all__ = ["FuseResult", "fuse", "__version__"]
