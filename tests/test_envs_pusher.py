"""The GoalEnv contract (``tests/test_envs.py``) on the pusher tasks, and their observation and
resets against the reference's (jaxgcrl 0.2.8; the full comparison is
``tests/test_reference_fidelity.py``).

A file of its own so that pytest-xdist (``--dist loadfile``) spreads the task compiles over both
workers; the tests themselves are imported, not copied.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_envs import add_family

from goalax import envs

add_family(globals(), [name for name in envs.names() if name.startswith("pusher")])


#: One state of the reference's own env (jaxgcrl 0.2.8, generalized, step 50 of a random-action
#: rollout): ``q``, ``qd`` and its observation. goalax's observation of the same physics state must
#: be the same numbers: the wrist point (not the fingertips), pucks and goals where the reference
#: puts them, the reacher's order.
REFERENCE_STATES = {
    "pusher_easy": (
        [0.15463605523109436, 0.19806094467639923, 0.9005499482154846, -0.5646185874938965]
        + [0.6291196346282959, 0.0010916938772425056, 1.4093024730682373]
        + [-0.5861784219741821, -0.25693392753601074, -0.26600268483161926, -0.17672280967235565],
        [-0.086741603910923, 0.11233395338058472, 0.12759889662265778, -0.8057053685188293]
        + [-0.4082244336605072, -0.0201252494007349, -1.2301162481307983, 0.0, 0.0, 0.0, 0.0],
        [0.7904878854751587, -0.613010823726654, -0.027455877512693405]  # wrist
        + [0.1930660605430603, -0.6361784338951111, -0.2750000059604645]  # puck
        + [0.2732771635055542, -0.3160026967525482, -0.3230000138282776],  # goal
    ),
    "pusher_reacher": (
        [0.15463601052761078, 0.198061004281044, 0.9005497694015503, -0.5646181702613831]
        + [0.6291199326515198, 0.0010967958951368928, 1.4093024730682373]
        + [1.0, 1.0, -0.016002697870135307, -0.17672280967235565],
        [-0.08674120157957077, 0.11233380436897278, 0.127596914768219, -0.8057010769844055]
        + [-0.40822362899780273, -0.020295044407248497, -1.230116844177246, 0.0, 0.0, 0.0, 0.0],
        [0.7904878854751587, -0.6130107641220093, -0.027455970644950867]  # wrist
        + [0.2732771635055542, -0.06600269675254822, -0.3230000138282776],  # goal
    ),
    "pusher2": (
        [0.1556606888771057, 0.20015297830104828, 0.9148077368736267, -0.5550349950790405]
        + [0.6298394799232483, 0.02405930496752262, 1.4085369110107422]
        + [-0.23400640487670898, 0.31309279799461365, -0.6776992082595825, -0.06953547149896622]
        + [-0.13603618741035461, 0.46323224902153015, -0.6776992082595825, 0.808775007724762],
        [-0.0918559730052948, 0.11575446277856827, 0.17116712033748627, -0.8741340637207031]
        + [-0.4115528166294098, 2.6478848457336426, -1.2355802059173584]
        + [0.0] * 8,
        [0.7912463545799255, -0.6115188598632812, -0.03265088051557541]  # wrist
        + [0.31309279799461365, -0.23400640487670898, -0.2750000059604645]  # puck 1
        + [0.46323224902153015, -0.13603618741035461, -0.2750000059604645]  # puck 2
        + [-0.06953547149896622, -0.6776992082595825, -0.3230000138282776]  # goal 1
        + [0.808775007724762, -0.6776992082595825, -0.3230000138282776],  # goal 2
    ),
}


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=pytest.mark.slow) if n != "pusher2" else n for n in REFERENCE_STATES],
)
def test_observation_of_a_reference_state_is_the_reference_observation(name):
    env = envs.make(name)
    q, qd, points = (np.asarray(x, np.float32) for x in REFERENCE_STATES[name])
    state_obs = np.asarray(jax.jit(lambda q, qd: env.state_obs(env.pipeline_init(q, qd)))(q, qd))
    arm_q, arm_qd = q[:7], qd[:7]
    n_goals = len(env.goal_indices) // 3
    tail = points[: len(points) - 3 * n_goals]
    expected = (
        np.concatenate([arm_q, arm_qd, tail])
        if name == "pusher_reacher"
        else np.concatenate([arm_q, tail, arm_qd])
    )
    np.testing.assert_allclose(state_obs, expected, atol=2e-6)
    # The goal markers' joints hold offsets from their home; goal_from_offsets inverts that.
    goal_q = q[7:].reshape(-1, 4)[:, 2:]
    goal = env.goal_from_offsets(jnp.asarray(goal_q))
    np.testing.assert_allclose(goal, points[len(points) - 3 * n_goals :], atol=2e-6)


#: World ``((x_low, y_low), (x_high, y_high))`` of each goal, written down from the reference's
#: draws (its offsets are ``(y, x)`` from the bodies' home; ``pusher2``'s home is the origin).
GOAL_REGIONS = {
    "pusher_easy": [((0.25, -0.6), (0.65, -0.3))],
    "pusher_hard": [((-0.1, -0.7), (0.9, 0.3))],
    "pusher_reacher": [((0.25, -0.35), (0.65, -0.05))],
    "pusher2": [((-0.15, -0.7), (0.375, 0.3)), ((0.375, -0.7), (0.9, 0.3))],
}


def test_pusher_resets_follow_the_reference(task):
    """Arm at rest at ``q = 0``; goals in the variant's region at the markers' height (both of
    ``pusher2``'s at one ``y``, as the reference draws them); the reacher's puck parked away."""
    env, first = task["env"], task["first"]
    np.testing.assert_array_equal(first.obs[:, :7], 0.0)
    qd = np.asarray(first.pipeline_state.qd)
    assert (np.abs(qd[:, :7]) <= 0.005).all() and (qd[:, 7:] == 0).all()
    goals = np.concatenate([first.info["goal"], task["chain_goals"]])
    goals = goals.reshape(len(goals), -1, 3)
    np.testing.assert_allclose(goals[..., 2], -0.323, atol=1e-6)
    for k, (low, high) in enumerate(np.asarray(GOAL_REGIONS[task["name"]])):
        xy = goals[:, k, :2]
        assert ((xy >= low - 1e-6) & (xy <= high + 1e-6)).all(), (k, xy)
    if env.variant == "two":
        np.testing.assert_array_equal(goals[:, 0, 1], goals[:, 1, 1])
    if env.variant == "reacher":
        puck = np.asarray(first.pipeline_state.x.pos)[:, env.sys.link_names.index("object")]
        assert (np.linalg.norm(puck[:, :2], axis=-1) > 1.5).all()
