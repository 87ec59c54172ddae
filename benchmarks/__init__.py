"""hemiface.benchmarks: latency, memory, cold start and agreement, as tables and plots."""
