"""Which experiments can be searched: a plain table, so that the CLI can list them without importing torch."""

# Experiment name -> "module:attribute" of its adapter (imported lazily: experiments import torch-heavy code).
ADAPTERS: dict[str, str] = {
    "regression": "dlrl.tune.adapters:RegressionAdapter",
    "classifier": "dlrl.tune.adapters:ClassifierAdapter",
    "autoencoder": "dlrl.tune.adapters:AutoEncoderAdapter",
    "dqn": "dlrl.experiments.dqn:DQNTuneAdapter",
}
