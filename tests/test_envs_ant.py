"""The GoalEnv contract (``tests/test_envs.py``) on the ant family (incl. soccer, push, mazes).

A file of its own so that pytest-xdist (``--dist loadfile``) spreads the task compiles over both
workers; the tests themselves are imported, not copied.
"""

from test_envs import add_family

from goalax import envs

add_family(globals(), [name for name in envs.names() if name.startswith("ant")])
