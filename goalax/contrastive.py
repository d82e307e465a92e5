"""Energies and contrastive losses of the CRL critic: pure functions of embeddings and logits.

The critic embeds state-actions ``phi = φ(s, a)`` and goals ``psi = ψ(g)`` into ``R^d``. An
*energy* ``f(phi_i, psi_j)`` scores how likely goal ``j`` is a future of state-action ``i``
(higher = more similar). In a batch of ``B`` pairs sampled together the diagonal ``(i, i)`` are the
positives (goal ``i`` really is a future of state-action ``i``) and the off-diagonal ``(i, j)``,
``i != j``, are the negatives. A *loss* turns the ``[B, B]`` logit matrix into a scalar.

Choices are dispatched through the module-level dicts ``_ENERGY_FNS`` and ``_LOSS_FNS``; an
unknown name raises ``ValueError`` listing the valid ones. Every loss assumes ``B >= 2``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp

Array = jax.Array

__all__ = [
    "ENERGIES",
    "IQE_ALPHA",
    "IQE_COMPONENTS",
    "LOSSES",
    "contrastive_loss",
    "extra_metric_names",
    "iqe_distance",
    "logsumexp_penalty",
    "mrn_distance",
    "pairwise_iqe_distance",
    "paired_logits",
    "pairwise_logits",
]

# Squared-norm floor of the cosine normalisation: keeps a zero row finite (it maps to 0).
_COSINE_EPS = 1e-12


# ---------------------------------------------------------------------------------------------
# Energies. Each maps x [..., d], y [..., d] (broadcastable) to [...]: defining an energy once
# for broadcast rows makes the pairwise matrix and its diagonal agree by construction.


def _safe_l2_norm(diff: Array) -> Array:
    """``||diff||_2`` over the last axis with gradient 0 (not NaN) where ``diff == 0``.

    The double ``where`` keeps ``sqrt`` away from 0 in both the forward and the backward pass:
    ``d sqrt(x)/dx = 1 / (2 sqrt(x))`` is infinite at 0, and ``inf * 0 = NaN`` in the chain rule.
    """
    squared = jnp.sum(jnp.square(diff), axis=-1)
    positive = squared > 0.0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, squared, 1.0)), 0.0)


def _l2(x: Array, y: Array) -> Array:
    """``-||x - y||_2``: the paper's default energy."""
    return -_safe_l2_norm(x - y)


def _l2_squared(x: Array, y: Array) -> Array:
    """``-||x - y||_2^2``."""
    return -jnp.sum(jnp.square(x - y), axis=-1)


def _l1(x: Array, y: Array) -> Array:
    """``-||x - y||_1`` (``|.|`` has gradient 0 at 0 in JAX, so identical rows stay finite)."""
    return -jnp.sum(jnp.abs(x - y), axis=-1)


def _dot(x: Array, y: Array) -> Array:
    """``x · y``."""
    return jnp.sum(x * y, axis=-1)


def _unit_rows(x: Array) -> Array:
    """``x / sqrt(||x||^2 + eps)`` per row (last axis): each row on its own, never the batch."""
    squared_norm = jnp.sum(jnp.square(x), axis=-1, keepdims=True)
    return x * jax.lax.rsqrt(squared_norm + _COSINE_EPS)


def _cosine(x: Array, y: Array) -> Array:
    """``x·y / (||x|| ||y||)`` with each row normalised separately (scale-invariant per row)."""
    return _dot(_unit_rows(x), _unit_rows(y))


# Quasimetric energies: d(x, y) >= 0, d(x, x) = 0 and the triangle inequality hold, but in general
# d(x, y) != d(y, x) (reaching a goal can be harder than coming back). Energy = -distance.

#: IQE's components in the ``iqe`` energy: 8 dims each at the default ``repr_dim`` 64.
IQE_COMPONENTS = 8
#: IQE's fixed maxmean weight: sigmoid(-1), the value QRL's maxmean starts from (QRL learns it).
IQE_ALPHA = 1.0 / (1.0 + math.e)


def _max_along(values: Array, axis: int) -> Array:
    """``max`` over ``axis`` with its gradient on one arg-max entry.

    ``jnp.max``'s gradient divides by the number of entries that compare equal to the max. In
    a compiled program the max and the compared entries can differ in the last bit (seen: two
    fused CRL updates at ``--xla_backend_optimization_level=0``), then none match and the
    gradient is ``0 / 0 = NaN``. Selecting the arg-max entry has no division (and no gather,
    whose scatter-add gradient is slow on CPU).
    """
    arg_max = jnp.argmax(values, axis=axis, keepdims=True)
    position = jax.lax.broadcasted_iota(arg_max.dtype, values.shape, axis % values.ndim)
    return jnp.sum(jnp.where(position == arg_max, values, 0.0), axis=axis)


def _mrn_halves(x: Array) -> tuple[Array, Array]:
    """``[..., d] -> ([..., d/2], [..., d/2])``: MRN's symmetric and asymmetric halves."""
    dim = x.shape[-1]
    if dim % 2:
        raise ValueError(
            f"MRN splits the embedding in two halves: its size must be even, got {dim}"
        )
    return x[..., : dim // 2], x[..., dim // 2 :]


def _max_relu_gap(x: Array, y: Array) -> Array:
    """``max_i ReLU(x_i - y_i)`` over the last axis: MRN's asymmetric part."""
    return jnp.maximum(_max_along(x - y, -1), 0.0)


def mrn_distance(x: Array, y: Array) -> Array:
    """Metric residual network distance (Liu et al., AAAI 2023), ``[..., d] x [..., d] -> [...]``.

    ``d(x, y) = ||x_sym - y_sym||_2 + max_i ReLU(x_asym,i - y_asym,i)``, with ``x_sym`` the first
    and ``x_asym`` the second half of the last axis (``d`` must be even). The plain (not squared)
    norm keeps it a quasimetric, the fix of Wang & Isola 2022 (App. C.2); the gradient is finite
    at ``x == y``. Inputs broadcast like the energies; for all pairs of two batches,
    ``-pairwise_logits("mrn", x, y)`` is faster (its symmetric half is one matmul).
    """
    x_sym, x_asym = _mrn_halves(x)
    y_sym, y_asym = _mrn_halves(y)
    return _safe_l2_norm(x_sym - y_sym) + _max_relu_gap(x_asym, y_asym)


def _union_length(starts: list[Array], ends: list[Array]) -> Array:
    """Length of the union of the intervals ``[starts[n], max(starts[n], ends[n])]``, listed in
    order of increasing start (arrays that broadcast together).

    In that order the intervals before ``n`` cover all of ``[starts[n], reach]``, ``reach`` the
    largest earlier end, so interval ``n`` adds ``ReLU(ends[n] - max(starts[n], reach))``.
    Positions are separate arrays (not slices of one), and maxima are selects: the gradient is
    a few selects per position instead of padded full-size slices (10x slower on CPU).
    """
    gap = ends[0] - starts[0]
    total, reach = jnp.where(gap > 0.0, gap, 0.0), ends[0]
    for start, end in zip(starts[1:], ends[1:], strict=True):
        gap = end - jnp.where(start >= reach, start, reach)
        total = total + jnp.where(gap > 0.0, gap, 0.0)
        reach = jnp.where(end > reach, end, reach)
    return total


def _iqe_components(x: Array, components: int) -> Array:
    """``[..., d] -> [..., components, d / components]``, or ValueError if it does not divide."""
    if components < 1 or x.shape[-1] % components:
        raise ValueError(
            f"IQE needs a number of components that divides the embedding size {x.shape[-1]}, "
            f"got {components}"
        )
    return x.reshape(*x.shape[:-1], components, -1)


def _sorting_picks(x: Array) -> Array:
    """``[..., l] -> [..., l, l]`` one-hot: ``picks[..., n, s] = 1`` iff ``x_s`` is the ``n``-th
    smallest. Reordering by ``sum_s picks[..., n, s] v_s`` is exact (one nonzero term) and its
    gradient is a product, where a gather's gradient is a scatter (a serial loop on CPU)."""
    return jax.nn.one_hot(jnp.argsort(x, axis=-1), x.shape[-1], dtype=x.dtype)


def _reorder(picks: Array, values: Array) -> Array:
    """``values [..., l]`` in the order of ``picks [..., l, l]`` (shapes broadcast)."""
    return jnp.sum(picks * values[..., None, :], axis=-1)


def _maxmean(lengths: Array, axis: int, alpha: float) -> Array:
    return alpha * _max_along(lengths, axis) + (1.0 - alpha) * jnp.mean(lengths, axis=axis)


def iqe_distance(x: Array, y: Array, components: int, alpha: float = IQE_ALPHA) -> Array:
    """Interval quasimetric embedding (Wang & Isola 2022), ``[..., d] x [..., d] -> [...]``.

    The last axis is read as ``[components, l]`` (``components`` must divide ``d``). Component
    ``k``'s distance is the total length of the union of the intervals
    ``[x_kj, max(x_kj, y_kj)]``, ``j = 1..l`` (exact, by sorting ``x``); the result is the maxmean
    ``alpha * max_k + (1 - alpha) * mean_k`` of the components (QRL learns ``alpha``; here it is
    a constant). Inputs broadcast, at ``l`` times the memory of the broadcast shape: for all
    pairs of two batches use ``pairwise_iqe_distance``.
    """
    x, y = _iqe_components(x, components), _iqe_components(y, components)
    picks = _sorting_picks(x)
    starts, ends = _reorder(picks, x), _reorder(picks, y)
    positions = range(x.shape[-1])
    lengths = _union_length([starts[..., n] for n in positions], [ends[..., n] for n in positions])
    return _maxmean(lengths, -1, alpha)


def pairwise_iqe_distance(x: Array, y: Array, components: int, alpha: float = IQE_ALPHA) -> Array:
    """``iqe_distance(x_i, y_j)`` for all pairs, ``[N, d] x [M, d] -> [N, M]``.

    Only the ``N`` rows of ``x`` are sorted; every ``y_j`` is put in ``x_i``'s order by one
    matmul per position, in full float32 (exact: one nonzero term per sum; TF32 would round
    ``y``). Components run one after another (``lax.map``): each holds ``d / components``
    arrays ``[N, M]`` at a time, which stay in cache on CPU (3x faster at ``N = M = 128``).
    """
    x, y = _iqe_components(x, components), _iqe_components(y, components)
    picks = _sorting_picks(x)  # [N, components, l, l]
    starts = _reorder(picks, x)  # [N, components, l]

    def component_lengths(inputs: tuple[Array, Array, Array]) -> Array:
        picks, starts, y = inputs  # [N, l, l], [N, l], [M, l]
        positions = range(starts.shape[-1])
        return _union_length(
            [starts[:, n, None] for n in positions],
            [jnp.matmul(picks[:, n], y.T, precision=_MATMUL_PRECISION) for n in positions],
        )

    per_component = (jnp.moveaxis(a, 1, 0) for a in (picks, starts, y))
    return _maxmean(jax.lax.map(component_lengths, tuple(per_component)), 0, alpha)


def _mrn(x: Array, y: Array) -> Array:
    """``-mrn_distance(x, y)``."""
    return -mrn_distance(x, y)


def _iqe(x: Array, y: Array) -> Array:
    """``-iqe_distance(x, y)`` with ``IQE_COMPONENTS`` components and maxmean ``IQE_ALPHA``."""
    return -iqe_distance(x, y, IQE_COMPONENTS)


_ENERGY_FNS: dict[str, Callable[[Array, Array], Array]] = {
    "l2": _l2,
    "l2_squared": _l2_squared,
    "l1": _l1,
    "dot": _dot,
    "cosine": _cosine,
    "mrn": _mrn,
    "iqe": _iqe,
}
ENERGIES: tuple[str, ...] = tuple(_ENERGY_FNS)


def _energy_fn(energy: str) -> Callable[[Array, Array], Array]:
    if energy not in _ENERGY_FNS:
        raise ValueError(f"unknown energy {energy!r}; valid energies: {', '.join(ENERGIES)}")
    return _ENERGY_FNS[energy]


#: Matmuls of the pairwise energies run in full float32: the default precision is TF32 (10-bit
#: mantissa) on Ampere/Hopper GPUs, which loses the small distances of the positives.
_MATMUL_PRECISION = jax.lax.Precision.HIGHEST


def _cross(x: Array, y: Array) -> Array:
    """``x_i · y_j`` as ``[B, B]`` in full float32 on every backend."""
    return jnp.matmul(x, y.T, precision=_MATMUL_PRECISION)


def _pairwise_squared_distances(phi: Array, psi: Array) -> Array:
    """``||phi_i - psi_j||^2`` as ``[B, B]`` via ``||a||^2 + ||b||^2 - 2 a·b`` (one matmul).

    The matmul form costs ``O(B^2 d)`` flops without materialising a ``[B, B, d]`` difference
    tensor (which dominated the update time on CPU and grows to hundreds of MB at batch 1024).
    Its weakness is cancellation: for a pair at distance ``r`` with norms ``n`` the result has
    absolute error ``~ eps n^2``, so at large norms a small distance loses its digits. Three
    measures keep every entry accurate: both sets are centred on their common mean first
    (distances are translation-invariant, and the norms that cancel shrink to the spread of the
    embeddings); the matmul runs in full float32 (``_MATMUL_PRECISION``); and the diagonal, where
    the positives sit and distances are smallest, is recomputed exactly from the differences
    (``O(B d)``). Rounding can still leave an off-diagonal entry slightly negative: clamped at 0.
    """
    centre = 0.5 * (jnp.mean(phi, axis=0) + jnp.mean(psi, axis=0))
    phi, psi = phi - centre, psi - centre
    sq_phi = jnp.sum(jnp.square(phi), axis=-1, keepdims=True)
    sq_psi = jnp.sum(jnp.square(psi), axis=-1, keepdims=True)
    squared = jnp.maximum(sq_phi + sq_psi.T - 2.0 * _cross(phi, psi), 0.0)
    exact_diagonal = jnp.sum(jnp.square(phi - psi), axis=-1)
    on_diagonal = jnp.eye(phi.shape[0], psi.shape[0], dtype=bool)
    return jnp.where(on_diagonal, exact_diagonal[:, None], squared)


def _pairwise_safe_sqrt(squared: Array) -> Array:
    positive = squared > 0.0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, squared, 1.0)), 0.0)


def _pairwise_mrn(phi: Array, psi: Array) -> Array:
    """``-mrn_distance`` as ``[B, B]``: the symmetric half by the matmul form, the asymmetric
    half by broadcasting (``O(B^2 d / 2)`` memory; a max has no matmul form)."""
    phi_sym, phi_asym = _mrn_halves(phi)
    psi_sym, psi_asym = _mrn_halves(psi)
    symmetric = _pairwise_safe_sqrt(_pairwise_squared_distances(phi_sym, psi_sym))
    return -(symmetric + _max_relu_gap(phi_asym[:, None, :], psi_asym[None, :, :]))


_PAIRWISE_FNS: dict[str, Callable[[Array, Array], Array]] = {
    "l2": lambda x, y: -_pairwise_safe_sqrt(_pairwise_squared_distances(x, y)),
    "l2_squared": lambda x, y: -_pairwise_squared_distances(x, y),
    "dot": _cross,
    "cosine": lambda x, y: _cross(_unit_rows(x), _unit_rows(y)),
    "mrn": _pairwise_mrn,
    "iqe": lambda x, y: -pairwise_iqe_distance(x, y, IQE_COMPONENTS),
}


def pairwise_logits(energy: str, phi: Array, psi: Array) -> Array:
    """All-pairs critic ``logits[i, j] = f(phi_i, psi_j)``, ``[B, d] x [B, d] -> [B, B]``.

    ``f`` is one of ``ENERGIES``: ``l2 = -||phi_i - psi_j||_2``, ``l2_squared = -||.||_2^2``,
    ``l1 = -||.||_1``, ``dot = phi_i · psi_j``, ``cosine = (phi_i/||phi_i||) · (psi_j/||psi_j||)``,
    and the quasimetrics ``mrn = -mrn_distance(phi_i, psi_j)`` and
    ``iqe = -iqe_distance(phi_i, psi_j, IQE_COMPONENTS)`` (distance from state-action to goal).
    ``l2``, ``l2_squared``, ``dot`` and ``cosine`` use one full-precision matmul (fast on every
    backend, accurate at large norms, see ``_pairwise_squared_distances``), as does the symmetric
    half of ``mrn``; ``l1`` and ``mrn``'s asymmetric half have no matmul form and broadcast rows
    (``O(B^2 d)`` memory), and ``iqe`` is ``pairwise_iqe_distance`` (also ``O(B^2 d)``).
    """
    energy_fn = _energy_fn(energy)
    if energy in _PAIRWISE_FNS:
        return _PAIRWISE_FNS[energy](phi, psi)
    return energy_fn(phi[:, None, :], psi[None, :, :])


def paired_logits(energy: str, phi: Array, psi: Array) -> Array:
    """Matched pairs ``f(phi_i, psi_i)``, ``[B, d] x [B, d] -> [B]`` in ``O(B d)``.

    Equals ``diag(pairwise_logits(energy, phi, psi))``; the actor needs only this diagonal.
    """
    return _energy_fn(energy)(phi, psi)


# ---------------------------------------------------------------------------------------------
# Losses. Each maps logits [B, B] (positives on the diagonal) to a scalar to minimise.


def _off_diagonal_mask(num: int) -> Array:
    return ~jnp.eye(num, dtype=bool)


def _off_diagonal_mean(values: Array) -> Array:
    """``mean_{i != j} values_ij`` over the ``B (B - 1)`` negatives."""
    num = values.shape[0]
    return jnp.sum(jnp.where(_off_diagonal_mask(num), values, 0.0)) / (num * (num - 1))


def _margins(logits: Array) -> Array:
    """``[B, B]``: ``logits_ii - logits_ij``, how far each positive beats each negative of row i."""
    return jnp.diagonal(logits)[:, None] - logits


def _infonce_forward(logits: Array) -> Array:
    """``mean_i [ -logits_ii + logsumexp_j logits_ij ]``: classify the goal of each state-action.

    Softmax over goals (axis 1); ``>= 0``, and ``log B`` for a collapsed critic.
    """
    return jnp.mean(jax.nn.logsumexp(logits, axis=1) - jnp.diagonal(logits))


def _infonce_backward(logits: Array) -> Array:
    """``mean_j [ -logits_jj + logsumexp_i logits_ij ]``: softmax over state-actions (axis 0)."""
    return jnp.mean(jax.nn.logsumexp(logits, axis=0) - jnp.diagonal(logits))


def _infonce_sym(logits: Array) -> Array:
    """``-mean_i [2 logits_ii - logsumexp_j logits_ij - logsumexp_j logits_ji]``: the paper's
    default, the *sum* ``infonce_forward + infonce_backward`` (as in JaxGCRL, so the logsumexp
    penalty keeps the reference's relative weight)."""
    return _infonce_forward(logits) + _infonce_backward(logits)


def _binary_nce(logits: Array) -> Array:
    """Sigmoid cross-entropy against labels ``I``, averaged over all ``B^2`` entries.

    ``mean_ij [ -I_ij log σ(logits_ij) - (1 - I_ij) log(1 - σ(logits_ij)) ]``
    ``= ( sum_i softplus(-logits_ii) + sum_{i != j} softplus(logits_ij) ) / B^2``.
    The plain ``B^2`` mean (not a positives/negatives-balanced mean) is the NCE-binary loss of
    the original CRL paper (Eysenbach et al. 2022): every entry weighs the same, so the ``B``
    positives carry ``1/B`` of the loss and the ``B (B - 1)`` negatives the rest.
    """
    labels = jnp.eye(logits.shape[0], dtype=logits.dtype)
    # -log σ(x) = softplus(-x), -log(1 - σ(x)) = softplus(x).
    per_entry = labels * jax.nn.softplus(-logits) + (1.0 - labels) * jax.nn.softplus(logits)
    return jnp.mean(per_entry)


def _flatnce_log_ratios(logits: Array) -> Array:
    """``[B]``: ``l_i = logsumexp_{j != i} (logits_ij - logits_ii)``."""
    mask = _off_diagonal_mask(logits.shape[0])
    return jax.nn.logsumexp(-_margins(logits), axis=1, where=mask)


def _flatnce(logits: Array) -> Array:
    """FlatNCE (Chen et al. 2021): ``mean_i exp(l_i - stop_gradient(l_i))``.

    ``l_i = logsumexp_{j != i}(logits_ij - logits_ii)``. The value is exactly 1; the gradient is
    ``mean_i ∇ l_i = mean_i [ sum_{j != i} w_ij ∇ logits_ij - ∇ logits_ii ]`` with
    ``w_i· = softmax_{j != i}(logits_i·)``: InfoNCE's gradient with the positive left out of the
    softmax, so its scale does not shrink as the positive comes to dominate (InfoNCE's
    gradient carries a factor ``1 - softmax_j(logits_i·)_i``, which goes to 0). The
    un-flattened ``mean_i l_i`` is reported as the metric ``flatnce_unflattened``.
    """
    log_ratios = _flatnce_log_ratios(logits)
    return jnp.mean(jnp.exp(log_ratios - jax.lax.stop_gradient(log_ratios)))


def _forward_backward(logits: Array) -> Array:
    """FB representation loss (Touati & Ollivier 2021), ``-mean_i logits_ii + 0.5 mean_{i != j}
    logits_ij^2``: raise the measure on positives, drive negatives to 0 (not to -inf)."""
    return -jnp.mean(jnp.diagonal(logits)) + 0.5 * _off_diagonal_mean(jnp.square(logits))


def _dpo(logits: Array) -> Array:
    """DPO-style pairwise preference, ``-mean_{i != j} log σ(logits_ii - logits_ij)``."""
    return -_off_diagonal_mean(jax.nn.log_sigmoid(_margins(logits)))


def _ipo(logits: Array) -> Array:
    """IPO-style regression, ``mean_{i != j} (logits_ii - logits_ij - 1)^2``.

    Regresses every margin to 1 (the JaxGCRL paper code's target) instead of pushing it to
    infinity, so the best critic has margin exactly 1. The paper code averages over all ``B^2``
    entries, whose ``B`` diagonal terms are the constant ``(0 - 1)^2``; averaging over the
    negatives only changes the gradient's scale by ``B / (B - 1)``.
    """
    return _off_diagonal_mean(jnp.square(_margins(logits) - 1.0))


def _sppo(logits: Array) -> Array:
    """SPPO-style regression, ``mean_i (logits_ii - 1)^2 + mean_{i != j} (logits_ij + 1)^2``:
    positives to +1 and negatives to -1 (absolute targets, unlike IPO's margins; the paper
    code's targets). Both groups weigh the same, as the paper code's ``B``-fold weight on the
    diagonal intends (its negatives weigh ``(B - 1) / B`` of ours)."""
    positives = jnp.mean(jnp.square(jnp.diagonal(logits) - 1.0))
    return positives + _off_diagonal_mean(jnp.square(logits + 1.0))


_LOSS_FNS: dict[str, Callable[[Array], Array]] = {
    "infonce_forward": _infonce_forward,
    "infonce_backward": _infonce_backward,
    "infonce_sym": _infonce_sym,
    "binary_nce": _binary_nce,
    "flatnce": _flatnce,
    "forward_backward": _forward_backward,
    "dpo": _dpo,
    "ipo": _ipo,
    "sppo": _sppo,
}
LOSSES: tuple[str, ...] = tuple(_LOSS_FNS)

# Losses whose value alone does not say how training goes get extra metrics: name -> fn(logits).
_EXTRA_METRIC_FNS: dict[str, dict[str, Callable[[Array], Array]]] = {
    "flatnce": {"flatnce_unflattened": lambda logits: jnp.mean(_flatnce_log_ratios(logits))},
}


def extra_metric_names(loss: str) -> tuple[str, ...]:
    """Names of the metrics ``contrastive_loss`` adds for ``loss`` beyond the common three."""
    return tuple(_EXTRA_METRIC_FNS.get(loss, {}))


def contrastive_loss(loss: str, logits: Array) -> tuple[Array, dict[str, Array]]:
    """Critic loss named ``loss`` (one of ``LOSSES``) of ``logits [B, B]``, and its metrics.

    Positives are the diagonal ``(i, i)``, negatives the off-diagonal. Formulas (means over
    ``i`` run over ``B`` rows, means over ``i != j`` over the ``B (B - 1)`` negatives):

    - ``infonce_forward``: ``mean_i [ -logits_ii + logsumexp_j logits_ij ]`` (softmax over goals)
    - ``infonce_backward``: ``mean_j [ -logits_jj + logsumexp_i logits_ij ]`` (over state-actions)
    - ``infonce_sym``: their sum, ``-mean_i [2 logits_ii - lse_j logits_ij - lse_j logits_ji]``
    - ``binary_nce``: ``mean_ij BCE(σ(logits_ij), I_ij)`` over all ``B^2`` entries
    - ``flatnce``: ``mean_i exp(l_i - sg(l_i))``,
      ``l_i = logsumexp_{j != i}(logits_ij - logits_ii)`` (value 1, gradient ``mean_i ∇ l_i``)
    - ``forward_backward``: ``-mean_i logits_ii + 0.5 mean_{i != j} logits_ij^2``
    - ``dpo``: ``-mean_{i != j} log σ(logits_ii - logits_ij)``
    - ``ipo``: ``mean_{i != j} (logits_ii - logits_ij - 1)^2``
    - ``sppo``: ``mean_i (logits_ii - 1)^2 + mean_{i != j} (logits_ij + 1)^2``

    Metrics: ``logits_pos`` (mean diagonal), ``logits_neg`` (mean off-diagonal),
    ``categorical_accuracy`` (fraction of rows whose argmax is the diagonal), and for
    ``flatnce`` also ``flatnce_unflattened`` (``mean_i l_i``, since the loss value is always 1).
    """
    if loss not in _LOSS_FNS:
        raise ValueError(f"unknown loss {loss!r}; valid losses: {', '.join(LOSSES)}")
    num = logits.shape[0]
    metrics = {
        "logits_pos": jnp.mean(jnp.diagonal(logits)),
        "logits_neg": _off_diagonal_mean(logits),
        "categorical_accuracy": jnp.mean(jnp.argmax(logits, axis=1) == jnp.arange(num)),
    }
    for name, fn in _EXTRA_METRIC_FNS.get(loss, {}).items():
        metrics[name] = fn(logits)
    return _LOSS_FNS[loss](logits), metrics


def logsumexp_penalty(logits: Array) -> Array:
    """``mean_i (logsumexp_j logits_ij)^2`` for ``logits [B, B]`` (forward direction).

    InfoNCE is invariant to adding ``c_i`` to row ``i``; this pins the free row offsets near 0 so
    logits stay bounded. The caller multiplies by its coefficient.
    """
    return jnp.mean(jnp.square(jax.nn.logsumexp(logits, axis=1)))
