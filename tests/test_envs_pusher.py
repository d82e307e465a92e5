"""The GoalEnv contract (``tests/test_envs.py``) on the pusher tasks.

A file of its own so that pytest-xdist (``--dist loadfile``) spreads the task compiles over both
workers; the tests themselves are imported, not copied.
"""

import pytest
from test_envs import CONTRACT_TESTS, compile_task, task_params

from goalax import envs

NAMES = task_params(name for name in envs.names() if name.startswith("pusher"))


@pytest.fixture(scope="module", params=NAMES)
def task(request):
    return compile_task(request.param)


for _test in CONTRACT_TESTS:
    globals()[_test.__name__] = _test
