"""Wait estimation: the estimator, Erlang maths, the classic predictors, off-peak guidance."""
