"""The smoke tests of ``tests/test_envs_all.py`` for the cheetah, pusher and arm tasks.

A separate file only so that pytest-xdist (``--dist loadfile``) compiles these tasks on the other
worker; the tests themselves are imported, not copied.
"""

import pytest
from test_envs_all import (  # noqa: F401  (imported tests are collected here)
    MANIPULATION,
    compile_task,
    test_eval_goal_sets,
    test_goal_changes_at_every_auto_reset,
    test_goals_differ_across_envs_and_keys,
    test_registered_with_contract_attributes,
    test_reset_and_steps_are_finite_with_the_right_sizes,
    test_success_when_goal_part_equals_goal,
)


@pytest.fixture(scope="module", params=MANIPULATION)
def run(request):
    return compile_task(request.param)
