"""metro-e2e: the Metro MLOps platform's Iris workflow and its end-to-end conformance suite.

Public API (everything else is private)::

    from metro_e2e import MetroConfig, load_config
    from metro_e2e import data, training, registry, promotion, serving
    from metro_e2e.storage import Storage
    from metro_e2e.errors import MetroE2EError
"""

__version__ = "0.1.0"

from metro_e2e.config import MetroConfig, Secret, load_config  # noqa: E402
from metro_e2e.errors import MetroE2EError  # noqa: E402

__all__ = ["MetroConfig", "MetroE2EError", "Secret", "load_config", "__version__"]
