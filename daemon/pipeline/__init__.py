"""The one path a stored event takes after the store: state, then estimator (`process`, with
the estimator's lane in `lane` and the start-up replay in `restore`); and the hall views the
alert rules read (`views`)."""
