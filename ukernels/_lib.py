"""The compiled C extension (csrc/ through cffi), imported once."""
try:
    from ukernels._native import ffi, lib  # type: ignore[import-not-found]
except ImportError as exc:  # pragma: no cover - only on a broken install
    raise ImportError(
        "ukernels' C extension (ukernels._native) is not built. Install the package "
        "with `pip install .` (or `pip install -e .`) from the repository root; "
        "a C compiler (gcc or clang) is required."
    ) from exc

__all__ = ["ffi", "lib"]
