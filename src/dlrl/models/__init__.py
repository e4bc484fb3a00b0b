"""nn.Modules only: no data loading, optimizers or printing here."""
