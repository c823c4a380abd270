"""The controller reads the shared defaults role for what a Clusterfile leaves out."""

from sealer.cluster.collection import shared_defaults


def test_the_shared_defaults_are_the_sealer_roles_defaults() -> None:
    defaults = shared_defaults()
    assert defaults["sealer_registry_domain"] == "sea.hub"
    assert defaults["sealer_registry_port"] == 5000
