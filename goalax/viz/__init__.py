"""Videos, snapshots and learning-curve plots of goalax runs."""

from goalax.viz.plots import bootstrap_ci, find_runs, format_table, plot_curves, summarise_runs
from goalax.viz.render import RenderError, choose_gl_backend, render_run, snapshot

__all__ = [
    "RenderError",
    "bootstrap_ci",
    "choose_gl_backend",
    "find_runs",
    "format_table",
    "plot_curves",
    "render_run",
    "snapshot",
    "summarise_runs",
]
