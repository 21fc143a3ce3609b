"""framing: measure how news outlets frame Russia, China and the West.

Python use mirrors the CLI:

    from framing import train, score_paths, evaluate
    train("labels", "models/default")
    result = score_paths(["seeds"], "models/default", "reports")
    print(result.table)

Names load on first use, so `import framing` (and `framing --help`) stays fast. Segmentation is
`framing.segment.segment` (not re-exported: the name would collide with its module).
"""

from importlib import import_module

__version__ = "0.1.0"

_EXPORTS = {
    "FramingError": "errors", "InputError": "errors", "LabelError": "errors", "ModelError": "errors",
    "OutputError": "errors", "evaluate": "pipeline", "score_paths": "pipeline", "train": "pipeline",
    "load_model": "classify", "read_documents": "readers",
}
__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'framing' has no attribute {name!r}")
