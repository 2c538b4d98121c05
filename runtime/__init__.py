"""symgrad.runtime: parameter stores, optimisers, schedules, batching and the trainer."""
