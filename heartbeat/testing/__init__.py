"""Public test helpers: real servers, member processes, fault injection."""
