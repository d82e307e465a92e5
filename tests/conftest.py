"""Test-session setup: CPU only, one persistent compilation cache for the test process, the
CLI called in-process and every subprocess a test starts (``GOALAX_JAX_CACHE`` is what the CLI
reads), so a program compiled once is cheap everywhere."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
CACHE = os.path.abspath(
    os.environ.get(
        "GOALAX_TEST_JAX_CACHE", os.path.join(os.path.dirname(__file__), "..", ".jax_cache")
    )
)
os.environ["GOALAX_JAX_CACHE"] = CACHE

import jax  # noqa: E402

jax.config.update("jax_compilation_cache_dir", CACHE)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
