"""Wait estimation: the estimator, its lane, Erlang maths, the classic predictors,
off-peak guidance."""
