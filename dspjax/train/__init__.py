"""Training populations, run directories and reports (above the agents)."""

from dspjax.train.population import (
    Member,
    PopulationResult,
    build_population,
    hparam_specs,
    member_sharding,
    parse_assignment,
    run_population,
    set_hparam,
    stack_hparams,
)

__all__ = ["Member", "PopulationResult", "build_population", "hparam_specs", "member_sharding",
           "parse_assignment", "run_population", "set_hparam", "stack_hparams"]
