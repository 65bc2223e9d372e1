"""DSP as pure functions on parameter pytrees (METHOD.md §1–§7).

Read in this order: ``chain`` (where a network's dense layers are in a parameter tree) →
``groups`` (§1) → ``importance`` (§2) → ``regularizer`` (§3) → ``threshold`` and ``mask`` (§4) →
``compact`` (§5, §6) → ``dsp`` (one network's DSP put together) → ``taps`` (``∂L/∂h`` from any
Flax loss) → ``pruner`` (``DSP``: the one call per training step, for every declared network).
"""

from dspjax.pruning.chain import (
    ACTIVATIONS,
    DenseChain,
    chain_apply,
    chain_layers,
    dense_chain,
    output_jacobians,
    with_chain_layers,
)
from dspjax.pruning.compact import compact, compression_stats, dense_param_count
from dspjax.pruning.dsp import (
    METHOD_PRESETS,
    NO_PRUNING,
    PRUNING_NAMES,
    STRUCTURED,
    UNSTRUCTURED,
    DSPHParams,
    PrunerState,
    init_pruner,
    is_pruning_iteration,
    mask_gradients,
    observe_importance,
    proximal_step,
    prune_step,
    pruner_param_mask,
    regularizer_loss,
)
from dspjax.pruning.groups import group_norms, group_sizes, group_sq_norms, hidden_sizes, param_masks
from dspjax.pruning.importance import (
    IMPORTANCE_NAMES,
    activation_importance,
    batch_importance,
    magnitude_importance,
    normalised_scores,
    output_importance,
    taylor_importance,
)
from dspjax.pruning.mask import apply_param_mask, mask_optimizer_state, update_mask, update_weight_mask
from dspjax.pruning.pruner import DSP, DSPState
from dspjax.pruning.regularizer import (
    PENALTY_FORMS,
    group_sparse_penalty,
    penalty_weights,
    proximal_group_shrink,
    regularization_strength,
)
from dspjax.pruning.threshold import THRESHOLD_NAMES, cubic_ramp, dynamic_threshold, window_progress
