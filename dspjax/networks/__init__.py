"""Networks that DSP prunes: plain MLPs on explicit parameter pytrees."""

from dspjax.networks.mlp import ACTIVATIONS, init_mlp, mlp_apply, output_jacobians, zero_probes
