"""dspjax: dynamic structured pruning (DSP) of deep-RL policies in JAX.

Layers, each importing only those below it:
``pruning`` → ``networks`` → ``envs`` → ``agents`` → ``train`` → ``cli``.
"""

__version__ = "0.5.0"
