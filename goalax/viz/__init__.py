"""Videos, snapshots and learning-curve plots of goalax runs."""

from goalax.viz.plots import find_runs, format_table, plot_curves, summarise_runs
from goalax.viz.render import RenderError, choose_gl_backend, render_run, snapshot
from goalax.viz.stats import bootstrap_ci, iqm, stratified_bootstrap_ci

__all__ = [
    "RenderError",
    "bootstrap_ci",
    "choose_gl_backend",
    "find_runs",
    "format_table",
    "iqm",
    "plot_curves",
    "render_run",
    "snapshot",
    "stratified_bootstrap_ci",
    "summarise_runs",
]
