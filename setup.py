from setuptools import find_packages, setup

setup(
    name="sparse_orl",
    version="0.1.0",
    description="Single-shot pruning at initialization (SNIP, GraSP) for offline RL (BCQ, BC) in JAX/Flax.",
    packages=find_packages(include=["sparse_orl", "sparse_orl.*", "launch", "launch.*"]),
    python_requires=">=3.10",
    install_requires=[
        "jax>=0.4.30",
        "jaxlib>=0.4.30",
        "flax>=0.8.5",
        "optax>=0.2.2",
        "chex>=0.1.86",
        "numpy>=1.26",
        "gymnasium[mujoco]>=1.0",
        "mujoco>=3.1",
        "minari[hdf5,hf]>=0.5.1",  # hf: downloads a dataset id that is not on disk
        "absl-py>=2.0",
        "orbax-checkpoint>=0.6",
        "matplotlib>=3.8",
        "tensorboardX>=2.6",  # TensorBoard event files without TensorFlow
    ],
    extras_require={"test": ["pytest>=8", "pytest-xdist>=3", "wandb>=0.17"], "wandb": ["wandb>=0.17"]},
)
