"""Goal-conditioned tasks: the GoalEnv contract, the registry and the task families."""
