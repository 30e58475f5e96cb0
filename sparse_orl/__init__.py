"""sparse_orl: pruning at initialization for offline RL in JAX."""
__version__ = "0.1.0"
