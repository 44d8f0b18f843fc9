"""The hallwatch daemon, by layer (a package imports only from below; lint-imports checks it):
cli -> main (the composition root) -> web -> reports | offline -> mqtt | staff -> metrics
-> pipeline -> (hallwatch.alerts) -> store -> config -> estimate -> core -> (hallwatch.sensors)
-> base."""
