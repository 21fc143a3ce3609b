"""The public Python API: `framing.__all__`, what each name is, and what `import framing` costs."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import types

import pytest

import framing

PUBLIC = {"__version__", "FramingError", "InputError", "LabelError", "ModelError", "OutputError",
          "evaluate", "score_paths", "train", "load_model", "read_documents"}
FUNCTIONS = {"evaluate", "score_paths", "train", "load_model", "read_documents"}
HEAVY = ("torch", "sentence_transformers", "sklearn", "transformers", "trafilatura")


def test_all_matches_the_public_names():
    assert set(framing.__all__) == PUBLIC
    assert len(framing.__all__) == len(PUBLIC)  # no name twice


def test_version_is_a_string():
    assert isinstance(framing.__version__, str) and framing.__version__.count(".") == 2


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_public_function_resolves_to_the_function(name):
    for module in ("pipeline", "segment", "readers", "classify"):  # as after any real use of the package
        importlib.import_module(f"framing.{module}")
    value = getattr(framing, name)
    assert not isinstance(value, types.ModuleType), f"framing.{name} is a module"
    assert callable(value)
    assert value.__name__ == name and value.__module__.startswith("framing.")


@pytest.mark.parametrize("name", ["FramingError", "InputError", "LabelError", "ModelError", "OutputError"])
def test_public_errors_share_one_base_and_have_exit_codes(name):
    error = getattr(framing, name)
    assert issubclass(error, framing.FramingError)
    assert isinstance(error.exit_code, int) and error.exit_code >= 1


def test_error_exit_codes_are_distinct():
    codes = [getattr(framing, name).exit_code for name in ("InputError", "LabelError", "ModelError", "OutputError")]
    assert len(set(codes)) == len(codes)
    assert framing.FramingError.exit_code not in codes


def test_unknown_attribute_raises_attribute_error():
    with pytest.raises(AttributeError, match="no_such_thing"):
        framing.no_such_thing  # noqa: B018


def _modules_after(statement: str) -> set[str]:
    code = f"import json, sys\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    return set(json.loads(done.stdout))


@pytest.mark.parametrize("statement", ["import framing", "import framing; framing.__version__",
                                       "import framing.cli"])
def test_import_does_not_load_heavy_libraries(statement):
    loaded = _modules_after(statement)
    assert "framing" in loaded
    assert not [m for m in HEAVY if m in loaded]
