"""Test-session setup: CPU only, one persistent compilation cache for the test process, the
CLI called in-process and every subprocess a test starts (``GOALAX_JAX_CACHE`` is what the CLI
reads), so a program compiled once is cheap everywhere."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
#: The suite tests behaviour, not XLA's optimiser: every program, here and in the CLI
#: subprocesses (which inherit ``XLA_FLAGS``), compiles at low optimisation. Most tests are
#: compile-bound. Whole suite, clean clone, idle 2 cores, cold cache: pytest 457 s (752 CPU-s)
#: with both flags, 594 s (1,025 CPU-s) with LLVM's expensive passes off alone, though the
#: learning tests alone run faster at full optimisation (58 s vs 78 s), so tests/test_learning.py
#: trains its point runs in a subprocess without these flags. ``GOALAX_TEST_FULL_XLA=1``
#: keeps XLA's defaults (what users run).
LOW_OPTIMISATION = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
if not os.environ.get("GOALAX_TEST_FULL_XLA"):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {LOW_OPTIMISATION}".strip()
CACHE = os.path.abspath(
    os.environ.get(
        "GOALAX_TEST_JAX_CACHE", os.path.join(os.path.dirname(__file__), "..", ".jax_cache")
    )
)
os.environ["GOALAX_JAX_CACHE"] = CACHE

import jax  # noqa: E402

jax.config.update("jax_compilation_cache_dir", CACHE)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)

#: Test files by their measured cost in the default suite (worker seconds on the 2-core CPU,
#: ``pytest --durations``), heaviest first. pytest-xdist (``--dist loadfile
#: --no-loadscope-reorder``) hands out files in collection order, so the two workers start on the
#: long files and finish together; files not named here follow in their usual order. Ordered
#: by count of tests instead (xdist's default), a 100 s file started last and one worker idled
#: for minutes at the end.
HEAVY_FIRST = (
    "test_envs_arm.py",
    "test_learning.py",
    "test_tools.py",
    "test_training.py",
    "test_agents.py",
    "test_reliability.py",
    "test_envs_ant.py",
    "test_readme.py",
    "test_quiet.py",
    "test_crl.py",
    "test_envs.py",
    "test_faults.py",
    "test_envs_humanoid.py",
    "test_lifecycle.py",
    "test_multi_device.py",
    "test_multi_host.py",
)


def pytest_collection_modifyitems(config, items) -> None:
    """Heaviest files first (stable: tests keep their order inside a file)."""
    del config
    rank = {name: i for i, name in enumerate(HEAVY_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))
