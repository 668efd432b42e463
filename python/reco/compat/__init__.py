"""Drop-in layers with the call signatures and return shapes of the peers' everyday API:
:mod:`reco.compat.implicit` for implicit's models."""
