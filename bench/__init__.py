"""unlearning-bench: a harness that compares LLM unlearning methods on equal terms."""

__version__ = "0.1.0"
